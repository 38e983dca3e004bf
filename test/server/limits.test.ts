/**
 * Limits and malformed input against a real server on loopback: uploads over the file size or file count
 * limits are refused with 413 and store nothing, an unsupported file fails alone (the rest of the upload is
 * stored), a multipart request without a file is 400; every JSON endpoint answers wrong types and unknown
 * fields with 400 INVALID_ARGUMENT naming the field and changes nothing; random JSON bodies (fast-check)
 * never produce a 5xx.
 */
import fs from 'node:fs';
import path from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HANDBOOK, startTestServer, type TestServer } from './harness.js';

let t: TestServer;
const MAX_FILE = 4096;

beforeAll(async () => {
  t = await startTestServer({
    docs: HANDBOOK.filter((d) => d.access === undefined),
    config: { upload: { maxFileBytes: MAX_FILE, maxFiles: 2 }, rateLimit: { perMinute: 100_000 } },
  });
});
afterAll(async () => {
  await t?.close();
});

async function documentIds(): Promise<string[]> {
  const r = await t.call('GET', '/v1/documents?limit=1000');
  expect(r.status).toBe(200);
  return r.body.documents.map((d: { id: string }) => d.id).sort();
}

function uploadsOnDisk(): string[] {
  const dir = path.join(t.store, 'uploads');
  return fs.existsSync(dir) ? fs.readdirSync(dir).sort() : [];
}

async function upload(
  files: Array<{ name: string; bytes: Uint8Array | string }>,
  fields: Record<string, string> = {},
) {
  const form = new FormData();
  for (const [k, v] of Object.entries(fields)) form.append(k, v);
  for (const f of files) form.append('file', new Blob([f.bytes]), f.name);
  const r = await fetch(`${t.url}/v1/documents/upload`, { method: 'POST', body: form });
  return { status: r.status, body: (await r.json()) as any };
}

describe('upload limits', () => {
  it('a file over upload.maxFileBytes is 413 and nothing is stored', async () => {
    const before = await documentIds();
    const r = await upload([
      { name: 'small.md', bytes: '# Small\n\nA small note about kayaks.\n' },
      { name: 'big.md', bytes: `# Big\n\n${'kayak paddles '.repeat(MAX_FILE / 10)}\n` },
    ]);
    expect(r.status).toBe(413);
    expect(['PAYLOAD_TOO_LARGE', 'FILE_TOO_LARGE']).toContain(r.body.error.code);
    expect(r.body.error.message).toMatch(/big\.md|limit|large/i);
    expect(await documentIds()).toEqual(before);
    expect(uploadsOnDisk()).toEqual([]);
  });

  it('more files than upload.maxFiles is 413 and nothing is stored', async () => {
    const before = await documentIds();
    const r = await upload(
      ['a', 'b', 'c'].map((n) => ({ name: `${n}.md`, bytes: `# ${n}\n\nNote ${n} about canoes.\n` })),
    );
    expect(r.status).toBe(413);
    expect(r.body.error.code).toBe('PAYLOAD_TOO_LARGE');
    expect(await documentIds()).toEqual(before);
    expect(uploadsOnDisk()).toEqual([]);
  });

  it('an unsupported binary file fails with its code; the rest of the upload is stored', async () => {
    const binary = new Uint8Array(1024);
    for (let i = 0; i < binary.length; i++) binary[i] = (i * 37) % 256;
    const r = await upload([
      { name: 'firmware.bin', bytes: binary },
      { name: 'canoe.md', bytes: '# Canoe\n\nA canoe is paddled with a single-bladed paddle.\n' },
    ]);
    expect(r.status).toBe(200);
    expect(r.body.added).toBe(1);
    expect(r.body.failed).toBe(1);
    const failed = r.body.documents.find((d: { status: string }) => d.status === 'failed');
    expect(failed.source).toBe('firmware.bin');
    expect(['UNSUPPORTED_FILE', 'BINARY_FILE']).toContain(failed.code);
    const added = r.body.documents.find((d: { status: string }) => d.status === 'added');
    const search = await t.call('POST', '/v1/search', { body: { query: 'single-bladed paddle' } });
    expect(search.body.hits[0].document.id).toBe(added.id);
    // The stored upload is kept as the document's source; the refused one is not kept.
    expect(uploadsOnDisk()).toEqual(['canoe.md']);
  });

  it('a failed replacement keeps the previous bytes on disk, matching the stored document', async () => {
    const good = '# Kayak\n\nA kayak is paddled with a double-bladed paddle.\n';
    const first = await upload([{ name: 'kayak.md', bytes: good }]);
    expect(first.body.added).toBe(1);
    // The same name again, now bytes no parser accepts (a NUL-filled "markdown" file).
    const broken = await upload([{ name: 'kayak.md', bytes: new Uint8Array(2048) }]);
    expect(broken.status).toBe(200);
    expect(broken.body.failed).toBe(1);
    expect(fs.readFileSync(path.join(t.store, 'uploads', 'kayak.md'), 'utf8')).toBe(good);
    const doc = await t.call('GET', `/v1/documents/${encodeURIComponent('uploads/kayak.md')}`);
    expect(doc.body.text).toContain('double-bladed paddle');
    // And a later good replacement still updates it.
    const better = good.replace('double-bladed', 'two-bladed');
    const again = await upload([{ name: 'kayak.md', bytes: better }]);
    expect(again.body.updated).toBe(1);
    expect(fs.readFileSync(path.join(t.store, 'uploads', 'kayak.md'), 'utf8')).toBe(better);
  });

  it('a multipart request without a file field is 400', async () => {
    const before = await documentIds();
    const r = await upload([], { collection: 'default' });
    expect(r.status).toBe(400);
    expect(r.body.error.code).toBe('INVALID_ARGUMENT');
    expect(r.body.error.message).toMatch(/file/);
    expect(await documentIds()).toEqual(before);
  });

  it('a JSON body sent to the upload route is 400', async () => {
    const r = await t.call('POST', '/v1/documents/upload', { body: { file: 'x' } });
    expect(r.status).toBe(400);
    expect(r.body.error.code).toBe('INVALID_ARGUMENT');
  });
});

describe('malformed JSON bodies on every JSON endpoint', () => {
  const CASES: Array<[string, string, unknown, RegExp]> = [
    ['POST', '/v1/search', { query: 5 }, /body\.query/],
    ['POST', '/v1/search', { query: 'ferry', k: '3' }, /body\.k/],
    ['POST', '/v1/search', { query: 'ferry', colour: 'red' }, /colour/],
    ['POST', '/v1/ask', { question: ['ferry'] }, /body\.question/],
    ['POST', '/v1/ask', { question: 'ferry', stream: 'yes' }, /body\.stream/],
    ['POST', '/v1/ask', { question: 'ferry', reasoning: true }, /reasoning/],
    ['POST', '/v1/chat/completions', { model: 'quarry', messages: 'hi' }, /body\.messages/],
    ['POST', '/v1/chat/completions', { model: 7, messages: [{ role: 'user', content: 'x' }] }, /body\.model/],
    [
      'POST',
      '/v1/chat/completions',
      { model: 'quarry', messages: [{ role: 'wizard', content: 'x' }] },
      /body\.messages\.0\.role/,
    ],
    ['POST', '/v1/documents', { documents: [{ id: 3, text: 'x' }] }, /body\.documents\.0\.id/],
    ['POST', '/v1/documents', { documents: [{ id: 'a', text: 'x', colour: 'red' }] }, /colour/],
    ['POST', '/v1/documents', { documents: 'all of them' }, /body\.documents/],
    ['POST', '/v1/documents', { docs: [{ id: 'a', text: 'x' }] }, /docs/],
    ['POST', '/v1/feedback', { queryId: 'q', docId: 'ferry', helpful: 'yes' }, /body\.helpful/],
    ['POST', '/v1/feedback', { queryId: 'q', docId: 'ferry', helpful: true, stars: 5 }, /stars/],
    ['POST', '/v1/collections', { name: 7 }, /body\.name/],
    ['POST', '/v1/collections', { name: 'ok', owner: 'me' }, /owner/],
    ['POST', '/v1/admin/pii/restore', { text: 1, reason: 'r' }, /body\.text/],
    ['POST', '/v1/admin/pii/restore', { text: 'x', reason: 'r', all: true }, /all/],
  ];

  it.each(CASES)('%s %s %j → 400 naming the field', async (method, url, body, field) => {
    const beforeDocs = await documentIds();
    const beforeCollections = (await t.call('GET', '/v1/collections')).body;
    const r = await t.call(method, url, { body });
    expect(r.status).toBe(400);
    expect(r.body.error.code).toBe('INVALID_ARGUMENT');
    expect(r.body.error.message).toMatch(field);
    expect(r.body.error.requestId).toBe(r.headers.get('x-request-id'));
    expect(await documentIds()).toEqual(beforeDocs);
    expect((await t.call('GET', '/v1/collections')).body).toEqual(beforeCollections);
  });

  it.each(['/v1/search', '/v1/ask', '/v1/documents', '/v1/feedback', '/v1/collections'])(
    'a JSON body that is not an object (null, array, string, number) is 400 at %s',
    async (url) => {
      for (const raw of ['null', '[]', '"ferry"', '42']) {
        const r = await t.call('POST', url, { raw });
        expect(r.status, raw).toBe(400);
        expect(r.body.error.code).toBe('INVALID_ARGUMENT');
      }
    },
  );
});

describe('random JSON bodies (property)', () => {
  const junk = fc.jsonValue({ maxDepth: 3 });
  const keys = (names: string[]) =>
    fc.dictionary(fc.oneof(fc.constantFrom(...names), fc.string({ maxLength: 8 })), junk, { maxKeys: 5 });

  it('POST /v1/search never answers 5xx and never changes the stored documents', async () => {
    const before = await documentIds();
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(junk, keys(['query', 'k', 'filter', 'retriever', 'budgetMs', 'collection', 'typos'])),
        async (body) => {
          const r = await t.call('POST', '/v1/search', { raw: JSON.stringify(body) });
          expect(r.status, JSON.stringify({ body, response: r.body })).toBeLessThan(500);
          if (r.status >= 400) expect(typeof r.body.error.code).toBe('string');
        },
      ),
      { numRuns: 150 },
    );
    expect(await documentIds()).toEqual(before);
  });

  it('POST /v1/documents never answers 5xx; a refused body changes nothing, an accepted one only what it reports', async () => {
    const doc = keys(['id', 'text', 'markdown', 'html', 'title', 'access', 'metadata']);
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(
          junk,
          keys(['documents', 'collection']),
          fc.record({ documents: fc.array(doc, { maxLength: 3 }) }, { requiredKeys: [] }),
        ),
        async (body) => {
          const before = await documentIds();
          const r = await t.call('POST', '/v1/documents', { raw: JSON.stringify(body) });
          expect(r.status, JSON.stringify({ body, response: r.body })).toBeLessThan(500);
          const after = await documentIds();
          if (r.status >= 400) expect(after).toEqual(before);
          else expect(after.length).toBe(before.length + r.body.added);
        },
      ),
      { numRuns: 150 },
    );
  });
});

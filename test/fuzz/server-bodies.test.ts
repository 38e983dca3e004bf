/**
 * HTTP bodies fuzzed against a real server: arbitrary JSON and near-valid requests with absurd k, queries and
 * filters for /v1/search, /v1/ask, /v1/documents and /v1/chat/completions, and uploads whose file names try
 * path traversal. Every answer is a success or the documented error body with a stable code and a 4xx
 * status (never 500, never INTERNAL), the server keeps answering, and a refused request changes nothing
 * stored (the document list with its versions, and the store folder's files).
 */
import fs from 'node:fs';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HANDBOOK, startTestServer, type TestServer } from '../server/harness.js';
import { SEED, tally } from './budget.js';

let srv: TestServer;
const tallies: Array<ReturnType<typeof tally>> = [];
beforeAll(async () => {
  srv = await startTestServer({ docs: HANDBOOK, config: { rateLimit: { perMinute: 1_000_000 } } });
});
afterAll(async () => {
  for (const t of tallies) t.report();
  await srv?.close();
});

async function snapshot(): Promise<string> {
  const r = await srv.call('GET', '/v1/documents?limit=1000');
  expect(r.status).toBe(200);
  const docs = (r.body.documents as Array<{ id: string; meta: { version: number } }>).map((d) => [
    d.id,
    d.meta.version,
  ]);
  return JSON.stringify({
    docs,
    files: fs
      .readdirSync(srv.store)
      // The staging folder an upload is received into (emptied after each request), not stored content.
      .filter((f) => f !== '.uploads-tmp')
      .sort(),
  });
}

function assertCleanAnswer(status: number, body: any): void {
  expect(status, JSON.stringify(body).slice(0, 300)).toBeLessThan(500);
  if (status >= 400) {
    expect(typeof body?.error?.code).toBe('string');
    expect(body.error.code).not.toBe('INTERNAL');
    expect(typeof body.error.message).toBe('string');
  }
}

const absurdK = fc.oneof(
  fc.integer(),
  fc.double(),
  fc.constantFrom(0, -1, 1e308, 2 ** 53, '10', null, [], {}),
);
const absurdQuery = fc.oneof(
  fc.string({ maxLength: 50 }),
  fc.string({ unit: 'grapheme', maxLength: 50 }),
  fc.integer({ min: 1, max: 20_000 }).map((n) => 'ferry '.repeat(n).slice(0, n)),
  fc.constantFrom('', ' ', '\u0000', '\ud800', '"; DROP TABLE documents; --', 'NEAR(', '*', 'a OR b AND NOT'),
  fc.jsonValue({ maxDepth: 2 }),
);
const absurdFilter = fc.oneof(
  fc.jsonValue({ maxDepth: 4 }),
  fc.dictionary(
    fc.constantFrom('tags', 'id', '$or', '$and', '$not', '$where', 'access_groups', '__proto__'),
    fc.jsonValue({ maxDepth: 3 }),
    { maxKeys: 3 },
  ),
  fc.string({ maxLength: 30 }),
  fc.integer({ min: 40, max: 3000 }).map((n) => `${'{"$not":'.repeat(n)}{"tags":"x"}${'}'.repeat(n)}`),
);
const retrievalFields = {
  k: absurdK,
  filter: absurdFilter,
  collection: fc.oneof(fc.string({ maxLength: 70 }), fc.constantFrom('default', '../etc', '..', '', 'a/b')),
  retriever: fc.oneof(fc.constantFrom('bm25', 'dense', 'hybrid', 'nope'), fc.jsonValue({ maxDepth: 1 })),
  reranker: fc.oneof(fc.constantFrom('none', 'ltr', 'onnx', 'http', 'llm'), fc.jsonValue({ maxDepth: 1 })),
  budgetMs: absurdK,
  typos: fc.jsonValue({ maxDepth: 1 }),
  trace: fc.boolean(),
  cache: fc.boolean(),
};

async function fuzzRoute(
  target: string,
  method: string,
  url: string,
  body: fc.Arbitrary<unknown>,
  numRuns: number,
) {
  const t = tally(target);
  tallies.push(t);
  const before = await snapshot();
  await fc.assert(
    fc.asyncProperty(fc.oneof({ arbitrary: body, weight: 4 }, fc.jsonValue({ maxDepth: 4 })), async (b) => {
      t.tried();
      const r = await srv.call(method, url, { body: b, headers: { accept: 'application/json' } });
      t.sample();
      if (r.status >= 500) t.crashes++;
      assertCleanAnswer(r.status, r.body);
      if (r.status >= 400 && url === '/v1/documents') expect(await snapshot()).toBe(before);
    }),
    { seed: SEED, numRuns },
  );
  // The read routes never change what is stored; the server is still up.
  if (url !== '/v1/documents') expect(await snapshot()).toBe(before);
  expect((await srv.call('GET', '/healthz')).status).toBe(200);
  expect(t.crashes).toBe(0);
}

describe('HTTP bodies', () => {
  it('/v1/search', async () => {
    const body = fc.record({ query: absurdQuery, ...retrievalFields }, { requiredKeys: [] });
    await fuzzRoute('http /v1/search', 'POST', '/v1/search', body, 300);
  });

  it('/v1/ask', async () => {
    const body = fc.record(
      {
        question: absurdQuery,
        ...retrievalFields,
        stream: fc.constant(false),
        jsonSchema: fc.jsonValue({ maxDepth: 3 }),
      },
      { requiredKeys: [] },
    );
    await fuzzRoute('http /v1/ask', 'POST', '/v1/ask', body, 200);
  });

  it('/v1/chat/completions', async () => {
    const message = fc.record(
      {
        role: fc.oneof(
          fc.constantFrom('system', 'user', 'assistant', 'tool', 'developer'),
          fc.string({ maxLength: 5 }),
        ),
        content: fc.oneof(
          absurdQuery,
          fc.array(
            fc.record(
              { type: fc.constantFrom('text', 'image_url', ''), text: fc.jsonValue({ maxDepth: 1 }) },
              { requiredKeys: [] },
            ),
            { maxLength: 3 },
          ),
          fc.constant(null),
        ),
      },
      { requiredKeys: [] },
    );
    const body = fc.record(
      {
        model: fc.oneof(
          fc.constantFrom('quarry', 'quarry/default', 'quarry/../x', 'gpt-4', ''),
          fc.string({ maxLength: 10 }),
        ),
        messages: fc.array(message, { maxLength: 5 }),
        stream: fc.constant(false),
        n: fc.oneof(fc.constant(1), absurdK),
        max_tokens: absurdK,
        temperature: absurdK,
      },
      { requiredKeys: [] },
    );
    await fuzzRoute('http /v1/chat/completions', 'POST', '/v1/chat/completions', body, 200);
  });

  it('/v1/documents (upsert)', async () => {
    const doc = fc.record(
      {
        id: fc.oneof(
          fc.string({ maxLength: 20 }),
          fc.constantFrom('ferry', '../../etc/passwd', '', 'x'.repeat(2000)),
        ),
        text: absurdQuery,
        markdown: fc.oneof(
          fc.string({ maxLength: 40 }),
          fc.integer({ min: 100, max: 5000 }).map((n) => `${'> '.repeat(n)}q`),
        ),
        html: fc.oneof(
          fc.string({ maxLength: 40 }),
          fc.integer({ min: 100, max: 5000 }).map((n) => `${'<div>'.repeat(n)}x`),
        ),
        title: fc.jsonValue({ maxDepth: 1 }),
        source: fc.oneof(fc.string({ maxLength: 20 }), fc.constantFrom('../../x', '/etc/passwd')),
        metadata: fc.jsonValue({ maxDepth: 4 }),
        access: fc.oneof(
          fc.array(fc.string({ maxLength: 5 }), { maxLength: 3 }),
          fc.jsonValue({ maxDepth: 2 }),
        ),
      },
      { requiredKeys: ['id'] },
    );
    const body = fc.record(
      { documents: fc.array(doc, { maxLength: 4 }), collection: retrievalFields.collection },
      { requiredKeys: ['documents'] },
    );
    await fuzzRoute('http /v1/documents', 'POST', '/v1/documents', body, 200);
  });

  it('regression: an upload part with an empty file name is INVALID_ARGUMENT (was 500 INTERNAL)', async () => {
    const before = await snapshot();
    const form = new FormData();
    form.append('file', new Blob(['# Note']), '');
    const res = await fetch(`${srv.url}/v1/documents/upload`, { method: 'POST', body: form });
    expect(res.status).toBe(400);
    expect(((await res.json()) as any).error.code).toBe('INVALID_ARGUMENT');
    expect(await snapshot()).toBe(before);
  });

  it('/v1/documents/upload: path traversal and absurd names are refused, nothing stored changes', async () => {
    const t = tally('http /v1/documents/upload');
    tallies.push(t);
    const name = fc.oneof(
      fc.constantFrom(
        '../evil.md',
        '..\\evil.md',
        '/etc/passwd',
        '..',
        '.',
        '.hidden.md',
        'a/b.md',
        'x\u0000.md',
        '%2e%2e%2fevil.md',
        `${'a'.repeat(300)}.md`,
        'CON',
        '\u202egnp.md',
      ),
      fc.string({ maxLength: 20 }),
      fc
        .array(fc.constantFrom('..', '.', 'a', '/', '\\', '%2f', 'evil.md'), { maxLength: 6 })
        .map((p) => p.join('')),
    );
    const content = fc.oneof(
      fc.constant('# Upload\n\nA short note about ferries.'),
      fc.uint8Array({ maxLength: 256 }).map((b) => Buffer.from(b).toString('latin1')),
    );
    await fc.assert(
      fc.asyncProperty(name, content, async (filename, text) => {
        const before = await snapshot();
        t.tried();
        const form = new FormData();
        form.append('file', new Blob([text]), filename);
        const res = await fetch(`${srv.url}/v1/documents/upload`, { method: 'POST', body: form });
        const body: any = await res.json().catch(() => undefined);
        t.sample();
        if (res.status >= 500) t.crashes++;
        assertCleanAnswer(res.status, body);
        const failed = res.status >= 400 || (body?.failed ?? 0) > 0;
        if (failed && res.status >= 400) expect(await snapshot()).toBe(before);
        // Whatever was accepted lands directly in uploads/, under a plain name.
        for (const f of fs.readdirSync(`${srv.store}/uploads`, { recursive: true }) as string[]) {
          expect(f.includes('/') || f.includes('\\') || f.startsWith('.'), f).toBe(false);
        }
      }),
      { seed: SEED, numRuns: 150 },
    );
    expect(t.crashes).toBe(0);
  });
});

/**
 * Every parser fuzzed through `parseFile` (the one entry the ingest runner uses): valid Markdown, text, HTML,
 * PDF, DOCX, JSON and JSONL files built here, then truncated, corrupted, spliced with invalid UTF-8, given
 * huge lines or nested absurdly deep. Each input either parses into a well-formed document (blocks inside the
 * text) or records, or is refused with a QuarryError; nothing else may escape, and the process stays up.
 */
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { isQuarryError } from '../../src/errors.js';
import { type ParsedFile, parseFile } from '../../src/ingest/parse.js';
import { MARKDOWN, makeDocx, makePdf } from '../ingest/fixtures.js';
import { refusedCleanly, SEED, tally } from './budget.js';

const MAX_BYTES = 4 * 1024 * 1024;
const opts = { maxBytes: MAX_BYTES };

const FILE_CODES = [
  'FILE_TOO_LARGE',
  'EMPTY_DOCUMENT',
  'BINARY_FILE',
  'INVALID_UTF8',
  'PARSE_FAILED',
  'UNSUPPORTED_FILE',
  'ARCHIVE_BOMB',
] as const;
const RECORD_CODES = ['EMPTY_DOCUMENT', 'FILE_TOO_LARGE', 'BINARY_FILE', 'INVALID_UTF8', 'INVALID_RECORD'];

const HTML = `<!doctype html><html><head><title>Runbook</title><meta name="author" content="Ops"></head>
<body><nav>skip me</nav><h1>Runbook</h1><p>Restart the <b>worker</b> first.</p>
<ul><li>one</li><li>two</li></ul><table><tr><td>E42</td><td>Reinstall</td></tr></table>
<pre><code>quarry check</code></pre><script>alert(1)</script></body></html>`;
const TEXT = 'Backups run nightly.\n\nRestores take ten minutes.\r\nCheck the logs after.\n';
const JSONL = [
  '{"_id":"a","title":"Ferry","text":"The ferry leaves at seven.","metadata":{"tags":["travel"]}}',
  '{"id":"b","text":"Refunds take five days.","tags":["money"],"access_groups":["staff"]}',
  '',
  '{"id":"c","text":"Salary bands are secret.","security_level":2}',
].join('\n');
const JSON_ARRAY = `[${JSONL.split('\n').filter(Boolean).join(',')}]`;

/** Well-formed checks on what a parser returned: the contract the chunker relies on. */
function assertWellFormed(parsed: ParsedFile): void {
  const docs =
    parsed.kind === 'document'
      ? [parsed.doc]
      : parsed.records.flatMap((r) => {
          if (!r.ok) {
            expect(isQuarryError(r.error)).toBe(true);
            expect(RECORD_CODES).toContain(r.error.code);
            return [];
          }
          return [r.doc];
        });
  for (const doc of docs) {
    expect(typeof doc.text).toBe('string');
    for (const b of doc.blocks) {
      expect(b.start).toBeGreaterThanOrEqual(0);
      expect(b.end).toBeGreaterThanOrEqual(b.start);
      expect(b.end).toBeLessThanOrEqual(doc.text.length);
    }
  }
}

/** Bytes that break UTF-8: a lone continuation, a truncated sequence, an overlong form, a surrogate, 0xFF. */
const INVALID_UTF8 = [[0x80], [0xc3], [0xe2, 0x82], [0xc0, 0xaf], [0xed, 0xa0, 0x80], [0xff], [0xf8, 0x88]];

/** A valid file damaged: truncated, bytes overwritten, invalid UTF-8 or random bytes spliced in. */
function damaged(valid: Uint8Array): fc.Arbitrary<Buffer> {
  const len = valid.length;
  const truncated = fc.nat({ max: len }).map((n) => Buffer.from(valid.subarray(0, n)));
  const flipped = fc
    .array(fc.tuple(fc.nat({ max: len - 1 }), fc.integer({ min: 0, max: 255 })), {
      minLength: 1,
      maxLength: 32,
    })
    .map((edits) => {
      const b = Buffer.from(valid);
      for (const [at, v] of edits) b[at] = v;
      return b;
    });
  const spliced = fc
    .tuple(
      fc.nat({ max: len }),
      fc.oneof(
        fc.constantFrom(...INVALID_UTF8),
        fc.array(fc.integer({ min: 0, max: 255 }), { maxLength: 64 }),
      ),
      fc.nat({ max: 64 }),
    )
    .map(([at, bytes, drop]) =>
      Buffer.concat([valid.subarray(0, at), Buffer.from(bytes), valid.subarray(Math.min(len, at + drop))]),
    );
  return fc.oneof(truncated, flipped, spliced);
}

const tallies: Array<ReturnType<typeof tally>> = [];
afterAll(() => {
  for (const t of tallies) t.report();
});

async function fuzzFile(target: string, name: string, inputs: fc.Arbitrary<Buffer>, numRuns: number) {
  const t = tally(target);
  tallies.push(t);
  await fc.assert(
    fc.asyncProperty(inputs, async (bytes) => {
      const r = await refusedCleanly(t, () => parseFile(name, bytes, opts), FILE_CODES);
      if (r.ok) assertWellFormed(r.value);
    }),
    { seed: SEED, numRuns },
  );
  expect(t.crashes).toBe(0);
}

const utf8 = (s: string) => Buffer.from(s, 'utf8');

describe('parsers on damaged files', () => {
  it('markdown: truncated, corrupted, invalid UTF-8, huge lines, deep nesting', async () => {
    // Lists nest at most 150 levels here: mdast's list handling is super-linear in depth (500 levels, 0.25 MB,
    // take 4 s; 1,000 levels over 20 s), which the ingest's per-file limits do not bound yet.
    const deep = fc
      .integer({ min: 500, max: 5_000 })
      .chain((n) =>
        fc.constantFrom(
          utf8(`${'> '.repeat(n)}quote`),
          utf8(`${Array.from({ length: Math.min(n, 150) }, (_, i) => `${'  '.repeat(i)}- item`).join('\n')}`),
          utf8(`${'['.repeat(n)}link${'](x)'.repeat(n)}`),
          utf8(`${'*'.repeat(n)}bold${'*'.repeat(n)}`),
          utf8(`---\ntitle: ${'['.repeat(n)}${']'.repeat(n)}\n---\n\nbody`),
          utf8(
            `---\n${Array.from({ length: 200 }, (_, i) => `${'  '.repeat(i)}k${i}:`).join('\n')} v\n---\n\nbody`,
          ),
        ),
      );
    const huge = fc
      .integer({ min: 100_000, max: 1_000_000 })
      .map((n) => utf8(`# T\n\n${'word '.repeat(n / 5)}`));
    await fuzzFile(
      'parser markdown',
      'doc.md',
      fc.oneof({ arbitrary: damaged(utf8(MARKDOWN)), weight: 12 }, { arbitrary: deep, weight: 1 }, huge),
      200,
    );
  });

  it('text: truncated, corrupted, invalid UTF-8, NUL bytes, huge lines', async () => {
    const huge = fc.integer({ min: 100_000, max: 3_000_000 }).map((n) => Buffer.alloc(n, 'x'));
    const noise = fc.uint8Array({ minLength: 1, maxLength: 4096 }).map((b) => Buffer.from(b));
    await fuzzFile(
      'parser text',
      'notes.txt',
      fc.oneof({ arbitrary: damaged(utf8(TEXT)), weight: 6 }, { arbitrary: noise, weight: 3 }, huge),
      300,
    );
  });

  it('unknown extension: sniffed bytes are text, PDF or UNSUPPORTED_FILE', async () => {
    const noise = fc.uint8Array({ minLength: 1, maxLength: 2048 }).map((b) => Buffer.from(b));
    const pdfish = noise.map((b) => Buffer.concat([Buffer.from('%PDF-'), b]));
    await fuzzFile('parser sniffed', 'blob.bin', fc.oneof(noise, pdfish), 200);
  });

  it('HTML: truncated, corrupted, legacy charsets, UTF-16, deep nesting, huge lines', async () => {
    const deep = fc
      .integer({ min: 500, max: 5_000 })
      .chain((n) =>
        fc.constantFrom(
          utf8(`<html><body>${'<div>'.repeat(n)}deep${'</div>'.repeat(n)}</body></html>`),
          utf8(`<body>${'<ul><li>'.repeat(n)}x</body>`),
          utf8(`<table>${'<tr><td><table>'.repeat(Math.min(n, 5000))}x`),
        ),
      );
    const charsets = fc
      .tuple(
        fc.constantFrom('latin1', 'windows-1252', 'shift_jis', 'x-unknown', 'utf-16'),
        fc.uint8Array({ maxLength: 512 }),
      )
      .map(([cs, b]) =>
        Buffer.concat([Buffer.from(`<html><head><meta charset="${cs}"></head><body><p>`), Buffer.from(b)]),
      );
    const utf16 = fc
      .uint8Array({ maxLength: 512 })
      .map((b) => Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from(b)]));
    const huge = fc.integer({ min: 100_000, max: 2_000_000 }).map((n) => utf8(`<p>${'a'.repeat(n)}</p>`));
    await fuzzFile(
      'parser html',
      'page.html',
      fc.oneof(
        { arbitrary: damaged(utf8(HTML)), weight: 12 },
        { arbitrary: deep, weight: 1 },
        charsets,
        utf16,
        huge,
      ),
      200,
    );
  });

  it('PDF: truncated and corrupted', async () => {
    const pdf = await makePdf();
    await fuzzFile('parser pdf', 'manual.pdf', damaged(pdf), 120);
  });

  it('DOCX: truncated and corrupted zips', async () => {
    const docx = await makeDocx();
    await fuzzFile('parser docx', 'guide.docx', damaged(docx), 150);
  });

  it('JSON and JSONL record files: truncated, corrupted, deep nesting, huge lines', async () => {
    const deep = fc
      .integer({ min: 100, max: 100_000 })
      .chain((n) =>
        fc.constantFrom(
          `{"id":"d","text":"t","metadata":{"x":${'['.repeat(n)}${']'.repeat(n)}}}`,
          `{"id":"d","text":"t","extra":${'{"a":'.repeat(n)}1${'}'.repeat(n)}}`,
          `${'['.repeat(n)}${']'.repeat(n)}`,
          `{"id":"d","text":${'['.repeat(n)}"x"${']'.repeat(n)}}`,
        ),
      );
    const huge = fc
      .integer({ min: 100_000, max: 3_000_000 })
      .map((n) => `{"id":"h","text":"${'a'.repeat(n)}"}`);
    const lines = fc.oneof({ arbitrary: deep, weight: 3 }, huge).map(utf8);
    await fuzzFile(
      'parser jsonl',
      'corpus.jsonl',
      fc.oneof({ arbitrary: damaged(utf8(JSONL)), weight: 6 }, { arbitrary: lines, weight: 2 }),
      300,
    );
    await fuzzFile(
      'parser json',
      'corpus.json',
      fc.oneof({ arbitrary: damaged(utf8(JSON_ARRAY)), weight: 6 }, { arbitrary: lines, weight: 2 }),
      300,
    );
  });
});

describe('record mapper', () => {
  it('arbitrary JSON values as records, under arbitrary field maps', async () => {
    const t = tally('record mapper');
    tallies.push(t);
    const field = fc.oneof(
      fc.constantFrom(
        '_id',
        'id',
        'text',
        'title',
        'metadata',
        'body',
        '',
        'a.b',
        '__proto__',
        'constructor',
      ),
      fc.string({ maxLength: 8 }),
    );
    const fieldMap = fc.record(
      {
        id: fc.oneof(field, fc.array(field, { maxLength: 4 })),
        text: fc.oneof(field, fc.array(field, { maxLength: 4 })),
        title: field,
        metadata: field,
      },
      { requiredKeys: [] },
    );
    const key = fc.constantFrom(
      '_id',
      'id',
      'text',
      'title',
      'metadata',
      'tags',
      'access_groups',
      'access_users',
      'security_level',
      'created_at',
      'updated_at',
      'doc_type',
      'source',
      'version',
      '__proto__',
      'body',
    );
    const record = fc.oneof(
      { arbitrary: fc.dictionary(key, fc.jsonValue({ maxDepth: 4 }), { maxKeys: 10 }), weight: 4 },
      fc.jsonValue({ maxDepth: 5 }),
    );
    await fc.assert(
      fc.asyncProperty(fc.array(record, { minLength: 1, maxLength: 8 }), fieldMap, async (records, map) => {
        const bytes = utf8(records.map((r) => JSON.stringify(r)).join('\n'));
        const r = await refusedCleanly(
          t,
          () => parseFile('mapped.jsonl', bytes, { maxBytes: MAX_BYTES, records: map }),
          FILE_CODES,
        );
        if (r.ok) {
          assertWellFormed(r.value);
          if (r.value.kind === 'records') expect(r.value.records).toHaveLength(records.length);
        }
      }),
      { seed: SEED, numRuns: 600 },
    );
    expect(t.crashes).toBe(0);
  });
});

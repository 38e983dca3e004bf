import { randomBytes } from 'node:crypto';
import { beforeAll, describe, expect, it } from 'vitest';
import { isQuarryError, type QuarryError } from '../../src/errors.js';
import { type ParseOptions, parseFile } from '../../src/ingest/parse.js';
import { makeDocx, makeTempDir, read, writeFile } from './fixtures.js';

const LIMIT: ParseOptions = { maxBytes: 1024 * 1024 };
let dir: string;

beforeAll(() => {
  dir = makeTempDir();
});

/** Writes the file, parses it, and returns the QuarryError it must throw. */
async function failure(
  name: string,
  content: string | Uint8Array,
  opts: ParseOptions = LIMIT,
): Promise<QuarryError> {
  const file = writeFile(dir, name, content);
  try {
    await parseFile(file, read(file), opts);
  } catch (e) {
    if (!isQuarryError(e)) throw e;
    expect(e.message).toContain(file);
    expect(e.details.file).toBe(file);
    return e;
  }
  throw new Error(`${name} parsed without error`);
}

describe('file-level failures', () => {
  it('rejects a corrupt PDF with PARSE_FAILED and keeps the cause', async () => {
    const e = await failure('broken.pdf', randomBytes(4096));
    expect(e.code).toBe('PARSE_FAILED');
    expect(e.message).toMatch(/broken\.pdf: it is not a readable PDF/);
    expect(e.cause).toBeInstanceOf(Error);
    expect(e.exitCode).toBe(6);
  });

  it('rejects a truncated DOCX with PARSE_FAILED and keeps the cause', async () => {
    const docx = await makeDocx();
    const e = await failure('truncated.docx', docx.subarray(0, Math.floor(docx.length / 2)));
    expect(e.code).toBe('PARSE_FAILED');
    expect(e.message).toMatch(/truncated\.docx: not a readable DOCX file/);
    expect(e.cause).toBeDefined();
  });

  it('reports invalid UTF-8 with its byte offset and line', async () => {
    const bytes = Buffer.concat([
      Buffer.from('good line\nbad '),
      Buffer.from([0xc3, 0x28]),
      Buffer.from(' here\n'),
    ]);
    const e = await failure('latin.txt', bytes);
    expect(e.code).toBe('INVALID_UTF8');
    expect(e.details.offset).toBe(14);
    expect(e.message).toContain('at byte 14 (line 2)');
  });

  it('rejects overlong encodings and surrogates as invalid UTF-8', async () => {
    expect((await failure('overlong.txt', Buffer.from([0x61, 0xc0, 0xaf]))).details.offset).toBe(1);
    expect((await failure('surrogate.txt', Buffer.from([0x61, 0x62, 0xed, 0xa0, 0x80]))).details.offset).toBe(
      2,
    );
    expect((await failure('cut.txt', Buffer.from([0x61, 0xe6, 0x97]))).details.offset).toBe(1);
  });

  it('explains UTF-16 files instead of calling them binary', async () => {
    const e = await failure('wide.txt', Buffer.from('\uFEFFhello', 'utf16le'));
    expect(e.code).toBe('INVALID_UTF8');
    expect(e.message).toContain('UTF-16');
  });

  it('rejects NUL bytes in Markdown as BINARY_FILE with the offset', async () => {
    const e = await failure(
      'nul.md',
      Buffer.concat([Buffer.from('# Title\n\ntext'), Buffer.from([0]), Buffer.from('more')]),
    );
    expect(e.code).toBe('BINARY_FILE');
    expect(e.details.offset).toBe(13);
  });

  it('rejects empty and whitespace-only documents', async () => {
    expect((await failure('empty.txt', '')).code).toBe('EMPTY_DOCUMENT');
    expect((await failure('blank.md', ' \n\t\n  \n')).code).toBe('EMPTY_DOCUMENT');
    expect((await failure('frontmatter-only.md', '---\ntitle: Nothing\n---\n\n')).code).toBe(
      'EMPTY_DOCUMENT',
    );
    expect(
      (await failure('script-only.html', '<html><body><script>x()</script><nav>Menu</nav></body></html>'))
        .code,
    ).toBe('EMPTY_DOCUMENT');
    expect((await failure('empty.jsonl', '\n \n')).code).toBe('EMPTY_DOCUMENT');
    expect((await failure('empty-array.json', '[]')).code).toBe('EMPTY_DOCUMENT');
  });

  it('rejects a file over maxBytes before parsing it', async () => {
    const e = await failure('big.md', '# Big\n\n' + 'x'.repeat(200), { maxBytes: 100 });
    expect(e.code).toBe('FILE_TOO_LARGE');
    expect(e.details).toMatchObject({ bytes: 207, maxBytes: 100 });
  });

  it('rejects binary files with an unknown extension as UNSUPPORTED_FILE', async () => {
    const e = await failure(
      'image.png',
      Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 0x0d]),
    );
    expect(e.code).toBe('UNSUPPORTED_FILE');
    expect(e.message).toContain('".png" files are not supported');
    expect((await failure('blob', Buffer.from([0xff, 0x00, 0x12]))).code).toBe('UNSUPPORTED_FILE');
  });

  it('rejects a .json file that is not JSON with PARSE_FAILED', async () => {
    const e = await failure('config.json', '{ "a": 1,, }');
    expect(e.code).toBe('PARSE_FAILED');
    expect(e.message).toContain('is not valid JSON');
  });

  it('rejects invalid front matter metadata', async () => {
    const e = await failure('dated.md', '---\ncreated_at: yesterday-ish\n---\n\nBody.\n');
    expect(e.code).toBe('PARSE_FAILED');
    expect(e.message).toContain('"created_at" must be an ISO-8601 date string');
  });
});

describe('record-level failures', () => {
  async function records(name: string, content: string | Buffer, opts: ParseOptions = LIMIT) {
    const file = writeFile(dir, name, content);
    const parsed = await parseFile(file, read(file), opts);
    if (parsed.kind !== 'records') throw new Error('expected records');
    return parsed.records.map((r) => (r.ok ? `ok:${r.id}` : `${r.line}:${r.error.code}`));
  }

  it('keeps good lines when one JSONL line is bad', async () => {
    const lines = ['{"_id":"a","text":"A."}', '{"_id":"b","text":"B."', '[1,2]', '{"_id":"c","text":"C."}'];
    expect(await records('mixed.jsonl', lines.join('\n'))).toEqual([
      'ok:a',
      '2:INVALID_RECORD',
      '3:INVALID_RECORD',
      'ok:c',
    ]);
  });

  it('bounds each JSONL record by maxBytes instead of the whole file', async () => {
    const lines = [
      '{"_id":"a","text":"short"}',
      `{"_id":"b","text":"${'long '.repeat(40)}"}`,
      '{"_id":"c","text":"fine"}',
    ];
    expect(await records('sized.jsonl', lines.join('\n'), { maxBytes: 64 })).toEqual([
      'ok:a',
      '2:FILE_TOO_LARGE',
      'ok:c',
    ]);
  });

  it('reports per-line invalid UTF-8, empty text and missing text', async () => {
    const content = Buffer.concat([
      Buffer.from('{"_id":"a","text":"caf'),
      Buffer.from([0xe9]),
      Buffer.from('"}\r\n{"_id":"b","text":"   "}\r\n{"_id":"c","body":"x"}\r\n{"_id":"d","text":"ok"}\r\n'),
    ]);
    expect(await records('dirty.ndjson', content)).toEqual([
      '1:INVALID_UTF8',
      '2:EMPTY_DOCUMENT',
      '3:INVALID_RECORD',
      'ok:d',
    ]);
  });

  it('rejects a binary file named .jsonl as a whole', async () => {
    const file = writeFile(dir, 'archive.jsonl', Buffer.from([0x1f, 0x8b, 0x08, 0x00, 0x00, 0x00]));
    await expect(parseFile(file, read(file), LIMIT)).rejects.toMatchObject({ code: 'BINARY_FILE' });
  });
});

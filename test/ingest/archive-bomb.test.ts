/**
 * Decompression bombs in zip-based files (DOCX) are refused with ARCHIVE_BOMB before anything is inflated,
 * whether the zip directory tells the truth about the inflated size or lies about it, and the other files of
 * the run are still ingested. The bombs are real zip archives written byte by byte here.
 */
import fs from 'node:fs';
import path from 'node:path';
import { constants, crc32, createDeflateRaw, deflateRawSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isQuarryError, type QuarryError } from '../../src/errors.js';
import { type ParseOptions, parseFile } from '../../src/ingest/parse.js';
import { Quarry } from '../../src/pipeline/quarry.js';
import { makeTempDir } from './fixtures.js';

interface ZipPart {
  name: string;
  /** Deflated bytes of the content. */
  data: Buffer;
  crc: number;
  size: number;
  /** What the directory claims the content inflates to (defaults to the truth). */
  declared?: number;
  /** Sizes in a ZIP64 extra field of the directory entry, 0xFFFFFFFF in the fixed fields (as some writers do). */
  zip64?: boolean;
}

const CONTENT_TYPES = `<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"><Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/><Default Extension="xml" ContentType="application/xml"/><Override PartName="/word/document.xml" ContentType="application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"/></Types>`;
const RELS = `<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="word/document.xml"/></Relationships>`;
const DOC_HEAD =
  '<?xml version="1.0" encoding="UTF-8" standalone="yes"?><w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"><w:body><w:p><w:r><w:t>';
const DOC_TAIL = '</w:t></w:r></w:p></w:body></w:document>';

function part(name: string, content: string): ZipPart {
  const raw = Buffer.from(content);
  return { name, data: deflateRawSync(raw), crc: crc32(raw), size: raw.length };
}

/** word/document.xml whose single text run holds `padding` spaces, deflated as a stream (never held inflated). */
async function paddedDocument(text: string, padding: number): Promise<ZipPart> {
  const chunk = Buffer.alloc(1024 * 1024, ' ');
  const deflate = createDeflateRaw({ level: 9, strategy: constants.Z_DEFAULT_STRATEGY });
  const out: Buffer[] = [];
  deflate.on('data', (b: Buffer) => out.push(b));
  const done = new Promise((resolve) => deflate.on('end', resolve));
  const head = Buffer.from(DOC_HEAD + text);
  const tail = Buffer.from(DOC_TAIL);
  let crc = crc32(head);
  deflate.write(head);
  for (let left = padding; left > 0; left -= chunk.length) {
    const piece = left >= chunk.length ? chunk : chunk.subarray(0, left);
    crc = crc32(piece, crc);
    if (!deflate.write(piece)) await new Promise((r) => deflate.once('drain', r));
  }
  crc = crc32(tail, crc);
  deflate.end(tail);
  await done;
  return {
    name: 'word/document.xml',
    data: Buffer.concat(out),
    crc,
    size: head.length + padding + tail.length,
  };
}

/** A zip archive of `parts` (deflate, no data descriptors), as Word writes it. */
function zip(parts: ZipPart[]): Buffer {
  const locals: Buffer[] = [];
  const centrals: Buffer[] = [];
  let offset = 0;
  for (const p of parts) {
    const name = Buffer.from(p.name);
    const size = p.declared ?? p.size;
    const local = Buffer.alloc(30);
    local.writeUInt32LE(0x04034b50, 0);
    local.writeUInt16LE(20, 4);
    local.writeUInt16LE(8, 8);
    local.writeUInt32LE(p.crc, 14);
    local.writeUInt32LE(p.data.length, 18);
    local.writeUInt32LE(size, 22);
    local.writeUInt16LE(name.length, 26);
    locals.push(local, name, p.data);
    const central = Buffer.alloc(46);
    central.writeUInt32LE(0x02014b50, 0);
    central.writeUInt16LE(45, 4);
    central.writeUInt16LE(45, 6);
    central.writeUInt16LE(8, 10);
    central.writeUInt32LE(p.crc, 16);
    central.writeUInt32LE(p.zip64 ? 0xffffffff : p.data.length, 20);
    central.writeUInt32LE(p.zip64 ? 0xffffffff : size, 24);
    central.writeUInt16LE(name.length, 28);
    const extra = Buffer.alloc(p.zip64 ? 20 : 0);
    if (p.zip64) {
      extra.writeUInt16LE(0x0001, 0);
      extra.writeUInt16LE(16, 2);
      extra.writeBigUInt64LE(BigInt(size), 4);
      extra.writeBigUInt64LE(BigInt(p.data.length), 12);
    }
    central.writeUInt16LE(extra.length, 30);
    central.writeUInt32LE(offset, 42);
    centrals.push(central, name, extra);
    offset += 30 + name.length + p.data.length;
  }
  const directory = Buffer.concat(centrals);
  const end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0);
  end.writeUInt16LE(parts.length, 8);
  end.writeUInt16LE(parts.length, 10);
  end.writeUInt32LE(directory.length, 12);
  end.writeUInt32LE(offset, 16);
  return Buffer.concat([...locals, directory, end]);
}

async function docx(text: string, padding = 0, declared?: number, zip64 = false): Promise<Buffer> {
  const doc = await paddedDocument(text, padding);
  return zip([
    part('[Content_Types].xml', CONTENT_TYPES),
    part('_rels/.rels', RELS),
    { ...doc, declared, zip64 },
  ]);
}

const LIMIT: ParseOptions = { maxBytes: 50 * 1024 * 1024 };
let dir: string;
beforeAll(() => {
  dir = makeTempDir();
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

async function refusal(name: string, bytes: Buffer, opts: ParseOptions = LIMIT): Promise<QuarryError> {
  const file = path.join(dir, name);
  fs.writeFileSync(file, bytes);
  try {
    await parseFile(file, bytes, opts);
  } catch (e) {
    if (!isQuarryError(e)) throw e;
    return e;
  }
  throw new Error(`${name} parsed without error`);
}

describe('zip bombs in DOCX files', () => {
  it('the hand-written archive is a real DOCX: a small one parses to its text', async () => {
    const file = path.join(dir, 'small.docx');
    const bytes = await docx('Backups run nightly.', 1000);
    fs.writeFileSync(file, bytes);
    const parsed = await parseFile(file, bytes, LIMIT);
    expect(parsed.kind === 'document' && parsed.doc.text).toContain('Backups run nightly.');
  });

  it('sizes given in a ZIP64 extra field are read: a small DOCX parses, a bomb is refused at its true size', async () => {
    const small = await docx('Ferries sail daily.', 10, undefined, true);
    const file = path.join(dir, 'zip64.docx');
    fs.writeFileSync(file, small);
    const parsed = await parseFile(file, small, LIMIT);
    expect(parsed.kind === 'document' && parsed.doc.text).toContain('Ferries sail daily.');
    const e = await refusal('zip64-bomb.docx', await docx('Boom.', 64 * 1024 * 1024, undefined, true));
    expect(e.code).toBe('ARCHIVE_BOMB');
    expect(e.message).toMatch(/→ 671\d{5} bytes\), over the 100× limit/);
  });

  it('a DOCX whose document.xml inflates to 400 MiB is ARCHIVE_BOMB, refused before it is inflated', async () => {
    const bytes = await docx('Boom.', 400 * 1024 * 1024);
    expect(bytes.length).toBeLessThan(2 * 1024 * 1024);
    const before = process.memoryUsage();
    const t0 = performance.now();
    const e = await refusal('bomb.docx', bytes);
    const ms = performance.now() - t0;
    const after = process.memoryUsage();
    expect(e.code).toBe('ARCHIVE_BOMB');
    expect(e.exitCode).toBe(6);
    expect(e.httpStatus).toBe(422);
    expect(e.message).toMatch(/bomb\.docx: entry word\/document\.xml inflates \d+× .* over the 100× limit/);
    expect(e.details).toMatchObject({ file: path.join(dir, 'bomb.docx'), entry: 'word/document.xml' });
    // Nothing was inflated: the heap and the external buffers stay far below the 400 MiB of the content.
    expect(after.heapUsed + after.external - (before.heapUsed + before.external)).toBeLessThan(
      64 * 1024 * 1024,
    );
    expect(ms).toBeLessThan(2000);
  });

  it('an entry that understates its inflated size is ARCHIVE_BOMB, caught at its declared size', async () => {
    // 16 MiB of spaces declared as 2,000 bytes: under every limit as declared.
    const e = await refusal('liar.docx', await docx('Lies.', 16 * 1024 * 1024, 2000));
    expect(e.code).toBe('ARCHIVE_BOMB');
    expect(e.message).toMatch(/liar\.docx: entry word\/document\.xml inflates past its declared 2000 bytes/);
  });

  it('entries over ingest.maxInflatedBytes in total are ARCHIVE_BOMB, even at a modest ratio', async () => {
    const bytes = await docx('Big.', 3 * 1024 * 1024);
    const e = await refusal('big.docx', bytes, {
      ...LIMIT,
      zip: { maxInflatedBytes: 1024 * 1024, maxCompressionRatio: 1e9 },
    });
    expect(e.code).toBe('ARCHIVE_BOMB');
    expect(e.message).toMatch(/big\.docx: its entries inflate to more than 1048576 bytes/);
  });

  it('an ingest run reports the bomb as failed and stores the good files of the same folder', async () => {
    const folder = path.join(dir, 'run');
    fs.mkdirSync(folder);
    fs.writeFileSync(path.join(folder, 'a-bomb.docx'), await docx('Boom.', 400 * 1024 * 1024));
    fs.writeFileSync(path.join(folder, 'b-good.docx'), await docx('Restores take ten minutes.', 10));
    fs.writeFileSync(path.join(folder, 'c-notes.md'), '# Notes\n\nBackups are verified by a restore test.\n');
    const q = Quarry.open({ store: path.join(dir, 'store') });
    try {
      const report = await q.ingest([folder]);
      expect(report.errors).toHaveLength(1);
      expect(report.errors[0]).toMatchObject({ code: 'ARCHIVE_BOMB' });
      expect(report.errors[0]!.path).toMatch(/a-bomb\.docx$/);
      expect(report.added).toBe(2);
      const hits = await q.search('restores ten minutes');
      expect(hits.hits.some((h) => /b-good\.docx$/.test(h.document.id))).toBe(true);
    } finally {
      q.close();
    }
  });
});

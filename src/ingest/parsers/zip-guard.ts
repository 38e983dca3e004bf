/**
 * Decompression-bomb guard for zip-based formats (DOCX): reads the zip central directory and refuses an
 * archive whose entries would inflate past a total byte budget or at an absurd compression ratio, before the
 * parser library inflates anything. An entry that understates its size is caught too: each entry is inflated
 * with an output cap of its declared size, so the guard itself never allocates more than the budget.
 */
import { inflateRawSync } from 'node:zlib';
import { QuarryError } from '../../errors.js';

export interface ZipLimits {
  /** Sum of the entries' inflated sizes allowed. */
  maxInflatedBytes: number;
  /** Inflated ÷ compressed size allowed for an entry larger than `RATIO_GRACE_BYTES`. */
  maxCompressionRatio: number;
}

export const DEFAULT_ZIP_LIMITS: ZipLimits = {
  maxInflatedBytes: 200 * 1024 * 1024,
  maxCompressionRatio: 100,
};

/** Small entries may compress very well (a run of spaces); the ratio only matters once they are large. */
const RATIO_GRACE_BYTES = 1024 * 1024;

const EOCD_SIG = 0x06054b50;
const CENTRAL_SIG = 0x02014b50;
const LOCAL_SIG = 0x04034b50;

interface ZipEntry {
  name: string;
  method: number;
  compressed: number;
  inflated: number;
  localOffset: number;
}

/**
 * Throws ARCHIVE_BOMB when `bytes` (a zip archive) would inflate past `limits`, PARSE_FAILED when its
 * directory cannot be read. `path` and `format` name the file in the error.
 */
export function checkZipArchive(path: string, format: string, bytes: Buffer, limits: ZipLimits): void {
  const entries = readCentralDirectory(path, format, bytes);
  let total = 0;
  for (const e of entries) {
    const ratio = e.inflated / Math.max(e.compressed, 1);
    if (e.inflated > RATIO_GRACE_BYTES && ratio > limits.maxCompressionRatio) {
      throw bomb(
        path,
        format,
        `entry ${e.name} inflates ${Math.round(ratio)}× (${e.compressed} → ${e.inflated} bytes), over the ${limits.maxCompressionRatio}× limit`,
        limits,
        { entry: e.name, ratio: Math.round(ratio) },
      );
    }
    total += e.inflated;
    if (total > limits.maxInflatedBytes) {
      throw bomb(path, format, `its entries inflate to more than ${limits.maxInflatedBytes} bytes`, limits, {
        entry: e.name,
      });
    }
  }
  // The directory may lie: inflate each entry with its declared size as the cap.
  for (const e of entries) verifyEntry(path, format, bytes, e, limits);
}

function verifyEntry(path: string, format: string, bytes: Buffer, e: ZipEntry, limits: ZipLimits): void {
  if (e.method !== 8) {
    if (e.method === 0 && e.compressed !== e.inflated) {
      throw unreadable(
        path,
        format,
        `stored entry ${e.name} declares ${e.inflated} bytes but holds ${e.compressed}`,
      );
    }
    return;
  }
  if (e.localOffset + 30 > bytes.length || bytes.readUInt32LE(e.localOffset) !== LOCAL_SIG) {
    throw unreadable(path, format, `entry ${e.name} has no local header`);
  }
  const start =
    e.localOffset + 30 + bytes.readUInt16LE(e.localOffset + 26) + bytes.readUInt16LE(e.localOffset + 28);
  const data = bytes.subarray(start, start + e.compressed);
  try {
    // maxOutputLength must be ≥ 1; an empty entry that inflates to anything is a lie as well.
    const out = inflateRawSync(data, { maxOutputLength: Math.max(e.inflated, 1) });
    if (out.length > e.inflated) throw new RangeError('output over the declared size');
  } catch (err) {
    if (err instanceof RangeError || (err as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE') {
      throw bomb(path, format, `entry ${e.name} inflates past its declared ${e.inflated} bytes`, limits, {
        entry: e.name,
      });
    }
    // Corrupt deflate data: the parser reports it in its own words.
  }
}

function readCentralDirectory(path: string, format: string, bytes: Buffer): ZipEntry[] {
  const eocd = findEndOfCentralDirectory(bytes);
  if (eocd < 0) throw unreadable(path, format, 'no zip end-of-central-directory record');
  const size = bytes.readUInt32LE(eocd + 12);
  const offset = bytes.readUInt32LE(eocd + 16);
  if (offset + size > bytes.length)
    throw unreadable(path, format, 'zip central directory lies outside the file');
  const entries: ZipEntry[] = [];
  let p = offset;
  while (p + 46 <= offset + size) {
    if (bytes.readUInt32LE(p) !== CENTRAL_SIG)
      throw unreadable(path, format, 'corrupt zip central directory');
    const nameLen = bytes.readUInt16LE(p + 28);
    const extraLen = bytes.readUInt16LE(p + 30);
    const commentLen = bytes.readUInt16LE(p + 32);
    const entry: ZipEntry = {
      name: bytes.subarray(p + 46, p + 46 + nameLen).toString('utf8'),
      method: bytes.readUInt16LE(p + 10),
      compressed: bytes.readUInt32LE(p + 20),
      inflated: bytes.readUInt32LE(p + 24),
      localOffset: bytes.readUInt32LE(p + 42),
    };
    readZip64Sizes(bytes, p + 46 + nameLen, extraLen, entry);
    entries.push(entry);
    p += 46 + nameLen + extraLen + commentLen;
  }
  return entries;
}

/**
 * Some writers put sizes in the ZIP64 extra field (0x0001), with 0xFFFFFFFF in the fixed fields; the extra
 * holds, in order, only the fields that overflowed. Without the extra, 0xFFFFFFFF stays (over any budget).
 */
function readZip64Sizes(bytes: Buffer, start: number, length: number, entry: ZipEntry): void {
  const MAX32 = 0xffffffff;
  const end = Math.min(start + length, bytes.length);
  for (let q = start; q + 4 <= end; ) {
    const id = bytes.readUInt16LE(q);
    const size = bytes.readUInt16LE(q + 2);
    if (id === 0x0001) {
      let f = q + 4;
      const next = (): number | undefined => {
        if (f + 8 > Math.min(q + 4 + size, end)) return undefined;
        const v = Number(bytes.readBigUInt64LE(f));
        f += 8;
        return v;
      };
      if (entry.inflated === MAX32) entry.inflated = next() ?? MAX32;
      if (entry.compressed === MAX32) entry.compressed = next() ?? MAX32;
      if (entry.localOffset === MAX32) entry.localOffset = next() ?? MAX32;
      return;
    }
    q += 4 + size;
  }
}

function findEndOfCentralDirectory(bytes: Buffer): number {
  // The record is 22 bytes plus a comment of at most 65,535 bytes, at the very end.
  const stop = Math.max(0, bytes.length - 22 - 0xffff);
  for (let i = bytes.length - 22; i >= stop; i--) if (bytes.readUInt32LE(i) === EOCD_SIG) return i;
  return -1;
}

function bomb(
  path: string,
  format: string,
  why: string,
  limits: ZipLimits,
  extra: Record<string, unknown>,
): QuarryError {
  return new QuarryError(
    'ARCHIVE_BOMB',
    `${path}: ${why} (limits: ingest.maxInflatedBytes ${limits.maxInflatedBytes}, ingest.maxCompressionRatio ${limits.maxCompressionRatio})`,
    { file: path, format, ...extra },
  );
}

function unreadable(path: string, format: string, why: string): QuarryError {
  return new QuarryError(
    'PARSE_FAILED',
    `${path}: not a readable ${format.toUpperCase()} file (${why})`,
    { file: path, format },
    new Error(why),
  );
}

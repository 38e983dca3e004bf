/**
 * Binary snapshot of a BM25 index, so opening a store does not re-analyze every chunk. The header records the
 * store's index version and the analyzer settings; a snapshot that does not match both is ignored and the
 * index is rebuilt from the store (the store is the source of truth, snapshots are a cache).
 */
import { Bm25Index, type Bm25IndexSnapshot } from './bm25-index.js';

const MAGIC = 'QBM25v1\n';

interface Header {
  indexVersion: number;
  fingerprint: string;
  params: Bm25IndexSnapshot['params'];
  fields: Bm25IndexSnapshot['fields'];
  count: number;
  sections: Array<{ name: string; type: 'u8' | 'u16' | 'u32' | 'utf8'; byteLength: number }>;
  totalLengths: number[];
}

const pad8 = (n: number): number => (8 - (n % 8)) % 8;

export function encodeSnapshot(index: Bm25Index, indexVersion: number, fingerprint: string): Uint8Array[] {
  const s = index.snapshot();
  const parts: Array<{ name: string; type: Header['sections'][number]['type']; data: Uint8Array }> = [];
  const view = (a: Uint8Array | Uint16Array | Uint32Array): Uint8Array =>
    new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
  parts.push({ name: 'chunkIds', type: 'u32', data: view(s.chunkIds) });
  parts.push({ name: 'groups', type: 'u32', data: view(s.groups) });
  s.perField.forEach((f, i) => {
    parts.push({ name: `${i}.terms`, type: 'utf8', data: new TextEncoder().encode(f.terms.join('\n')) });
    parts.push({ name: `${i}.df`, type: 'u32', data: view(f.df) });
    parts.push({ name: `${i}.offsets`, type: 'u32', data: view(f.offsets) });
    parts.push({ name: `${i}.docs`, type: 'u32', data: view(f.docs) });
    parts.push({ name: `${i}.tfs`, type: 'u16', data: view(f.tfs) });
    parts.push({ name: `${i}.lengths`, type: 'u32', data: view(f.lengths) });
    parts.push({ name: `${i}.normBytes`, type: 'u8', data: view(f.normBytes) });
  });
  const header: Header = {
    indexVersion,
    fingerprint,
    params: s.params,
    fields: s.fields,
    count: s.count,
    sections: parts.map((p) => ({ name: p.name, type: p.type, byteLength: p.data.byteLength })),
    totalLengths: s.perField.map((f) => f.totalLength),
  };
  const headerBytes = new TextEncoder().encode(JSON.stringify(header));
  const prefix = new Uint8Array(MAGIC.length + 4);
  prefix.set(new TextEncoder().encode(MAGIC));
  new DataView(prefix.buffer).setUint32(MAGIC.length, headerBytes.byteLength, true);
  const out: Uint8Array[] = [prefix, headerBytes, new Uint8Array(pad8(prefix.length + headerBytes.length))];
  for (const p of parts) {
    out.push(p.data, new Uint8Array(pad8(p.data.byteLength)));
  }
  return out;
}

/** A snapshot's index version and fingerprint, from its header alone; undefined when it has no valid header. */
export function readSnapshotHeader(buf: Buffer): { indexVersion: number; fingerprint: string } | undefined {
  try {
    if (buf.byteLength < MAGIC.length + 4 || buf.toString('latin1', 0, MAGIC.length) !== MAGIC)
      return undefined;
    const headerLength = buf.readUInt32LE(MAGIC.length);
    const offset = MAGIC.length + 4;
    if (offset + headerLength > buf.byteLength) return undefined;
    const header = JSON.parse(buf.toString('utf8', offset, offset + headerLength)) as Header;
    if (typeof header.indexVersion !== 'number' || typeof header.fingerprint !== 'string') return undefined;
    return { indexVersion: header.indexVersion, fingerprint: header.fingerprint };
  } catch {
    return undefined;
  }
}

/** Decode a snapshot; returns undefined when it is for another index version or other settings, or corrupt. */
export function decodeSnapshot(
  buf: Buffer,
  indexVersion: number,
  fingerprint: string,
): Bm25Index | undefined {
  try {
    if (buf.toString('latin1', 0, MAGIC.length) !== MAGIC) return undefined;
    const headerLength = buf.readUInt32LE(MAGIC.length);
    let offset = MAGIC.length + 4;
    const header = JSON.parse(buf.toString('utf8', offset, offset + headerLength)) as Header;
    if (header.indexVersion !== indexVersion || header.fingerprint !== fingerprint) return undefined;
    offset += headerLength;
    offset += pad8(offset);
    // Copy into a fresh, aligned ArrayBuffer so typed-array views are valid regardless of Buffer pooling.
    const bytes = new Uint8Array(buf.byteLength);
    bytes.set(buf);
    const sections = new Map<string, Uint8Array | Uint16Array | Uint32Array | string>();
    for (const sec of header.sections) {
      const end = offset + sec.byteLength;
      if (end > bytes.byteLength) return undefined;
      const b = bytes.buffer;
      if (sec.type === 'u32') sections.set(sec.name, new Uint32Array(b, offset, sec.byteLength / 4));
      else if (sec.type === 'u16') sections.set(sec.name, new Uint16Array(b, offset, sec.byteLength / 2));
      else if (sec.type === 'u8') sections.set(sec.name, new Uint8Array(b, offset, sec.byteLength));
      else sections.set(sec.name, new TextDecoder().decode(bytes.subarray(offset, end)));
      offset = end + pad8(sec.byteLength);
    }
    const get = <T>(name: string): T => {
      const v = sections.get(name);
      if (v === undefined) throw new Error(`snapshot section ${name} missing`);
      return v as T;
    };
    return Bm25Index.fromSnapshot({
      params: header.params,
      fields: header.fields,
      count: header.count,
      chunkIds: get<Uint32Array>('chunkIds'),
      groups: get<Uint32Array>('groups'),
      perField: header.fields.map((_, i) => {
        const terms = get<string>(`${i}.terms`);
        return {
          terms: terms.length === 0 ? [] : terms.split('\n'),
          df: get<Uint32Array>(`${i}.df`),
          offsets: get<Uint32Array>(`${i}.offsets`),
          docs: get<Uint32Array>(`${i}.docs`),
          tfs: get<Uint16Array>(`${i}.tfs`),
          lengths: get<Uint32Array>(`${i}.lengths`),
          normBytes: get<Uint8Array>(`${i}.normBytes`),
          totalLength: header.totalLengths[i] ?? 0,
        };
      }),
    });
  } catch {
    return undefined;
  }
}

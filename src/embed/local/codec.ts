/**
 * The byte layout shared by the local models: a 4-byte magic, a format version, a JSON header, then
 * 4-byte-aligned sections — little-endian Float32 arrays or raw bytes — whose types and lengths the header
 * names. Float32 sections are copied in one block on little-endian hosts, never parsed number by number.
 */
import { createHash } from 'node:crypto';
import { QuarryError } from '../../errors.js';

export type Section = Float32Array | Uint8Array;

export interface EncodedModel<H> {
  header: H;
  sections: Section[];
}

interface SectionEntry {
  type: 'f32' | 'u8';
  length: number;
}

const LE = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;

export function encodeModel<H extends object>(
  magic: string,
  version: number,
  header: H,
  sections: Section[],
): Uint8Array {
  if (magic.length !== 4) throw new Error('magic must be 4 ASCII characters');
  const table: SectionEntry[] = sections.map((s) => ({
    type: s instanceof Float32Array ? 'f32' : 'u8',
    length: s.length,
  }));
  const json = new TextEncoder().encode(JSON.stringify({ ...header, sections: table }));
  const headerEnd = align4(12 + json.length);
  let total = headerEnd;
  for (const s of sections) total += align4(s.byteLength);
  const out = new Uint8Array(total);
  const view = new DataView(out.buffer);
  for (let i = 0; i < 4; i++) out[i] = magic.charCodeAt(i);
  view.setUint32(4, version, true);
  view.setUint32(8, json.length, true);
  out.set(json, 12);
  let off = headerEnd;
  for (const s of sections) {
    if (LE || s instanceof Uint8Array) out.set(new Uint8Array(s.buffer, s.byteOffset, s.byteLength), off);
    else for (let i = 0; i < s.length; i++) view.setFloat32(off + i * 4, s[i]!, true);
    off += align4(s.byteLength);
  }
  return out;
}

export function decodeModel<H>(bytes: Uint8Array, magic: string, version: number): EncodedModel<H> {
  const fail = (detail: string): never => {
    throw new QuarryError('INVALID_ARGUMENT', `not a valid ${magic} model: ${detail}`, { magic });
  };
  if (bytes.length < 12) fail('too short');
  const got = String.fromCharCode(bytes[0]!, bytes[1]!, bytes[2]!, bytes[3]!);
  if (got !== magic) fail(`magic is "${got}"`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const v = view.getUint32(4, true);
  if (v !== version) fail(`format version ${v}, this build reads ${version}`);
  const jsonLength = view.getUint32(8, true);
  if (12 + jsonLength > bytes.length) fail('truncated header');
  let parsed: H & { sections?: unknown };
  try {
    parsed = JSON.parse(new TextDecoder().decode(bytes.subarray(12, 12 + jsonLength)));
  } catch {
    return fail('unreadable header');
  }
  const table = parsed.sections;
  const valid = (e: unknown): e is SectionEntry =>
    typeof e === 'object' &&
    e !== null &&
    ((e as SectionEntry).type === 'f32' || (e as SectionEntry).type === 'u8') &&
    Number.isInteger((e as SectionEntry).length) &&
    (e as SectionEntry).length >= 0;
  if (!Array.isArray(table) || !table.every(valid)) fail('bad section table');
  let off = align4(12 + jsonLength);
  const sections: Section[] = [];
  for (const { type, length } of table as SectionEntry[]) {
    const byteLength = type === 'f32' ? length * 4 : length;
    if (off + byteLength > bytes.length) fail('truncated data');
    if (type === 'u8') {
      sections.push(bytes.slice(off, off + byteLength));
    } else {
      const s = new Float32Array(length);
      if (LE) new Uint8Array(s.buffer).set(bytes.subarray(off, off + byteLength));
      else for (let i = 0; i < length; i++) s[i] = view.getFloat32(off + i * 4, true);
      sections.push(s);
    }
    off += align4(byteLength);
  }
  if (off !== bytes.length) fail('trailing bytes');
  const { sections: _drop, ...header } = parsed;
  return { header: header as H, sections };
}

/** Short content hash used in model ids: a retrained model is a different model. */
export function modelHash(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex').slice(0, 12);
}

function align4(n: number): number {
  return (n + 3) & ~3;
}

/**
 * JSON / JSONL record files (BEIR corpora, exports): each record becomes its own document. Errors are
 * per record, so one bad line costs one document, not the whole file; also home of the metadata lifting
 * (tags, access groups, dates) shared with front matter.
 */
import { QuarryError } from '../../errors.js';
import { exceedsDepth } from '../../json-depth.js';
import type { ParsedDocument } from '../../types.js';
import { decodeText, firstInvalidUtf8, normalizeNewlines, parseText } from './text.js';

/**
 * Where a record keeps its parts. Names may be dotted paths into nested objects (`"doc.body"`); a key that
 * literally contains the dot wins. Defaults read BEIR lines (`{"_id","title","text","metadata"}`) as-is.
 */
export interface RecordFieldMap {
  /** Id field(s); the first present wins. Default `['_id', 'id']`. */
  id?: string | string[];
  /** Text field(s); several present fields are joined with a blank line. Default `'text'`. */
  text?: string | string[];
  /** Default `'title'`. */
  title?: string;
  /** Object of user fields. Default `'metadata'`. */
  metadata?: string;
}

/** Metadata Quarry interprets, lifted out of a record (or front matter); the rest stays in `fields`. */
export interface SourceMeta {
  tags?: string[];
  access_groups?: string[];
  access_users?: string[];
  /** Integer ≥ 0: readers need at least this clearance. */
  security_level?: number;
  doc_type?: string;
  /** Normalised to ISO-8601 (`Date#toISOString`). */
  created_at?: string;
  updated_at?: string;
  fields: Record<string, unknown>;
}

export interface ParsedRecord {
  ok: true;
  /** From the id field; without one, `<path>:<line>` (JSONL) or `<path>[<index>]` (JSON array). */
  id: string;
  idFromField: boolean;
  /** 0-based position among the file's records (blank JSONL lines don't count). */
  index: number;
  /** 1-based line (JSONL only). */
  line?: number;
  doc: ParsedDocument;
  meta: SourceMeta;
}

export interface RecordError {
  ok: false;
  index: number;
  line?: number;
  /** Present when the record got far enough to have one. */
  id?: string;
  error: QuarryError;
}

export type RecordResult = ParsedRecord | RecordError;

/** What a record file held besides records: blank JSONL lines are skipped, and counted here. */
export interface RecordFileCounts {
  blankLines: number;
}

interface Where {
  path: string;
  index: number;
  line?: number;
}

const DEFAULT_ID = ['_id', 'id'];
const LIFTED = [
  'tags',
  'access_groups',
  'access_users',
  'security_level',
  'doc_type',
  'created_at',
  'updated_at',
] as const;
/** Records and front matter nested deeper than this are refused (stored fields are walked recursively). */
export const MAX_RECORD_DEPTH = 64;
const utf8 = new TextDecoder('utf-8', { fatal: true });

/**
 * JSON Lines: decoded line by line straight from the bytes, so a corpus larger than V8's maximum string
 * length (~512 MB) still parses, and `maxBytes` bounds each record (each is a document) rather than the file.
 */
export function parseJsonLines(
  path: string,
  bytes: Uint8Array,
  maxBytes: number,
  map: RecordFieldMap = {},
  counts: RecordFileCounts = { blankLines: 0 },
): RecordResult[] {
  const nul = bytes.subarray(0, 8192).indexOf(0);
  if (nul !== -1) {
    throw new QuarryError(
      'BINARY_FILE',
      `${path} contains a NUL byte at offset ${nul}; it looks like a binary file, not JSON Lines`,
      { file: path, offset: nul },
    );
  }
  const results: RecordResult[] = [];
  const seen = new Map<string, string>();
  let lineNo = 0;
  let index = 0;
  let pos = bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf ? 3 : 0;
  while (pos < bytes.length) {
    let end = bytes.indexOf(0x0a, pos);
    if (end === -1) end = bytes.length;
    const raw = bytes.subarray(pos, end);
    pos = end + 1;
    lineNo++;
    if (isBlank(raw)) {
      counts.blankLines++;
      continue;
    }
    const where: Where = { path, index: index++, line: lineNo };
    const fail = (
      code: 'FILE_TOO_LARGE' | 'BINARY_FILE' | 'INVALID_UTF8' | 'INVALID_RECORD',
      what: string,
      cause?: unknown,
    ) =>
      results.push({
        ok: false,
        index: where.index,
        line: lineNo,
        error: recordError(code, where, what, {}, cause),
      });
    if (raw.length > maxBytes) {
      fail('FILE_TOO_LARGE', `the record is ${raw.length} bytes, over the ${maxBytes}-byte limit`);
      continue;
    }
    if (raw.indexOf(0) !== -1) {
      fail('BINARY_FILE', 'the line contains a NUL byte');
      continue;
    }
    let text: string;
    try {
      text = utf8.decode(raw);
    } catch (e) {
      fail('INVALID_UTF8', `invalid UTF-8 at byte ${firstInvalidUtf8(raw)} of the line`, e);
      continue;
    }
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch (e) {
      fail('INVALID_RECORD', `not valid JSON (${e instanceof Error ? e.message : String(e)})`, e);
      continue;
    }
    results.push(dedupe(toRecord(value, map, where), seen, where));
  }
  return results;
}

/**
 * A `.json` file: an array of records, or one object as a single record. A file that is really JSON Lines
 * under a `.json` name (common for exported corpora) is read as JSON Lines instead of failing.
 */
export function parseJsonFile(
  path: string,
  bytes: Uint8Array,
  maxBytes: number,
  map: RecordFieldMap = {},
  counts: RecordFileCounts = { blankLines: 0 },
): RecordResult[] {
  const text = decodeText(path, bytes);
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    if (/^\s*\{/.test(text) && /\}\s*\n\s*\{/.test(text))
      return parseJsonLines(path, bytes, maxBytes, map, counts);
    throw new QuarryError(
      'PARSE_FAILED',
      `${path} is not valid JSON (${e instanceof Error ? e.message : String(e)})`,
      { file: path, format: 'json' },
      e,
    );
  }
  if (value !== null && typeof value === 'object' && !Array.isArray(value)) value = [value];
  if (!Array.isArray(value)) {
    throw new QuarryError('PARSE_FAILED', `${path}: expected a JSON array of record objects`, {
      file: path,
      format: 'json',
    });
  }
  const seen = new Map<string, string>();
  return value.map((v, index) => dedupe(toRecord(v, map, { path, index }), seen, { path, index }));
}

/** Ids must be unique within a file, or a later record would silently replace an earlier one in the store. */
function dedupe(result: RecordResult, seen: Map<string, string>, where: Where): RecordResult {
  if (!result.ok || !result.idFromField) return result;
  const first = seen.get(result.id);
  if (first === undefined) {
    seen.set(result.id, label(where));
    return result;
  }
  return {
    ok: false,
    index: result.index,
    ...(result.line === undefined ? {} : { line: result.line }),
    id: result.id,
    error: recordError('INVALID_RECORD', where, `duplicate id "${result.id}" (first seen at ${first})`, {
      id: result.id,
    }),
  };
}

function toRecord(value: unknown, map: RecordFieldMap, where: Where): RecordResult {
  const base = { index: where.index, ...(where.line === undefined ? {} : { line: where.line }) };
  const fail = (
    what: string,
    id?: string,
    code: 'INVALID_RECORD' | 'EMPTY_DOCUMENT' = 'INVALID_RECORD',
  ): RecordError => ({
    ok: false,
    ...base,
    ...(id === undefined ? {} : { id }),
    error: recordError(code, where, what, id === undefined ? {} : { id }),
  });
  if (!isPlainObject(value)) return fail(`expected a JSON object, got ${describe(value)}`);
  if (exceedsDepth(value, MAX_RECORD_DEPTH)) {
    return fail(`the record is nested deeper than ${MAX_RECORD_DEPTH} levels`);
  }

  const idKeys = list(map.id, DEFAULT_ID);
  const textKeys = list(map.text, ['text']);
  const titleKey = map.title ?? 'title';
  const metaKey = map.metadata ?? 'metadata';

  let id: string | undefined;
  for (const k of idKeys) {
    const v = lookup(value, k);
    if (v === undefined || v === null || v === '') continue;
    if (typeof v === 'string' || (typeof v === 'number' && Number.isFinite(v))) {
      id = String(v);
      break;
    }
    return fail(`id field "${k}" must be a string or number, got ${describe(v)}`);
  }

  const texts: string[] = [];
  for (const k of textKeys) {
    const v = lookup(value, k);
    if (v === undefined || v === null) continue;
    if (typeof v === 'object') return fail(`text field "${k}" must be a string, got ${describe(v)}`, id);
    texts.push(String(v));
  }
  const rawTitle = lookup(value, titleKey);
  if (rawTitle !== undefined && rawTitle !== null && typeof rawTitle === 'object') {
    return fail(`title field "${titleKey}" must be a string, got ${describe(rawTitle)}`, id);
  }
  const title =
    rawTitle === undefined || rawTitle === null ? '' : String(rawTitle).replace(/\s+/g, ' ').trim();
  // A record without its text field is INVALID_RECORD even when it has a title (the documented contract):
  // a wrong --text-field must not quietly index every record by its title alone.
  if (texts.length === 0) {
    return fail(`no text field (looked for ${textKeys.map((k) => `"${k}"`).join(', ')})`, id);
  }
  let text = normalizeNewlines(texts.join('\n\n'));
  // Some corpora (several BEIR sets) have title-only documents, their text field present but empty; index
  // the title rather than lose them.
  if (!text.trim()) text = title;
  if (!text.trim()) return fail('the text is empty', id, 'EMPTY_DOCUMENT');

  const metadata = lookup(value, metaKey);
  if (metadata !== undefined && metadata !== null && !isPlainObject(metadata)) {
    return fail(`metadata field "${metaKey}" must be an object, got ${describe(metadata)}`, id);
  }
  // Unmapped top-level keys are user fields too (flat exports rarely nest them); `metadata` wins on clashes.
  const used = new Set([...idKeys, ...textKeys, titleKey, metaKey].map((k) => k.split('.')[0]!));
  const extra: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) if (!used.has(k)) extra[k] = v;
  const lifted = liftMeta({ ...extra, ...(metadata ?? {}) });
  if (typeof lifted === 'string') return fail(lifted, id);

  const doc = parseText(text);
  if (title) doc.title = title;
  if (Object.keys(lifted.fields).length > 0) doc.fields = lifted.fields;
  return {
    ok: true,
    ...base,
    id: id ?? (where.line === undefined ? `${where.path}[${where.index}]` : `${where.path}:${where.line}`),
    idFromField: id !== undefined,
    doc,
    meta: lifted,
  };
}

/**
 * Splits Quarry's own metadata keys out of user fields and validates them. Returns a problem description
 * instead of throwing so records can report it per record and documents can wrap it in their own error.
 */
export function liftMeta(fields: Record<string, unknown>): SourceMeta | string {
  if (exceedsDepth(fields, MAX_RECORD_DEPTH)) return `is nested deeper than ${MAX_RECORD_DEPTH} levels`;
  const rest: Record<string, unknown> = { ...fields };
  const meta: SourceMeta = { fields: rest };
  for (const key of LIFTED) {
    if (!(key in rest)) continue;
    const v = rest[key];
    delete rest[key];
    if (v === undefined || v === null) continue;
    if (key === 'security_level') {
      // HTML <meta> and some front matter carry numbers as text: accept plain digits.
      const n = typeof v === 'string' && /^\s*\d+\s*$/.test(v) ? Number(v) : v;
      if (typeof n !== 'number' || !Number.isSafeInteger(n) || n < 0)
        return `"security_level" must be an integer ≥ 0, got ${describe(v)}`;
      meta.security_level = n;
    } else if (key === 'tags' || key === 'access_groups' || key === 'access_users') {
      const values = typeof v === 'string' ? v.split(',') : Array.isArray(v) ? v : undefined;
      if (!values || values.some((x) => typeof x !== 'string' && typeof x !== 'number')) {
        return `"${key}" must be a list of strings, got ${describe(v)}`;
      }
      meta[key] = [...new Set(values.map((x) => String(x).trim()).filter(Boolean))];
    } else if (key === 'doc_type') {
      if (typeof v !== 'string' || !v.trim())
        return `"doc_type" must be a non-empty string, got ${describe(v)}`;
      meta.doc_type = v.trim();
    } else {
      const ms = typeof v === 'string' ? Date.parse(v) : Number.NaN;
      if (Number.isNaN(ms)) return `"${key}" must be an ISO-8601 date string, got ${describe(v)}`;
      meta[key] = new Date(ms).toISOString();
    }
  }
  return meta;
}

function recordError(
  code: 'FILE_TOO_LARGE' | 'BINARY_FILE' | 'INVALID_UTF8' | 'INVALID_RECORD' | 'EMPTY_DOCUMENT',
  where: Where,
  what: string,
  extra: Record<string, unknown> = {},
  cause?: unknown,
): QuarryError {
  return new QuarryError(
    code,
    `${where.path} ${label(where)}: ${what}`,
    {
      file: where.path,
      index: where.index,
      ...(where.line === undefined ? {} : { line: where.line }),
      ...extra,
    },
    cause,
  );
}

function label(where: Where): string {
  return where.line === undefined ? `record ${where.index}` : `line ${where.line}`;
}

function lookup(obj: Record<string, unknown>, key: string): unknown {
  if (key in obj) return obj[key];
  let cur: unknown = obj;
  for (const part of key.split('.')) {
    if (!isPlainObject(cur)) return undefined;
    cur = cur[part];
  }
  return cur;
}

function list(v: string | string[] | undefined, fallback: string[]): string[] {
  return v === undefined ? fallback : Array.isArray(v) ? v : [v];
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

function isBlank(bytes: Uint8Array): boolean {
  for (const b of bytes) if (b !== 0x20 && b !== 0x09 && b !== 0x0d) return false;
  return true;
}

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  if (typeof v === 'object') return 'an object';
  const s = JSON.stringify(v) ?? String(v);
  return `${typeof v} ${s.length > 40 ? `${s.slice(0, 40)}…` : s}`;
}

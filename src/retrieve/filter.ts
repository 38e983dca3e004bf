/**
 * Metadata filters: a MongoDB-style JSON language over document metadata. Retrieval applies the compiled
 * predicate inside candidate selection, before top-k truncation, so a filtered search still returns k hits when k
 * documents match. Invalid filters fail closed (INVALID_FILTER naming the path), never "no filter".
 * `filterToSql` compiles the same semantics to SQLite.
 *
 * Semantics (shared by `compileFilter(...).matches` and `filterToSql`):
 * - `{}` matches every document, explicitly. Several keys in one object are ANDed; `$and`/`$or` take a non-empty
 *   array of filter objects; `$not` takes a filter object (top level) or an operator object (inside a field).
 * - Field names: `id source title created_at updated_at version doc_type tags access_groups access_users
 *   security_level` are the built-in metadata; `fields.x` or any other name `x` reads the user field `fields.x`; dots walk nested objects
 *   (`owner.name`). Dots only traverse objects (never arrays); a path through anything else is a missing field.
 *   Names may not contain empty segments, segments starting with `$`, quotes, backslashes or control characters.
 * - Values: a missing field matches `$ne`, `$nin` and `$exists: false` only. A user field that is present with
 *   value `null` EXISTS (`$exists: true`) and equals `null`. Built-in fields are never null in the contract; a null
 *   there is treated as missing. Arrays match element-wise (Mongo): `$eq`/`$in`/`$gt`… match if ANY element
 *   matches, `$ne`/`$nin` only if NO element does; each operator of `{$gte: a, $lt: b}` is checked independently.
 *   Objects are never equal to or ordered against anything.
 * - Comparison: numbers numerically, strings by UTF-16 code unit, booleans and `null` only by `$eq $ne $in $nin`.
 *   Across types nothing matches (no coercion: `"10"` is not `10`). A string value that is an ISO-8601 date
 *   (`YYYY-MM-DD` or `YYYY-MM-DDTHH:MM[:SS[.fff]][Z|±HH:MM]`, no offset = UTC) compares as an instant when the
 *   operand is an ISO date string (`"2024-01-01"` < `"2024-01-01T10:00:00Z"`, and equal instants are `$eq`) or a
 *   number of epoch milliseconds. A date operand against a non-date string compares as strings; a number field
 *   against a date string operand does not match.
 */
import { QuarryError } from '../errors.js';
import { exceedsDepth } from '../json-depth.js';
import type { DocumentMetadata } from '../types.js';

/** The raw JSON form of a filter. */
export type Filter = Record<string, unknown>;

/** What a filter is evaluated against: a document's metadata plus its id. */
export type FilterableDocument = DocumentMetadata & { id: string };

export interface CompiledFilter {
  /** The validated filter (a frozen deep copy of the input, or the parsed object for string input). */
  readonly source: Filter;
  /** Canonical names of the fields the filter reads: built-ins as-is, user fields as `fields.<path>`. */
  readonly fields: string[];
  matches(doc: FilterableDocument): boolean;
}

export interface SqlFilter {
  /** A boolean SQL expression (0/1, never NULL) for a WHERE clause; every value is a bound `?` parameter. */
  where: string;
  params: unknown[];
}

export interface FilterSqlOptions {
  /** Table name or alias the columns are qualified with (default `documents`). */
  table?: string;
}

/** Filters nest at most this many objects deep (the root object is level 1). */
export const MAX_FILTER_DEPTH = 32;

// ---------------------------------------------------------------------------------------------------------------
// AST

type Scalar = string | number | boolean | null;
type CmpOp = '$gt' | '$gte' | '$lt' | '$lte';

const BUILTIN_FIELDS = {
  id: 'scalar',
  source: 'scalar',
  title: 'scalar',
  created_at: 'scalar',
  updated_at: 'scalar',
  version: 'scalar',
  doc_type: 'scalar',
  tags: 'array',
  access_groups: 'array',
  access_users: 'array',
  security_level: 'scalar',
} as const;
type BuiltinField = keyof typeof BUILTIN_FIELDS;

type FieldRef =
  | { readonly kind: 'builtin'; readonly name: BuiltinField }
  | { readonly kind: 'user'; readonly name: string; readonly path: readonly string[] };

type Node =
  | { readonly kind: 'all' }
  | { readonly kind: 'and' | 'or'; readonly nodes: readonly Node[] }
  | { readonly kind: 'not'; readonly node: Node }
  | { readonly kind: 'exists'; readonly field: FieldRef; readonly value: boolean }
  | { readonly kind: 'eq' | 'ne'; readonly field: FieldRef; readonly value: Scalar }
  | { readonly kind: 'in' | 'nin'; readonly field: FieldRef; readonly values: readonly Scalar[] }
  | { readonly kind: 'cmp'; readonly op: CmpOp; readonly field: FieldRef; readonly value: string | number };

const FIELD_OPERATORS = [
  '$eq',
  '$ne',
  '$in',
  '$nin',
  '$gt',
  '$gte',
  '$lt',
  '$lte',
  '$exists',
  '$not',
] as const;
const LOGICAL_OPERATORS = ['$and', '$or', '$not'] as const;

// ---------------------------------------------------------------------------------------------------------------
// Validation

const ROOT = '<root>';

function fail(path: string, detail: string, cause?: unknown): never {
  const at = path === '' ? ROOT : path;
  throw new QuarryError('INVALID_FILTER', `at ${at}: ${detail}`, { path: at }, cause);
}

const SIMPLE_KEY = /^[A-Za-z_$][\w$]*(?:\.[A-Za-z_$][\w$]*)*$/;

function childPath(path: string, key: string): string {
  if (!SIMPLE_KEY.test(key)) return `${path}[${JSON.stringify(key)}]`;
  return path === '' ? key : `${path}.${key}`;
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return false;
  const proto: unknown = Object.getPrototypeOf(v);
  return proto === Object.prototype || proto === null;
}

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return v.length === 0 ? 'an empty array' : 'array';
  if (typeof v === 'number') return Number.isNaN(v) ? 'NaN' : Number.isFinite(v) ? 'number' : String(v);
  if (typeof v === 'object') {
    if (isPlainObject(v)) return 'object';
    const name = (v as { constructor?: { name?: unknown } }).constructor?.name;
    return typeof name === 'string' && name !== '' ? `object (${name})` : 'object';
  }
  return typeof v;
}

function isScalar(v: unknown): v is Scalar {
  return (
    v === null ||
    typeof v === 'string' ||
    typeof v === 'boolean' ||
    (typeof v === 'number' && Number.isFinite(v))
  );
}

function eqOperand(v: unknown, path: string, label: string): Scalar {
  if (isScalar(v)) return v;
  const hint = Array.isArray(v) ? ' (use {"$in": [...]} to match any of several values)' : '';
  return fail(path, `${label} expects a string, number, boolean or null, got ${describe(v)}${hint}`);
}

function cmpOperand(v: unknown, path: string, op: CmpOp): string | number {
  if (typeof v === 'string' || (typeof v === 'number' && Number.isFinite(v))) return v;
  return fail(path, `${op} expects a number, string or date, got ${describe(v)}`);
}

/** Quotes and backslashes would break a SQLite JSON path label; control characters are never intended. */
function hasBadNameChar(s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x20 || c === 0x7f || c === 0x22 /* " */ || c === 0x5c /* \\ */) return true;
  }
  return false;
}

function parseFieldName(key: string, path: string): FieldRef {
  if (key === '') fail(path, 'empty field name');
  const segments = key.split('.');
  for (const s of segments) {
    if (s === '') fail(path, `field name "${key}" has an empty segment`);
    if (s.startsWith('$')) fail(path, `field name segment "${s}" cannot start with $`);
    if (hasBadNameChar(s)) {
      fail(path, `field name ${JSON.stringify(key)} contains a quote, backslash or control character`);
    }
  }
  const head = segments[0]!;
  if (head === 'fields') {
    if (segments.length === 1) fail(path, '"fields" needs a user field name after it, e.g. fields.team');
    const rest = segments.slice(1);
    return { kind: 'user', name: `fields.${rest.join('.')}`, path: rest };
  }
  if (Object.hasOwn(BUILTIN_FIELDS, head)) {
    if (segments.length > 1) {
      fail(
        path,
        `${head} is a built-in metadata field without sub-fields (for a user field write fields.${key})`,
      );
    }
    return { kind: 'builtin', name: head as BuiltinField };
  }
  return { kind: 'user', name: `fields.${key}`, path: segments };
}

class Parser {
  readonly fields = new Set<string>();

  filterObject(value: unknown, path: string, depth: number): Node {
    if (depth > MAX_FILTER_DEPTH) fail(path, `filter is nested deeper than ${MAX_FILTER_DEPTH} levels`);
    if (!isPlainObject(value)) {
      fail(path, `a filter must be a JSON object, got ${describe(value)}`);
    }
    const nodes: Node[] = [];
    for (const key of Object.keys(value)) {
      const v = value[key];
      const p = childPath(path, key);
      if (key.startsWith('$')) nodes.push(this.logical(key, v, p, depth));
      else nodes.push(this.field(key, v, p, depth));
    }
    if (nodes.length === 0) return { kind: 'all' };
    return nodes.length === 1 ? nodes[0]! : { kind: 'and', nodes };
  }

  private logical(op: string, v: unknown, path: string, depth: number): Node {
    if (op === '$and' || op === '$or') {
      if (!Array.isArray(v) || v.length === 0) {
        fail(path, `${op} expects a non-empty array of filter objects, got ${describe(v)}`);
      }
      const nodes: Node[] = [];
      for (let i = 0; i < v.length; i++) {
        const item: unknown = v[i];
        const p = `${path}[${i}]`;
        if (!isPlainObject(item)) fail(p, `${op} elements must be filter objects, got ${describe(item)}`);
        nodes.push(this.filterObject(item, p, depth + 1));
      }
      return { kind: op === '$and' ? 'and' : 'or', nodes };
    }
    if (op === '$not') {
      if (!isPlainObject(v)) fail(path, `$not expects a filter object, got ${describe(v)}`);
      return { kind: 'not', node: this.filterObject(v, path, depth + 1) };
    }
    if ((FIELD_OPERATORS as readonly string[]).includes(op)) {
      fail(path, `${op} must be applied to a field, e.g. {"year": {"${op}": ...}}`);
    }
    return fail(path, `unknown operator ${op} (logical operators: ${LOGICAL_OPERATORS.join(', ')})`);
  }

  private field(key: string, cond: unknown, path: string, depth: number): Node {
    const field = parseFieldName(key, path);
    this.fields.add(field.name);
    if (isPlainObject(cond)) return this.operators(field, cond, path, depth + 1, key);
    return { kind: 'eq', field, value: eqOperand(cond, path, 'a field condition') };
  }

  private operators(
    field: FieldRef,
    cond: Record<string, unknown>,
    path: string,
    depth: number,
    key: string,
  ): Node {
    if (depth > MAX_FILTER_DEPTH) fail(path, `filter is nested deeper than ${MAX_FILTER_DEPTH} levels`);
    const keys = Object.keys(cond);
    if (keys.length === 0) fail(path, 'empty condition {}; use an operator such as {"$exists": true}');
    const ops = keys.filter((k) => k.startsWith('$'));
    if (ops.length === 0) {
      fail(
        path,
        `objects cannot be compared; use a dotted path such as ${key}.${keys[0]} or an operator object`,
      );
    }
    if (ops.length !== keys.length) {
      const plain = keys.find((k) => !k.startsWith('$'))!;
      fail(
        path,
        `cannot mix operators and plain keys in one condition (${ops[0]} with ${JSON.stringify(plain)})`,
      );
    }
    const nodes = keys.map((op) => this.operator(field, op, cond[op], path, depth, key));
    return nodes.length === 1 ? nodes[0]! : { kind: 'and', nodes };
  }

  private operator(field: FieldRef, op: string, v: unknown, path: string, depth: number, key: string): Node {
    switch (op) {
      case '$eq':
      case '$ne':
        return { kind: op === '$eq' ? 'eq' : 'ne', field, value: eqOperand(v, path, op) };
      case '$in':
      case '$nin': {
        if (!Array.isArray(v)) fail(path, `${op} expects an array, got ${describe(v)}`);
        const values: Scalar[] = [];
        for (let i = 0; i < v.length; i++) values.push(eqOperand(v[i], path, `${op}[${i}]`));
        return { kind: op === '$in' ? 'in' : 'nin', field, values };
      }
      case '$gt':
      case '$gte':
      case '$lt':
      case '$lte':
        return { kind: 'cmp', op, field, value: cmpOperand(v, path, op) };
      case '$exists':
        if (typeof v !== 'boolean') fail(path, `$exists expects true or false, got ${describe(v)}`);
        return { kind: 'exists', field, value: v };
      case '$not':
        if (!isPlainObject(v)) {
          fail(path, `$not inside a field expects an operator object such as {"$gt": 1}, got ${describe(v)}`);
        }
        return { kind: 'not', node: this.operators(field, v, path, depth + 1, key) };
      case '$and':
      case '$or':
        return fail(
          path,
          `${op} cannot be used inside a field condition; write {"${op}": [{"${key}": ...}, ...]}`,
        );
      default:
        return fail(path, `unknown operator ${op} (field operators: ${FIELD_OPERATORS.join(', ')})`);
    }
  }
}

function deepFreezeCopy(v: unknown): unknown {
  if (Array.isArray(v)) return Object.freeze(v.map(deepFreezeCopy));
  if (isPlainObject(v)) {
    const out: Record<string, unknown> = {};
    for (const k of Object.keys(v)) {
      Object.defineProperty(out, k, { value: deepFreezeCopy(v[k]), enumerable: true });
    }
    return Object.freeze(out);
  }
  return v;
}

interface Parsed {
  source: Filter;
  node: Node;
  fields: string[];
}

function parse(input: unknown): Parsed {
  let value = input;
  if (typeof input === 'string') {
    try {
      value = JSON.parse(input);
    } catch (e) {
      const why = e instanceof Error ? e.message : String(e);
      fail('', `filter string is not valid JSON (${why})`, e);
    }
  }
  const parser = new Parser();
  const node = parser.filterObject(value, '', 1);
  return { source: deepFreezeCopy(value) as Filter, node, fields: [...parser.fields] };
}

/**
 * INVALID_FILTER when a filter nests objects/arrays far past any valid filter, checked without recursion,
 * for callers that walk a filter recursively before it is parsed (the cache key hashes it). The parser has
 * its own, tighter depth check with the offending path; this bound only keeps a 5,000-level filter from
 * overflowing the stack on the way there.
 */
export function assertFilterDepth(value: unknown): void {
  if (exceedsDepth(value, MAX_FILTER_WALK_DEPTH)) {
    fail('', `filter is nested deeper than ${MAX_FILTER_DEPTH} levels`);
  }
}

/** JSON levels: every filter level is an object and perhaps an operand array, well under this bound. */
const MAX_FILTER_WALK_DEPTH = 256;

/**
 * Validates a filter (an object, or a JSON string holding one) and returns it as a frozen deep copy.
 * Throws `QuarryError('INVALID_FILTER')` naming the offending path. `undefined`/`null` are invalid too:
 * "no filter" is the caller's decision, never the outcome of a bad one.
 */
export function parseFilter(input: unknown): Filter {
  return parse(input).source;
}

// ---------------------------------------------------------------------------------------------------------------
// ISO dates

function digit(s: string, i: number): number {
  const c = s.charCodeAt(i) - 48;
  return c >= 0 && c <= 9 ? c : -1;
}

function twoDigits(s: string, i: number): number {
  const a = digit(s, i);
  const b = digit(s, i + 1);
  return a < 0 || b < 0 ? -1 : a * 10 + b;
}

const DAYS_IN_MONTH = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];

/** 9999-12-31T23:59:59.999Z: SQLite's date functions reject later instants (e.g. `9999-12-31T23:00-14:00`). */
const MAX_INSTANT = 253_402_300_799_999;

function daysFromCivil(y: number, m: number, d: number): number {
  const yy = m <= 2 ? y - 1 : y;
  const era = Math.floor(yy / 400);
  const yoe = yy - era * 400;
  const doy = Math.floor((153 * (m > 2 ? m - 3 : m + 9) + 2) / 5) + d - 1;
  const doe = yoe * 365 + Math.floor(yoe / 4) - Math.floor(yoe / 100) + doy;
  return era * 146097 + doe - 719468;
}

/**
 * Epoch milliseconds of an ISO-8601 date or datetime string, NaN if `s` is not one. Accepted:
 * `YYYY-MM-DD` and `YYYY-MM-DDTHH:MM[:SS[.fraction]][Z|±HH:MM]` (offset hours ≤ 14; no offset = UTC), up to
 * 9999-12-31T23:59:59.999Z.
 * Sub-millisecond rounding mirrors SQLite's date functions exactly so that SQL and JS agree.
 */
function dateKey(s: string): number {
  const n = s.length;
  if (n < 10 || s.charCodeAt(4) !== 45 || s.charCodeAt(7) !== 45) return Number.NaN;
  const y1 = twoDigits(s, 0);
  const y2 = twoDigits(s, 2);
  if (y1 < 0 || y2 < 0) return Number.NaN;
  const year = y1 * 100 + y2;
  const month = twoDigits(s, 5);
  if (month < 1 || month > 12) return Number.NaN;
  const leap = year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0);
  const dim = month === 2 && leap ? 29 : DAYS_IN_MONTH[month - 1]!;
  const day = twoDigits(s, 8);
  if (day < 1 || day > dim) return Number.NaN;
  const base = daysFromCivil(year, month, day) * 86_400_000;
  if (n === 10) return base;
  if (n < 16 || s.charCodeAt(10) !== 84 /* T */ || s.charCodeAt(13) !== 58 /* : */) return Number.NaN;
  const hour = twoDigits(s, 11);
  const minute = twoDigits(s, 14);
  if (hour < 0 || hour > 23 || minute < 0 || minute > 59) return Number.NaN;
  let i = 16;
  let sec = 0;
  let frac = 0;
  if (i < n && s.charCodeAt(i) === 58) {
    sec = twoDigits(s, i + 1);
    if (sec < 0 || sec > 59) return Number.NaN;
    i += 3;
    if (s.charCodeAt(i) === 46 /* . */ && digit(s, i + 1) >= 0) {
      let scale = 1;
      i++;
      for (let d = digit(s, i); d >= 0; d = digit(s, i)) {
        frac = frac * 10 + d;
        scale *= 10;
        i++;
      }
      frac /= scale;
      if (frac > 0.999) frac = 0.999;
    }
  }
  let offsetMinutes = 0;
  if (i < n) {
    const c = s.charCodeAt(i);
    if (c === 90 /* Z */ && i + 1 === n) {
      // UTC
    } else if ((c === 43 || c === 45) && i + 6 === n && s.charCodeAt(i + 3) === 58) {
      const oh = twoDigits(s, i + 1);
      const om = twoDigits(s, i + 4);
      if (oh < 0 || oh > 14 || om < 0 || om > 59) return Number.NaN;
      offsetMinutes = (c === 45 ? -1 : 1) * (oh * 60 + om);
    } else {
      return Number.NaN;
    }
  }
  const ms =
    base +
    hour * 3_600_000 +
    minute * 60_000 +
    Math.trunc((sec + frac) * 1000 + 0.5) -
    offsetMinutes * 60_000;
  return ms > MAX_INSTANT ? Number.NaN : ms;
}

/** Epoch milliseconds of a string the filter language treats as a date, `undefined` if it is not one. */
export function parseIsoInstant(s: string): number | undefined {
  const k = dateKey(s);
  return Number.isNaN(k) ? undefined : k;
}

// ---------------------------------------------------------------------------------------------------------------
// Compilation to a JS predicate

type Matcher = (doc: FilterableDocument) => boolean;
type Getter = (doc: FilterableDocument) => unknown;
type Pred = (e: unknown) => boolean;

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Returns the field value, `undefined` when missing. */
function getter(field: FieldRef): Getter {
  if (field.kind === 'builtin') {
    const k = field.name;
    return (doc) => {
      const v: unknown = doc[k];
      return v === null ? undefined : v;
    };
  }
  const path = field.path;
  if (path.length === 1) {
    const k = path[0]!;
    return (doc) => {
      const o: unknown = doc.fields;
      return isRecord(o) && Object.hasOwn(o, k) ? o[k] : undefined;
    };
  }
  return (doc) => {
    let cur: unknown = doc.fields;
    for (let i = 0; i < path.length; i++) {
      const k = path[i]!;
      if (!isRecord(cur) || !Object.hasOwn(cur, k)) return undefined;
      cur = cur[k];
    }
    return cur;
  };
}

/** True when the value (or, for an array, any element) satisfies `pred`; false when missing. */
function anyValue(get: Getter, pred: Pred): Matcher {
  return (doc) => {
    const v = get(doc);
    if (v === undefined) return false;
    if (Array.isArray(v)) {
      for (let i = 0; i < v.length; i++) if (pred(v[i])) return true;
      return false;
    }
    return pred(v);
  };
}

function eqPred(o: Scalar): Pred {
  if (o === null || typeof o === 'boolean') return (e) => e === o;
  if (typeof o === 'number') {
    return (e) => (typeof e === 'number' ? e === o : typeof e === 'string' && dateKey(e) === o);
  }
  const k = dateKey(o);
  if (Number.isNaN(k)) return (e) => e === o;
  return (e) => typeof e === 'string' && (e === o || dateKey(e) === k);
}

function inPred(values: readonly Scalar[]): Pred {
  const strings = new Set<string>();
  const numbers = new Set<number>();
  const instants = new Set<number>();
  let hasNull = false;
  let hasTrue = false;
  let hasFalse = false;
  for (const v of values) {
    if (v === null) hasNull = true;
    else if (v === true) hasTrue = true;
    else if (v === false) hasFalse = true;
    else if (typeof v === 'number') {
      numbers.add(v);
      instants.add(v);
    } else {
      strings.add(v);
      const k = dateKey(v);
      if (!Number.isNaN(k)) instants.add(k);
    }
  }
  const anyInstant = instants.size > 0;
  return (e) => {
    switch (typeof e) {
      case 'string':
        return strings.has(e) || (anyInstant && instants.has(dateKey(e)));
      case 'number':
        return numbers.has(e);
      case 'boolean':
        return e ? hasTrue : hasFalse;
      default:
        return e === null && hasNull;
    }
  };
}

const ORDER: Record<CmpOp, <T extends string | number>(a: T, b: T) => boolean> = {
  $gt: (a, b) => a > b,
  $gte: (a, b) => a >= b,
  $lt: (a, b) => a < b,
  $lte: (a, b) => a <= b,
};

function cmpPred(op: CmpOp, o: string | number): Pred {
  const cmp = ORDER[op];
  if (typeof o === 'number') {
    // dateKey() is NaN for non-dates, and every comparison with NaN is false.
    return (e) => (typeof e === 'number' ? cmp(e, o) : typeof e === 'string' && cmp(dateKey(e), o));
  }
  const k = dateKey(o);
  if (Number.isNaN(k)) return (e) => typeof e === 'string' && cmp(e, o);
  return (e) => {
    if (typeof e !== 'string') return false;
    const ek = dateKey(e);
    return Number.isNaN(ek) ? cmp(e, o) : cmp(ek, k);
  };
}

function compileNode(node: Node): Matcher {
  switch (node.kind) {
    case 'all':
      return () => true;
    case 'and': {
      const ms = node.nodes.map(compileNode);
      if (ms.length === 2) {
        const [a, b] = ms as [Matcher, Matcher];
        return (d) => a(d) && b(d);
      }
      return (d) => {
        for (let i = 0; i < ms.length; i++) if (!ms[i]!(d)) return false;
        return true;
      };
    }
    case 'or': {
      const ms = node.nodes.map(compileNode);
      return (d) => {
        for (let i = 0; i < ms.length; i++) if (ms[i]!(d)) return true;
        return false;
      };
    }
    case 'not': {
      const m = compileNode(node.node);
      return (d) => !m(d);
    }
    case 'exists': {
      const get = getter(node.field);
      const want = node.value;
      return (d) => (get(d) !== undefined) === want;
    }
    case 'eq':
    case 'ne': {
      const m = anyValue(getter(node.field), eqPred(node.value));
      return node.kind === 'eq' ? m : (d) => !m(d);
    }
    case 'in':
    case 'nin': {
      const m = anyValue(getter(node.field), inPred(node.values));
      return node.kind === 'in' ? m : (d) => !m(d);
    }
    case 'cmp':
      return anyValue(getter(node.field), cmpPred(node.op, node.value));
  }
}

const compiledNodes = new WeakMap<object, Node>();

function isCompiled(v: unknown): v is CompiledFilter {
  return typeof v === 'object' && v !== null && compiledNodes.has(v);
}

/**
 * Validates a filter (object or JSON string) and compiles it once into a predicate over document metadata.
 * An already compiled filter is returned as is.
 */
export function compileFilter(input: unknown): CompiledFilter {
  if (isCompiled(input)) return input;
  const { source, node, fields } = parse(input);
  const matches = compileNode(node);
  const compiled: CompiledFilter = Object.freeze({ source, fields, matches });
  compiledNodes.set(compiled, node);
  return compiled;
}

// ---------------------------------------------------------------------------------------------------------------
// Compilation to SQLite SQL

/** A SQL fragment with its bound parameters, in textual order. */
class Sql {
  constructor(
    readonly text: string,
    readonly params: readonly unknown[],
  ) {}
}

/** Template tag: interpolated `Sql` fragments are spliced in, every other value becomes a bound `?`. */
function sql(strings: TemplateStringsArray, ...values: unknown[]): Sql {
  let text = strings[0]!;
  const params: unknown[] = [];
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    if (v instanceof Sql) {
      text += v.text;
      params.push(...v.params);
    } else {
      text += '?';
      params.push(v);
    }
    text += strings[i + 1]!;
  }
  return new Sql(text, params);
}

function raw(text: string): Sql {
  return new Sql(text, []);
}

function joinSql(parts: readonly Sql[], sep: string): Sql {
  return new Sql(
    parts.map((p) => p.text).join(sep),
    parts.flatMap((p) => p.params),
  );
}

const SQL_OPS: Record<CmpOp, Sql> = { $gt: raw('>'), $gte: raw('>='), $lt: raw('<'), $lte: raw('<=') };
const TRUE = raw('1');
const FALSE = raw('0');

/** One value to test: its JSON type name (`typeof()` names for plain columns) and its SQL value. */
interface Elem {
  t: Sql;
  v: Sql;
}

/** 1 when `v` is a string the filter language treats as an ISO date (mirrors `dateKey`), else 0. */
function isDateSql(v: Sql): Sql {
  const conditions = [
    sql`typeof(${v}) = 'text'`,
    sql`${v} GLOB '[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]*'`,
    // SQLite's own parser is laxer (spaces, lowercase z, a lone trailing T, hour 24): exclude those forms.
    sql`${v} NOT GLOB '*[^0-9T:.Z+-]*'`,
    sql`(length(${v}) = 10 OR (substr(${v}, 11, 6) GLOB 'T[0-9][0-9]:[0-9][0-9]' AND substr(${v}, 12, 2) <= '23'))`,
    // SQLite rolls 2024-02-30 over to March; a real calendar date survives the round trip.
    sql`date(substr(${v}, 1, 10)) = substr(${v}, 1, 10)`,
    // Time, fraction and offset syntax and ranges.
    sql`unixepoch(${v}, 'subsec') IS NOT NULL`,
  ];
  return sql`(CASE WHEN ${joinSql(conditions, ' AND ')} THEN 1 ELSE 0 END)`;
}

function epochMsSql(v: Sql): Sql {
  return sql`CAST(round(unixepoch(${v}, 'subsec') * 1000) AS INTEGER)`;
}

/** Epoch ms when `v` is an ISO date, else NULL. */
function dateKeySql(v: Sql): Sql {
  return sql`(CASE WHEN ${isDateSql(v)} THEN ${epochMsSql(v)} END)`;
}

function eqSql(e: Elem, o: Scalar): Sql {
  if (o === null) return sql`${e.t} = 'null'`;
  if (typeof o === 'boolean') return sql`${e.t} = ${raw(o ? "'true'" : "'false'")}`;
  if (typeof o === 'number') {
    return sql`((${e.t} IN ('integer', 'real') AND ${e.v} = ${o}) OR (${e.t} = 'text' AND ${dateKeySql(e.v)} = ${o}))`;
  }
  const k = dateKey(o);
  if (Number.isNaN(k)) return sql`(${e.t} = 'text' AND ${e.v} = ${o} COLLATE BINARY)`;
  return sql`(${e.t} = 'text' AND (${e.v} = ${o} COLLATE BINARY OR ${dateKeySql(e.v)} = ${k}))`;
}

/**
 * A value list as one bound JSON array read back by `json_each`: one parameter however long the list, so a
 * `$in` of 100,000 ids stays under SQLite's variable limit (one parameter per element broke past ~32k).
 */
function listSql(values: readonly (string | number)[]): Sql {
  return sql`SELECT value FROM json_each(${JSON.stringify(values)})`;
}

function inSql(e: Elem, values: readonly Scalar[]): Sql {
  const types: string[] = [];
  const numbers: number[] = [];
  const strings: string[] = [];
  const instants: number[] = [];
  for (const v of values) {
    if (v === null) types.push("'null'");
    else if (typeof v === 'boolean') types.push(v ? "'true'" : "'false'");
    else if (typeof v === 'number') {
      numbers.push(v);
      instants.push(v);
    } else {
      strings.push(v);
      const k = dateKey(v);
      if (!Number.isNaN(k)) instants.push(k);
    }
  }
  const parts: Sql[] = [];
  if (types.length > 0) parts.push(sql`${e.t} IN (${raw([...new Set(types)].join(', '))})`);
  if (numbers.length > 0)
    parts.push(sql`(${e.t} IN ('integer', 'real') AND ${e.v} IN (${listSql(numbers)}))`);
  if (strings.length > 0)
    parts.push(sql`(${e.t} = 'text' AND ${e.v} COLLATE BINARY IN (${listSql(strings)}))`);
  if (instants.length > 0)
    parts.push(sql`(${e.t} = 'text' AND ${dateKeySql(e.v)} IN (${listSql(instants)}))`);
  return parts.length === 0 ? FALSE : sql`(${joinSql(parts, ' OR ')})`;
}

function cmpSql(e: Elem, op: CmpOp, o: string | number): Sql {
  const sqlOp = SQL_OPS[op];
  if (typeof o === 'number') {
    return sql`((${e.t} IN ('integer', 'real') AND ${e.v} ${sqlOp} ${o}) OR (${e.t} = 'text' AND ${dateKeySql(e.v)} ${sqlOp} ${o}))`;
  }
  const k = dateKey(o);
  if (Number.isNaN(k)) return sql`(${e.t} = 'text' AND ${e.v} ${sqlOp} ${o} COLLATE BINARY)`;
  return sql`(${e.t} = 'text' AND (CASE WHEN ${isDateSql(e.v)} THEN ${epochMsSql(e.v)} ${sqlOp} ${k} ELSE ${e.v} ${sqlOp} ${o} COLLATE BINARY END))`;
}

class SqlCompiler {
  private aliases = 0;

  constructor(private readonly table: string) {}

  private column(name: string): Sql {
    return raw(`"${this.table}"."${name}"`);
  }

  private static jsonPath(path: readonly string[]): string {
    return `$${path.map((s) => `."${s}"`).join('')}`;
  }

  /** 1 when the field's value (or any array element) satisfies `pred`, else 0 (missing → 0). */
  private any(field: FieldRef, pred: (e: Elem) => Sql): Sql {
    if (field.kind === 'builtin' && BUILTIN_FIELDS[field.name] === 'scalar') {
      const col = this.column(field.name);
      return sql`(CASE WHEN ${col} IS NOT NULL AND ${pred({ t: sql`typeof(${col})`, v: col })} THEN 1 ELSE 0 END)`;
    }
    const alias = raw(`j${++this.aliases}`);
    const source =
      field.kind === 'builtin'
        ? sql`json_each(${this.column(field.name)})`
        : sql`json_each(${this.column('fields')}, ${SqlCompiler.jsonPath(field.path)})`;
    // json_each over an array yields integer keys, over a scalar one NULL-keyed row, over an object text keys
    // (objects are never matched, so those rows are skipped).
    const e = { t: sql`${alias}.type`, v: sql`${alias}.value` };
    return sql`EXISTS (SELECT 1 FROM ${source} AS ${alias} WHERE typeof(${alias}.key) <> 'text' AND ${pred(e)})`;
  }

  node(node: Node): Sql {
    switch (node.kind) {
      case 'all':
        return TRUE;
      case 'and':
      case 'or':
        return sql`(${joinSql(
          node.nodes.map((n) => this.node(n)),
          node.kind === 'and' ? ' AND ' : ' OR ',
        )})`;
      case 'not':
        return sql`(NOT ${this.node(node.node)})`;
      case 'exists': {
        const f = node.field;
        const present =
          f.kind === 'builtin'
            ? sql`(${this.column(f.name)} IS NOT NULL)`
            : sql`(json_type(${this.column('fields')}, ${SqlCompiler.jsonPath(f.path)}) IS NOT NULL)`;
        return node.value ? present : sql`(NOT ${present})`;
      }
      case 'eq':
      case 'ne': {
        const m = this.any(node.field, (e) => eqSql(e, node.value));
        return node.kind === 'eq' ? m : sql`(NOT ${m})`;
      }
      case 'in':
      case 'nin': {
        const m = node.values.length === 0 ? FALSE : this.any(node.field, (e) => inSql(e, node.values));
        return node.kind === 'in' ? m : sql`(NOT ${m})`;
      }
      case 'cmp':
        return this.any(node.field, (e) => cmpSql(e, node.op, node.value));
    }
  }
}

const SQL_IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_]*$/;

/**
 * Compiles a filter (object, JSON string or `CompiledFilter`) to a SQLite boolean expression over the `documents`
 * table (`id, source, title, created_at, updated_at, version, doc_type, security_level`, JSON-text `tags`,
 * `access_groups`, `access_users`,
 * `fields`), with the same semantics as `matches` (needs SQLite ≥ 3.42 for `unixepoch(…, 'subsec')`).
 * Values and JSON paths are always bound parameters (a `$in` list is one JSON parameter, however long). One known difference: SQLite orders strings by UTF-8 bytes
 * (code point order), JS by UTF-16 code units; they disagree only when comparing a character above U+FFFF with
 * one in U+E000–U+FFFF via $gt/$gte/$lt/$lte.
 */
export function filterToSql(filter: unknown, dialect: 'sqlite', options: FilterSqlOptions = {}): SqlFilter {
  if (dialect !== 'sqlite') {
    throw new QuarryError('INVALID_ARGUMENT', `unsupported SQL dialect ${JSON.stringify(dialect)}`, {
      dialect,
    });
  }
  const table = options.table ?? 'documents';
  if (!SQL_IDENTIFIER.test(table)) {
    throw new QuarryError('INVALID_ARGUMENT', `invalid SQL table name ${JSON.stringify(table)}`, { table });
  }
  const node = isCompiled(filter) ? compiledNodes.get(filter)! : parse(filter).node;
  const out = new SqlCompiler(table).node(node);
  return { where: out.text, params: [...out.params] };
}

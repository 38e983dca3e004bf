/**
 * The command line refuses what it would otherwise silently ignore or invent: misspelled configuration keys,
 * out-of-range numbers, and read commands on a path that holds no store. Run as a user runs it (a child
 * process on the built CLI) against real stores in a temporary directory.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from './run-cli.js';

let tmp: string;
let store: string;

beforeAll(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'quarry-silent-'));
  store = path.join(tmp, 'store');
  const r = await runCli(['ingest', 'samples/docs', '--store', store, '--json']);
  expect(r.code, r.stderr).toBe(0);
});

afterAll(() => {
  fs.rmSync(tmp, { recursive: true, force: true });
});

function writeConfig(name: string, value: unknown): string {
  const file = path.join(tmp, name);
  fs.writeFileSync(file, JSON.stringify(value));
  return file;
}

describe('misspelled configuration keys', () => {
  it('rejects a misspelled nested key and names the nearest valid one', async () => {
    const cfg = writeConfig('fusoin.json', { retrieval: { fusoin: { method: 'rrf' } } });
    const r = await runCli(['search', 'chunk', '--store', store, '--config', cfg]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('unknown key retrieval.fusoin (did you mean retrieval.fusion?)');
    expect(r.stdout).toBe('');
  });

  it('rejects a wrongly cased top-level section and names it', async () => {
    const cfg = writeConfig('LLM.json', { LLM: { provider: 'openai', model: 'gpt-4o-mini' } });
    const r = await runCli(['stats', '--store', store, '--config', cfg, '--json']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('unknown key LLM (did you mean llm?)');
    expect(JSON.parse(r.stdout)).toMatchObject({ error: { code: 'INVALID_CONFIG' } });
  });

  it('rejects unknown keys deep inside a section, and keys with no near neighbour', async () => {
    const cfg = writeConfig('deep.json', {
      retrieval: { freshness: { halfLifeDay: 30 } },
      zzzqqq: 1,
    });
    const r = await runCli(['search', 'chunk', '--store', store, '--config', cfg]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(
      'unknown key retrieval.freshness.halfLifeDay (did you mean retrieval.freshness.halfLifeDays?)',
    );
    expect(r.stderr).toContain('unknown key zzzqqq');
  });

  it('ingest refuses a misspelled key too, before creating anything', async () => {
    const fresh = path.join(tmp, 'never-created');
    const cfg = writeConfig('chunkng.json', { chunkng: { maxTokens: 128 } });
    const r = await runCli(['ingest', 'samples/docs', '--store', fresh, '--config', cfg]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('unknown key chunkng (did you mean chunking?)');
    expect(fs.existsSync(fresh)).toBe(false);
  });
});

describe('out-of-range numbers', () => {
  it.each([
    [['search', 'chunk', '--half-life', '0'], '--half-life'],
    [['search', 'chunk', '--half-life', '-3'], '--half-life'],
    [['ask', 'what is a chunk?', '--half-life', '-3'], '--half-life'],
    [['search', 'chunk', '-k', '0'], '--k'],
    [['search', 'chunk', '-k', '-5'], '--k'],
    [['search', 'chunk', '--k1', '-1'], '--k1'],
    [['search', 'chunk', '--b', '1.5'], '--b'],
    [['docs', '--limit', '0'], '--limit'],
    [['docs', '--offset', '-1'], '--offset'],
    [['ask', '--batch', 'x.jsonl', '--concurrency', '0'], '--concurrency'],
    [['ingest', 'samples/docs', '--chunk-tokens', '0'], '--chunk-tokens'],
    [['ingest', 'samples/docs', '--overlap-tokens', '-1'], '--overlap-tokens'],
  ])('%j is rejected naming %s', async (args, option) => {
    const r = await runCli([...args, '--store', store]);
    expect(r.code, r.stdout).toBe(2);
    expect(r.stderr).toContain(option);
    expect(r.stderr).toMatch(/must be/);
    expect(r.stdout).toBe('');
  });

  it('rejects out-of-range configuration values with the option name', async () => {
    const cfg = writeConfig('half-life.json', { retrieval: { freshness: { halfLifeDays: -3 } } });
    const r = await runCli(['search', 'chunk', '--store', store, '--config', cfg]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('retrieval.freshness.halfLifeDays');
    const weights = writeConfig('weights.json', {
      retrieval: { fusion: { weights: { bm25: 1.5, dense: 0.4 } } },
    });
    const w = await runCli(['search', 'chunk', '--store', store, '--config', weights]);
    expect(w.code).toBe(2);
    expect(w.stderr).toContain('retrieval.fusion.weights.bm25');
  });

  it('a valid half-life still searches', async () => {
    const r = await runCli(['search', 'chunk', '--store', store, '--half-life', '30', '--json']);
    expect(r.code, r.stderr).toBe(0);
    expect((JSON.parse(r.stdout) as { hits: unknown[] }).hits.length).toBeGreaterThan(0);
  });
});

describe('read commands on a path with no store', () => {
  it.each([
    ['search', 'chunk'],
    ['ask', 'what is a chunk?'],
    ['docs'],
    ['stats'],
    ['delete', 'some-id'],
    ['feedback', 'q', '--doc', 'x.md', '--helpful'],
  ])('%s exits 4, names the path and creates nothing', async (...args) => {
    const missing = path.join(tmp, `no-store-${args[0]}`);
    const r = await runCli([...args, '--store', missing]);
    expect(r.code, r.stdout + r.stderr).toBe(4);
    expect(r.stderr).toContain(missing);
    expect(r.stderr).toMatch(/no store/i);
    expect(fs.existsSync(missing)).toBe(false);
  });

  it('an empty directory is not a store either, and stays empty', async () => {
    const empty = path.join(tmp, 'empty-dir');
    fs.mkdirSync(empty);
    const r = await runCli(['search', 'chunk', '--store', empty, '--json']);
    expect(r.code).toBe(4);
    expect(JSON.parse(r.stdout)).toMatchObject({ error: { code: 'STORE_NOT_FOUND', dir: empty } });
    expect(fs.readdirSync(empty)).toEqual([]);
  });

  it('train-ranker --from-feedback on a missing store exits 4', async () => {
    const missing = path.join(tmp, 'no-store-ltr');
    const r = await runCli([
      'train-ranker',
      '--from-feedback',
      '--out',
      path.join(tmp, 'm.json'),
      '--store',
      missing,
    ]);
    expect(r.code, r.stderr).toBe(4);
    expect(r.stderr).toContain(missing);
    expect(fs.existsSync(missing)).toBe(false);
  });

  it('ingest still creates a store', async () => {
    const fresh = path.join(tmp, 'created-by-ingest');
    const r = await runCli(['ingest', 'samples/docs/chunking.md', '--store', fresh, '--json']);
    expect(r.code, r.stderr).toBe(0);
    const s = await runCli(['stats', '--store', fresh, '--json']);
    expect(s.code, s.stderr).toBe(0);
    expect((JSON.parse(s.stdout) as { documents: number }).documents).toBe(1);
  });
});

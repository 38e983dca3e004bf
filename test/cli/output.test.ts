/**
 * What the command line prints on a larger store, run as a user runs it: output piped into a reader that
 * stops early (`| head -1`), the dense index's real size in `stats`, and progress counted in records.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from './run-cli.js';

const RECORDS = 3000;
let tmp: string;
let store: string;
let corpus: string;

/** A deterministic JSONL corpus: every record mentions "chunk" and a few topic words, so BM25 and LSA both work. */
function writeCorpus(file: string, n: number): void {
  const topics = [
    ['volcano', 'lava', 'eruption', 'magma', 'ash'],
    ['glacier', 'ice', 'valley', 'moraine', 'snow'],
    ['honey', 'bee', 'hive', 'pollen', 'flower'],
    ['comet', 'orbit', 'tail', 'nucleus', 'sun'],
    ['reef', 'coral', 'ocean', 'fish', 'algae'],
  ];
  let seed = 7;
  const rand = () => {
    seed = (seed * 1103515245 + 12345) % 2147483648;
    return seed / 2147483648;
  };
  const lines: string[] = [];
  for (let i = 0; i < n; i++) {
    const t = topics[i % topics.length]!;
    const words = Array.from({ length: 24 }, () => t[Math.floor(rand() * t.length)]!);
    lines.push(
      JSON.stringify({ id: `r${i}`, title: `${t[0]} note ${i}`, text: `chunk ${i}: ${words.join(' ')}.` }),
    );
  }
  fs.writeFileSync(file, `${lines.join('\n')}\n`);
}

beforeAll(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'quarry-output-'));
  store = path.join(tmp, 'store');
  corpus = path.join(tmp, 'corpus.jsonl');
  writeCorpus(corpus, RECORDS);
  const r = await runCli(['ingest', corpus, '--store', store, '--json'], { timeoutMs: 120_000 });
  expect(r.code, r.stderr).toBe(0);
  expect((JSON.parse(r.stdout) as { added: number }).added).toBe(RECORDS);
}, 180_000);

afterAll(() => {
  fs.rmSync(tmp, { recursive: true, force: true });
});

describe('output into a reader that stops early (| head -1)', () => {
  it.each([[['search', 'chunk', '-k', '2000']], [['docs', '--limit', String(RECORDS)]]])(
    '%j exits quietly, without an EPIPE stack trace',
    async (args) => {
      const r = await runCli([...args, '--store', store], { closeStdoutAfter: 1 });
      expect(r.stdout.length).toBeGreaterThan(0);
      expect(r.stderr).not.toMatch(/EPIPE|Error|at /);
      expect(r.code, r.stderr).toBe(0);
    },
  );

  it('search -k 2000 writes more than a pipe holds, so the early close is really hit', async () => {
    const r = await runCli(['search', 'chunk', '-k', '2000', '--store', store]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout.length).toBeGreaterThan(256 * 1024);
  });
});

describe('stats with a dense snapshot on disk', () => {
  it('reports the vectors in the snapshot without a dense query first', async () => {
    // A dense search trains the built-in embedder and writes the snapshot; a new process has not loaded it.
    const dense = await runCli(['search', 'lava', '--retriever', 'dense', '--store', store, '--json']);
    expect(dense.code, dense.stderr).toBe(0);
    const s = await runCli(['stats', '--store', store, '--json']);
    expect(s.code, s.stderr).toBe(0);
    const stats = JSON.parse(s.stdout) as {
      chunks: number;
      dense: Array<{ name: string; vectors: number; index: string; model: string | null; state: string }>;
    };
    const builtin = stats.dense.find((d) => d.name === 'builtin')!;
    expect(builtin.vectors).toBe(stats.chunks);
    expect(builtin.index).toBe('exact');
    expect(builtin.model).toMatch(/./);
    expect(builtin.state).toBe('on-disk');
    const text = await runCli(['stats', '--store', store]);
    expect(text.stdout).toContain(`dense "builtin"`);
    expect(text.stdout).toContain(`${stats.chunks} vectors`);
    expect(text.stdout).not.toContain(' 0 vectors');
  });
});

describe('progress', () => {
  it('--progress on one large JSONL shows records and chunks, ending at the total', async () => {
    const fresh = path.join(tmp, 'progress-store');
    const r = await runCli(['ingest', corpus, '--store', fresh, '--progress'], { timeoutMs: 120_000 });
    expect(r.code, r.stderr).toBe(0);
    const lines = r.stderr.split('\n').filter((l) => l.startsWith('ingest'));
    expect(lines.length, r.stderr).toBeGreaterThan(0);
    expect(lines.at(-1)).toMatch(new RegExp(`records ${RECORDS}/${RECORDS}.*${RECORDS} chunks`));
  });

  it('without --progress and off a terminal, stderr stays quiet', async () => {
    const fresh = path.join(tmp, 'quiet-store');
    const r = await runCli(['ingest', corpus, '--store', fresh], { timeoutMs: 120_000 });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toBe('');
  });

  it('eval --progress shows its ingest, dense build and query phases', async () => {
    const dataset = path.join(tmp, 'beir');
    fs.mkdirSync(path.join(dataset, 'qrels'), { recursive: true });
    fs.writeFileSync(
      path.join(dataset, 'corpus.jsonl'),
      fs.readFileSync(corpus, 'utf8').replaceAll('"id":', '"_id":').replace(/\n$/, '\n'),
    );
    fs.writeFileSync(
      path.join(dataset, 'queries.jsonl'),
      `${JSON.stringify({ _id: 'q1', text: 'lava eruption' })}\n${JSON.stringify({ _id: 'q2', text: 'coral reef' })}\n`,
    );
    fs.writeFileSync(
      path.join(dataset, 'qrels', 'test.tsv'),
      'query-id\tcorpus-id\tscore\nq1\tr0\t1\nq2\tr4\t1\n',
    );
    const r = await runCli(['eval', dataset, '--retriever', 'hybrid', '--progress'], { timeoutMs: 180_000 });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(new RegExp(`ingest .*records ${RECORDS}/${RECORDS}`));
    expect(r.stderr).toMatch(/dense build/);
    expect(r.stderr).toMatch(/queries 2\/2/);
  }, 240_000);
});

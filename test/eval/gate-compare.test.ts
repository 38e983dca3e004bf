/**
 * Regression gates, A/B comparison with paired significance, and the HTML report: the statistics on
 * hand-checkable inputs, then the real CLI end to end on a small dataset written here (a gate that holds
 * exits 0, one that is exceeded exits 3 with a readable diff; `eval compare` finds the stemmer's effect).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { pairedSignificance, seededRandom } from '../../src/eval/compare.js';
import { checkGate, formatGate, parseTolerances } from '../../src/eval/gate.js';
import { runCli } from '../cli/run-cli.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'quarry-gate-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

const REPORT = (metrics: Record<string, number>, p95 = 10) => ({
  metrics,
  latency_ms: { p50: 1, p95, p99: 20, mean: 2, max: 30 },
});

describe('gates', () => {
  it('parses tolerances and refuses malformed ones by name', () => {
    expect(parseTolerances('ndcg@10=0.01, faithfulness=0.02')).toEqual([
      { metric: 'ndcg@10', maxDrop: 0.01 },
      { metric: 'faithfulness', maxDrop: 0.02 },
    ]);
    expect(() => parseTolerances('ndcg@10')).toThrow(/"ndcg@10" must be <metric>=<non-negative number>/);
    expect(() => parseTolerances('ndcg@10=-1')).toThrow(/"ndcg@10=-1"/);
    expect(() => parseTolerances('ndcg@10=')).toThrow(/"ndcg@10="/);
    expect(() => parseTolerances(' , ')).toThrow(/at least one/);
  });

  it('fails a drop beyond tolerance, passes one within it, and gates latency as an increase', () => {
    const base = REPORT({ 'ndcg@10': 0.7, 'recall@100': 0.9 }, 10);
    const cur = REPORT({ 'ndcg@10': 0.685, 'recall@100': 0.895 }, 16);
    const g = checkGate(base, cur, parseTolerances('ndcg@10=0.01,recall@100=0.01,latency_ms.p95=5'));
    expect(g.rows.map((r) => [r.metric, r.failed])).toEqual([
      ['ndcg@10', true],
      ['recall@100', false],
      ['latency_ms.p95', true],
    ]);
    expect(g.passed).toBe(false);
    const text = formatGate(g);
    expect(text).toMatch(/FAIL {2}ndcg@10 +0\.7000 → +0\.6850 {2}\(-0\.0150, allowed ≥ −0\.01\)/);
    expect(text).toMatch(/gate FAILED: 2 metric\(s\)/);
    // Exactly at the tolerance is allowed (float noise included).
    expect(
      checkGate(REPORT({ m: 0.3 }), REPORT({ m: 0.1 + 0.1 }), [{ metric: 'm', maxDrop: 0.1 }]).passed,
    ).toBe(true);
  });

  it('names a metric that a report lacks, and what it has', () => {
    expect(() =>
      checkGate(REPORT({ 'ndcg@10': 1 }), REPORT({ 'ndcg@10': 1 }), parseTolerances('faithfulness=0.1')),
    ).toThrow(/metric "faithfulness" is not in the baseline report \(it has: ndcg@10, latency_ms/);
  });
});

describe('paired significance', () => {
  it('identical runs: no difference, p = 1', () => {
    const xs = [0.1, 0.5, 0.9, 0.3];
    expect(pairedSignificance(xs, xs, { iterations: 2000 })).toEqual({ delta: 0, ci95: [0, 0], pValue: 1 });
  });

  it('a consistent improvement is significant; noise around zero is not; figures are seeded', () => {
    const rand = seededRandom(7);
    const a = Array.from({ length: 200 }, () => rand());
    const better = a.map((x) => x + 0.05 + (rand() - 0.5) * 0.02);
    const s = pairedSignificance(a, better, { iterations: 5000 });
    expect(s.delta).toBeCloseTo(0.05, 2);
    expect(s.pValue).toBeLessThan(0.001);
    expect(s.ci95[0]).toBeGreaterThan(0.04);
    expect(s.ci95[1]).toBeLessThan(0.06);
    const noisy = a.map((x) => x + (rand() - 0.5) * 0.2);
    const n = pairedSignificance(a, noisy, { iterations: 5000 });
    expect(n.pValue).toBeGreaterThan(0.05);
    expect(n.ci95[0]).toBeLessThan(0);
    expect(n.ci95[1]).toBeGreaterThan(0);
    expect(pairedSignificance(a, noisy, { iterations: 5000 })).toEqual(n);
  });

  it('refuses unpaired samples', () => {
    expect(() => pairedSignificance([1, 2], [1])).toThrow(/differ in length/);
  });
});

/** Queries whose words match their judged document only after stemming (generating ~ generate, …). */
function dataset(): string {
  const dir = path.join(tmp, 'set');
  fs.mkdirSync(path.join(dir, 'qrels'), { recursive: true });
  const docs = [
    ['d1', 'Tidal stations generate electricity from the moving sea.'],
    ['d2', 'Peat bogs stored carbon for thousands of years.'],
    ['d3', 'Basking sharks feed on plankton near the surface.'],
    ['d4', 'Electricity prices and carbon markets in the news.'],
    ['d5', 'Plankton blooms near the surface colour the sea green.'],
  ];
  fs.writeFileSync(
    path.join(dir, 'corpus.jsonl'),
    docs.map(([id, text]) => JSON.stringify({ _id: id, title: '', text })).join('\n'),
  );
  const queries = [
    ['q1', 'generating electricity'],
    ['q2', 'storing carbon'],
    ['q3', 'shark feeding plankton'],
    ['q4', 'kelp forests'],
  ];
  fs.writeFileSync(
    path.join(dir, 'queries.jsonl'),
    queries.map(([id, text]) => JSON.stringify({ _id: id, text })).join('\n'),
  );
  fs.writeFileSync(
    path.join(dir, 'qrels/test.tsv'),
    'query-id\tcorpus-id\tscore\nq1\td1\t1\nq2\td2\t1\nq3\td3\t1\nq4\td2\t1\n',
  );
  fs.writeFileSync(path.join(tmp, 'porter.json'), '{}');
  fs.writeFileSync(path.join(tmp, 'nostem.json'), JSON.stringify({ analyzer: { stemmer: 'none' } }));
  return dir;
}

describe('quarry eval --baseline / --max-drop / --out / --html, and eval compare', () => {
  const set = dataset();

  it('a run gated against its own baseline passes (exit 0); against a better baseline it fails with exit 3', async () => {
    const base = path.join(tmp, 'base.json');
    const html = path.join(tmp, 'run.html');
    const first = await runCli(['eval', set, '--out', base, '--html', html]);
    expect(first.code).toBe(0);
    const stored = JSON.parse(fs.readFileSync(base, 'utf8'));
    expect(stored.version).toBe(1);
    expect(stored.metrics['ndcg@10']).toBeLessThan(0.9); // q4 matches nothing
    const page = fs.readFileSync(html, 'utf8');
    expect(page).toContain('<svg');
    expect(page).not.toMatch(/<script|https?:\/\/(?!www\.w3\.org)/);

    const same = await runCli(['eval', set, '--baseline', base, '--max-drop', 'ndcg@10=0.01']);
    expect(same.code).toBe(0);
    expect(same.stderr).toMatch(/ok {4}ndcg@10/);
    expect(same.stderr).toMatch(/gate passed/);

    const better = path.join(tmp, 'better.json');
    fs.writeFileSync(better, JSON.stringify({ ...stored, metrics: { ...stored.metrics, 'ndcg@10': 1 } }));
    const worse = await runCli(['eval', set, '--baseline', better, '--max-drop', 'ndcg@10=0.01', '--json']);
    expect(worse.code).toBe(3);
    expect(JSON.parse(worse.stdout).gate).toMatchObject({
      passed: false,
      rows: [{ metric: 'ndcg@10', failed: true }],
    });
  });

  it('refuses a gate with half its options, a bad spec or a file that is not a report, before evaluating', async () => {
    const noBase = await runCli(['eval', set, '--max-drop', 'ndcg@10=0.01']);
    expect(noBase.code).toBe(2);
    expect(noBase.stderr).toMatch(/--max-drop needs --baseline/);
    fs.writeFileSync(path.join(tmp, 'junk.json'), '{"hello": 1}');
    const junk = await runCli([
      'eval',
      set,
      '--baseline',
      path.join(tmp, 'junk.json'),
      '--max-drop',
      'ndcg@10=0.01',
    ]);
    expect(junk.code).toBe(2);
    expect(junk.stderr).toMatch(/junk\.json is not a quarry eval report/);
  });

  it('eval compare: the stemmer helps every query here; significance, the changed queries, the gate and the HTML', async () => {
    const out = path.join(tmp, 'cmp.json');
    const html = path.join(tmp, 'cmp.html');
    const r = await runCli([
      'eval',
      'compare',
      path.join(tmp, 'porter.json'),
      path.join(tmp, 'nostem.json'),
      set,
      '--max-drop',
      'ndcg@10=0.05',
      '--iterations',
      '2000',
      '--out',
      out,
      '--html',
      html,
    ]);
    expect(r.code).toBe(3);
    expect(r.stdout).toMatch(/4 paired queries, porter → nostem/);
    expect(r.stderr).toMatch(/FAIL {2}ndcg@10/);
    const c = JSON.parse(fs.readFileSync(out, 'utf8'));
    const ndcg = c.metrics.find((m: { metric: string }) => m.metric === 'ndcg@10');
    expect(ndcg.a).toBeGreaterThan(ndcg.b);
    expect(ndcg.delta).toBeCloseTo(ndcg.b - ndcg.a, 10);
    expect(c.changed.length).toBeGreaterThan(0);
    expect(c.changed[0].delta).toBeLessThan(0);
    expect(fs.readFileSync(html, 'utf8')).toMatch(/Queries that changed most/);
  });
});

/**
 * The evaluation dashboard in headless Chromium against a real `quarry serve` whose store holds three runs
 * recorded by the real evaluator (`runEval` with `record`, as `quarry eval --record` does) over a BEIR-layout
 * set made from the handbook: one line per metric with a point per run, the latency chart, the selected
 * run's latency histogram counting every query, and its worst queries linked to their kept traces. A key
 * without the admin scope is told it needs one and sees no run.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runEval } from '../../src/eval/run-eval.js';
import { startTestServer, type TestServer } from '../server/harness.js';
import { launchBrowser, NO_BROWSER, type PageNode, signIn } from './browser.js';
import { HANDBOOK_QUERIES, UI_HANDBOOK, writeHandbookEvalSet } from './corpus.js';

const RUNS = ['baseline', 'k1 0.5', 'hybrid'];

let t: TestServer;
let browser: Browser;
let tmp: string;

beforeAll(async () => {
  if (NO_BROWSER) return;
  t = await startTestServer({
    docs: UI_HANDBOOK.filter((d) => d.access === undefined),
    keys: [
      { name: 'admin', scopes: ['admin'] },
      { name: 'reader', scopes: ['query'] },
    ],
  });
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'quarry-ui-eval-'));
  writeHandbookEvalSet(tmp);
  await runEval({ dataset: tmp, record: t.store, label: RUNS[0]! });
  await runEval({ dataset: tmp, record: t.store, label: RUNS[1]!, k1: 0.5 });
  await runEval({ dataset: tmp, record: t.store, label: RUNS[2]!, retriever: 'hybrid' });
  browser = await launchBrowser();
});
afterAll(async () => {
  await browser?.close();
  await t?.close();
  if (tmp !== undefined) fs.rmSync(tmp, { recursive: true, force: true });
});

describe.skipIf(NO_BROWSER)('evaluation dashboard', () => {
  it('draws the stored runs as charts and links the worst queries to their traces', async () => {
    const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
    await signIn(page, t.url, t.keys.admin!);
    await page.getByRole('link', { name: 'Evaluation' }).click();
    await page.getByTestId('eval').waitFor();

    // A line per metric, a point per run.
    const lines = page.getByTestId('line-chart').first();
    const series = await lines
      .locator('g[data-series]')
      .evaluateAll((gs) =>
        gs.map((g) => [
          (g as unknown as PageNode).dataset.series,
          (g as unknown as PageNode).querySelectorAll('circle').length,
        ]),
      );
    const names = series.map(([n]) => n);
    for (const m of ['ndcg@10', 'recall@10', 'mrr@10']) expect(names).toContain(m);
    expect(series.every(([, points]) => points === RUNS.length)).toBe(true);
    // The legend's swatches stay swatches (a chart's width rule once blew them up to the chart's size).
    const swatches = await lines
      .locator('svg.swatch')
      .evaluateAll((els) => els.map((e) => (e as unknown as PageNode).getBoundingClientRect().height));
    expect(swatches.length).toBe(names.length);
    expect(Math.max(...swatches)).toBeLessThan(20);
    const latency = page.getByTestId('line-chart').nth(1);
    await expect(latency.locator('g[data-series]').count()).resolves.toBe(3); // p50, p95, p99
    const labels = await page.locator('[data-testid=runs] tbody tr td:nth-child(2)').allTextContents();
    expect(labels).toEqual([...RUNS].reverse()); // newest first

    // The newest run is selected: its histogram counts every query, the percentiles marked.
    const bars = await page.locator('[data-testid=histogram] rect.bar title').allTextContents();
    const counted = bars.reduce((n, b) => n + Number(b.split(': ').at(-1)), 0);
    expect(counted).toBe(HANDBOOK_QUERIES.length);
    const marks = await page.locator('[data-testid=histogram] .mark text').allTextContents();
    expect(marks.map((m) => m.split(' ')[0])).toEqual(['p50', 'p95', 'p99']);

    // Selecting another run shows its own worst queries; one opens its kept trace.
    await page.locator('[data-testid=runs] tbody tr').last().getByRole('button').click();
    await expect
      .poll(() => page.locator('[data-testid=runs] tr.selected td:nth-child(2)').textContent())
      .toBe(RUNS[0]);
    const worst = page.getByTestId('worst');
    await worst.waitFor();
    const firstWorst = worst.locator('tbody tr').first();
    const queryText = (await firstWorst.locator('td').first().textContent()) ?? '';
    await firstWorst.getByRole('link', { name: 'trace →' }).click();
    await page.getByTestId('trace').waitFor();
    const traced = (await page.getByTestId('trace-query').textContent()) ?? '';
    expect(queryText).toContain(traced);
    await expect(page.getByTestId('eval-metrics').textContent()).resolves.toContain('ndcg@10');
    const stages = await page
      .locator('[data-testid=waterfall] [data-stage]')
      .evaluateAll((els) => els.map((e) => (e as unknown as PageNode).dataset.stage));
    expect(stages).toContain('retrieve.bm25');
    await page.close();
  });

  it('a key without the admin scope sees no run', async () => {
    const page = await browser.newPage();
    await signIn(page, t.url, t.keys.reader!);
    await expect(page.getByRole('link', { name: 'Evaluation' }).count()).resolves.toBe(0);
    await page.goto(`${t.url}/ui/#/eval`);
    await expect(page.locator('main').textContent()).resolves.toContain('need a key with the admin scope');
    await expect(page.getByTestId('line-chart').count()).resolves.toBe(0);
    // And the API refuses it too, whatever the UI shows.
    expect((await t.call('GET', '/v1/eval/runs', { key: t.keys.reader })).status).toBe(403);
    await page.close();
  });
});

/**
 * The web UI in headless Chromium against a real `quarry serve` (hybrid retrieval, the LTR reranker, and an
 * LLM behind a fake OpenAI-compatible server that streams slowly): the answer grows on screen while it
 * streams, a citation opens its passage with the quoted span highlighted, the unsupported sentence is
 * marked, and the trace link shows the stages, the candidates with per-retriever scores and the context.
 * Runs under the helmet CSP with no console errors (a blocked script or style would be one).
 */
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  collectErrors,
  type LlmUiRig,
  NO_BROWSER,
  type PageGlobals,
  type PageNode,
  startLlmUiRig,
} from './browser.js';

const QUESTION = 'When does the ferry leave and what do tickets cost?';
const DELTAS = [
  'The ferry leaves Kennacraig at 07:00 and 13:30 [1]. ',
  'Tickets cost 18 pounds [1]. ',
  'It is free on Sundays [2].',
];

let llm: LlmUiRig['llm'];
let t: LlmUiRig['t'];
let browser: LlmUiRig['browser'];
let rig: LlmUiRig | undefined;

beforeAll(async () => {
  if (NO_BROWSER) return;
  rig = await startLlmUiRig({ retrieval: { retriever: 'hybrid' }, rerank: { reranker: 'ltr' } });
  ({ llm, t, browser } = rig);
});
afterAll(async () => {
  await rig?.close();
});

async function ask(page: Page, question: string): Promise<void> {
  await page.getByLabel('Question').fill(question);
  await page.getByRole('button', { name: 'Ask', exact: true }).click();
}

describe.skipIf(NO_BROWSER)('ask → stream → citation → trace', () => {
  it('streams the answer, opens the cited passage, marks the unsupported sentence and links the trace', async () => {
    llm.queue({ kind: 'reply', deltas: DELTAS, gapMs: 400 });
    const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
    const errors = collectErrors(page);
    await page.goto(`${t.url}/`); // redirects to /ui/
    expect(page.url()).toBe(`${t.url}/ui/`);
    await expect(page.getByTestId('who').textContent()).resolves.toMatch(/local owner/);
    await ask(page, QUESTION);

    // Part of the answer is on screen while the stream is still open.
    const answer = page.getByTestId('answer');
    await page.waitForFunction(() => {
      const el = (globalThis as unknown as PageGlobals).document.querySelector('[data-testid=answer]');
      return el?.dataset.state === 'streaming' && Number(el.dataset.deltas) >= 1;
    });
    const partial = (await page.getByTestId('answer-text').textContent()) ?? '';
    expect(partial).toContain('The ferry leaves Kennacraig');
    expect(partial).not.toContain('Sundays');
    await page.waitForSelector('[data-testid=answer][data-state=done]', { timeout: 15_000 });
    expect(Number(await answer.getAttribute('data-deltas'))).toBe(DELTAS.length);
    const full = (await page.getByTestId('answer-text').textContent()) ?? '';
    expect(full.length).toBeGreaterThan(partial.length);
    expect(full).toContain('Tickets cost 18 pounds');
    await expect(page.getByTestId('confidence').textContent()).resolves.toMatch(/Confidence\s*\d+%/);

    // The sentence no source supports is marked in place, with the legend.
    await expect(page.locator('.answer-text .unsupported').textContent()).resolves.toContain(
      'It is free on Sundays',
    );
    await expect(page.locator('.legend').textContent()).resolves.toContain('not supported');

    // Citation [1] → the ferry passage with the quoted spans highlighted.
    await page.locator('.answer-text button.cite[data-marker="1"]').first().click();
    const panel = page.getByTestId('passage-panel');
    await panel.waitFor();
    await expect(panel.getByTestId('passage-doc').textContent()).resolves.toBe('ferry');
    const marks = await panel.locator('mark').allTextContents();
    expect(marks).toContain('The ferry to Islay leaves Kennacraig at 07:00 and 13:30 every day.');
    await expect(panel.locator('.passage').textContent()).resolves.toContain('# Ferry timetable');

    // The trace of this very query.
    const href = (await page.getByTestId('trace-link').getAttribute('href')) ?? '';
    const queryId = href.replace('#/trace/', '');
    expect(queryId).toMatch(/^[0-9a-f-]{36}$/);
    await page.getByTestId('trace-link').click();
    await page.getByTestId('trace').waitFor();
    await expect(page.getByTestId('trace-query').textContent()).resolves.toBe(QUESTION);
    const stages = await page
      .locator('[data-testid=waterfall] [data-stage]')
      .evaluateAll((els) => els.map((e) => (e as unknown as PageNode).dataset.stage));
    for (const s of [
      'retrieve.bm25',
      'retrieve.dense',
      'fuse',
      'rerank',
      'context.assemble',
      'answer.generate',
    ])
      expect(stages).toContain(s);
    // Every bar sits inside the track at its offset.
    const bars = await page
      .locator('.wf-bar')
      .evaluateAll((els) =>
        els.map((e) => [(e as unknown as PageNode).style.left, (e as unknown as PageNode).style.width]),
      );
    expect(bars.every(([left]) => /%$/.test(left ?? ''))).toBe(true);
    const boxes = await page.locator('.wf-row[data-stage]').evaluateAll((rows) =>
      rows.map((r) => {
        const row = r as unknown as PageNode;
        return [
          row.querySelector('.wf-track')!.getBoundingClientRect(),
          row.querySelector('.wf-bar')!.getBoundingClientRect(),
        ];
      }),
    );
    for (const [track, bar] of boxes) {
      expect(bar!.height).toBeLessThan(track!.height);
      expect(bar!.left).toBeGreaterThanOrEqual(track!.left - 0.5);
      expect(bar!.right).toBeLessThanOrEqual(track!.right + 2.5);
    }

    const table = page.getByTestId('candidates');
    const headers = await table.locator('th').allTextContents();
    expect(headers.join('|')).toMatch(
      /bm25 rank · score\|dense rank · score\|fused rank · score\|rerank rank · score\|final/,
    );
    const first = await table.locator('tbody tr').first().locator('td').allTextContents();
    // chunk, document, bm25 rank, bm25 score, dense rank, dense score, fused rank, fused score, rerank…, final
    expect(first[1]).toBe('ferry');
    expect(first[2]).toBe('1');
    expect(Number(first[3])).toBeGreaterThan(0);
    expect(first[4]).toBe('1');
    expect(first.at(-1)).toBe('1');
    const context = page.getByTestId('context');
    await expect(context.textContent()).resolves.toMatch(/\d+ tokens of \d+ available/);
    const sources = await context.locator('tbody tr').first().locator('td').allTextContents();
    expect(sources[0]).toBe('[1]');
    expect(sources[3]).toBe('ferry');
    expect(Number(sources[4])).toBeGreaterThan(0);
    expect(errors).toEqual([]);
    await page.close();
  });

  it('an LLM that fails shows the degraded stage on the answer and in its trace', async () => {
    llm.queue({ kind: 'status', status: 500, message: 'upstream down' });
    const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
    await page.goto(`${t.url}/ui/#/ask`);
    await ask(page, 'When does the ferry to Islay leave Kennacraig?');
    await page.waitForSelector('[data-testid=answer][data-state=done]', { timeout: 15_000 });
    await expect(page.getByTestId('degraded').textContent()).resolves.toContain('answer.generate');
    await expect(page.getByTestId('answer-text').textContent()).resolves.toContain('07:00');
    await expect(page.getByTestId('abstained').count()).resolves.toBe(0);
    await page.getByTestId('trace-link').click();
    await expect(page.getByTestId('trace-degraded').textContent()).resolves.toContain('answer.generate');
    await page.close();
  });

  it('an answer no source supports is shown as an abstention', async () => {
    llm.queue({ kind: 'reply', deltas: ['The moon is made of cheese.'] });
    const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
    await page.goto(`${t.url}/ui/#/ask`);
    await ask(page, 'What is the moon made of?');
    await page.waitForSelector('[data-testid=answer][data-state=done]', { timeout: 15_000 });
    await expect(page.getByTestId('abstained').textContent()).resolves.toContain('abstained');
    await expect(page.getByTestId('confidence').textContent()).resolves.toMatch(/Confidence\s*\d+%/);
    await page.close();
  });

  it('an unknown query id is a clear error on the trace page', async () => {
    const page = await browser.newPage();
    await page.goto(`${t.url}/ui/#/trace/no-such-query`);
    await expect(page.getByTestId('trace-error').textContent()).resolves.toContain(
      'no query with id "no-such-query"',
    );
    await page.close();
  });
});

/**
 * How the Ask view shows what the validator and the stream did to an answer, in headless Chromium against
 * a real `quarry serve` whose validation removes unsupported sentences (`unsupportedPolicy: remove`) and
 * whose LLM is a fake OpenAI-compatible server: a withdrawn sentence is gone from the answer and listed
 * struck through with the legend; an LLM stream that breaks after some text is reset on screen (the partial
 * text disappears, a notice says why) and the fallback answer replaces it.
 */
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type LlmUiRig, NO_BROWSER, startLlmUiRig } from './browser.js';

let llm: LlmUiRig['llm'];
let t: LlmUiRig['t'];
let browser: LlmUiRig['browser'];
let rig: LlmUiRig | undefined;

beforeAll(async () => {
  if (NO_BROWSER) return;
  rig = await startLlmUiRig({ validation: { unsupportedPolicy: 'remove' } });
  ({ llm, t, browser } = rig);
});
afterAll(async () => {
  await rig?.close();
});

async function ask(page: Page, question: string): Promise<void> {
  await page.goto(`${t.url}/ui/#/ask`);
  await page.getByLabel('Question').fill(question);
  await page.getByRole('button', { name: 'Ask', exact: true }).click();
  await page.waitForSelector('[data-testid=answer][data-state=done]', { timeout: 15_000 });
}

describe.skipIf(NO_BROWSER)('validation and stream marks on the answer', () => {
  it('lists a withdrawn sentence struck through, no longer in the answer', async () => {
    llm.queue({
      kind: 'reply',
      deltas: [
        'The ferry to Islay leaves Kennacraig at 07:00 and 13:30 every day [1]. ',
        'The ferry also carries bicycles free of charge on Mondays [1].',
      ],
    });
    const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
    await ask(page, 'When does the ferry to Islay leave Kennacraig?');
    const text = (await page.getByTestId('answer-text').textContent()) ?? '';
    expect(text).toContain('07:00 and 13:30');
    expect(text).not.toContain('bicycles');
    await expect(page.locator('[data-testid=withdrawn] s').textContent()).resolves.toContain(
      'bicycles free of charge',
    );
    await expect(page.locator('.legend').textContent()).resolves.toContain('withdrawn from the answer');
    await page.close();
  });

  it('voids streamed text when the LLM stream breaks, then shows the fallback answer', async () => {
    llm.queue({ kind: 'disconnect', after: ['Half a sentence about somewhere else entirely '] });
    const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
    await ask(page, 'When does the ferry to Islay leave Kennacraig?');
    await expect(page.locator('.notice').first().textContent()).resolves.toMatch(
      /Generation restarted .*the streamed text was discarded/,
    );
    const text = (await page.getByTestId('answer-text').textContent()) ?? '';
    expect(text).not.toContain('Half a sentence');
    expect(text).toContain('07:00');
    await expect(page.getByTestId('degraded').textContent()).resolves.toContain('answer.generate');
    await page.close();
  });
});

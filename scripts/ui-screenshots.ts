#!/usr/bin/env -S npx tsx
/**
 * Screenshots of the web UI for the README: starts `quarry serve` in-process over a temporary store holding
 * the sample documents (samples/docs) and the browser tests' handbook, with hybrid retrieval, the LTR
 * reranker and a stand-in LLM on the OpenAI wire protocol (the browser tests' fake: it answers from the
 * sources it is given, plus one sentence no source supports, so validation has something to mark), records
 * three eval runs, then drives headless Chromium through each view and writes docs/ui/{ask,trace,documents,
 * eval}.png at 1280x800. Needs `node scripts/build.mjs` first (the bundle) and `chromium` on PATH.
 *
 *   npx tsx scripts/ui-screenshots.ts
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { runEval } from '../src/eval/run-eval.js';
import type { DocumentInput } from '../src/ingest/add-documents.js';
import { startFakeOpenAIChatServer } from '../test/generate/llm/fake-openai-chat-server.js';
import { startTestServer } from '../test/server/harness.js';
import { launchBrowser } from '../test/ui/browser.js';
import { UI_HANDBOOK, writeHandbookEvalSet } from '../test/ui/corpus.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const out = path.join(root, 'docs', 'ui');
const QUESTION = 'When does the ferry leave and what do tickets cost?';

function samples(): DocumentInput[] {
  const dir = path.join(root, 'samples', 'docs');
  return fs
    .readdirSync(dir)
    .sort()
    .map((file) => {
      const body = fs.readFileSync(path.join(dir, file), 'utf8');
      const id = file.replace(/\.[a-z]+$/, '');
      const source = `samples/docs/${file}`;
      if (file.endsWith('.html')) return { id, source, html: body };
      if (file.endsWith('.md')) return { id, source, markdown: body };
      return { id, source, text: body };
    });
}

/** The first sentence of source `n` in a rendered prompt (`[n] title (…)` then its text). */
function firstSentence(prompt: string, n: number): string | undefined {
  const block = prompt.split(/\n(?=\[\d+\] )/).find((b) => b.startsWith(`[${n}] `));
  const text = block
    ?.split('\n')
    .slice(1)
    .filter((l) => l.trim() !== '' && !l.startsWith('#'))
    .join(' ');
  return text?.match(/[^.!?]+[.!?]/)?.[0]?.trim();
}

const llm = await startFakeOpenAIChatServer();
llm.respond = (body) => {
  const messages = (body.messages ?? []) as Array<{ role: string; content: string }>;
  const prompt = messages.find((m) => m.role === 'user')?.content ?? '';
  const one = firstSentence(prompt, 1) ?? 'The sources say little about this.';
  const two = firstSentence(prompt, 2);
  const deltas = [`${one.replace(/\.$/, '')} [1]. `];
  if (two !== undefined) deltas.push(`${two.replace(/\.$/, '')} [2]. `);
  deltas.push('Tickets can also be bought on board with a 20 percent discount [1].');
  return { kind: 'reply', deltas, gapMs: 60 };
};
const t = await startTestServer({
  docs: [...samples(), ...UI_HANDBOOK],
  pipeline: {
    retrieval: { retriever: 'hybrid' },
    rerank: { reranker: 'ltr' },
    llm: { provider: 'openai', baseURL: llm.url, model: 'gpt-4o-mini', maxRetries: 0 },
  },
});
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'quarry-ui-shots-'));
const evalSet = path.join(tmp, 'handbook'); // the dataset's name in the runs
const browser = await launchBrowser();
try {
  writeHandbookEvalSet(evalSet);
  // Runs a few seconds apart, so the time axis has distinct ticks.
  const pause = () => new Promise((r) => setTimeout(r, 2000));
  await runEval({ dataset: evalSet, record: t.store, label: 'bm25 k1=0.9' });
  await pause();
  await runEval({ dataset: evalSet, record: t.store, label: 'bm25 k1=0.5', k1: 0.5 });
  await pause();
  await runEval({ dataset: evalSet, record: t.store, label: 'hybrid', retriever: 'hybrid' });
  fs.mkdirSync(out, { recursive: true });
  const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
  const shot = async (name: string) => {
    await page.screenshot({ path: path.join(out, `${name}.png`) });
    console.log(`wrote docs/ui/${name}.png`);
  };

  await page.goto(`${t.url}/ui/#/ask`);
  await page.getByLabel('Question').fill(QUESTION);
  await page.getByRole('button', { name: 'Ask', exact: true }).click();
  await page.waitForSelector('[data-testid=answer][data-state=done]', { timeout: 30_000 });
  await page.locator('.answer-text button.cite[data-marker="1"]').first().click();
  await page.getByTestId('passage-panel').waitFor();
  await shot('ask');

  await page.getByTestId('trace-link').click();
  await page.getByTestId('candidates').waitFor();
  await shot('trace');

  await page.goto(`${t.url}/ui/#/documents`);
  await page.getByTestId('documents').waitFor();
  await shot('documents');

  await page.goto(`${t.url}/ui/#/eval`);
  await page.getByTestId('worst').waitFor();
  await shot('eval');
} finally {
  await browser.close();
  await t.close();
  await llm.close();
  fs.rmSync(tmp, { recursive: true, force: true });
}

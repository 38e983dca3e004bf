/**
 * Headless Chromium for the web UI tests: Debian's `chromium` driven by playwright-core (which downloads no
 * browser of its own). Without a `chromium` on PATH the browser tests skip with a message on a developer
 * machine, and fail under CI (CI set), where .ci/run installs it: there they must run, never skip.
 */
import fs from 'node:fs';
import path from 'node:path';
import { type Browser, chromium, type Page } from 'playwright-core';
import type { QuarryConfigInput } from '../../src/config/config.js';
import { type FakeLlmServer, startFakeOpenAIChatServer } from '../generate/llm/fake-openai-chat-server.js';
import { startTestServer, type TestServer } from '../server/harness.js';
import { UI_HANDBOOK } from './corpus.js';

function onPath(name: string): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(path.delimiter)) {
    const file = path.join(dir, name);
    try {
      fs.accessSync(file, fs.constants.X_OK);
      return file;
    } catch {
      // not here
    }
  }
  return undefined;
}

export const CHROMIUM = onPath('chromium');
const IN_CI = process.env.CI !== undefined && process.env.CI !== '' && process.env.CI !== 'false';

/** True when the browser tests of a file should be skipped (no chromium, not in CI). */
export const NO_BROWSER = CHROMIUM === undefined && !IN_CI;
if (NO_BROWSER)
  console.warn(
    'web UI browser tests skipped: no `chromium` on PATH (apt-get install -y chromium; CI installs it and runs them)',
  );

export async function launchBrowser(): Promise<Browser> {
  if (CHROMIUM === undefined)
    throw new Error(
      'no `chromium` on PATH: the web UI tests must run in CI (.ci/run installs it with apt-get install -y chromium)',
    );
  return chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu'],
    timeout: 20_000,
  });
}

/** Page errors and console errors of a page (CSP violations show up there), for asserting there are none. */
export function collectErrors(page: Page): string[] {
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(`pageerror: ${e.message}`));
  page.on('console', (m) => {
    if (m.type() === 'error') errors.push(`console: ${m.text()}`);
  });
  return errors;
}

/** Sign in through the login form with an API key. */
export async function signIn(page: Page, url: string, key: string): Promise<void> {
  await page.goto(`${url}/ui/`);
  await page.getByLabel('API key').fill(key);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByTestId('who').waitFor();
}

/**
 * What the tests read of the page inside page functions (`evaluate`, `evaluateAll`): the test program is
 * compiled without the DOM library, so these few members are declared here. Use them as casts only
 * (`x as unknown as PageNode`): a page function runs in the browser and cannot call test code.
 */
export interface PageNode {
  dataset: Record<string, string | undefined>;
  style: Record<string, string>;
  textContent: string | null;
  setAttribute(name: string, value: string): void;
  getBoundingClientRect(): { left: number; right: number; top: number; bottom: number; height: number };
  querySelector(selector: string): PageNode | null;
  querySelectorAll(selector: string): PageNode[];
}

export interface PageGlobals {
  document: PageNode & { body: PageNode };
  sessionStorage: { length: number };
  MutationObserver: new (cb: () => void) => { observe(node: PageNode, opts: Record<string, boolean>): void };
  /** Set by the upload test: what the progress bar showed. */
  progressSeen: string[];
}

/** A browser, a fake OpenAI-compatible LLM and a real server over the UI handbook answering with that LLM. */
export interface LlmUiRig {
  llm: FakeLlmServer;
  t: TestServer;
  browser: Browser;
  close(): Promise<void>;
}

export async function startLlmUiRig(pipeline: QuarryConfigInput = {}): Promise<LlmUiRig> {
  const llm = await startFakeOpenAIChatServer();
  const t = await startTestServer({
    docs: UI_HANDBOOK,
    pipeline: {
      ...pipeline,
      llm: { provider: 'openai', baseURL: llm.url, model: 'gpt-4o-mini', maxRetries: 0 },
    },
  });
  const browser = await launchBrowser();
  return {
    llm,
    t,
    browser,
    async close() {
      await browser.close();
      await t.close();
      await llm.close();
    },
  };
}

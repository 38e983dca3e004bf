/**
 * Login and access in headless Chromium against a real `quarry serve` that requires keys: a wrong key is
 * refused on the login form with the server's reason and is not kept; a key without the `hr` group sees
 * nothing of the salary document anywhere (documents list, answer, citations, its own trace, the admin's
 * trace of the same question, another tenant's collection), while an admin key sees all of it; log out
 * returns to the login form.
 */
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from '../server/harness.js';
import {
  collectErrors,
  launchBrowser,
  NO_BROWSER,
  type PageGlobals,
  type PageNode,
  signIn,
} from './browser.js';
import { UI_HANDBOOK } from './corpus.js';

const QUESTION = 'What is the senior engineer salary band?';
/** Text only the restricted documents contain. */
const SECRETS = ['90,000', '120,000', 'Salary bands', 'salaries', 'Bluebird', 'Northwind', 'merger'];

let t: TestServer;
let browser: Browser;

beforeAll(async () => {
  if (NO_BROWSER) return;
  t = await startTestServer({
    docs: UI_HANDBOOK,
    keys: [
      { name: 'reader', scopes: ['query'] },
      // Admin scope alone grants no documents: the groups and the clearance do.
      { name: 'admin', scopes: ['admin'], groups: ['hr', 'exec'], clearance: 5 },
      { name: 'acme-admin', scopes: ['admin'], tenant: 'acme' },
    ],
  });
  // Another tenant's collection, which no key of the default tenant may see.
  const created = await t.call('POST', '/v1/collections', {
    key: t.keys['acme-admin'],
    body: { name: 'acme-secrets' },
  });
  expect(created.status).toBe(201);
  browser = await launchBrowser();
});
afterAll(async () => {
  await browser?.close();
  await t?.close();
});

async function askAndWait(page: Page, question: string): Promise<string> {
  await page.goto(`${t.url}/ui/#/ask`);
  await page.getByLabel('Question').fill(question);
  await page.getByRole('button', { name: 'Ask', exact: true }).click();
  await page.waitForSelector('[data-testid=answer][data-state=done]', { timeout: 15_000 });
  return (await page.getByTestId('trace-link').getAttribute('href')) ?? '';
}

const bodyText = (page: Page) => page.locator('body').textContent();
const listed = (page: Page) =>
  page
    .locator('[data-testid=documents] tbody tr')
    .evaluateAll((rows) => rows.map((r) => (r as unknown as PageNode).dataset.doc));

describe.skipIf(NO_BROWSER)('login and access', () => {
  it('a wrong key is refused with a clear message and not kept; log out returns to the login form', async () => {
    const page = await browser.newPage();
    await page.goto(`${t.url}/ui/`);
    await page.getByLabel('API key').fill('qk_wrong_key');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await expect(page.getByRole('alert').textContent()).resolves.toMatch(
      /This API key was not accepted: .*the API key is unknown, malformed or revoked/,
    );
    await expect(
      page.evaluate(() => (globalThis as unknown as PageGlobals).sessionStorage.length),
    ).resolves.toBe(0);
    await expect(page.getByTestId('who').count()).resolves.toBe(0);

    await page.getByLabel('API key').fill(t.keys.reader!);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByTestId('who').waitFor();
    // The key survives a reload of the tab…
    await page.reload();
    await page.getByTestId('who').waitFor();
    // …and logging out forgets it.
    await page.getByRole('button', { name: 'Log out' }).click();
    await page.getByLabel('API key').waitFor();
    await expect(
      page.evaluate(() => (globalThis as unknown as PageGlobals).sessionStorage.length),
    ).resolves.toBe(0);
    await page.reload();
    await page.getByLabel('API key').waitFor();
    await page.close();
  });

  it('a key without access sees nothing of a restricted document; an admin key sees it', async () => {
    // The admin first: the restricted document is listed, answers, is cited and is in the trace.
    const admin = await browser.newPage({ viewport: { width: 1280, height: 800 } });
    await signIn(admin, t.url, t.keys.admin!);
    // From here on (the key-less probe before the login form is a 401 by design).
    const adminErrors = collectErrors(admin);
    await admin.goto(`${t.url}/ui/#/documents`);
    await admin.getByTestId('documents').waitFor();
    const adminList = [...(await listed(admin))];
    await admin.getByRole('button', { name: 'Next →' }).click();
    await expect.poll(async () => (await listed(admin))[0]).not.toBe(adminList[0]);
    adminList.push(...(await listed(admin)));
    expect(adminList.length).toBe(UI_HANDBOOK.length);
    expect(adminList).toContain('salaries');
    expect(adminList).toContain('merger');
    const adminTrace = await askAndWait(admin, QUESTION);
    await expect(admin.getByTestId('answer-text').textContent()).resolves.toContain('90,000');
    await admin.locator('.answer-text button.cite').first().click();
    await expect(admin.getByTestId('passage-doc').textContent()).resolves.toBe('salaries');
    await admin.goto(`${t.url}/ui/${adminTrace}`);
    await admin.getByTestId('candidates').waitFor();
    await expect(admin.getByTestId('candidates').textContent()).resolves.toContain('salaries');
    expect(adminErrors).toEqual([]);
    await admin.close();

    // The reader: not in the list, not in the answer or its citations, not in its trace.
    const reader = await browser.newPage({ viewport: { width: 1280, height: 800 } });
    await signIn(reader, t.url, t.keys.reader!);
    const collections = await reader.locator('header select option').allTextContents();
    expect(collections).toEqual(['default']);
    await reader.goto(`${t.url}/ui/#/documents`);
    await reader.getByTestId('documents').waitFor();
    const all = [...(await listed(reader))];
    await reader.getByRole('button', { name: 'Next →' }).click();
    await expect.poll(async () => (await listed(reader))[0]).not.toBe(all[0]);
    all.push(...(await listed(reader)));
    expect(all.length).toBe(UI_HANDBOOK.length - 2);
    expect(all).not.toContain('salaries');
    expect(all).not.toContain('merger');

    const readerTrace = await askAndWait(reader, QUESTION);
    const answerText = (await reader.getByTestId('answer').textContent()) ?? '';
    for (const s of SECRETS) expect(answerText).not.toContain(s);
    for (const marker of await reader.locator('.answer-text button.cite:not([disabled])').all()) {
      await marker.click();
      const panel = (await reader.getByTestId('passage-panel').textContent()) ?? '';
      for (const s of SECRETS) expect(panel).not.toContain(s);
    }
    await reader.goto(`${t.url}/ui/${readerTrace}`);
    await reader.getByTestId('trace').waitFor();
    // Every stage detail opened: nothing of the restricted documents anywhere on the page.
    for (const d of await reader.locator('details').all())
      await d.evaluate((el) => (el as unknown as PageNode).setAttribute('open', ''));
    const traceText = await bodyText(reader);
    expect(traceText).toContain(QUESTION);
    for (const s of SECRETS) expect(traceText).not.toContain(s);

    // The admin's trace of the same question is not the reader's to read.
    await reader.goto(`${t.url}/ui/${adminTrace}`);
    await expect(reader.getByTestId('trace-error').textContent()).resolves.toMatch(/no query with id/);
    const refused = await bodyText(reader);
    for (const s of SECRETS) expect(refused).not.toContain(s);
    await reader.close();
  });
});

/**
 * The documents view in headless Chromium against a real `quarry serve`: files chosen in the file input are
 * uploaded with their progress on screen, each file's outcome is listed (added, then unchanged on a second
 * upload, failed with the reason for a file that cannot be parsed), the new document is answerable from the
 * Ask view, and deleting it (after the confirm) removes it from the list and from search. Filters and
 * paging narrow the list.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from '../server/harness.js';
import { launchBrowser, NO_BROWSER, type PageGlobals, type PageNode } from './browser.js';
import { UI_HANDBOOK } from './corpus.js';

let t: TestServer;
let browser: Browser;
let dir: string;

beforeAll(async () => {
  if (NO_BROWSER) return;
  t = await startTestServer({ docs: UI_HANDBOOK });
  browser = await launchBrowser();
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'quarry-ui-upload-'));
  fs.writeFileSync(
    path.join(dir, 'lighthouse.md'),
    '# Lighthouse duty\n\nThe lighthouse keeper rings the brass bell at dusk every Thursday.\n',
  );
  fs.writeFileSync(path.join(dir, 'broken.pdf'), 'this is not a PDF at all');
});
afterAll(async () => {
  await browser?.close();
  await t?.close();
  if (dir !== undefined) fs.rmSync(dir, { recursive: true, force: true });
});

/** Rows of the documents table, by document id. */
const listed = (page: Page) =>
  page
    .locator('[data-testid=documents] tbody tr')
    .evaluateAll((rows) => rows.map((r) => (r as unknown as PageNode).dataset.doc));

async function upload(
  page: Page,
  files: string[],
): Promise<Array<{ name: string; status: string; message: string }>> {
  // Everything the progress line showed, however short the upload.
  await page.evaluate(() => {
    const w = globalThis as unknown as PageGlobals;
    w.progressSeen = [];
    new w.MutationObserver(() => {
      const p = w.document.querySelector('[data-testid=upload-progress]');
      if (p !== null) w.progressSeen.push(`${p.dataset.phase}: ${p.textContent}`);
    }).observe(w.document.body, { subtree: true, childList: true, characterData: true, attributes: true });
  });
  await page.getByLabel('Files to upload').setInputFiles(files.map((f) => path.join(dir, f)));
  await page.getByRole('button', { name: /^Upload \d+ files?$/ }).click();
  await page.getByTestId('upload-result').waitFor();
  const seen = await page.evaluate(() => (globalThis as unknown as PageGlobals).progressSeen);
  // The server's own progress events reached the screen: the files received, then the ingest's counts.
  const fresh = seen.slice(seen.findIndex((x) => x.startsWith('received:')));
  expect(fresh[0]).toMatch(new RegExp(`^received: Received ${files.length} files?`));
  expect(fresh.some((x) => /^ingest: ingest \d+\/\d+ records/.test(x))).toBe(true);
  expect(fresh.at(-1)).toMatch(new RegExp(`^done: ingest ${files.length}/${files.length} records`));
  return page.locator('[data-testid=upload-result] tbody tr').evaluateAll((rows) =>
    rows.map((r) => {
      const cells = [...r.querySelectorAll('td')].map((c) => c.textContent ?? '');
      return {
        name: cells[0] ?? '',
        status: (r as unknown as PageNode).dataset.status ?? '',
        message: cells[2] ?? '',
      };
    }),
  );
}

describe.skipIf(NO_BROWSER)('documents: upload → progress → searchable → delete', () => {
  it('uploads files with progress, reports each outcome, and the new document answers questions', async () => {
    const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
    await page.goto(`${t.url}/ui/#/documents`);
    await page.getByTestId('documents').waitFor();
    expect((await listed(page)).some((id) => id?.includes('lighthouse'))).toBe(false);

    const first = await upload(page, ['lighthouse.md', 'broken.pdf']);
    const lighthouse = first.find((r) => r.name.includes('lighthouse'));
    expect(lighthouse?.status).toBe('added');
    const broken = first.find((r) => r.name.includes('broken'));
    expect(broken?.status).toBe('failed');
    expect(broken?.message.length).toBeGreaterThan(5);
    const again = await upload(page, ['lighthouse.md']);
    expect(again.map((r) => r.status)).toEqual(['unchanged']);

    // The list was refreshed: the uploaded file is a document now, named relative to the collection.
    const id = lighthouse!.name;
    expect(id).toBe('uploads/lighthouse.md');
    await page.getByLabel('Source prefix').fill('uploads/');
    await page.getByRole('button', { name: 'Filter' }).click();
    await expect.poll(() => listed(page)).toEqual([id]);
    await page.getByLabel('Source prefix').fill('');
    await page.getByLabel('Metadata filter').fill(JSON.stringify({ id }));
    await page.getByRole('button', { name: 'Filter' }).click();
    await expect.poll(() => listed(page)).toEqual([id]);

    await page.goto(`${t.url}/ui/#/ask`);
    await page.getByLabel('Question').fill('When does the lighthouse keeper ring the brass bell?');
    await page.getByRole('button', { name: 'Ask', exact: true }).click();
    await page.waitForSelector('[data-testid=answer][data-state=done]', { timeout: 15_000 });
    await expect(page.getByTestId('answer-text').textContent()).resolves.toContain('dusk every Thursday');
    await page.locator('.answer-text button.cite').first().click();
    await expect(page.getByTestId('passage-doc').textContent()).resolves.toBe(id);
    await page.close();
  });

  it('deletes a document after the confirm; it is gone from the list and from search', async () => {
    const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
    await page.goto(`${t.url}/ui/#/documents`);
    await page.getByTestId('documents').waitFor();
    const row = page.locator('[data-testid=documents] tr[data-doc="canteen"]');
    // Dismissing the confirm keeps the document.
    page.once('dialog', (d) => d.dismiss());
    await row.getByRole('button', { name: 'Delete' }).click();
    await expect(row.count()).resolves.toBe(1);
    page.once('dialog', (d) => {
      expect(d.message()).toContain('canteen');
      return d.accept();
    });
    await row.getByRole('button', { name: 'Delete' }).click();
    await expect.poll(() => row.count()).toBe(0);
    const search = await t.call('POST', '/v1/search', {
      body: { query: 'canteen breakfast lunch vegetarian' },
    });
    expect(search.body.hits.map((h: { document: { id: string } }) => h.document.id)).not.toContain('canteen');
    await page.close();
  });

  it('filters by metadata and source prefix, and pages through the list', async () => {
    const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
    await page.goto(`${t.url}/ui/#/documents`);
    await page.getByTestId('documents').waitFor();
    const firstPage = await listed(page);
    expect(firstPage.length).toBe(20);
    await page.getByRole('button', { name: 'Next →' }).click();
    await expect.poll(async () => (await listed(page))[0]).not.toBe(firstPage[0]);
    const secondPage = await listed(page);
    expect(secondPage.some((id) => firstPage.includes(id))).toBe(false);
    await expect(page.getByRole('button', { name: 'Next →' }).isDisabled()).resolves.toBe(true);

    await page.getByLabel('Metadata filter').fill('{"tags":{"$in":["finance"]}}');
    await page.getByRole('button', { name: 'Filter' }).click();
    await expect
      .poll(async () => (await listed(page)).sort())
      .toEqual(['expenses', 'payday', 'pension', 'travel']);
    await page.getByLabel('Metadata filter').fill('');
    await page.getByLabel('Source prefix').fill('memory:pa');
    await page.getByRole('button', { name: 'Filter' }).click();
    await expect.poll(async () => (await listed(page)).sort()).toEqual(['parking', 'passwords', 'payday']);
    // A malformed filter is the server's error, never an unfiltered list.
    await page.getByLabel('Source prefix').fill('');
    await page.getByLabel('Metadata filter').fill('{"tags":');
    await page.getByRole('button', { name: 'Filter' }).click();
    await page.locator('.documents .error').waitFor();
    await expect(page.getByTestId('documents').count()).resolves.toBe(0);
    await page.close();
  });
});

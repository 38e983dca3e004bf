/**
 * The web UI over plain HTTP on a non-loopback address (`--host 0.0.0.0`, keys required), as a team reaches
 * a server on its LAN: the page loads its script and stylesheet over http and shows the login form. The API's
 * CSP has `upgrade-insecure-requests`, which would send the browser to https for the bundle; the UI page
 * carries its own policy without it. Skipped when the machine has no non-loopback IPv4 address.
 */
import os from 'node:os';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HANDBOOK, startTestServer, type TestServer } from '../server/harness.js';
import { collectErrors, launchBrowser, NO_BROWSER } from './browser.js';

const lanAddress = Object.values(os.networkInterfaces())
  .flat()
  .find((i) => i !== undefined && i.family === 'IPv4' && !i.internal)?.address;

let t: TestServer;
let browser: Browser;

beforeAll(async () => {
  if (NO_BROWSER || lanAddress === undefined) return;
  t = await startTestServer({
    docs: HANDBOOK,
    keys: [{ name: 'reader', scopes: ['query'] }],
    config: { host: '0.0.0.0' },
  });
  browser = await launchBrowser();
});
afterAll(async () => {
  await browser?.close();
  await t?.close();
});

describe.skipIf(NO_BROWSER || lanAddress === undefined)('the web UI on a LAN address over plain HTTP', () => {
  it('loads its bundle over http and signs in', async () => {
    const page = await browser.newPage();
    const failed: string[] = [];
    page.on('requestfailed', (r) => failed.push(`${r.url()}: ${r.failure()?.errorText}`));
    const url = `http://${lanAddress}:${new URL(t.url).port}`;
    await page.goto(`${url}/ui/`);
    await page.getByLabel('API key').fill(t.keys.reader!);
    const errors = collectErrors(page);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByTestId('who').waitFor({ timeout: 10_000 });
    expect(failed).toEqual([]);
    expect(errors).toEqual([]);
    await page.close();
  });
});

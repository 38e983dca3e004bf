/**
 * How `quarry serve` serves the web UI bundle (no browser needed): `/` redirects to `/ui/`, index.html is
 * never cached and has no inline script or style (the CSP allows neither), the hashed assets it names are
 * served with their content types and a year's cache, nothing outside dist/ui is reachable, the files need
 * no key on a server that requires keys (the APIs still do), and a missing bundle is a page that says how
 * to build it.
 */
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import Fastify from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_UI_DIR, registerUiRoutes } from '../../src/server/routes/ui.js';
import { HANDBOOK, startTestServer, type TestServer } from '../server/harness.js';

let t: TestServer;

beforeAll(async () => {
  t = await startTestServer({ docs: HANDBOOK, keys: [{ name: 'reader', scopes: ['query'] }] });
});
afterAll(async () => {
  await t?.close();
});

describe('web UI static files', () => {
  it('the bundle is found in dist/ui of the package root, also when running from src/', () => {
    expect(DEFAULT_UI_DIR).toBe(path.resolve(import.meta.dirname, '../../dist/ui'));
    expect(fs.existsSync(path.join(DEFAULT_UI_DIR, 'index.html'))).toBe(true);
  });

  it('/ redirects to /ui/, which serves index.html uncached and needs no key', async () => {
    const root = await fetch(`${t.url}/`, { redirect: 'manual' });
    expect(root.status).toBe(302);
    expect(root.headers.get('location')).toBe('/ui/');
    const bare = await fetch(`${t.url}/ui`, { redirect: 'manual' });
    expect(bare.headers.get('location')).toBe('/ui/');
    const index = await fetch(`${t.url}/ui/`);
    expect(index.status).toBe(200);
    expect(index.headers.get('content-type')).toBe('text/html; charset=utf-8');
    expect(index.headers.get('cache-control')).toBe('no-cache');
    // The page's own policy: same-origin only, no inline script or style, and no upgrade of its requests to
    // https (which would break the UI on a plain-http server reached by a LAN address).
    const csp = index.headers.get('content-security-policy') ?? '';
    expect(csp).toContain("script-src 'self'");
    expect(csp).toContain("style-src 'self'");
    expect(csp).not.toMatch(/unsafe-inline|upgrade-insecure-requests/);
    // The data APIs are what is protected.
    expect((await t.call('GET', '/v1/collections')).status).toBe(401);
    expect((await t.call('GET', '/v1/collections', { key: t.keys.reader })).status).toBe(200);
  });

  it('index.html loads only same-origin files: no inline script, style or style attribute', async () => {
    const html = await (await fetch(`${t.url}/ui/`)).text();
    expect(html).not.toMatch(/<script(?![^>]*\bsrc=)[^>]*>/);
    expect(html).not.toMatch(/<style|\sstyle=/);
    const refs = [...html.matchAll(/(?:src|href)="([^"]+)"/g)].map((m) => m[1]!);
    const js = refs.find((r) => r.endsWith('.js'));
    const css = refs.find((r) => r.endsWith('.css'));
    expect(js).toMatch(/^app-[A-Z0-9]{8}\.js$/);
    expect(css).toMatch(/^app-[A-Z0-9]{8}\.css$/);
    for (const [ref, type] of [
      [js, 'text/javascript; charset=utf-8'],
      [css, 'text/css; charset=utf-8'],
    ] as const) {
      const r = await fetch(`${t.url}/ui/${ref}`);
      expect(r.status).toBe(200);
      expect(r.headers.get('content-type')).toBe(type);
      expect(r.headers.get('cache-control')).toBe('public, max-age=31536000, immutable');
      expect((await r.arrayBuffer()).byteLength).toBeGreaterThan(1000);
    }
    const icon = await fetch(`${t.url}/ui/favicon.svg`);
    expect(icon.headers.get('content-type')).toBe('image/svg+xml');
    expect(icon.headers.get('cache-control')).toBe('no-cache');
  });

  it('nothing outside dist/ui is served', async () => {
    // Raw request paths: fetch (and URL parsing) would normalize `..` away before sending.
    const u = new URL(t.url);
    const get = (p: string) =>
      new Promise<{ status: number; body: string }>((resolve, reject) => {
        http
          .get(
            { host: u.hostname, port: u.port, path: p, headers: { 'x-api-key': t.keys.reader! } },
            (res) => {
              let body = '';
              res.on('data', (c: Buffer) => {
                body += c.toString();
              });
              res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
            },
          )
          .on('error', reject);
      });
    for (const probe of [
      '/ui/../server.db',
      '/ui/..%2Fserver.db',
      '/ui/%2e%2e/%2e%2e/package.json',
      '/ui/sub/../../package.json',
      '/ui/.hidden',
      '/ui/nope.js',
    ]) {
      const r = await get(probe);
      expect(r.status, probe).toBe(404);
      expect(JSON.parse(r.body).error.code, probe).toBe('NOT_FOUND');
      expect(JSON.parse(r.body).error.message, probe).toMatch(/^no web UI file/);
      expect(r.body, probe).not.toContain('"name": "quarry"');
    }
  });

  it('a missing bundle is a 503 page saying how to build it', async () => {
    const empty = fs.mkdtempSync(path.join(os.tmpdir(), 'quarry-ui-'));
    const app = Fastify();
    registerUiRoutes(app, { dir: empty });
    try {
      const r = await app.inject({ method: 'GET', url: '/ui/' });
      expect(r.statusCode).toBe(503);
      expect(r.headers['content-type']).toBe('text/html; charset=utf-8');
      expect(r.body).toContain('The web UI is not built');
      expect(r.body).toContain('npm run build');
      expect((await app.inject({ method: 'GET', url: '/ui/app.js' })).statusCode).toBe(404);
    } finally {
      await app.close();
      fs.rmSync(empty, { recursive: true, force: true });
    }
  });
});

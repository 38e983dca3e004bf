/**
 * `quarry serve --watch <dir>` against a real server and a real folder: files added, changed and deleted in
 * the folder show up in (and leave) search over HTTP, unchanged content is never re-versioned, and the
 * age of the oldest unsynced change is on /metrics, back to 0 once synced. Two watching servers in one
 * process share the metric registry without breaking /metrics; a sync that keeps failing does not make
 * `idle()` wait forever.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { IngestReport } from '../../src/ingest/ingest.js';
import { createLogger } from '../../src/observability/log.js';
import { watchSources } from '../../src/server/watch.js';
import { startTestServer, type TestServer } from './harness.js';

const dirs: string[] = [];
function tempDir(prefix: string): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), `quarry-watch-${prefix}-`));
  dirs.push(d);
  return d;
}

let folder: string;
let t: TestServer;

beforeAll(async () => {
  folder = tempDir('src');
  fs.writeFileSync(
    path.join(folder, 'lighthouse.md'),
    '# Lighthouse\n\nThe lighthouse keeper lights the lamp at dusk.\n',
  );
  t = await startTestServer({ watch: [folder] });
});
afterAll(async () => {
  await t?.close();
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
});

async function hitsFor(query: string): Promise<Array<{ id: string; source: string; version: number }>> {
  const r = await t.call('POST', '/v1/search', { body: { query, cache: false, collapseDocuments: true } });
  expect(r.status).toBe(200);
  return r.body.hits.map((h: { document: { id: string; source: string; version: number } }) => ({
    id: h.document.id,
    source: h.document.source,
    version: h.document.version,
  }));
}

function gauge(metrics: string, source: string): number | undefined {
  for (const line of metrics.split('\n')) {
    if (!line.startsWith('quarry_watch_oldest_unsynced_seconds{')) continue;
    const m = /source="([^"]*)"\} (\S+)$/.exec(line);
    if (m?.[1] === source) return Number(m[2]);
  }
  return undefined;
}

describe('a watched folder stays in sync with the default collection', () => {
  it('syncs the folder at start: its file is searchable before any change', async () => {
    const hits = await hitsFor('lighthouse keeper lamp');
    expect(hits[0]?.source).toMatch(/lighthouse\.md$/);
  });

  it('a file added to the folder becomes searchable; the gauge is 0 after the sync', async () => {
    expect(await hitsFor('quokka burrow')).toEqual([]);
    fs.writeFileSync(
      path.join(folder, 'quokka.md'),
      '# Quokkas\n\nA quokka digs its burrow under dense scrub.\n',
    );
    await waitFor(async () => (await hitsFor('quokka burrow')).length > 0);
    await t.server.watcher!.idle();
    const [hit] = await hitsFor('quokka burrow');
    expect(hit!.source).toMatch(/quokka\.md$/);
    expect(hit!.version).toBe(1);
    const metrics = await t.call('GET', '/metrics');
    expect(metrics.status).toBe(200);
    expect(gauge(metrics.body, path.resolve(folder))).toBe(0);
  });

  it('a changed file is updated once; rewriting the same content never bumps its version', async () => {
    const file = path.join(folder, 'quokka.md');
    fs.writeFileSync(file, '# Quokkas\n\nA quokka climbs low trees to reach fresh leaves.\n');
    await waitFor(async () => (await hitsFor('quokka climbs trees leaves'))[0]?.version === 2);
    await t.server.watcher!.idle();
    expect(await hitsFor('quokka burrow scrub')).not.toContainEqual(expect.objectContaining({ version: 1 }));
    const [updated] = await hitsFor('quokka climbs trees leaves');
    expect(updated!.version).toBe(2);
    // Same bytes again: the watcher sees a change event, the content hash says unchanged.
    fs.writeFileSync(file, '# Quokkas\n\nA quokka climbs low trees to reach fresh leaves.\n');
    await sleep(800);
    await t.server.watcher!.idle();
    const doc = await t.call('GET', `/v1/documents/${encodeURIComponent(updated!.id)}`);
    expect(doc.status).toBe(200);
    expect(doc.body.meta.version).toBe(2);
    // The old text left the indexes with the old version.
    expect((await hitsFor('burrow scrub')).map((h) => h.id)).not.toContain(updated!.id);
  });

  it('a deleted file disappears from search and from the document list', async () => {
    const [hit] = await hitsFor('quokka climbs trees');
    fs.rmSync(path.join(folder, 'quokka.md'));
    await waitFor(async () => (await hitsFor('quokka climbs trees')).length === 0);
    await t.server.watcher!.idle();
    expect((await t.call('GET', `/v1/documents/${encodeURIComponent(hit!.id)}`)).status).toBe(404);
    const list = await t.call('GET', '/v1/documents');
    expect(list.body.documents.map((d: { id: string }) => d.id)).not.toContain(hit!.id);
    // The other files are untouched.
    expect((await hitsFor('lighthouse keeper lamp')).length).toBe(1);
    expect(gauge((await t.call('GET', '/metrics')).body, path.resolve(folder))).toBe(0);
  });
});

describe('watchers in one process', () => {
  it('a second watching server serves /metrics with both sources, without duplicate series', async () => {
    const other = tempDir('other');
    fs.writeFileSync(path.join(other, 'otter.md'), '# Otters\n\nOtters hold hands while they sleep.\n');
    const t2 = await startTestServer({ watch: [other] });
    try {
      for (const server of [t, t2]) {
        const m = await server.call('GET', '/metrics');
        expect(m.status).toBe(200);
        expect(m.body).toMatch(/^# TYPE quarry_watch_oldest_unsynced_seconds gauge$/m);
        const types = (m.body as string).split('\n').filter((l) => l.startsWith('# TYPE '));
        expect(new Set(types).size).toBe(types.length);
      }
      const m2 = (await t2.call('GET', '/metrics')).body as string;
      expect(gauge(m2, path.resolve(other))).toBe(0);
    } finally {
      await t2.close();
    }
    // A closed watcher's source is no longer reported.
    const m = (await t.call('GET', '/metrics')).body as string;
    expect(gauge(m, path.resolve(other))).toBeUndefined();
    expect(gauge(m, path.resolve(folder))).toBe(0);
  });

  it('idle() is bounded when a sync keeps failing; the sync is retried and the gauge shows the unsynced change', async () => {
    const dir = tempDir('failing');
    let calls = 0;
    const ingest = async (): Promise<IngestReport> => {
      calls++;
      if (calls === 1) return { failed: 0 } as IngestReport; // the start-up sync
      throw new Error('disk on fire');
    };
    const w = await watchSources([dir], {
      ingest,
      log: createLogger({ level: 'silent' }) as never,
      quietMs: 50,
    });
    try {
      fs.writeFileSync(path.join(dir, 'a.md'), '# A\n\nalpha\n');
      await waitFor(async () => calls >= 2);
      const t0 = Date.now();
      await expect(w.idle({ timeoutMs: 1500 })).rejects.toMatchObject({ code: 'UNAVAILABLE' });
      expect(Date.now() - t0).toBeLessThan(4000);
      const m = (await t.call('GET', '/metrics')).body as string;
      await sleep(1100);
      const later = (await t.call('GET', '/metrics')).body as string;
      expect(gauge(later, path.resolve(dir))).toBeGreaterThan(0);
      expect(m).toMatch(/quarry_watch_syncs_total\{source="[^"]+",outcome="failed"\} [1-9]/);
      // Retried on its own (with backoff), not only on the next file event.
      expect(calls).toBeGreaterThanOrEqual(3);
    } finally {
      await w.close();
    }
  });
});

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

async function waitFor(check: () => Promise<boolean>, ms = 8000): Promise<void> {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    if (await check()) return;
    await sleep(100);
  }
  throw new Error(`condition not met within ${ms} ms`);
}

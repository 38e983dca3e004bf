/**
 * `quarry serve --watch <dir>`: keeps folders in sync with the default collection. File events are batched
 * (300 ms quiet time); added and changed files are re-ingested (unchanged content stays unchanged), and a
 * removal re-ingests the folder with pruning so the document leaves the store. The age of the oldest change
 * not yet synced, per watched folder, is a metric (`quarry_watch_oldest_unsynced_seconds`). A failed sync is
 * retried with backoff; the metric registry is shared by every watcher in the process (one series per folder).
 */
import path from 'node:path';
import type { FastifyBaseLogger } from 'fastify';
import client from 'prom-client';
import { describeError, QuarryError } from '../errors.js';
import type { IngestReport } from '../ingest/ingest.js';
import { extraRegistries } from './routes/health.js';

export interface SourceWatcher {
  close(): Promise<void>;
  /**
   * Resolves when every change seen so far has been synced (tests, shutdown); rejects with UNAVAILABLE when
   * that has not happened within `timeoutMs` (default 30 s), e.g. because every sync attempt fails.
   */
  idle(opts?: { timeoutMs?: number }): Promise<void>;
}

const registry = new client.Registry();
const oldest = new client.Gauge({
  name: 'quarry_watch_oldest_unsynced_seconds',
  help: 'Age of the oldest file change not yet synced, per watched folder (0 when in sync)',
  labelNames: ['source'] as const,
  registers: [registry],
});
const syncs = new client.Counter({
  name: 'quarry_watch_syncs_total',
  help: 'Sync runs of watched folders, by outcome',
  labelNames: ['source', 'outcome'] as const,
  registers: [registry],
});
extraRegistries.push(registry);

export async function watchSources(
  dirs: string[],
  deps: {
    ingest(paths: string[], prune: boolean): Promise<IngestReport>;
    log: FastifyBaseLogger;
    quietMs?: number;
    /** First retry delay after a failed sync (doubles up to a minute). */
    retryMs?: number;
  },
): Promise<SourceWatcher> {
  const { default: chokidar } = await import('chokidar');
  const roots = dirs.map((d) => path.resolve(d));
  // Bring every folder in sync at start (changes made while the server was down).
  for (const r of roots) await deps.ingest([r], true);
  const pending = new Map<string, { changed: Set<string>; removed: boolean; since: number }>();
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<void> = Promise.resolve();
  let closed = false;
  let failures = 0;
  const gauge = setInterval(() => {
    const now = Date.now();
    for (const r of roots)
      oldest.set({ source: r }, pending.has(r) ? (now - pending.get(r)!.since) / 1000 : 0);
  }, 1000);
  gauge.unref();
  for (const r of roots) oldest.set({ source: r }, 0);

  const rootOf = (p: string) => roots.find((r) => p === r || p.startsWith(r + path.sep)) ?? roots[0]!;
  const flush = () => {
    timer = undefined;
    const batch = [...pending.entries()];
    pending.clear();
    running = running.then(async () => {
      for (const [root, change] of batch) {
        try {
          const report = change.removed
            ? await deps.ingest([root], true)
            : await deps.ingest([...change.changed], false);
          syncs.inc({ source: root, outcome: report.failed > 0 ? 'partial' : 'ok' });
          deps.log.info(
            {
              watch: root,
              added: report.added,
              updated: report.updated,
              removed: report.removed,
              failed: report.failed,
            },
            'watched folder synced',
          );
        } catch (e) {
          syncs.inc({ source: root, outcome: 'failed' });
          deps.log.error({ watch: root, error: describeError(e) }, 'watched folder sync failed');
          // Keep the change pending so the age metric shows it is not synced; retried with the next event.
          const again = pending.get(root) ?? {
            changed: new Set<string>(),
            removed: false,
            since: change.since,
          };
          for (const c of change.changed) again.changed.add(c);
          again.removed ||= change.removed;
          pending.set(root, again);
        }
      }
      for (const r of roots) if (!pending.has(r)) oldest.set({ source: r }, 0);
      // Failed changes are retried without waiting for another file event, backing off while they fail.
      if (pending.size > 0 && !closed && timer === undefined) {
        failures++;
        const base = deps.retryMs ?? 1000;
        timer = setTimeout(flush, Math.min(60_000, base * 2 ** (failures - 1)));
        timer.unref();
      } else if (pending.size === 0) failures = 0;
    });
  };
  const note = (p: string, removed: boolean) => {
    const root = rootOf(path.resolve(p));
    const entry = pending.get(root) ?? { changed: new Set<string>(), removed: false, since: Date.now() };
    if (removed) entry.removed = true;
    else entry.changed.add(path.resolve(p));
    pending.set(root, entry);
    if (timer !== undefined) clearTimeout(timer);
    timer = setTimeout(flush, deps.quietMs ?? 300);
  };
  const watcher = chokidar.watch(roots, {
    ignoreInitial: true,
    ignored: (p: string) => path.basename(p).startsWith('.'),
    awaitWriteFinish: { stabilityThreshold: 150, pollInterval: 50 },
  });
  watcher.on('add', (p) => note(p, false));
  watcher.on('change', (p) => note(p, false));
  watcher.on('unlink', (p) => note(p, true));
  watcher.on('unlinkDir', (p) => note(p, true));
  watcher.on('error', (e) => deps.log.error({ error: describeError(e) }, 'watch error'));
  await new Promise<void>((resolve) => watcher.once('ready', () => resolve()));
  return {
    async close() {
      closed = true;
      clearInterval(gauge);
      if (timer !== undefined) {
        clearTimeout(timer);
        flush();
      }
      await watcher.close();
      await running;
      // The registry outlives this watcher (it is per process): its folders are no longer reported.
      for (const r of roots) oldest.remove({ source: r });
    },
    async idle(opts = {}) {
      const timeoutMs = opts.timeoutMs ?? 30_000;
      const until = Date.now() + timeoutMs;
      while (timer !== undefined || pending.size > 0) {
        if (Date.now() >= until)
          throw new QuarryError(
            'UNAVAILABLE',
            `watched folders not in sync after ${timeoutMs} ms (${pending.size} folder(s) with unsynced changes)`,
            { pending: [...pending.keys()] },
          );
        await new Promise((r) => setTimeout(r, 50));
        await running;
      }
      await running;
    },
  };
}

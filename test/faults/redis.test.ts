/**
 * Redis going away and coming back, through the real HTTP server: two servers on one store share the real
 * Redis (127.0.0.1:6379, a key prefix of their own) through a TCP proxy that the test cuts (every socket
 * destroyed, no longer listening) and restores. While it is away every search, ask and write succeeds
 * within a bound, with a `cache` degradation on the response and in `quarry_degraded_total`; once it is
 * back the cache is used again — an entry written through one server is a hit on the other — without a
 * restart, and a write made during the outage is never hidden by a stale cached result.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REDIS_URL, redisKeys, uniquePrefix } from '../cache/peer.js';
import { TcpProxy } from '../fixtures/tcp-proxy.js';
import { HANDBOOK, startTestServer, type TestServer } from '../server/harness.js';
import { degradedTotal, timed } from './helpers.js';

const TIMEOUT_MS = 300;
/** No request may take longer than this while Redis is away (the pipeline itself takes a few ms). */
const BOUND_MS = 1500;
const prefix = uniquePrefix();
let proxy: TcpProxy;
let a: TestServer;
let b: TestServer;
const figures: string[] = [];

beforeAll(async () => {
  proxy = await TcpProxy.start(Number(new URL(REDIS_URL).port));
  const pipeline = {
    cache: {
      driver: 'redis' as const,
      redis: { url: `redis://127.0.0.1:${proxy.port}`, keyPrefix: prefix, timeoutMs: TIMEOUT_MS },
    },
  };
  a = await startTestServer({ docs: HANDBOOK, pipeline });
  // The same store and configuration: a second server process would see the same entries.
  b = await startTestServer({ store: a.store, pipeline });
});

afterAll(async () => {
  await b?.close();
  await a?.close();
  await proxy?.close();
  await redisKeys(prefix, true);
  console.log(`Redis faults:\n${figures.join('\n')}`);
});

type Searched = {
  strategy?: string;
  degraded: Array<{ stage: string; reason: string }>;
  hits: Array<{ document: { id: string } }>;
};

async function search(t: TestServer, query: string): Promise<{ ms: number; status: number; body: Searched }> {
  const { value, ms } = await timed(() => t.call('POST', '/v1/search', { body: { query, k: 3 } }));
  return { ms, status: value.status, body: value.body as Searched };
}

const retrievalKeys = async (): Promise<number> =>
  (await redisKeys(prefix)).filter((k) => k.startsWith(`${prefix}ret:`)).length;

/**
 * Searches through `t` until one is served with no cache degradation: its Redis client has reconnected
 * (in the background, retrying at most every 2 s). Returns how long that took.
 */
async function reconnected(t: TestServer): Promise<number> {
  const t0 = performance.now();
  let n = 0;
  await until(
    () => search(t, `ferry probe ${n++}`),
    (s) => s.body.degraded.length === 0,
  );
  return performance.now() - t0;
}

async function until<T>(f: () => Promise<T>, ok: (v: T) => boolean, ms = 10_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await f();
    if (ok(v)) return v;
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('Redis going away and coming back', () => {
  it('up: an entry computed through one server is a Redis hit on the other', async () => {
    const first = await search(a, 'ferry timetable');
    expect(first.body.degraded).toEqual([]);
    expect(await retrievalKeys()).toBe(1);
    const other = await search(b, 'ferry timetable');
    expect(other.body.strategy).toBe('cache');
  });

  it('cut: search, ask and writes succeed within the bound, the cache bypass listed and counted', async () => {
    const before = await degradedTotal(a, 'cache', 'unavailable');
    const keys = await retrievalKeys();
    const t0 = performance.now();
    await proxy.stop();

    const searches = await Promise.all(
      ['refund policy', 'salary bands', 'merger plan', 'ferry tickets', 'refunds card'].map((q) =>
        search(a, q),
      ),
    );
    for (const s of searches) {
      expect(s.status).toBe(200);
      expect(s.body.hits.length).toBeGreaterThan(0);
      expect(s.body.degraded).toEqual([{ stage: 'cache', reason: expect.stringMatching(/unreachable/) }]);
      expect(s.ms).toBeLessThan(BOUND_MS);
    }
    const asked = await timed(() =>
      a.call('POST', '/v1/ask', { body: { question: 'How are refunds paid back?' } }),
    );
    expect(asked.value.status).toBe(200);
    expect(asked.value.body.text).toMatch(/original card/);
    expect(asked.value.body.degraded.map((d: { stage: string }) => d.stage)).toEqual(['cache']);
    expect(asked.ms).toBeLessThan(BOUND_MS);

    // A write while Redis is away: stored, its invalidation not published, and not refused.
    const write = await timed(() =>
      a.call('POST', '/v1/documents', {
        body: {
          documents: [
            { id: 'storm', markdown: '# Storm warning\n\nThe ferry timetable is suspended in storms.' },
          ],
        },
      }),
    );
    expect(write.value.status).toBe(200);
    expect(write.value.body.added).toBe(1);
    expect(write.ms).toBeLessThan(BOUND_MS);

    // Counted: one `cache` degradation per request that bypassed it.
    expect(await degradedTotal(a, 'cache', 'unavailable')).toBeGreaterThanOrEqual(before + 6);
    expect(await retrievalKeys()).toBe(keys);
    const worst = Math.max(...searches.map((s) => s.ms), asked.ms, write.ms);
    figures.push(
      `cut | 5 concurrent searches, 1 ask, 1 write | all 200 | worst ${Math.round(worst)} ms | cut for ${Math.round(performance.now() - t0)} ms`,
    );
  });

  it('restored: cached again without a restart, and the write made meanwhile is not hidden', async () => {
    const keys = await retrievalKeys();
    await proxy.resume();
    const t0 = performance.now();
    const back = await until(
      () => search(a, 'ferry timetable suspended'),
      (s) => s.body.degraded.length === 0,
    );
    const recoverMs = performance.now() - t0;
    expect(back.status).toBe(200);
    expect(await retrievalKeys()).toBe(keys + 1);

    // The other server, once its own client is back: a hit from Redis for what `a` just cached...
    const otherMs = await reconnected(b);
    const hit = await search(b, 'ferry timetable suspended');
    expect(hit.body.strategy).toBe('cache');
    expect(hit.body.degraded).toEqual([]);
    // ...and its cached "ferry timetable" from before the outage is not served: the write changed the index.
    const fresh = await search(b, 'ferry timetable');
    expect(fresh.body.strategy).not.toBe('cache');
    expect(fresh.body.hits.map((h: { document: { id: string } }) => h.document.id)).toContain('storm');
    figures.push(
      `restored | first request without degradation after ${Math.round(recoverMs)} ms, on the other server ${Math.round(otherMs)} ms later | then a hit on the other server`,
    );
  });
});

describe('Redis that accepts connections and never answers', () => {
  it('hung: every request is bounded by the cache timeout, bypassed and listed; then cached again', async () => {
    expect((await search(a, 'refund policy paid')).body.degraded).toEqual([]);
    proxy.hang();
    const hung = await Promise.all(
      ['ferry leaves', 'salary euros', 'merger codename'].map((q) => search(a, q)),
    );
    for (const s of hung) {
      expect(s.status).toBe(200);
      expect(s.body.hits.length).toBeGreaterThan(0);
      expect(s.body.degraded).toEqual([{ stage: 'cache', reason: expect.stringMatching(/unreachable/) }]);
      // A lookup and a store, each at most the 300 ms command timeout.
      expect(s.ms).toBeLessThan(BOUND_MS);
    }
    const worst = Math.max(...hung.map((s) => s.ms));

    await proxy.unhang();
    const t0 = performance.now();
    await until(
      () => search(a, 'refund policy working days'),
      (s) => s.body.degraded.length === 0,
    );
    const recoverMs = performance.now() - t0;
    await reconnected(b);
    const again = await search(b, 'refund policy working days');
    expect(again.body.strategy).toBe('cache');
    figures.push(
      `hung | 3 concurrent searches | all 200 | worst ${Math.round(worst)} ms | cached again ${Math.round(recoverMs)} ms after the restart`,
    );
  });
});

describe('Redis away when the server starts', () => {
  it('the server starts and answers uncached, then uses Redis once it comes up', async () => {
    const late = await TcpProxy.start(Number(new URL(REDIS_URL).port));
    await late.stop();
    const startPrefix = uniquePrefix();
    const t = await startTestServer({
      docs: HANDBOOK,
      pipeline: {
        cache: {
          driver: 'redis',
          redis: { url: `redis://127.0.0.1:${late.port}`, keyPrefix: startPrefix, timeoutMs: TIMEOUT_MS },
        },
      },
    });
    try {
      const down = await search(t, 'ferry timetable');
      expect(down.status).toBe(200);
      expect(down.body.degraded).toEqual([{ stage: 'cache', reason: expect.stringMatching(/unreachable/) }]);
      expect(down.ms).toBeLessThan(BOUND_MS);

      await late.resume();
      const t0 = performance.now();
      await until(
        () => search(t, 'refund policy'),
        (s) => s.body.degraded.length === 0,
      );
      const recoverMs = performance.now() - t0;
      expect((await redisKeys(startPrefix)).some((k) => k.startsWith(`${startPrefix}ret:`))).toBe(true);
      figures.push(
        `down at start | first search ${Math.round(down.ms)} ms, degraded | cached ${Math.round(recoverMs)} ms after Redis came up`,
      );
    } finally {
      await t.close();
      await late.close();
      await redisKeys(startPrefix, true);
    }
  });
});

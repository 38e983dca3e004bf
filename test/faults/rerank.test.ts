/**
 * Rerank-service faults through the real HTTP server: a fake Cohere-compatible `/v2/rerank` on loopback
 * times out, fails with 5xx or sends a body cut off mid-JSON. The search still answers, in the fused order
 * (the same hits, in the same order, as the request with `reranker: "none"`), with a `rerank` degradation
 * on the response and in `quarry_degraded_total`; the next search after the service is back is reranked.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Behaviour, FakeRerankServer } from '../rerank/fake-rerank-server.js';
import { HANDBOOK, startTestServer, type TestServer } from '../server/harness.js';
import { degradedTotal, timed } from './helpers.js';

const TIMEOUT_MS = 300;
const BUDGET_MS = 1500;
let fake: FakeRerankServer;
let t: TestServer;
const figures: string[] = [];

beforeAll(async () => {
  fake = await new FakeRerankServer('cohere', { slowMs: 5000, retryAfter: '0' }).start();
  t = await startTestServer({
    docs: HANDBOOK,
    pipeline: {
      rerank: {
        reranker: 'http',
        budgetMs: BUDGET_MS,
        http: {
          flavor: 'cohere',
          baseURL: fake.url,
          model: 'rerank-v3.5',
          // One retry (two attempts) with fast backoff and short deadlines.
          maxRetries: 1,
          initialBackoffMs: 1,
          connectTimeoutMs: TIMEOUT_MS,
          readTimeoutMs: TIMEOUT_MS,
        },
      },
    },
  });
});

afterAll(async () => {
  await t?.close();
  await fake?.close();
  console.log(`Rerank faults:\n${figures.join('\n')}`);
});

interface Searched {
  hits: Array<{ document: { id: string }; chunk: { id: string } }>;
  degraded: Array<{ stage: string; reason: string }>;
  rerank?: { reranker: string; status: string; reason?: string };
}

async function search(query: string, extra: Record<string, unknown> = {}): Promise<Searched> {
  const r = await t.call('POST', '/v1/search', { body: { query, k: 4, cache: false, ...extra } });
  expect(r.status).toBe(200);
  return r.body as Searched;
}

const order = (r: Searched): string[] => r.hits.map((h) => h.chunk.id);

// Four words, one from each document: every document is a candidate, so there is a pool to rerank.
const QUERY = 'ferry refunds salary merger';

interface RerankFault {
  name: string;
  script: Behaviour[];
  requests: number;
  status: 'error' | 'timeout';
  reason: RegExp;
  klass: 'timeout' | 'error' | 'unavailable';
}

const FAULTS: RerankFault[] = [
  {
    name: 'no response headers past the timeout, twice',
    script: ['slow-headers', 'slow-headers'],
    requests: 2,
    status: 'error',
    reason: /time/i,
    klass: 'timeout',
  },
  {
    name: 'the body stalls past the timeout, twice',
    script: ['slow-body', 'slow-body'],
    requests: 2,
    status: 'error',
    reason: /time/i,
    klass: 'timeout',
  },
  { name: '500 twice', script: ['500', '500'], requests: 2, status: 'error', reason: /500/, klass: 'error' },
  // "503 Service Unavailable": the unavailable class.
  {
    name: '503 twice',
    script: ['503', '503'],
    requests: 2,
    status: 'error',
    reason: /503/,
    klass: 'unavailable',
  },
  {
    name: 'a body cut off mid-JSON',
    script: ['malformed'],
    requests: 1,
    status: 'error',
    reason: /JSON|invalid/i,
    klass: 'error',
  },
];

describe('a rerank service failing', () => {
  it('healthy: the service reranks the fused hits', async () => {
    fake.reset();
    const fused = await search(QUERY, { reranker: 'none' });
    const reranked = await search(QUERY);
    expect(fake.requests).toHaveLength(1);
    expect(reranked.rerank?.status).toBe('reranked');
    expect(reranked.degraded).toEqual([]);
    expect(fused.hits.length).toBeGreaterThan(1);
  });

  for (const c of FAULTS) {
    it(`${c.name}: the fused order, rerank degraded and counted; then reranked again`, async () => {
      const fused = order(await search(QUERY, { reranker: 'none' }));
      const before = await degradedTotal(t, 'rerank', c.klass);
      fake.reset(c.script);
      const { value: r, ms } = await timed(() => search(QUERY));
      expect(fake.requests).toHaveLength(c.requests);
      expect(order(r)).toEqual(fused);
      expect(r.rerank?.status).toBe(c.status);
      expect(r.degraded).toEqual([
        { stage: 'rerank', reason: expect.stringMatching(/the fused order was kept/) },
      ]);
      expect(r.degraded[0]!.reason).toMatch(c.reason);
      expect(await degradedTotal(t, 'rerank', c.klass)).toBe(before + 1);
      // Bounded: never past the stage budget (plus the rest of the pipeline).
      expect(ms).toBeLessThan(BUDGET_MS + 500);

      fake.reset();
      const { value: back, ms: backMs } = await timed(() => search(QUERY));
      expect(back.rerank?.status).toBe('reranked');
      expect(back.degraded).toEqual([]);
      expect(fake.requests).toHaveLength(1);
      figures.push(`${c.name} | ${c.requests} | ${Math.round(ms)} | ${Math.round(backMs)}`);
    });
  }

  it('a service slower than the stage budget: cut at the budget (status timeout), the fused order kept', async () => {
    // Deadlines longer than the stage budget: the budget is what stops the call.
    const slowT = await startTestServer({
      docs: HANDBOOK,
      pipeline: {
        rerank: {
          reranker: 'http',
          budgetMs: 500,
          http: { flavor: 'cohere', baseURL: fake.url, model: 'rerank-v3.5', connectTimeoutMs: 10_000 },
        },
      },
    });
    try {
      const before = await degradedTotal(slowT, 'rerank', 'timeout');
      const call = (extra: Record<string, unknown>) =>
        slowT.call('POST', '/v1/search', { body: { query: QUERY, k: 4, cache: false, ...extra } });
      const fused = order((await call({ reranker: 'none' })).body);
      fake.reset(['slow-headers']);
      const { value: r, ms } = await timed(() => call({}));
      expect(r.status).toBe(200);
      expect(order(r.body)).toEqual(fused);
      expect(r.body.rerank.status).toBe('timeout');
      expect(r.body.degraded).toEqual([
        { stage: 'rerank', reason: expect.stringMatching(/exceeded 500 ms .*the fused order was kept/) },
      ]);
      expect(await degradedTotal(slowT, 'rerank', 'timeout')).toBe(before + 1);
      expect(ms).toBeLessThan(1000);
      expect(fake.requests).toHaveLength(1);
      // The abandoned call is cancelled, not left running against the service.
      await new Promise((r) => setTimeout(r, 50));
      expect(fake.requests[0]!.clientClosed).toBe(true);
      figures.push(`slower than the 500 ms stage budget | 1 | ${Math.round(ms)} | —`);
    } finally {
      await slowT.close();
    }
  });
});

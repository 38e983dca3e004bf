import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Quarry } from '../../src/pipeline/quarry.js';
import { FakeRerankServer, fakeScore } from '../rerank/fake-rerank-server.js';

const samples = path.resolve(import.meta.dirname, '../../samples/docs');
let store: string;
let server: FakeRerankServer;

beforeAll(async () => {
  store = fs.mkdtempSync(path.join(os.tmpdir(), 'quarry-rerank-stage-'));
  const q = Quarry.open({ store });
  await q.ingest([samples]);
  q.close();
  server = await new FakeRerankServer('tei', { slowMs: 3000 }).start();
});
afterAll(async () => {
  await server.close();
  fs.rmSync(store, { recursive: true, force: true });
});

function open(rerank: Record<string, unknown> = {}): Quarry {
  return Quarry.open({
    store,
    config: {
      rerank: {
        reranker: 'http',
        pool: 20,
        http: { flavor: 'tei', baseURL: server.url, maxRetries: 0, rawScores: true },
        ...rerank,
      },
    },
  });
}

const QUERY = 'how does quarry delete a document from every index';

describe('rerank stage', () => {
  it('reranks the whole fused pool, not just the top k, and records the moves in the trace', async () => {
    server.script = [];
    const before = server.requests.length;
    const q = open();
    const fused = await q.search(QUERY, { k: 20, reranker: 'none' });
    const r = await q.search(QUERY, { k: 5, trace: true });
    expect(r.rerank).toMatchObject({ status: 'reranked', reranker: expect.stringContaining('http:tei') });
    // The reranker saw the 20-candidate pool, although only 5 results were asked for.
    const sent = server.requests.slice(before);
    expect(sent.flatMap((x) => x.body.texts as string[])).toHaveLength(20);
    // The result is the pool sorted by the reranker's scores.
    const expected = fused.hits
      .map((h) => ({ id: h.chunk.id, s: fakeScore(QUERY, h.chunk.text) }))
      .sort((a, b) => b.s - a.s)
      .slice(0, 5)
      .map((x) => x.id);
    expect(r.hits.map((h) => h.chunk.id)).toEqual(expected);
    expect(r.hits.map((h) => h.rank)).toEqual([1, 2, 3, 4, 5]);
    expect(r.hits[0]!.scores.fused).toBeDefined();
    const stage = r.trace!.stages.find((s) => s.stage === 'rerank')!;
    expect(stage.detail).toMatchObject({ status: 'reranked', pool: 20 });
    expect((stage.detail.moves as unknown[]).length).toBe(20);
    q.close();
  });

  it('keeps the fused order and says so when the reranker errors', async () => {
    const q = open();
    const fused = await q.search(QUERY, { k: 5, reranker: 'none' });
    server.script = ['500'];
    const r = await q.search(QUERY, { k: 5, trace: true });
    expect(r.rerank?.status).toBe('error');
    expect(r.rerank?.reason).toMatch(/500/);
    expect(r.hits.map((h) => h.chunk.id)).toEqual(fused.hits.map((h) => h.chunk.id));
    q.close();
  });

  it('keeps the fused order when the reranker runs past its latency budget', async () => {
    const q = open({ budgetMs: 150 });
    const fused = await q.search(QUERY, { k: 5, reranker: 'none' });
    server.script = ['slow-headers'];
    const t0 = performance.now();
    const r = await q.search(QUERY, { k: 5, trace: true });
    const elapsed = performance.now() - t0;
    expect(r.rerank?.status).toBe('timeout');
    expect(r.hits.map((h) => h.chunk.id)).toEqual(fused.hits.map((h) => h.chunk.id));
    // Returned on its budget, not after the server's 3 s stall.
    expect(elapsed).toBeLessThan(2500);
    const stage = r.trace!.stages.find((s) => s.stage === 'rerank')!;
    expect(stage.detail).toMatchObject({ status: 'timeout', budgetMs: 150 });
    q.close();
  });

  it('skips reranking when the fused top result is decisively ahead, and only then', async () => {
    const probe = open();
    const top = (await probe.search(QUERY, { k: 2, reranker: 'none' })).hits;
    probe.close();
    const gap = (top[0]!.score - top[1]!.score) / top[0]!.score;
    expect(gap).toBeGreaterThan(0);
    expect(gap).toBeLessThan(0.99);
    const eager = open({ earlyExitGap: gap * 0.99 });
    const before = server.requests.length;
    expect((await eager.search(QUERY, { k: 3 })).rerank?.status).toBe('skipped-decisive');
    expect(server.requests.length).toBe(before);
    const strict = open({ earlyExitGap: Math.min(1, gap * 1.01) });
    expect((await strict.search(QUERY, { k: 3 })).rerank?.status).toBe('reranked');
    expect(server.requests.length).toBe(before + 1);
    eager.close();
    strict.close();
  });

  it('serves a repeated query from the retrieval cache, but never a degraded one, and not after a write', async () => {
    const q = open();
    const query = 'which retrievers does hybrid search fuse';
    server.script = ['500'];
    const before = server.requests.length;
    const failed = await q.search(query, { k: 5 });
    expect(failed.rerank?.status).toBe('error');
    // `degraded` is a list of { stage, reason } (it was one string before every result carried the list).
    expect(failed.degraded).toEqual([{ stage: 'rerank', reason: expect.stringMatching(/rerank error/) }]);
    const full = await q.search(query, { k: 5 });
    expect(full.degraded).toEqual([]);
    expect(full.rerank?.status).toBe('reranked');
    expect(server.requests.length).toBe(before + 2);
    const cached = await q.search(query, { k: 5, trace: true });
    expect(cached.strategy).toBe('cache');
    expect(cached.hits.map((h) => h.chunk.id)).toEqual(full.hits.map((h) => h.chunk.id));
    expect(cached.trace!.stages.map((s) => s.stage)).toEqual(['cache']);
    expect(server.requests.length).toBe(before + 2);
    // Another caller's scope is another entry; opting out skips the cache.
    await q.search(query, { k: 5, scope: { groups: ['ops'] } });
    await q.search(query, { k: 5, cache: false });
    expect(server.requests.length).toBe(before + 4);
    q.close();
  });

  it('refuses a reranker that is chosen but not configured, naming the setting', async () => {
    const q = Quarry.open({ store, config: { rerank: { reranker: 'onnx' } } });
    await expect(q.search(QUERY)).rejects.toThrow(/rerank\.onnx/);
    q.close();
  });
});

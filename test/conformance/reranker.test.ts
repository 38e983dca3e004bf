/**
 * Every reranker passes the same suite: the HTTP one against a real server speaking Cohere's wire format,
 * learning-to-rank over a real store's statistics, and a reranker a library user writes. The user's object
 * is then shown to decide the order of results.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createQuarry, type Quarry, type Reranker, type RerankRequest } from '../../src/index.js';
import { ltrDepsFor } from '../../src/pipeline/rerank-deps.js';
import { createHttpReranker } from '../../src/rerank/http-reranker.js';
import { createLtrReranker } from '../../src/rerank/ltr/ltr-reranker.js';
import { defaultLtrModel } from '../../src/rerank/ltr/model.js';
import { FakeRerankServer } from '../rerank/fake-rerank-server.js';
import { CORPUS, openWith } from './corpus.js';
import { rerankerConformance } from './reranker.js';

let server: FakeRerankServer;
let ltrStore: { quarry: Quarry; dir: string };
beforeAll(async () => {
  server = await new FakeRerankServer('cohere').start();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'quarry-ltr-conf-'));
  const quarry = await createQuarry({ store: dir });
  await quarry.addDocuments(CORPUS);
  ltrStore = { quarry, dir };
});
afterAll(async () => {
  await server.close();
  ltrStore.quarry.close();
  fs.rmSync(ltrStore.dir, { recursive: true, force: true });
});

const http = (baseURL: () => string) => () =>
  createHttpReranker({
    flavor: 'cohere',
    baseURL: baseURL(),
    apiKey: 'k',
    model: 'rerank-v3.5',
    maxRetries: 0,
  });

rerankerConformance('HTTP /rerank (Cohere wire format)', {
  make: http(() => server.url),
  failing: http(() => 'http://127.0.0.1:9'),
});

rerankerConformance('learning-to-rank', {
  make: () => createLtrReranker(defaultLtrModel(), ltrDepsFor(ltrStore.quarry), { name: 'default' }),
});

/** What a library user writes: scores by how many query words a passage contains. */
class WordOverlapReranker implements Reranker {
  readonly id = 'user:word-overlap';
  async rerank({ query, hits, signal }: RerankRequest) {
    signal?.throwIfAborted();
    const words = new Set(query.toLowerCase().split(/\W+/).filter(Boolean));
    return hits.map((h, index) => ({
      index,
      score: h.chunk.text
        .toLowerCase()
        .split(/\W+/)
        .filter((w) => words.has(w)).length,
    }));
  }
}

rerankerConformance('user-written object', {
  make: () => new WordOverlapReranker(),
  failing: () => ({ id: 'user:broken', rerank: async () => Promise.reject(new Error('model server down')) }),
});

describe('a user reranker decides the order', () => {
  it('reversing the fused order reverses the results', async () => {
    const reverse: Reranker = {
      id: 'user:reverse',
      rerank: async ({ hits }) => hits.map((_, index) => ({ index, score: index })),
    };
    const q = openWith({ reranker: reverse }, { rerank: { pool: 4 } });
    try {
      await q.quarry.addDocuments(CORPUS);
      const fused = await q.quarry.search('store crash transaction lunch keys', { reranker: 'none', k: 3 });
      expect(fused.hits.length).toBe(3);
      const reranked = await q.quarry.search('store crash transaction lunch keys', { k: 3 });
      expect(reranked.hits.map((h) => h.chunk.id)).toEqual(fused.hits.map((h) => h.chunk.id).reverse());
      expect(reranked.rerank).toMatchObject({ reranker: 'user:reverse', status: 'reranked' });
    } finally {
      q.close();
    }
  });
});

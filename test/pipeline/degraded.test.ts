/**
 * Nothing silent: a stage that runs in a reduced form says so on the result (`degraded: [{ stage, reason }]`)
 * and in the trace, instead of quietly answering with less. Real stores, real files; the embedding, rerank
 * and LLM services are fakes speaking their real HTTP wire protocols.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Quarry } from '../../src/pipeline/quarry.js';
import { FakeOpenAIServer } from '../embed/providers/fake-openai-server.js';
import type { FakeLlmServer } from '../generate/llm/fake-openai-chat-server.js';
import { startFakeOpenAIChatServer } from '../generate/llm/fake-openai-chat-server.js';

const SAMPLES = path.resolve(import.meta.dirname, '../../samples/docs');
const dirs: string[] = [];
let embeddings: FakeOpenAIServer;
let llm: FakeLlmServer;

beforeAll(async () => {
  embeddings = await new FakeOpenAIServer({ dim: 8 }).start();
  llm = await startFakeOpenAIChatServer();
});

afterAll(async () => {
  await embeddings.close();
  await llm.close();
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
});

function tempDir(prefix: string): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), `quarry-${prefix}-`));
  dirs.push(d);
  return d;
}

/** Two short documents: far too few chunks to train the built-in dense embedder. */
async function tinyStore(): Promise<string> {
  const store = tempDir('tiny');
  const docs = tempDir('tiny-docs');
  fs.writeFileSync(path.join(docs, 'a.md'), '# Comets\n\nA zorblaxian comet crossed the sky.\n');
  fs.writeFileSync(path.join(docs, 'b.md'), '# Tides\n\nTides follow the moon.\n');
  const q = Quarry.open({ store });
  await q.ingest([docs]);
  q.close();
  return store;
}

describe('degraded stages are reported, never silent', () => {
  it('dense asked for on a store without a dense index: BM25 answers and the result says so', async () => {
    const q = Quarry.open({ store: await tinyStore() });
    for (const retriever of ['dense', 'hybrid'] as const) {
      const r = await q.search('zorblaxian comet', { retriever, trace: true });
      expect(r.hits.length).toBeGreaterThan(0);
      expect(r.hits[0]!.scores).toHaveProperty('bm25');
      expect(r.degraded).toEqual([
        { stage: 'retrieve.dense', reason: expect.stringMatching(/did not run .*BM25 answered alone/) },
      ]);
      expect(r.trace!.degraded).toEqual(r.degraded);
      // Not cached: the next call runs (and reports) again.
      const again = await q.search('zorblaxian comet', { retriever });
      expect(again.strategy).not.toBe('cache');
      expect(again.degraded).toHaveLength(1);
    }
    // BM25, as asked: nothing degraded, no trace entry.
    const plain = await q.search('zorblaxian comet', { retriever: 'bm25', trace: true });
    expect(plain.degraded).toEqual([]);
    expect(plain.trace!.degraded).toBeUndefined();
    q.close();
  });

  it('an embedding service that fails at query time degrades dense to BM25, named on the result', async () => {
    const store = tempDir('remote');
    const config = {
      retrieval: {
        retriever: 'hybrid' as const,
        dense: {
          models: [
            {
              name: 'remote',
              provider: 'openai' as const,
              baseURL: embeddings.url,
              model: 'emb',
              maxRetries: 0,
            },
          ],
        },
      },
    };
    embeddings.reset();
    const q = Quarry.open({ store, config });
    await q.ingest([SAMPLES]);
    const healthy = await q.search('how are chunks sized', { cache: false });
    expect(healthy.degraded).toEqual([]);
    expect(healthy.hits[0]!.scores).toHaveProperty('dense');

    embeddings.reset(['500', '500', '500']);
    const failed = await q.search('which retrievers does hybrid search fuse', { trace: true });
    expect(failed.hits.length).toBeGreaterThan(0);
    expect(failed.hits.every((h) => h.scores.dense === undefined)).toBe(true);
    expect(failed.degraded).toEqual([
      { stage: 'retrieve.dense', reason: expect.stringMatching(/"remote" did not run .*500/) },
    ]);
    expect(failed.trace!.degraded).toEqual(failed.degraded);
    q.close();
  });

  it('a reranker that cannot be reached keeps the fused order and says which reranker failed', async () => {
    // The HTTP reranker against a port nothing listens on: a real connection failure.
    const q = Quarry.open({
      store: await tinyStore(),
      config: {
        rerank: { reranker: 'http', http: { flavor: 'tei', baseURL: 'http://127.0.0.1:9', maxRetries: 0 } },
      },
    });
    // Both documents match, so there is a pool of two to rerank.
    const r = await q.search('zorblaxian tides', { trace: true });
    expect(r.rerank?.status).toBe('error');
    expect(r.hits.length).toBeGreaterThan(0);
    expect(r.degraded).toEqual([
      { stage: 'rerank', reason: expect.stringMatching(/rerank error: reranker "/) },
    ]);
    expect(r.trace!.degraded).toEqual(r.degraded);
    q.close();
  });

  it('an LLM that fails: the extractive answer is marked degraded, and not cached', async () => {
    const store = tempDir('llm');
    const seed = Quarry.open({ store });
    await seed.ingest([SAMPLES]);
    seed.close();
    const q = Quarry.open({
      store,
      config: {
        llm: { provider: 'openai', baseURL: llm.url, model: 'gpt-4o-mini', maxTokens: 200, maxRetries: 0 },
      },
    });
    llm.reset();
    llm.queue({ kind: 'status', status: 500, message: 'boom' });
    const a = await q.ask('What is the default chunk size?', { trace: true });
    expect(a.answerer).toBe('extractive');
    expect(a.degraded).toEqual([
      { stage: 'answer.generate', reason: expect.stringMatching(/openai:gpt-4o-mini failed .*500/) },
    ]);
    expect(a.trace!.degraded).toEqual(a.degraded);
    const healthy = await q.ask('What is the default chunk size?');
    expect(healthy.cached).toBeUndefined();
    q.close();
  });
});

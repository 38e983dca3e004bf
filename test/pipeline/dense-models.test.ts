import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { threadId as mainThreadId } from 'node:worker_threads';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { QuarryConfigInput } from '../../src/config/config.js';
import type { OnnxEmbedder } from '../../src/embed/providers/onnx.js';
import { QuarryError } from '../../src/errors.js';
import { embeddingText } from '../../src/indexes/dense/dense-index.js';
import type { ProviderDenseIndex } from '../../src/indexes/dense/provider-dense-index.js';
import { Quarry } from '../../src/pipeline/quarry.js';
import type { StageReport } from '../../src/types.js';
import { FakeOpenAIServer, fakeVector } from '../embed/providers/fake-openai-server.js';
import { expectedVector, VOCAB, writeTinyModel } from '../embed/providers/onnx-fixture.js';

const tok = (t: string): number => (VOCAB as readonly string[]).indexOf(t);

const dirs: string[] = [];
let server: FakeOpenAIServer;

beforeAll(async () => {
  server = await new FakeOpenAIServer({ dim: 8 }).start();
});
afterAll(async () => {
  await server.close();
});
afterEach(() => {
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

function tmp(): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'quarry-dense-models-'));
  dirs.push(d);
  return d;
}

const DOCS: Record<string, string> = {
  'storage.md':
    '# Storage\n\nEvery ingest batch is written in one transaction.\n\nThe store uses SQLite in WAL mode.\n',
  'chunking.md':
    '# Chunking\n\nChunks follow headings and paragraphs.\n\nThe default chunk size is 256 tokens.\n',
  'fusion.md':
    '# Fusion\n\nHybrid retrieval fuses BM25 with dense vectors.\n\nMin-max fusion weighs each list.\n',
  'deletes.md': '# Deletes\n\nA deleted document is never retrievable again.\n',
};

function corpus(): string {
  const dir = path.join(tmp(), 'docs');
  fs.mkdirSync(dir);
  for (const [name, text] of Object.entries(DOCS)) fs.writeFileSync(path.join(dir, name), text);
  return dir;
}

const remote = (name: string, model: string, extra: Record<string, unknown> = {}) => ({
  name,
  provider: 'openai' as const,
  baseURL: server.url,
  model,
  batchSize: 3,
  maxRetries: 0,
  ...extra,
});

function config(models: unknown[], extra: Record<string, unknown> = {}): QuarryConfigInput {
  return { retrieval: { retriever: 'hybrid', dense: { models, ...extra } } } as QuarryConfigInput;
}

function stage(stages: StageReport[], name: string): Record<string, unknown> {
  const s = stages.find((x) => x.stage === name);
  expect(s, name).toBeDefined();
  return s!.detail;
}

function providerIndex(q: Quarry, name: string): ProviderDenseIndex {
  const m = q.denseModels.get(name);
  if (m === undefined || m.provider === 'builtin') throw new Error(`no provider model ${name}`);
  return m.index;
}

const cosine = (a: Float32Array, b: Float32Array): number => {
  let d = 0;
  for (let i = 0; i < a.length; i++) d += a[i]! * b[i]!;
  return d / (Math.hypot(...a) * Math.hypot(...b));
};

async function rejection(p: Promise<unknown>): Promise<QuarryError> {
  const e = await p.then(
    () => undefined,
    (x: unknown) => x,
  );
  expect(e).toBeInstanceOf(QuarryError);
  return e as QuarryError;
}

describe('an OpenAI-compatible embedder as the dense model', () => {
  it('ingests, syncs in batches and searches hybrid with vectors from the endpoint', async () => {
    const store = tmp();
    const docs = corpus();
    server.reset();
    const q = Quarry.open({ store, config: config([remote('remote', 'fake-embed')]) });
    await q.ingest([docs]);
    const chunks = [...q.store.iterateChunks()];
    const index = providerIndex(q, 'remote');
    expect(index.size).toBe(chunks.length);
    expect(index.current).toBe(true);
    // Requests of at most 3 texts (the configured batch size), covering every chunk once.
    expect(server.requests.every((r) => r.body.input!.length <= 3)).toBe(true);
    expect(server.requests.flatMap((r) => r.body.input).sort()).toEqual(
      chunks.map((c) => embeddingText(c)).sort(),
    );

    server.reset();
    const r = await q.search('dense vectors fused with BM25', { trace: true, k: 5 });
    const stages = r.trace!.stages;
    // The query went to the endpoint, as a query.
    expect(server.requests).toHaveLength(1);
    const normalized = String(stage(stages, 'query.analyze').normalized);
    expect(server.requests[0]!.body.input).toEqual([normalized]);
    // Dense candidates are exactly the chunks nearest to the endpoint's query vector.
    const dense = stage(stages, 'retrieve.dense');
    expect(dense).toMatchObject({ model: 'openai:fake-embed', name: 'remote', provider: 'openai' });
    const qv = fakeVector(normalized, 8);
    const expected = chunks
      .map((c) => ({ id: c.id, s: cosine(qv, fakeVector(embeddingText(c), 8)) }))
      .sort((a, b) => b.s - a.s)
      .map((x) => x.id);
    const got = (dense.candidates as Array<{ chunkId: number }>).map((c) => c.chunkId);
    expect(got).toEqual(expected.slice(0, got.length));
    expect(got.length).toBe(chunks.length);
    const fused = stage(stages, 'fuse').candidates as Array<{ sources: Record<string, unknown> }>;
    expect(fused.some((c) => c.sources.bm25 !== undefined && c.sources.dense !== undefined)).toBe(true);
    expect(r.hits[0]!.chunk.text).toContain('dense vectors');

    // Re-ingesting unchanged files embeds nothing; a changed file sends only its new chunks.
    server.reset();
    await q.ingest([docs]);
    expect(server.requests).toHaveLength(0);
    fs.writeFileSync(path.join(docs, 'deletes.md'), '# Deletes\n\nDeleted documents leave every index.\n');
    await q.ingest([docs]);
    const sent = server.requests.flatMap((r) => r.body.input);
    expect(sent).toEqual([expect.stringContaining('Deleted documents leave every index.')]);
    expect(index.size).toBe([...q.store.iterateChunks()].length);
    q.close();

    // A rebuilt index (artifact removed) is served by the embedding cache in the store directory.
    fs.rmSync(path.join(store, 'artifacts', 'dense-remote.snapshot'));
    const reopened = Quarry.open({ store, config: config([remote('remote', 'fake-embed')]) });
    server.reset();
    const [report] = await reopened.syncDense();
    // One text goes out so a fresh client learns the dimension; every other vector is cached.
    expect(report).toMatchObject({ embedded: 1, cached: chunks.length - 1 });
    reopened.close();
  });

  it('embeds the query while BM25 runs, and says so in the trace', async () => {
    const slow = await new FakeOpenAIServer({ dim: 8, delayMs: 400 }).start();
    try {
      const q = Quarry.open({
        store: tmp(),
        config: config([{ ...remote('remote', 'fake-embed'), baseURL: slow.url }]),
      });
      await q.ingest([corpus()]);
      const r = await q.search('one transaction per ingest batch', { trace: true });
      const stages = r.trace!.stages;
      const bm25 = r.trace!.stages.find((s) => s.stage === 'retrieve.bm25')!;
      const embed = stages.find((s) => s.stage === 'retrieve.prepare' && s.detail.queryEmbedding)!;
      expect(embed.detail).toMatchObject({ queryEmbedding: 'remote', model: 'openai:fake-embed', ok: true });
      // The embedding started before BM25 and ended after it: BM25 ran while the request was in flight.
      expect(embed.offsetMs).toBeLessThanOrEqual(bm25.offsetMs);
      expect(embed.offsetMs + embed.durationMs).toBeGreaterThanOrEqual(bm25.offsetMs + bm25.durationMs);
      const timing = stage(stages, 'retrieve.dense').embed as { concurrentMs: number; waitedMs: number };
      expect(timing.concurrentMs).toBeGreaterThan(0);
      expect(timing.waitedMs).toBeGreaterThan(0);
      expect(r.hits[0]!.chunk.text).toContain('one transaction');

      // Past the retrieval share of the request budget (15 % of 1 s < 400 ms) dense is dropped, not awaited.
      const budgeted = await q.search('the store uses SQLite', { trace: true, budgetMs: 1000 });
      const skipped = stage(budgeted.trace!.stages, 'retrieve.dense');
      expect(skipped.fallback).toBe('bm25');
      expect(String(skipped.skipped)).toMatch(/retrieval budget/);
      expect(budgeted.hits[0]!.chunk.text).toContain('SQLite');

      // The caller's own cancellation is not a fallback: the search fails with its reason.
      const ac = new AbortController();
      const cancelled = q.search('chunks follow headings', { signal: ac.signal });
      setTimeout(() => ac.abort(new Error('cancelled by the caller')), 50);
      await expect(cancelled).rejects.toThrow('cancelled by the caller');
      q.close();
    } finally {
      await slow.close();
    }
  });

  it('falls back to BM25 when the endpoint fails, with a clear error for sync and the reason in the trace', async () => {
    const store = tmp();
    const q = Quarry.open({ store, config: config([remote('remote', 'fake-embed')]) });
    server.reset(Array(50).fill('500'));
    const e = await rejection(q.ingest([corpus()]));
    expect(e.code).toBe('EMBEDDING_FAILED');
    expect(e.message).toMatch(/documents were written \(4 added/);
    expect(e.message).toContain('HTTP 500');
    expect(e.message).toContain('openai:fake-embed');

    const r = await q.search('one transaction per ingest batch', { trace: true });
    expect(r.hits[0]!.chunk.text).toContain('one transaction');
    const dense = stage(r.trace!.stages, 'retrieve.dense');
    expect(dense.fallback).toBe('bm25');
    expect(String(dense.skipped)).toMatch(/query embedding failed: .*HTTP 500/);
    expect(Object.keys(r.hits[0]!.scores)).toEqual(['bm25']);

    // The service recovers: the index catches up and dense takes part again.
    server.reset();
    const [report] = await q.syncDense();
    expect(report!.size).toBe(q.stats().chunks);
    const again = await q.search('one transaction per ingest batch', { trace: true });
    expect(stage(again.trace!.stages, 'retrieve.dense').skipped).toBeUndefined();
    expect((stage(again.trace!.stages, 'retrieve.dense').candidates as unknown[]).length).toBeGreaterThan(0);
    q.close();
  });

  it('searchSync does not block on a remote model: dense is skipped unless the vector is given', async () => {
    const q = Quarry.open({ store: tmp(), config: config([remote('remote', 'fake-embed')]) });
    await q.ingest([corpus()]);
    server.reset();
    const r = q.searchSync('min-max fusion', { trace: true });
    expect(server.requests).toHaveLength(0);
    expect(String(stage(r.trace!.stages, 'retrieve.prepare').dense)).toMatch(/skipped: .*asynchronously/);
    expect(r.trace!.stages.some((s) => s.stage === 'retrieve.dense')).toBe(false);
    expect(r.hits.length).toBeGreaterThan(0);

    const vectors = await q.embedQueries(['min-max fusion', 'chunk size']);
    expect(server.requests).toHaveLength(1); // one batched call for both queries
    const withVector = q.searchSync('min-max fusion', { trace: true, queryVectors: vectors });
    expect(stage(withVector.trace!.stages, 'retrieve.dense')).toMatchObject({ name: 'remote' });
    q.close();
  });
});

describe('a local ONNX model as the dense model', () => {
  it('embeds chunks and queries in worker threads, never on the main thread', async () => {
    const root = tmp();
    const modelDir = path.join(root, 'tiny');
    fs.mkdirSync(modelDir);
    const matrix = writeTinyModel(modelDir);
    const docs = path.join(root, 'docs');
    fs.mkdirSync(docs);
    fs.writeFileSync(
      path.join(docs, 'fox.md'),
      '# The fox\n\nThe quick brown fox jumps over the lazy dog.\n',
    );
    fs.writeFileSync(path.join(docs, 'cat.md'), '# A cat\n\nA cat runs. Hello cat.\n');
    const q = Quarry.open({
      store: path.join(root, 'store'),
      config: config([{ name: 'local', provider: 'onnx', dir: modelDir, batchSize: 2 }]),
    });
    await q.ingest([docs]);
    const index = providerIndex(q, 'local');
    expect(index.size).toBe(q.stats().chunks);
    expect(index.modelId).toMatch(/^onnx:[0-9a-f]{12}$/);
    // The query vector is the model's: the mean of its tokens' rows, normalized.
    const qv = (await q.embedQueries(['quick brown fox'])).get('quick brown fox')!;
    const want = expectedVector(
      matrix,
      ['[CLS]', 'quick', 'brown', 'fox', '[SEP]'].map((t) => tok(t)),
    );
    for (let i = 0; i < want.length; i++) expect(qv[i]).toBeCloseTo(want[i]!, 5);
    const r = await q.search('quick brown fox', { trace: true, retriever: 'dense' });
    const dense = stage(r.trace!.stages, 'retrieve.dense');
    expect(dense).toMatchObject({ name: 'local', provider: 'onnx', model: index.modelId });
    // Ranked by cosine against the vectors the model gave each chunk.
    const ids = [...q.store.iterateChunks()].map((c) => c.id);
    const stored = index.vectorsOf(ids);
    const best = [...stored].sort((a, b) => cosine(qv, b[1]) - cosine(qv, a[1]))[0]![0];
    expect((dense.candidates as Array<{ chunkId: number }>)[0]!.chunkId).toBe(best);
    expect(r.hits[0]!.chunk.id).toBe(best);
    const stats = (index.providerEmbedder as OnnxEmbedder).stats();
    expect(stats.batches).toBeGreaterThan(0);
    expect(stats.threadIds.length).toBeGreaterThan(0);
    expect(stats.threadIds).not.toContain(mainThreadId);
    await q.denseModels.close();
    q.close();
  });
});

describe('several dense models', () => {
  it('refuses to reopen an index with another model under the same name; a new name builds beside it', async () => {
    const store = tmp();
    const docs = corpus();
    const q = Quarry.open({ store, config: config([remote('main', 'fake-a')]) });
    await q.ingest([docs]);
    q.close();
    let e: unknown;
    try {
      Quarry.open({ store, config: config([remote('main', 'fake-b')]) });
    } catch (x) {
      e = x;
    }
    expect(e).toBeInstanceOf(QuarryError);
    expect((e as QuarryError).code).toBe('EMBEDDING_MODEL_MISMATCH');
    expect((e as QuarryError).message).toContain('"openai:fake-a"');
    expect((e as QuarryError).message).toContain('"openai:fake-b"');
    expect((e as QuarryError).message).toMatch(/new name/);

    const side = Quarry.open({ store, config: config([remote('main', 'fake-a'), remote('next', 'fake-b')]) });
    server.reset();
    await side.syncDense();
    expect(new Set(server.requests.map((r) => r.body.model))).toEqual(new Set(['fake-b']));
    expect(providerIndex(side, 'main').size).toBe(providerIndex(side, 'next').size);
    expect(fs.readdirSync(path.join(store, 'artifacts'))).toEqual(
      expect.arrayContaining(['dense-main.snapshot', 'dense-next.snapshot']),
    );
    side.close();
  });

  it('routes short queries to one model and long ones to the other, and shows the choice', async () => {
    const q = Quarry.open({
      store: tmp(),
      config: config([remote('large', 'large-embed'), remote('small', 'small-embed', { dimensions: 4 })], {
        router: [{ maxQueryWords: 3, model: 'small' }],
      }),
    });
    await q.ingest([corpus()]);
    expect(providerIndex(q, 'small').dimension).toBe(4);
    expect(providerIndex(q, 'large').dimension).toBe(8);

    server.reset();
    const short = await q.search('chunk size', { trace: true });
    const long = await q.search('how does hybrid retrieval fuse the two lists', { trace: true });
    expect(server.requests.map((r) => r.body.model)).toEqual(['small-embed', 'large-embed']);
    expect(stage(short.trace!.stages, 'retrieve.dense')).toMatchObject({
      name: 'small',
      model: 'openai:small-embed',
      router: { model: 'small', route: 0, words: 2 },
    });
    expect(stage(long.trace!.stages, 'retrieve.dense')).toMatchObject({
      name: 'large',
      model: 'openai:large-embed',
      router: { model: 'large', route: -1, words: 8 },
    });
    q.close();
  });

  it('keeps the built-in model beside a remote one, each query searching the index the router picks', async () => {
    const samples = path.resolve(import.meta.dirname, '../../samples/docs');
    const store = tmp();
    const q = Quarry.open({
      store,
      config: config([{ name: 'builtin', provider: 'builtin' }, remote('remote', 'fake-embed')], {
        router: [{ maxQueryChars: 20, model: 'remote' }],
      }),
    });
    await q.ingest([samples]);
    expect(providerIndex(q, 'remote').size).toBe(q.stats().chunks);
    server.reset();
    const short = await q.search('chunk size', { trace: true });
    const long = await q.search('what happens when a process is killed mid-ingest', { trace: true });
    expect(server.requests.map((r) => r.body.input)).toEqual([['chunk size']]);
    expect(stage(short.trace!.stages, 'retrieve.dense')).toMatchObject({
      name: 'remote',
      provider: 'openai',
    });
    const builtin = stage(long.trace!.stages, 'retrieve.dense');
    expect(builtin).toMatchObject({ name: 'builtin', provider: 'builtin', router: { route: -1 } });
    expect(String(builtin.model)).toMatch(/^local-lsa/);
    expect((builtin.candidates as unknown[]).length).toBeGreaterThan(0);
    // The built-in index keeps its own artifacts, so stores built before several models existed still load.
    expect(fs.readdirSync(path.join(store, 'artifacts'))).toEqual(
      expect.arrayContaining(['dense.snapshot', 'local-embedder.model', 'dense-remote.snapshot']),
    );
    q.close();
  });

  it('a deleted document leaves every dense index at once, and stays gone after reopening', async () => {
    const store = tmp();
    const docs = corpus();
    const cfg = config([remote('a', 'fake-a'), remote('b', 'fake-b', { dimensions: 6 })]);
    const q = Quarry.open({ store, config: cfg });
    await q.ingest([docs]);
    const doc = q.listDocuments().find((d) => d.meta.source.endsWith('deletes.md'))!;
    const chunks = [...q.store.iterateChunks()].filter((c) => c.docId === doc.id);
    expect(chunks.length).toBeGreaterThan(0);
    const ids = chunks.map((c) => c.id);
    for (const name of ['a', 'b']) expect(providerIndex(q, name).vectorsOf(ids).size).toBe(ids.length);

    server.reset();
    expect(q.deleteDocuments([doc.id])).toEqual([doc.id]);
    expect(server.requests).toHaveLength(0); // deleting needs no embedding
    for (const name of ['a', 'b']) {
      const index = providerIndex(q, name);
      expect(index.vectorsOf(ids).size).toBe(0);
      expect(index.current).toBe(true);
      // Even the chunk's own vector does not find it.
      const dim = index.dimension;
      for (const c of chunks) {
        const hits = index.search(fakeVector(embeddingText(c), dim), 100);
        expect(hits.map((h) => h.chunkId)).not.toContain(c.id);
      }
    }
    const r = await q.search('deleted document never retrievable', { retriever: 'dense', k: 20 });
    expect(r.hits.map((h) => h.chunk.docId)).not.toContain(doc.id);
    q.close();

    const reopened = Quarry.open({ store, config: cfg });
    for (const name of ['a', 'b']) {
      expect(providerIndex(reopened, name).current).toBe(true);
      expect(providerIndex(reopened, name).vectorsOf(ids).size).toBe(0);
    }
    reopened.close();
  });

  it('rejects invalid model lists and routes to unknown models', () => {
    const open = (dense: Record<string, unknown>) => () =>
      Quarry.open({ store: tmp(), config: { retrieval: { dense } } as QuarryConfigInput });
    expect(open({ models: [remote('x', 'm'), remote('x', 'n')] })).toThrow(/duplicate model name "x"/);
    expect(open({ models: [remote('x', 'm')], router: [{ model: 'y' }] })).toThrow(/no model named "y"/);
    expect(open({ models: [{ name: 'bad/name', provider: 'builtin' }] })).toThrow(QuarryError);
  });
});

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { SqliteEmbeddingCache } from '../../../src/embed/cache.js';
import { createOpenAIEmbedder } from '../../../src/embed/providers/openai.js';
import { QuarryError } from '../../../src/errors.js';
import { embeddingText } from '../../../src/indexes/dense/dense-index.js';
import { ProviderDenseIndex } from '../../../src/indexes/dense/provider-dense-index.js';
import { SqliteStore } from '../../../src/store/sqlite/sqlite-store.js';
import type { DocumentDraft } from '../../../src/types.js';
import { FakeOpenAIServer, fakeVector } from '../../embed/providers/fake-openai-server.js';

const SETTINGS = { analyzer: { stemmer: 'porter' }, fields: 'flat' as const };
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
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'quarry-pdense-'));
  dirs.push(d);
  return d;
}

function draft(id: string, parts: string[]): DocumentDraft {
  const text = parts.join(' ');
  let at = 0;
  const chunks = parts.map((p, ordinal) => {
    const start = text.indexOf(p, at);
    at = start + p.length;
    return { ordinal, section: 0, start, end: at, text: p, tokenCount: p.split(' ').length };
  });
  return {
    id,
    hash: `h-${id}-${text}`,
    text,
    meta: {
      source: `${id}.md`,
      title: id,
      doc_type: 'text',
      tags: [],
      access_groups: [],
      access_users: [],
      fields: {},
    },
    sections: [{ ordinal: 0, path: ['Top'], start: 0, end: text.length }],
    chunks,
  };
}

const DOCS = [
  draft('a', ['alpha one', 'alpha two', 'alpha three']),
  draft('b', ['beta one', 'beta two']),
  draft('c', ['gamma one', 'gamma two', 'gamma three', 'gamma four']),
];

function openIndex(
  store: SqliteStore,
  opts: { model?: string; expected?: boolean; cache?: SqliteEmbeddingCache; batch?: number } = {},
) {
  const model = opts.model ?? 'fake-embed';
  return new ProviderDenseIndex(store, {
    name: 'remote',
    load: async () => createOpenAIEmbedder({ baseURL: server.url, model, batchSize: 3, maxRetries: 0 }),
    ...(opts.expected === false ? {} : { expectedModelId: `openai:${model}` }),
    ...(opts.cache === undefined ? {} : { cache: () => opts.cache }),
    syncBatchSize: opts.batch ?? 5,
  });
}

function unit(v: Float32Array): Float32Array {
  const n = Math.hypot(...v);
  return v.map((x) => x / n);
}

async function rejection(p: Promise<unknown>): Promise<QuarryError> {
  const e = await p.then(
    () => undefined,
    (x: unknown) => x,
  );
  expect(e).toBeInstanceOf(QuarryError);
  return e as QuarryError;
}

describe('ProviderDenseIndex', () => {
  it('embeds every chunk in batches through the provider and finds a chunk by its own vector', async () => {
    const store = SqliteStore.open(tmp(), { settings: SETTINGS });
    store.write({ upserts: DOCS, deletes: [] });
    const index = openIndex(store);
    index.open();
    server.reset();
    const report = await index.sync();
    const chunks = [...store.iterateChunks()];
    expect(report).toMatchObject({ model: 'remote', modelId: 'openai:fake-embed', embedded: 9, cached: 0 });
    expect(index.size).toBe(9);
    expect(index.current).toBe(true);
    // Sync hands 5 chunks per call; the provider splits each into requests of at most 3 texts.
    const sizes = server.requests.map((r) => r.body.input!.length);
    expect(sizes).toEqual([3, 2, 3, 1]);
    expect(server.requests.flatMap((r) => r.body.input).sort()).toEqual(
      chunks.map((c) => embeddingText(c)).sort(),
    );
    // The stored vectors are the provider's (normalized) vectors of each chunk's text.
    const stored = index.vectorsOf(chunks.map((c) => c.id));
    for (const c of chunks) {
      const want = unit(fakeVector(embeddingText(c), 8));
      const got = stored.get(c.id)!;
      for (let i = 0; i < 8; i++) expect(got[i]).toBeCloseTo(want[i]!, 5);
    }
    const target = chunks[4]!;
    const hits = index.search(fakeVector(embeddingText(target), 8), 3);
    expect(hits[0]!.chunkId).toBe(target.id);
    expect(hits[0]!.score).toBeCloseTo(1, 5);
    await index.close();
    store.close();
  });

  it('persists with the model id and store version; a reopened index needs no embedding', async () => {
    const dir = tmp();
    const store = SqliteStore.open(dir, { settings: SETTINGS });
    store.write({ upserts: DOCS, deletes: [] });
    const first = openIndex(store);
    await first.sync();
    await first.close();
    expect(fs.existsSync(path.join(dir, 'artifacts', 'dense-remote.snapshot'))).toBe(true);

    const again = openIndex(store);
    again.open();
    expect(again.current).toBe(true);
    expect(again.size).toBe(9);
    expect(again.modelId).toBe('openai:fake-embed');
    expect(again.dimension).toBe(8);
    server.reset();
    const report = await again.sync();
    expect(report.embedded).toBe(0);
    expect(server.requests).toHaveLength(0);
    await again.close();
    store.close();
  });

  it('drops vectors of deleted chunks at once, and prunes deletes made by another writer on sync', async () => {
    const dir = tmp();
    const store = SqliteStore.open(dir, { settings: SETTINGS });
    store.write({ upserts: DOCS, deletes: [] });
    const index = openIndex(store);
    await index.sync();
    const aChunks = [...store.iterateChunks()].filter((c) => c.docId === 'a');
    const outcome = store.write({ upserts: [], deletes: ['a'] });
    index.apply(outcome);
    // No embedding needed for a delete: the index is current again and holds nothing of "a".
    expect(index.current).toBe(true);
    expect(index.size).toBe(6);
    for (const c of aChunks) {
      const hits = index.search(fakeVector(embeddingText(c), 8), 9);
      expect(hits.map((h) => h.chunkId)).not.toContain(c.id);
    }
    index.persist();
    await index.close();

    // Another writer deletes "b" without telling this index: sync prunes it, without any request.
    const bChunks = [...store.iterateChunks()].filter((c) => c.docId === 'b').map((c) => c.id);
    store.write({ upserts: [], deletes: ['b'] });
    const reopened = openIndex(store);
    reopened.open();
    expect(reopened.current).toBe(false);
    expect(reopened.vectorsOf(bChunks).size).toBe(2);
    server.reset();
    const report = await reopened.sync();
    expect(report).toMatchObject({ removed: 2, embedded: 0 });
    expect(server.requests).toHaveLength(0);
    expect(reopened.vectorsOf(bChunks).size).toBe(0);
    expect(reopened.size).toBe(4);
    await reopened.close();
    store.close();
  });

  it('serves unchanged text from the embedding cache when the index is rebuilt', async () => {
    const dir = tmp();
    const store = SqliteStore.open(dir, { settings: SETTINGS });
    store.write({ upserts: DOCS, deletes: [] });
    const cache = new SqliteEmbeddingCache(path.join(dir, 'embedding-cache.sqlite'));
    const first = openIndex(store, { cache });
    await first.sync();
    await first.close();
    fs.rmSync(path.join(dir, 'artifacts', 'dense-remote.snapshot'));

    const rebuilt = openIndex(store, { cache });
    server.reset();
    const report = await rebuilt.sync();
    // A fresh client does not know its dimension yet: one text goes out to learn it, the rest are cached.
    expect(report).toMatchObject({ embedded: 1, cached: 8 });
    expect(server.requests.map((r) => r.body.input!.length)).toEqual([1]);
    expect(rebuilt.size).toBe(9);
    server.reset();
    // A changed document: only its new chunks reach the provider.
    const out = store.write({ upserts: [draft('b', ['beta one', 'beta changed'])], deletes: [] });
    rebuilt.apply(out);
    const next = await rebuilt.sync();
    expect(next).toMatchObject({ embedded: 1, cached: 1 });
    expect(server.requests.flatMap((r) => r.body.input)).toEqual([expect.stringContaining('beta changed')]);
    await rebuilt.close();
    await cache.close();
    store.close();
  });

  it('refuses to open, sync or search with another model under the same name', async () => {
    const dir = tmp();
    const store = SqliteStore.open(dir, { settings: SETTINGS });
    store.write({ upserts: DOCS, deletes: [] });
    const built = openIndex(store);
    await built.sync();
    await built.close();

    const other = openIndex(store, { model: 'other-embed' });
    const e = (() => {
      try {
        other.open();
      } catch (x) {
        return x as QuarryError;
      }
      return undefined;
    })();
    expect(e).toBeInstanceOf(QuarryError);
    expect(e!.code).toBe('EMBEDDING_MODEL_MISMATCH');
    expect(e!.message).toContain('"openai:fake-embed"');
    expect(e!.message).toContain('"openai:other-embed"');
    expect(e!.message).toMatch(/new name/);
    expect(e!.message).toContain('dense-remote.snapshot');

    // Id known only once the model is loaded (as for ONNX): refused at the first sync.
    const late = openIndex(store, { model: 'other-embed', expected: false });
    late.open();
    expect((await rejection(late.sync())).code).toBe('EMBEDDING_MODEL_MISMATCH');

    // A query embedded by another model is refused even though the dimensions agree.
    const same = openIndex(store);
    same.open();
    expect(() => same.search(fakeVector('x', 8), 3, undefined, 'openai:other-embed')).toThrow(
      expect.objectContaining({ code: 'EMBEDDING_MODEL_MISMATCH' }),
    );
    expect(same.search(fakeVector('x', 8), 3, undefined, 'openai:fake-embed')).toHaveLength(3);
    store.close();
  });

  it('reports a provider failure as EMBEDDING_FAILED, keeps deletions, and catches up later', async () => {
    const store = SqliteStore.open(tmp(), { settings: SETTINGS });
    store.write({ upserts: DOCS.slice(0, 1), deletes: [] });
    const index = openIndex(store);
    await index.sync();
    store.write({ upserts: DOCS.slice(1), deletes: ['a'] });
    server.reset(['500', '500', '500', '500']);
    const e = await rejection(index.sync());
    expect(e.code).toBe('EMBEDDING_FAILED');
    expect(e.message).toContain('HTTP 500');
    // The deleted document left before any embedding was attempted.
    expect(index.size).toBe(0);
    expect(index.current).toBe(false);
    server.reset();
    const report = await index.sync();
    expect(report.embedded).toBe(6);
    expect(index.size).toBe(6);
    expect(index.current).toBe(true);
    await index.close();
    store.close();
  });
});

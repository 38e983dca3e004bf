/**
 * Every embedder passes the same suite: the OpenAI-compatible one against a real HTTP server speaking the
 * wire format, the ONNX one on a hand-built model, and an embedder a library user writes in a few lines.
 * The user's object is then shown to be what dense retrieval actually searches with.
 */
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createOnnxEmbedder } from '../../src/embed/providers/onnx.js';
import { createOpenAIEmbedder } from '../../src/embed/providers/openai.js';
import { type Embedder, type EmbedOptions, Quarry } from '../../src/index.js';
import { FakeOpenAIServer } from '../embed/providers/fake-openai-server.js';
import { writeTinyModel } from '../embed/providers/onnx-fixture.js';
import { CORPUS, openWith } from './corpus.js';
import { embedderConformance } from './embedder.js';

let server: FakeOpenAIServer;
let onnxRoot: string;
beforeAll(async () => {
  server = await new FakeOpenAIServer({ dim: 16 }).start();
  onnxRoot = mkdtempSync(join(tmpdir(), 'quarry-onnx-conf-'));
  mkdirSync(join(onnxRoot, 'tiny'));
  writeTinyModel(join(onnxRoot, 'tiny'));
});
afterAll(async () => {
  await server.close();
  rmSync(onnxRoot, { recursive: true, force: true });
});

const openai = (baseURL: () => string) => () =>
  createOpenAIEmbedder({
    baseURL: baseURL(),
    apiKey: 'sk-test',
    model: 'text-embedding-3-small',
    maxRetries: 0,
  });

embedderConformance('OpenAI-compatible (HTTP)', {
  make: openai(() => server.url),
  // Nothing listens on port 9 of the loopback: the connection is refused at once.
  failing: openai(() => 'http://127.0.0.1:9/v1'),
});

embedderConformance('ONNX (local worker pool)', {
  make: () => createOnnxEmbedder({ dir: join(onnxRoot, 'tiny'), batchSize: 2 }),
  close: (e) => e.close?.(),
  distinct: ['the quick brown fox', 'hello'],
});

/** What a library user writes: hashed bag of words, L2-normalised. Optionally broken, to test failures. */
class BagOfWordsEmbedder implements Embedder {
  readonly id = 'user:bag-of-words-64';
  readonly dimension = 64;
  calls = 0;
  constructor(private readonly broken = false) {}

  async embed(texts: string[], opts: EmbedOptions = {}): Promise<Float32Array[]> {
    opts.signal?.throwIfAborted();
    this.calls++;
    if (this.broken) throw new Error('embedding service unreachable');
    return texts.map((t) => {
      const v = new Float32Array(this.dimension);
      for (const w of t.toLowerCase().match(/\p{L}+/gu) ?? []) {
        let h = 2166136261;
        for (const ch of w) h = Math.imul(h ^ ch.codePointAt(0)!, 16777619);
        v[(h >>> 0) % this.dimension]! += 1;
      }
      const norm = Math.hypot(...v) || 1;
      return v.map((x) => x / norm);
    });
  }
}

embedderConformance('user-written object', {
  make: () => new BagOfWordsEmbedder(),
  failing: () => new BagOfWordsEmbedder(true),
});

describe('a user embedder is what dense retrieval searches with', () => {
  it('ranks by its vectors, and is called for documents and queries', async () => {
    const e = new BagOfWordsEmbedder();
    const q = openWith({ embedder: e }, { retrieval: { retriever: 'dense' } });
    try {
      await q.quarry.addDocuments(CORPUS);
      const afterIngest = e.calls;
      expect(afterIngest).toBeGreaterThan(0);
      const r = await q.quarry.search('pizza buffet lunch cafeteria');
      expect(e.calls).toBeGreaterThan(afterIngest); // the query was embedded by it
      expect(r.hits[0]!.document.id).toBe('lunch');
    } finally {
      q.close();
    }
  });

  it('a store indexed with one user embedder refuses another (no silent model swap)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'quarry-swap-'));
    try {
      const first = Quarry.open({ store: dir, components: { embedder: new BagOfWordsEmbedder() } });
      await first.addDocuments(CORPUS);
      first.close();
      const other = new BagOfWordsEmbedder();
      Object.defineProperty(other, 'id', { value: 'user:another-model' });
      expect(() => Quarry.open({ store: dir, components: { embedder: other } })).toThrow(
        expect.objectContaining({ code: 'EMBEDDING_MODEL_MISMATCH' }),
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('a component without its methods is refused at open, naming what is missing', () => {
    expect(() => openWith({ embedder: { id: 'x', dimension: 3 } as unknown as Embedder })).toThrow(
      /components\.embedder lacks embed\(\)/,
    );
  });
});

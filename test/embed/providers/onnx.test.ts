import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { threadId as mainThreadId } from 'node:worker_threads';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cachedEmbedder, MemoryEmbeddingCache } from '../../../src/embed/cache.js';
import { createOnnxEmbedder, type OnnxEmbedder } from '../../../src/embed/providers/onnx.js';
import { assertSameModel } from '../../../src/embed/types.js';
import { failure as loadError } from '../../fixtures/rejection.js';
import { expectedVector, tinyMatrix, VOCAB, writeTinyModel } from './onnx-fixture.js';

const id = (t: (typeof VOCAB)[number]) => VOCAB.indexOf(t);
let root: string;
let dir: string;
let matrix: number[][];
let embedder: OnnxEmbedder;

beforeAll(async () => {
  root = mkdtempSync(join(tmpdir(), 'quarry-onnx-'));
  dir = join(root, 'tiny');
  mkdirSync(dir);
  matrix = writeTinyModel(dir);
  embedder = await createOnnxEmbedder({ dir, batchSize: 2 });
});
afterAll(async () => {
  await embedder?.close();
  rmSync(root, { recursive: true, force: true });
});

function close(actual: Float32Array, expected: number[]): void {
  expect(actual.length).toBe(expected.length);
  for (let k = 0; k < expected.length; k++) expect(actual[k]).toBeCloseTo(expected[k]!, 5);
}

describe('ONNX embedder on a hand-built model', () => {
  it('reports an id from the model bytes and the dimension from the model', () => {
    expect(embedder.id).toMatch(/^onnx:[0-9a-f]{12}$/);
    expect(embedder.dimension).toBe(6);
    expect(embedder.info).toMatchObject({
      output: 'last_hidden_state',
      inputs: ['input_ids', 'attention_mask'],
    });
  });

  it('mean-pools the token rows over the attention mask and L2-normalizes', async () => {
    const texts = ['the quick brown fox', 'Dogs running.', 'hello', 'a zebra'];
    const out = await embedder.embed(texts);
    expect(out).toHaveLength(4);
    // [CLS] … [SEP] are part of the mean, as with real BERT exports; padding is not.
    close(
      out[0]!,
      expectedVector(matrix, [id('[CLS]'), id('the'), id('quick'), id('brown'), id('fox'), id('[SEP]')]),
    );
    close(
      out[1]!,
      expectedVector(matrix, [
        id('[CLS]'),
        id('dog'),
        id('##s'),
        id('run'),
        id('##ning'),
        id('.'),
        id('[SEP]'),
      ]),
    );
    close(out[2]!, expectedVector(matrix, [id('[CLS]'), id('hello'), id('[SEP]')]));
    close(out[3]!, expectedVector(matrix, [id('[CLS]'), id('a'), id('[UNK]'), id('[SEP]')]));
    for (const v of out) expect(Math.hypot(...v)).toBeCloseTo(1, 5);
  });

  it('gives a text the same vector whatever it is batched with (padding is masked)', async () => {
    const [alone] = await embedder.embed(['fox']);
    const [, padded] = await embedder.embed(['the quick brown fox jumps over the lazy dog', 'fox']);
    close(padded!, Array.from(alone!));
  });

  it('runs inference on worker threads, never the main thread', async () => {
    const before = embedder.stats().batches;
    await embedder.embed(['a', 'b', 'c', 'the', 'fox']);
    const s = embedder.stats();
    expect(s.batches - before).toBe(3); // batchSize 2
    expect(s.threadIds.length).toBeGreaterThan(0);
    expect(s.threadIds).not.toContain(mainThreadId);
    expect(embedder.info.threadId).not.toBe(mainThreadId);
  });

  it('keeps input order across batches spread over several workers, and honours abort', async () => {
    const e = await createOnnxEmbedder({ dir, poolSize: 2, batchSize: 1 });
    try {
      const texts = ['fox', 'the dog', 'cats', 'a lazy cat', 'hello hello', 'runs'];
      const together = await e.embed(texts);
      const alone = await Promise.all(texts.map(async (t) => (await embedder.embed([t]))[0]!));
      for (const [i, v] of together.entries()) close(v, Array.from(alone[i]!));
      expect(new Set(e.stats().threadIds).size).toBe(2);
      const ctl = new AbortController();
      ctl.abort(new Error('cancelled'));
      await expect(e.embed(texts, { signal: ctl.signal })).rejects.toThrow('cancelled');
    } finally {
      await e.close();
    }
  });

  it('feeds token_type_ids to models that declare it, and finds onnx/model.onnx', async () => {
    const d2 = join(root, 'hf-layout');
    mkdirSync(d2);
    const m2 = writeTinyModel(d2, {
      modelPath: join('onnx', 'model.onnx'),
      tokenTypeIds: true,
      template: true,
    });
    const e2 = await createOnnxEmbedder({ dir: d2, poolSize: 2 });
    try {
      expect(e2.info.inputs).toContain('token_type_ids');
      expect(e2.id).not.toBe(embedder.id); // different bytes (an extra input) → a different model
      const [v] = await e2.embed(['lazy cat']);
      close(v!, expectedVector(m2, [id('[CLS]'), id('lazy'), id('cat'), id('[SEP]')]));
    } finally {
      await e2.close();
    }
  });

  it('gives a swapped model file a different id, and the guard refuses to mix them', async () => {
    const d3 = join(root, 'swapped');
    mkdirSync(d3);
    writeTinyModel(d3, { matrix: tinyMatrix(4) });
    const e3 = await createOnnxEmbedder({ dir: d3 });
    try {
      expect(e3.id).not.toBe(embedder.id);
      expect(e3.dimension).toBe(4);
      expect(() => assertSameModel({ modelId: embedder.id, dimension: 6 }, embedder)).not.toThrow();
      expect(() => assertSameModel({ modelId: embedder.id, dimension: 6 }, e3)).toThrow(
        `"${embedder.id}" (dimension 6) but the embedder is "${e3.id}" (dimension 4)`,
      );
    } finally {
      await e3.close();
    }
  });

  it('keeps the same id for the same bytes in another directory', async () => {
    const d4 = join(root, 'copy');
    mkdirSync(d4);
    writeTinyModel(d4);
    const e4 = await createOnnxEmbedder({ dir: d4 });
    expect(e4.id).toBe(embedder.id);
    await e4.close();
  });

  it('applies query / document prefixes and caches only misses', async () => {
    const cache = new MemoryEmbeddingCache();
    const e5 = await createOnnxEmbedder({ dir, queryPrefix: 'hello ' });
    try {
      const c = cachedEmbedder(e5, cache);
      const [q] = await c.embed(['fox'], { kind: 'query' });
      close(q!, expectedVector(matrix, [id('[CLS]'), id('hello'), id('fox'), id('[SEP]')]));
      const [d] = await c.embed(['fox']);
      close(d!, expectedVector(matrix, [id('[CLS]'), id('fox'), id('[SEP]')]));
      const batches = e5.stats().batches;
      await c.embed(['fox'], { kind: 'query' });
      expect(e5.stats().batches).toBe(batches);
    } finally {
      await e5.close();
    }
  });

  it('takes max length and pooling from a sentence-transformers export, and options override them', async () => {
    const d = join(root, 'sbert');
    mkdirSync(join(d, '1_Pooling'), { recursive: true });
    const m = writeTinyModel(d);
    writeFileSync(
      join(d, 'sentence_bert_config.json'),
      JSON.stringify({ max_seq_length: 4, do_lower_case: false }),
    );
    writeFileSync(join(d, '1_Pooling', 'config.json'), JSON.stringify({ pooling_mode_cls_token: true }));
    writeFileSync(join(d, 'config.json'), JSON.stringify({ max_position_embeddings: 3 }));
    const hinted = await createOnnxEmbedder({ dir: d });
    const explicit = await createOnnxEmbedder({ dir: d, pooling: 'mean', maxLength: 100 });
    try {
      expect(hinted.info).toMatchObject({ pooling: 'cls', maxLength: 3 }); // capped by max_position_embeddings
      const [cls] = await hinted.embed(['the quick brown fox']);
      close(cls!, expectedVector(m, [id('[CLS]')]));
      expect(explicit.info).toMatchObject({ pooling: 'mean', maxLength: 3 });
      const [mean] = await explicit.embed(['the quick brown fox']);
      close(mean!, expectedVector(m, [id('[CLS]'), id('the'), id('[SEP]')]));
    } finally {
      await hinted.close();
      await explicit.close();
    }
  });

  it('rejects calls after close', async () => {
    const e6 = await createOnnxEmbedder({ dir });
    await e6.close();
    await expect(e6.embed(['fox'])).rejects.toThrow(/closed/);
  });
});

describe('ONNX embedder: clear errors for bad model directories', () => {
  it('names a missing directory', async () => {
    const err = await loadError(createOnnxEmbedder({ dir: join(root, 'nope') }));
    expect(err.code).toBe('EMBEDDING_MODEL_LOAD');
    expect(err.message).toContain('does not exist');
    expect(err.message).toContain(join(root, 'nope'));
  });

  it('names a missing model.onnx', async () => {
    const d = join(root, 'no-model');
    mkdirSync(d);
    writeFileSync(join(d, 'tokenizer.json'), '{}');
    const err = await loadError(createOnnxEmbedder({ dir: d }));
    expect(err.message).toContain('no ONNX model');
    expect(err.message).toContain('model.onnx');
    expect(err.message).toContain('never downloads');
  });

  it('names a missing tokenizer.json', async () => {
    const d = join(root, 'no-tokenizer');
    mkdirSync(d);
    writeTinyModel(d);
    rmSync(join(d, 'tokenizer.json'));
    const err = await loadError(createOnnxEmbedder({ dir: d }));
    expect(err.message).toContain('no tokenizer.json');
  });

  it('reports an unsupported tokenizer and a corrupt model from the worker', async () => {
    const d = join(root, 'bpe');
    mkdirSync(d);
    writeTinyModel(d);
    writeFileSync(
      join(d, 'tokenizer.json'),
      JSON.stringify({ model: { type: 'BPE', vocab: {}, merges: [] } }),
    );
    const bpe = await loadError(createOnnxEmbedder({ dir: d }));
    expect(bpe.code).toBe('EMBEDDING_MODEL_LOAD');
    expect(bpe.message).toContain('"BPE" is not supported');

    const c = join(root, 'corrupt');
    mkdirSync(c);
    writeTinyModel(c);
    writeFileSync(join(c, 'model.onnx'), Buffer.from('not a model'));
    const corrupt = await loadError(createOnnxEmbedder({ dir: c }));
    expect(corrupt.code).toBe('EMBEDDING_MODEL_LOAD');
    expect(corrupt.message).toContain('onnxruntime could not load the model');
  });
});

import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { threadId as mainThreadId } from 'node:worker_threads';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  createOnnxCrossEncoder,
  type OnnxCrossEncoder,
  OnnxRerankerConfigSchema,
} from '../../src/rerank/onnx-cross-encoder.js';
import type { RerankScore } from '../../src/rerank/types.js';
import { tokenizerJson } from '../embed/providers/onnx-fixture.js';
import { failure } from '../fixtures/rejection.js';
import { type WriteOptions, writeTinyCrossEncoder } from './cross-encoder-fixture.js';
import { hitsOf } from './hits.js';

// Scores of the fixture model: 0.25 per [CLS], 0.125 per [SEP], fox 4, dog 2, cat 1, quick 0.5, [UNK] -1,
// plus 1/16 per passage-segment token. For `[CLS] quick fox [SEP] <passage> [SEP]` that is
//   0.5 + 4.5 + Σ passage weights + (passage tokens + 1) / 16.
const QUERY = 'quick fox';
const PASSAGES = [
  'the lazy dog', // the lazy dog: 5 + 2 + 4/16 = 7.25
  'a cat jumps over the dog', // 6 tokens, cat + dog: 5 + 3 + 7/16 = 8.4375
  'The quick brown fox.', // the quick brown fox . : 5 + 4.5 + 6/16 = 9.875
  'hello', // 5 + 0 + 2/16 = 5.125
  'zebra zebra', // [UNK] [UNK]: 5 - 2 + 3/16 = 3.1875
  'dogs running', // dog ##s run ##ning: 5 + 2 + 5/16 = 7.3125
];
const EXPECTED = [7.25, 8.4375, 9.875, 5.125, 3.1875, 7.3125];

let root: string;
const open: OnnxCrossEncoder[] = [];

function modelDir(name: string, o: WriteOptions = {}): string {
  const dir = join(root, name);
  mkdirSync(dir, { recursive: true });
  writeTinyCrossEncoder(dir, o);
  return dir;
}

async function load(...args: Parameters<typeof createOnnxCrossEncoder>): Promise<OnnxCrossEncoder> {
  const r = await createOnnxCrossEncoder(...args);
  open.push(r);
  return r;
}

const byIndex = (scores: RerankScore[]): number[] =>
  [...scores].sort((a, b) => a.index - b.index).map((s) => s.score);
const order = (scores: RerankScore[]): number[] =>
  [...scores].sort((a, b) => b.score - a.score).map((s) => s.index);

let base: OnnxCrossEncoder;
let baseDir: string;

beforeAll(async () => {
  root = mkdtempSync(join(tmpdir(), 'quarry-rerank-onnx-'));
  baseDir = modelDir('tiny-ce');
  base = await load({ dir: baseDir, batchSize: 4 });
});
afterAll(async () => {
  await Promise.all(open.map((r) => r.close()));
  rmSync(root, { recursive: true, force: true });
});

describe('ONNX cross-encoder on a hand-built model', () => {
  it('records the model as onnx:<dir name>@<sha256 prefix of the model file>', () => {
    const sha = createHash('sha256')
      .update(readFileSync(join(baseDir, 'model.onnx')))
      .digest('hex');
    expect(base.id).toBe(`onnx:tiny-ce@${sha.slice(0, 12)}`);
    expect(base.info).toMatchObject({
      inputs: ['input_ids', 'attention_mask', 'token_type_ids'],
      output: 'logits',
      outputKind: 'single',
      maxLength: 512,
    });
  });

  it('encodes each pair as [CLS] query [SEP] passage [SEP] with segment ids 0 then 1', async () => {
    const [pair] = await base.encode(QUERY, ['the lazy dog']);
    expect(pair).toEqual({
      ids: [2, 5, 7, 3, 4, 10, 11, 3],
      types: [0, 0, 0, 0, 1, 1, 1, 1],
      truncated: false,
    });
  });

  it('scores every hit exactly as the model arithmetic predicts and ranks high-weight passages first', async () => {
    const scores = await base.rerank({ query: QUERY, hits: hitsOf(PASSAGES) });
    expect(scores).toHaveLength(PASSAGES.length);
    expect(byIndex(scores)).toEqual(EXPECTED);
    // Passages 5 and 0 differ only in passage length: the segment ids reached the model.
    expect(order(scores)).toEqual([2, 1, 5, 0, 3, 4]);
  });

  it('runs in batches on worker threads, and padding never changes a score', async () => {
    const before = base.stats().batches;
    // Batches of 4: the short passages share a batch with long ones and get padded ([PAD] weighs 100).
    const scores = await base.rerank({ query: QUERY, hits: hitsOf(PASSAGES) });
    expect(base.stats().batches - before).toBe(2);
    expect(base.stats().threadIds.length).toBeGreaterThan(0);
    expect(base.stats().threadIds).not.toContain(mainThreadId);
    const alone = await Promise.all(PASSAGES.map((p) => base.rerank({ query: QUERY, hits: hitsOf([p]) })));
    expect(alone.map((s) => s[0]!.score)).toEqual(byIndex(scores));
  });

  it('puts the title in front of the passage only when asked', async () => {
    const titled = await load({ dir: baseDir, includeTitle: true });
    const hits = hitsOf(['hello'], 'Fox');
    // [CLS] quick fox [SEP] fox hello [SEP]: 5 + 4 + 3/16
    expect(byIndex(await titled.rerank({ query: QUERY, hits }))).toEqual([9.1875]);
    expect(byIndex(await base.rerank({ query: QUERY, hits }))).toEqual([5.125]);
  });

  it('returns nothing for no hits without running the model', async () => {
    const before = base.stats().batches;
    expect(await base.rerank({ query: QUERY, hits: [] })).toEqual([]);
    expect(base.stats().batches).toBe(before);
  });
});

describe('pair truncation', () => {
  let short: OnnxCrossEncoder;
  beforeAll(async () => {
    // 10 tokens per pair: 3 specials leave 7 for query and passage.
    short = await load({ dir: baseDir, maxLength: 10 });
  });

  it('truncates the passage to the model length, never the short query', async () => {
    const [cut, kept] = await short.encode(QUERY, [
      'the the the the the the fox',
      'fox the the the the the the',
    ]);
    expect(cut).toEqual({
      ids: [2, 5, 7, 3, 4, 4, 4, 4, 4, 3],
      types: [0, 0, 0, 0, 1, 1, 1, 1, 1, 1],
      truncated: true,
    });
    expect(kept!.ids).toHaveLength(10);
    const scores = await short.rerank({
      query: QUERY,
      hits: hitsOf(['the the the the the the fox', 'fox the the the the the the']),
    });
    // The fox beyond the window does not count: 5 + 6/16, and 5 + 4 + 6/16 when it comes first.
    expect(byIndex(scores)).toEqual([5.375, 9.375]);
    expect(short.stats().truncatedPairs).toBe(2);
  });

  it('cuts a long query only to leave the passage at least half the room', async () => {
    const query = 'the the the the the the the the fox';
    const [long, tiny] = await short.encode(query, ['dog dog dog dog dog dog dog', 'dog']);
    expect(long!.ids).toEqual([2, 4, 4, 4, 3, 11, 11, 11, 11, 3]);
    expect(tiny!.ids).toEqual([2, 4, 4, 4, 4, 4, 4, 3, 11, 3]);
    expect(tiny!.types).toEqual([0, 0, 0, 0, 0, 0, 0, 0, 1, 1]);
  });

  it("takes the length from the model directory: tokenizer.json, capped by config.json's positions", async () => {
    const dir = modelDir('hinted', { tokenizerMaxLength: 64, maxPositions: 12 });
    expect((await load({ dir })).info.maxLength).toBe(12);
    const dir2 = modelDir('tok-only', { tokenizerMaxLength: 9 });
    expect((await load({ dir: dir2 })).info.maxLength).toBe(9);
  });
});

describe('model variants', () => {
  it('uses the positive class of [batch, 2] logits (log-odds l1 − l0) and applies sigmoid when asked', async () => {
    const dir = modelDir('two-class', { classes: 2 });
    const two = await load({ dir });
    expect(two.info.outputKind).toBe('pair-classes');
    // logits = [-0.5 s, s]: l1 - l0 = 1.5 s
    expect(byIndex(await two.rerank({ query: QUERY, hits: hitsOf(PASSAGES) }))).toEqual(
      EXPECTED.map((s) => 1.5 * s),
    );
    const sig = await load({ dir: baseDir, activation: 'sigmoid' });
    const scores = await sig.rerank({ query: QUERY, hits: hitsOf(PASSAGES) });
    byIndex(scores).forEach((s, i) => {
      expect(s).toBeCloseTo(1 / (1 + Math.exp(-EXPECTED[i]!)), 12);
    });
    expect(order(scores)).toEqual([2, 1, 5, 0, 3, 4]);
  });

  it('feeds only the inputs the model declares (no token_type_ids)', async () => {
    const dir = modelDir('no-types', { tokenTypeIds: false });
    const r = await load({ dir });
    expect(r.info.inputs).toEqual(['input_ids', 'attention_mask']);
    // Without segment weights: 0.5 + 4.5 + Σ passage weights.
    expect(byIndex(await r.rerank({ query: QUERY, hits: hitsOf(PASSAGES) }))).toEqual([7, 8, 9.5, 5, 3, 7]);
  });

  it("follows the tokenizer's pair template, and BERT's layout when the template has none", async () => {
    const special = { '[CLS]': { id: '[CLS]', ids: [2] }, '[SEP]': { id: '[SEP]', ids: [3] } };
    const dir = modelDir('one-segment', {
      postProcessor: {
        type: 'TemplateProcessing',
        single: [{ SpecialToken: { id: '[CLS]', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }],
        pair: [
          { SpecialToken: { id: '[CLS]', type_id: 0 } },
          { Sequence: { id: 'A', type_id: 0 } },
          { SpecialToken: { id: '[SEP]', type_id: 0 } },
          { Sequence: { id: 'B', type_id: 0 } },
          { SpecialToken: { id: '[SEP]', type_id: 0 } },
        ],
        special_tokens: special,
      },
    });
    const one = await load({ dir });
    const [pair] = await one.encode(QUERY, ['the lazy dog']);
    expect(pair!.types).toEqual([0, 0, 0, 0, 0, 0, 0, 0]);
    expect(byIndex(await one.rerank({ query: QUERY, hits: hitsOf(['the lazy dog']) }))).toEqual([7]);

    const fallback = await load({
      dir: modelDir('single-template', {
        postProcessor: (tokenizerJson({ template: true }) as { post_processor: unknown }).post_processor,
      }),
    });
    expect(await fallback.encode(QUERY, ['the lazy dog'])).toEqual(
      await base.encode(QUERY, ['the lazy dog']),
    );
  });
});

describe('failures', () => {
  it('names a missing model directory or model file', async () => {
    const e = await failure(createOnnxCrossEncoder({ dir: join(root, 'nowhere') }));
    expect(e.code).toBe('RERANK_MODEL_LOAD');
    expect(e.message).toContain('does not exist');
    expect(e.exitCode).toBe(2);
    const empty = join(root, 'empty');
    mkdirSync(empty);
    const e2 = await failure(createOnnxCrossEncoder({ dir: empty }));
    expect(e2.code).toBe('RERANK_MODEL_LOAD');
    expect(e2.message).toContain('model.onnx');
  });

  it('refuses a model that needs other inputs or does not output per-pair logits', async () => {
    const e = await failure(
      createOnnxCrossEncoder({ dir: modelDir('extra', { extraInput: 'position_ids' }) }),
    );
    expect(e.code).toBe('RERANK_MODEL_LOAD');
    expect(e.message).toContain('position_ids');
    const e2 = await failure(createOnnxCrossEncoder({ dir: modelDir('three', { classes: 3 }) }));
    expect(e2.code).toBe('RERANK_MODEL_LOAD');
    expect(e2.message).toMatch(/shape \[2, 3\]/);
    const e3 = await failure(createOnnxCrossEncoder({ dir: baseDir, outputName: 'scores' }));
    expect(e3.message).toContain('no output "scores"');
  });

  it('validates its options with the exported schema', async () => {
    const e = await failure(createOnnxCrossEncoder({ dir: baseDir, batchSize: 0 }));
    expect(e.code).toBe('INVALID_CONFIG');
    expect(e.message).toContain('batchSize');
    expect(OnnxRerankerConfigSchema.safeParse({ dir: 'x', pooling: 'cls' }).success).toBe(false);
    expect(OnnxRerankerConfigSchema.parse({ dir: 'x' })).toMatchObject({
      poolSize: 1,
      batchSize: 16,
      activation: 'none',
    });
  });

  it('honours request.signal: an aborted request rejects with its reason and its queued batches never run', async () => {
    const r = await load({ dir: baseDir, batchSize: 1 });
    const ctl = new AbortController();
    const hits = hitsOf(Array.from({ length: 300 }, (_, i) => `the lazy dog number ${i}`));
    const pending = r.rerank({ query: QUERY, hits, signal: ctl.signal });
    const budget = new Error('rerank budget exhausted');
    ctl.abort(budget);
    await expect(pending).rejects.toBe(budget);
    // The two batches that were already on the worker are dropped, the rest never start.
    expect(r.stats().batches).toBe(0);
    const pre = new AbortController();
    pre.abort(budget);
    await expect(r.rerank({ query: QUERY, hits, signal: pre.signal })).rejects.toBe(budget);
    // The pool is still healthy afterwards.
    expect(byIndex(await r.rerank({ query: QUERY, hits: hitsOf(['hello']) }))).toEqual([5.125]);
  });

  it('refuses work after close', async () => {
    const r = await createOnnxCrossEncoder({ dir: baseDir });
    await r.close();
    const e = await failure(r.rerank({ query: QUERY, hits: hitsOf(['hello']) }));
    expect(e.code).toBe('RERANK_FAILED');
  });
});

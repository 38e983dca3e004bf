/**
 * Builds a tiny ONNX embedding model by hand-encoding the protobuf: a graph taking `input_ids` and
 * `attention_mask` ([batch, seq] int64; optionally `token_type_ids`) whose output `last_hidden_state`
 * ([batch, seq, dim] float) is a Gather of rows of an embedding matrix initializer. With mean pooling, the
 * sentence vector is the normalized mean of the rows of the text's tokens — easy to compute by hand.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  FLOAT,
  INT64,
  initializer,
  modelBytes,
  msg,
  node,
  str,
  valueInfo,
} from '../../fixtures/onnx-proto.js';

export interface TinyModelOptions {
  /** Rows = vocabulary size, columns = embedding dimension. */
  matrix: number[][];
  /** Add an (unused) `token_type_ids` input, as BERT exports have. */
  tokenTypeIds?: boolean;
}

export function tinyModelBytes({ matrix, tokenTypeIds }: TinyModelOptions): Uint8Array {
  const vocab = matrix.length;
  const d = matrix[0]!.length;
  const graph = msg(
    7,
    node('Gather', ['embeddings', 'input_ids'], 'last_hidden_state', {}, 'gather'),
    str(2, 'tiny-embedder'),
    initializer('embeddings', [vocab, d], Float32Array.from(matrix.flat())),
    valueInfo(11, 'input_ids', INT64, ['batch', 'seq']),
    valueInfo(11, 'attention_mask', INT64, ['batch', 'seq']),
    ...(tokenTypeIds ? [valueInfo(11, 'token_type_ids', INT64, ['batch', 'seq'])] : []),
    valueInfo(12, 'last_hidden_state', FLOAT, ['batch', 'seq', d]),
  );
  return modelBytes(graph);
}

// --- tokenizer.json ----------------------------------------------------------------------------------------

/** 20 tokens: 4 specials, 14 words, 2 continuation pieces. */
export const VOCAB = [
  '[PAD]',
  '[UNK]',
  '[CLS]',
  '[SEP]',
  'the',
  'quick',
  'brown',
  'fox',
  'jumps',
  'over',
  'lazy',
  'dog',
  'cat',
  'run',
  '##s',
  '##ning',
  'a',
  '.',
  ',',
  'hello',
] as const;

export function tokenizerJson(opts: { template?: boolean } = {}): unknown {
  const vocab = Object.fromEntries(VOCAB.map((t, i) => [t, i]));
  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: VOCAB.slice(0, 4).map((t, i) => ({ id: i, content: t, special: true })),
    normalizer: {
      type: 'BertNormalizer',
      clean_text: true,
      handle_chinese_chars: true,
      strip_accents: null,
      lowercase: true,
    },
    pre_tokenizer: { type: 'BertPreTokenizer' },
    post_processor: opts.template
      ? {
          type: 'TemplateProcessing',
          single: [
            { SpecialToken: { id: '[CLS]', type_id: 0 } },
            { Sequence: { id: 'A', type_id: 0 } },
            { SpecialToken: { id: '[SEP]', type_id: 0 } },
          ],
          pair: [],
          special_tokens: {
            '[CLS]': { id: '[CLS]', ids: [2], tokens: ['[CLS]'] },
            '[SEP]': { id: '[SEP]', ids: [3], tokens: ['[SEP]'] },
          },
        }
      : { type: 'BertProcessing', sep: ['[SEP]', 3], cls: ['[CLS]', 2] },
    decoder: { type: 'WordPiece', prefix: '##', cleanup: true },
    model: {
      type: 'WordPiece',
      unk_token: '[UNK]',
      continuing_subword_prefix: '##',
      max_input_chars_per_word: 100,
      vocab,
    },
  };
}

/** A deterministic [20, dim] matrix with distinct rows. */
export function tinyMatrix(dimension = 6): number[][] {
  return VOCAB.map((_, r) =>
    Array.from({ length: dimension }, (_, c) => Math.sin(r * 1.7 + c * 0.9 + 0.3) * (1 + (r % 3))),
  );
}

/** Writes model.onnx (at `modelPath`, default `model.onnx`) and tokenizer.json into `dir`. */
export function writeTinyModel(
  dir: string,
  opts: Partial<TinyModelOptions> & { modelPath?: string; template?: boolean } = {},
): number[][] {
  const matrix = opts.matrix ?? tinyMatrix();
  const modelPath = join(dir, opts.modelPath ?? 'model.onnx');
  mkdirSync(join(modelPath, '..'), { recursive: true });
  writeFileSync(modelPath, tinyModelBytes({ matrix, ...(opts.tokenTypeIds ? { tokenTypeIds: true } : {}) }));
  writeFileSync(
    join(dir, 'tokenizer.json'),
    JSON.stringify(tokenizerJson({ template: opts.template ?? false })),
  );
  return matrix;
}

/** Expected sentence vector: mean of the rows of `ids`, L2-normalized (float64 reference). */
export function expectedVector(matrix: number[][], ids: number[]): number[] {
  const d = matrix[0]!.length;
  const sum = new Array<number>(d).fill(0);
  for (const id of ids) for (let k = 0; k < d; k++) sum[k]! += Math.fround(matrix[id]![k]!);
  const mean = sum.map((x) => x / ids.length);
  const norm = Math.sqrt(mean.reduce((a, x) => a + x * x, 0));
  return mean.map((x) => x / norm);
}

/**
 * Builds a tiny cross-encoder ONNX model by hand-encoding the protobuf. Its score for an encoded pair is
 *   Σ over non-padding tokens of  tokenWeight[id] + typeWeight[segment]
 * (Gather → Add → mask → ReduceSum), emitted as `logits` [batch, 1] — or [batch, 2] = [-0.5·s, s] for the
 * two-class variant — so every score in a test is plain arithmetic over the tokens that reached the model.
 * The tokenizer is the embedding fixture's 20-token WordPiece vocabulary.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tokenizerJson, VOCAB } from '../embed/providers/onnx-fixture.js';
import {
  type Field,
  FLOAT,
  INT64,
  initializer,
  modelBytes,
  msg,
  node,
  str,
  valueInfo,
} from '../fixtures/onnx-proto.js';

export { VOCAB };

export interface TinyCrossEncoderOptions {
  /** One weight per vocabulary entry. */
  tokenWeights: number[];
  /** Weight added per token of segment 0 / 1; only with `tokenTypeIds`. */
  typeWeights?: [number, number];
  /** Declare (and use) a `token_type_ids` input (default true). */
  tokenTypeIds?: boolean;
  /** 1 → logits [batch, 1]; 2 → [batch, 2] = [-0.5·s, s]; 3 → [batch, 3] (not a cross-encoder output). */
  classes?: 1 | 2 | 3;
  /** Declare an extra input the reranker cannot provide. */
  extraInput?: string;
}

export function tinyCrossEncoderBytes(o: TinyCrossEncoderOptions): Uint8Array {
  const useTypes = o.tokenTypeIds ?? true;
  const classes = o.classes ?? 1;
  const nodes: Field[] = [node('Gather', ['token_weights', 'input_ids'], 'token_score')];
  const inits: Field[] = [
    initializer('token_weights', [o.tokenWeights.length], Float32Array.from(o.tokenWeights)),
    initializer('axes', [1], BigInt64Array.from([1n])),
  ];
  let perToken = 'token_score';
  if (useTypes) {
    inits.push(initializer('type_weights', [2], Float32Array.from(o.typeWeights ?? [0, 0])));
    nodes.push(node('Gather', ['type_weights', 'token_type_ids'], 'type_score'));
    nodes.push(node('Add', ['token_score', 'type_score'], 'pair_score'));
    perToken = 'pair_score';
  }
  nodes.push(node('Cast', ['attention_mask'], 'mask_f', { to: FLOAT }));
  nodes.push(node('Mul', [perToken, 'mask_f'], 'masked'));
  if (classes === 1) {
    nodes.push(node('ReduceSum', ['masked', 'axes'], 'logits', { keepdims: 1 }));
  } else {
    const w = classes === 2 ? [-0.5, 1] : [1, 2, 3];
    inits.push(initializer('class_weights', [1, classes], Float32Array.from(w)));
    nodes.push(node('ReduceSum', ['masked', 'axes'], 'sum', { keepdims: 1 }));
    nodes.push(node('Mul', ['sum', 'class_weights'], 'logits'));
  }
  const graph = msg(
    7,
    ...nodes,
    str(2, 'tiny-cross-encoder'),
    ...inits,
    valueInfo(11, 'input_ids', INT64, ['batch', 'seq']),
    valueInfo(11, 'attention_mask', INT64, ['batch', 'seq']),
    ...(useTypes ? [valueInfo(11, 'token_type_ids', INT64, ['batch', 'seq'])] : []),
    ...(o.extraInput ? [valueInfo(11, o.extraInput, INT64, ['batch', 'seq'])] : []),
    valueInfo(12, 'logits', FLOAT, ['batch', classes]),
  );
  return modelBytes(graph);
}

const id = (t: (typeof VOCAB)[number]): number => VOCAB.indexOf(t);

/**
 * Default weights, all exact in float32: fox 4, dog 2, cat 1, quick 0.5, [CLS] 0.25, [SEP] 0.125, [UNK] -1,
 * everything else 0 — and [PAD] 100, so a padding token that reached the sum would show at once.
 */
export function tinyWeights(): number[] {
  const w = VOCAB.map(() => 0);
  w[id('fox')] = 4;
  w[id('dog')] = 2;
  w[id('cat')] = 1;
  w[id('quick')] = 0.5;
  w[id('[CLS]')] = 0.25;
  w[id('[SEP]')] = 0.125;
  w[id('[UNK]')] = -1;
  w[id('[PAD]')] = 100;
  return w;
}

/** Segment 0 tokens add nothing, segment 1 (passage) tokens add 1/16 each. */
export const TYPE_WEIGHTS: [number, number] = [0, 0.0625];

export interface WriteOptions extends Partial<TinyCrossEncoderOptions> {
  /** Model path inside `dir` (default `model.onnx`). */
  modelPath?: string;
  /** Replaces the tokenizer's post-processor (e.g. a TemplateProcessing with a `pair` template). */
  postProcessor?: unknown;
  /** Written as config.json `max_position_embeddings`. */
  maxPositions?: number;
  /** Written as tokenizer.json `truncation.max_length`. */
  tokenizerMaxLength?: number;
}

/** Writes model.onnx and tokenizer.json (and config.json when asked) into `dir`. */
export function writeTinyCrossEncoder(dir: string, o: WriteOptions = {}): void {
  const modelPath = join(dir, o.modelPath ?? 'model.onnx');
  mkdirSync(join(modelPath, '..'), { recursive: true });
  writeFileSync(
    modelPath,
    tinyCrossEncoderBytes({
      tokenWeights: o.tokenWeights ?? tinyWeights(),
      typeWeights: o.typeWeights ?? TYPE_WEIGHTS,
      ...(o.tokenTypeIds !== undefined ? { tokenTypeIds: o.tokenTypeIds } : {}),
      ...(o.classes !== undefined ? { classes: o.classes } : {}),
      ...(o.extraInput !== undefined ? { extraInput: o.extraInput } : {}),
    }),
  );
  const tok = tokenizerJson() as Record<string, unknown>;
  if (o.postProcessor !== undefined) tok.post_processor = o.postProcessor;
  if (o.tokenizerMaxLength !== undefined) tok.truncation = { max_length: o.tokenizerMaxLength };
  writeFileSync(join(dir, 'tokenizer.json'), JSON.stringify(tok));
  if (o.maxPositions !== undefined) {
    writeFileSync(join(dir, 'config.json'), JSON.stringify({ max_position_embeddings: o.maxPositions }));
  }
}

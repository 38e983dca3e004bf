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

export { VOCAB };

// --- a minimal protobuf writer -------------------------------------------------------------------------

function varint(n: number | bigint): number[] {
  let v = BigInt(n);
  if (v < 0n) v += 1n << 64n;
  const out: number[] = [];
  do {
    let byte = Number(v & 0x7fn);
    v >>= 7n;
    if (v !== 0n) byte |= 0x80;
    out.push(byte);
  } while (v !== 0n);
  return out;
}

type Field = number[];
const tag = (field: number, wire: number): number[] => varint((field << 3) | wire);
const int = (field: number, n: number | bigint): Field => [...tag(field, 0), ...varint(n)];
const bytes = (field: number, b: Uint8Array | number[]): Field => [
  ...tag(field, 2),
  ...varint(b.length),
  ...b,
];
const str = (field: number, s: string): Field => bytes(field, [...Buffer.from(s, 'utf8')]);
const msg = (field: number, ...parts: Field[]): Field => bytes(field, parts.flat());

// --- ONNX messages (field numbers from onnx.proto) ------------------------------------------------------

const FLOAT = 1;
const INT64 = 7;

const dim = (d: number | string): Field => msg(1, typeof d === 'number' ? int(1, d) : str(2, d));
const valueInfo = (field: number, name: string, elemType: number, shape: (number | string)[]): Field =>
  msg(field, str(1, name), msg(2, msg(1, int(1, elemType), msg(2, ...shape.map(dim)))));

/** TensorProto { dims = 1, data_type = 2, name = 8, raw_data = 9 } as graph initializer (GraphProto field 5). */
function initializer(name: string, dims: number[], data: Float32Array | BigInt64Array): Field {
  const type = data instanceof Float32Array ? FLOAT : INT64;
  const raw = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  return msg(5, ...dims.map((d) => int(1, d)), int(2, type), str(8, name), bytes(9, [...raw]));
}

/** NodeProto { input = 1, output = 2, name = 3, op_type = 4, attribute = 5 }; int attributes only. */
function node(op: string, inputs: string[], output: string, attrs: Record<string, number> = {}): Field {
  // AttributeProto { name = 1, i = 3, type = 20 (INT = 2) }
  const attributes = Object.entries(attrs).map(([k, v]) => msg(5, str(1, k), int(3, v), int(20, 2)));
  return msg(
    1,
    ...inputs.map((i) => str(1, i)),
    str(2, output),
    str(3, `${op}_${output}`),
    str(4, op),
    ...attributes,
  );
}

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
  return Uint8Array.from([
    ...int(1, 8),
    ...str(2, 'quarry-test'),
    ...graph,
    ...msg(8, str(1, ''), int(2, 13)),
  ]);
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

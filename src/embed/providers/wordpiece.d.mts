/** Types for wordpiece.mjs (plain JavaScript so the inference worker can load it without a TypeScript loader). */

export declare class TokenizerConfigError extends Error {}

export interface EncodedBatch {
  /** Row-major [batch, seqLen] token ids, padded with the pad id. */
  ids: BigInt64Array;
  /** Row-major [batch, seqLen]: 1 for real tokens, 0 for padding. */
  mask: BigInt64Array;
  batch: number;
  seqLen: number;
  /** Tokens per text, specials included. */
  lengths: number[];
}

export declare class WordPieceTokenizer {
  /** @param json a parsed Hugging Face tokenizer.json with a WordPiece model. Throws TokenizerConfigError. */
  constructor(json: unknown, opts?: { maxLength?: number });
  readonly vocab: Map<string, number>;
  readonly unkToken: string;
  readonly unkId: number;
  readonly prefix: string;
  readonly maxWordChars: number;
  readonly maxLength: number;
  readonly padId: number;
  readonly specials: { prefix: number[]; suffix: number[] };
  normalize(text: string): string;
  preTokenize(text: string): string[];
  wordIds(word: string): number[];
  encode(text: string): number[];
  encodeBatch(texts: string[]): EncodedBatch;
}

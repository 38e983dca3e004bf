/**
 * Token counting for the chunker and the answer budget: one tokenizer (o200k, via gpt-tokenizer, offline)
 * so "tokens" means the same thing everywhere in Quarry.
 */
import { lazyModule } from '../lazy.js';
import type { Tokenizer } from '../types.js';

const o200k = lazyModule<typeof import('gpt-tokenizer/encoding/o200k_base')>(
  'gpt-tokenizer/encoding/o200k_base',
);

/** Anything that measures text in tokens; the chunker takes one so tests can plug in a cheap counter. */
export type TokenCounter = (text: string) => number;

// Documents are data, not prompts: a literal "<|endoftext|>" in a file must count as ordinary text instead
// of making the tokenizer throw (its default is to reject special tokens).
const PLAIN_TEXT = { disallowedSpecial: new Set<string>() };

/** Tokens in `text` under o200k (the tokenizer behind every token budget in Quarry). */
export function countTokens(text: string): number {
  return text.length === 0 ? 0 : o200k().countTokens(text, PLAIN_TEXT);
}

/** The tokenizer chunks are measured with unless `components.tokenizer` replaces it (o200k). */
export const CHUNK_TOKENIZER: Tokenizer = {
  id: 'o200k_base',
  count: countTokens,
  encode: (text) => (text.length === 0 ? [] : o200k().encode(text, PLAIN_TEXT)),
};

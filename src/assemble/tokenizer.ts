/**
 * Token counting per generation model, for the context budget: OpenAI models get their own encoding (exact
 * counts); models whose tokenizer is not available offline are counted with cl100k and scaled up by a
 * documented safety factor, so the budget errs on the side of leaving room rather than overflowing.
 */
import { QuarryError } from '../errors.js';
import type { ChatMessage } from '../generate/llm/types.js';
import { lazyModule } from '../lazy.js';
import type { Tokenizer } from '../types.js';

// Each BPE table takes 150-300 ms to load: only the encodings a request actually counts with are loaded.
const cl100k = lazyModule<typeof import('gpt-tokenizer/encoding/cl100k_base')>(
  'gpt-tokenizer/encoding/cl100k_base',
);
const o200k = lazyModule<typeof import('gpt-tokenizer/encoding/o200k_base')>(
  'gpt-tokenizer/encoding/o200k_base',
);
const mapping = lazyModule<typeof import('gpt-tokenizer/mapping')>('gpt-tokenizer/mapping');

export type TokenEncoding = 'o200k_base' | 'cl100k_base';

/** The built-in tokenizer of a generation model: a `Tokenizer` that also says how exact its counts are. */
export interface ModelTokenizer extends Tokenizer {
  /** The model name as resolved (provider prefix removed). */
  readonly model: string;
  readonly encoding: TokenEncoding;
  /** True when counts are the model's own tokenizer; false when they are a scaled cl100k estimate. */
  readonly exact: boolean;
  /** Multiplier applied to cl100k counts (1 when exact). */
  readonly safetyFactor: number;
  count(text: string): number;
  /** Tokens of a whole chat request: every message's content plus its framing, plus the reply priming. */
  countMessages(messages: readonly ChatMessage[]): number;
}

/**
 * Chat framing as OpenAI's chat format encodes it: `<|im_start|>role<|im_sep|>content<|im_end|>` is four
 * tokens around the content, and the reply is primed with `<|im_start|>assistant<|im_sep|>` (three tokens).
 * Other providers frame messages differently but not more heavily; for them the factor applies on top.
 */
export const MESSAGE_FRAMING_TOKENS = 4;
export const REPLY_PRIMING_TOKENS = 3;

/**
 * Safety factors for models without an offline tokenizer, relative to cl100k. They are deliberately above
 * the ratios usually observed on English prose, because an overflow fails the request while a few hundred
 * unused tokens cost nothing:
 * - Claude: Anthropic's tokenizers produce roughly 1.1–1.3× cl100k's count on English, and newer ones up to a
 *   further 1.35×; 1.5 covers both.
 * - Llama 3+ (128k-entry tiktoken-style vocabulary, close to cl100k): 1.15.
 * - Llama 2, Mistral, Mixtral (32k SentencePiece vocabularies): 1.35.
 * - Gemini, Command, Qwen, DeepSeek and anything unknown: 1.5.
 * Non-Latin scripts can exceed these ratios on small-vocabulary models; set `safetyFactor` explicitly there.
 */
export const SAFETY_FACTORS: ReadonlyArray<{ pattern: RegExp; factor: number }> = [
  { pattern: /claude/i, factor: 1.5 },
  { pattern: /llama-?[3-9]/i, factor: 1.15 },
  { pattern: /llama|mistral|mixtral|codestral/i, factor: 1.35 },
];
export const DEFAULT_SAFETY_FACTOR = 1.5;

// Sources are data, not prompts: a literal "<|endoftext|>" in a document counts as ordinary text.
const PLAIN_TEXT = { disallowedSpecial: new Set<string>() };

const ENCODE: Record<TokenEncoding, (text: string) => number[]> = {
  o200k_base: (text) => (text.length === 0 ? [] : o200k().encode(text, PLAIN_TEXT)),
  cl100k_base: (text) => (text.length === 0 ? [] : cl100k().encode(text, PLAIN_TEXT)),
};

const ENCODERS: Record<TokenEncoding, (text: string) => number> = {
  o200k_base: (text) => (text.length === 0 ? 0 : o200k().countTokens(text, PLAIN_TEXT)),
  cl100k_base: (text) => (text.length === 0 ? 0 : cl100k().countTokens(text, PLAIN_TEXT)),
};

const OPENAI_O200K = /^(gpt-4o|gpt-4\.1|gpt-4\.5|gpt-5|o1|o3|o4|chatgpt-4o|gpt-oss|codex)/;
const OPENAI_CL100K = /^(gpt-4|gpt-3\.5|text-embedding-3|text-embedding-ada)/;

/** Model names as configured may carry a provider prefix (`openai:gpt-4o`, `openai/gpt-4o`). */
function bareModel(model: string): string {
  const trimmed = model.trim();
  const cut = Math.max(trimmed.lastIndexOf(':'), trimmed.lastIndexOf('/'));
  return (cut >= 0 ? trimmed.slice(cut + 1) : trimmed).toLowerCase();
}

function openAiEncoding(model: string): TokenEncoding | undefined {
  const mapped = (mapping().modelToEncodingMap as Record<string, string | undefined>)[model];
  if (mapped === 'o200k_base' || mapped === 'cl100k_base') return mapped;
  if (mapped !== undefined) return undefined; // p50k/r50k-era models: estimated like any other
  if (OPENAI_O200K.test(model)) return 'o200k_base';
  if (OPENAI_CL100K.test(model)) return 'cl100k_base';
  return undefined;
}

export interface TokenizerOptions {
  /** Overrides the factor for estimated models (≥ 1). Ignored for models counted exactly. */
  safetyFactor?: number;
}

export function tokenizerFor(model: string, opts: TokenizerOptions = {}): ModelTokenizer {
  if (typeof model !== 'string' || model.trim() === '') {
    throw new QuarryError('INVALID_CONFIG', 'a model name is required to count tokens', { model });
  }
  if (opts.safetyFactor !== undefined && !(opts.safetyFactor >= 1 && Number.isFinite(opts.safetyFactor))) {
    throw new QuarryError(
      'INVALID_CONFIG',
      `safetyFactor must be a finite number ≥ 1, got ${opts.safetyFactor}`,
      {
        safetyFactor: opts.safetyFactor,
      },
    );
  }
  const name = bareModel(model);
  const encoding = openAiEncoding(name);
  if (encoding !== undefined) return makeTokenizer(name, encoding, true, 1);
  const factor =
    opts.safetyFactor ?? SAFETY_FACTORS.find((f) => f.pattern.test(name))?.factor ?? DEFAULT_SAFETY_FACTOR;
  return makeTokenizer(name, 'cl100k_base', false, factor);
}

function makeTokenizer(
  model: string,
  encoding: TokenEncoding,
  exact: boolean,
  factor: number,
): ModelTokenizer {
  const raw = ENCODERS[encoding];
  const count = exact ? raw : (text: string): number => Math.ceil(raw(text) * factor);
  return {
    id: exact ? encoding : `${encoding} ×${factor}`,
    model,
    encoding,
    exact,
    safetyFactor: factor,
    count,
    // Token ids only where they are the model's own: a scaled estimate has no ids that match its count.
    ...(exact ? { encode: ENCODE[encoding] } : {}),
    countMessages: (messages) => countChatTokens(messages, count, factor),
  };
}

/**
 * Any tokenizer as the context budget uses it: its own message count, else content plus OpenAI's framing.
 */
export function countTokenizerMessages(tokenizer: Tokenizer, messages: readonly ChatMessage[]): number {
  return tokenizer.countMessages
    ? tokenizer.countMessages(messages)
    : countChatTokens(messages, (t) => tokenizer.count(t));
}

/** Chat request size from any text counter: content plus framing (scaled like the content when estimated). */
export function countChatTokens(
  messages: readonly ChatMessage[],
  countText: (text: string) => number,
  framingFactor = 1,
): number {
  let total = Math.ceil(REPLY_PRIMING_TOKENS * framingFactor);
  for (const m of messages) total += countText(m.content) + Math.ceil(MESSAGE_FRAMING_TOKENS * framingFactor);
  return total;
}

/**
 * What an LLM call cost, for traces and budgets: USD per million input/output tokens per model. A few
 * well-known list prices are built in (they change; configure `prices` to override or add models); a dated
 * model name such as `gpt-4o-mini-2024-07-18` takes the price of its longest listed prefix.
 */

export interface ModelPrice {
  /** USD per 1M input (prompt) tokens. */
  input: number;
  /** USD per 1M output (completion) tokens. */
  output: number;
}

export type PriceTable = Record<string, ModelPrice>;

/** Public list prices of standard (non-batch, non-cached) usage, checked 2025. */
export const DEFAULT_PRICES: Readonly<PriceTable> = Object.freeze({
  'gpt-4o': { input: 2.5, output: 10 },
  'gpt-4o-mini': { input: 0.15, output: 0.6 },
  'gpt-4.1': { input: 2, output: 8 },
  'gpt-4.1-mini': { input: 0.4, output: 1.6 },
  'gpt-4.1-nano': { input: 0.1, output: 0.4 },
  'o4-mini': { input: 1.1, output: 4.4 },
  'claude-3-5-haiku': { input: 0.8, output: 4 },
  'claude-haiku-4-5': { input: 1, output: 5 },
  'claude-3-5-sonnet': { input: 3, output: 15 },
  'claude-3-7-sonnet': { input: 3, output: 15 },
  'claude-sonnet-4': { input: 3, output: 15 },
  'claude-sonnet-4-5': { input: 3, output: 15 },
  'claude-opus-4': { input: 15, output: 75 },
  'claude-opus-4-1': { input: 15, output: 75 },
  'claude-opus-4-5': { input: 5, output: 25 },
  // Embedding models bill input tokens only.
  'text-embedding-3-small': { input: 0.02, output: 0 },
  'text-embedding-3-large': { input: 0.13, output: 0 },
  'text-embedding-ada-002': { input: 0.1, output: 0 },
});

/** The defaults with `overrides` on top. */
export function priceTable(overrides: PriceTable = {}): PriceTable {
  return { ...DEFAULT_PRICES, ...overrides };
}

/** Exact name first, else the longest listed name that is a `-`-separated prefix of it. */
export function priceFor(model: string, table: PriceTable): ModelPrice | undefined {
  const exact = table[model];
  if (exact) return exact;
  let best: string | undefined;
  for (const name of Object.keys(table)) {
    if (model.startsWith(`${name}-`) && (best === undefined || name.length > best.length)) best = name;
  }
  return best === undefined ? undefined : table[best];
}

/** USD for one call; undefined when no price is known for any of `models` (tried in order). */
export function costUsd(
  models: readonly string[],
  inputTokens: number,
  outputTokens: number,
  table: PriceTable,
): number | undefined {
  for (const m of models) {
    const p = priceFor(m, table);
    if (p) return (inputTokens * p.input + outputTokens * p.output) / 1_000_000;
  }
  return undefined;
}

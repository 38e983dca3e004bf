/**
 * The retrieval strategy router: per query, decide between the standard single-pass retrieval and the
 * multi-stage one (LLM rewriting, multi-query variants and decomposition of multi-hop questions, each
 * retrieved and fused). Repeated questions never reach it: the response cache answers them first.
 */

export type RetrievalStrategy = 'standard' | 'multi-stage';

export interface StrategyDecision {
  strategy: RetrievalStrategy;
  /** Why, for the trace. */
  reason: string;
}

// Questions that need facts from several lookups: comparisons, "both", chains of relative clauses.
const MULTI_HOP =
  /\b(?:compare|comparison|difference between|differences between|versus|vs\.?|both|as well as|and also|relationship between|before .+ after|after .+ before)\b/i;

/**
 * `mode`: `off` never rewrites; `always` rewrites every query; `auto` rewrites queries that look complex
 * (multi-hop wording, or long: at least `minWords` words). Without an LLM there is nothing to rewrite with.
 */
export function chooseStrategy(
  query: string,
  opts: { mode: 'off' | 'auto' | 'always'; llm: boolean; minWords: number },
): StrategyDecision {
  if (!opts.llm) return { strategy: 'standard', reason: 'no LLM configured' };
  if (opts.mode === 'off') return { strategy: 'standard', reason: 'query.rewrite.mode is off' };
  if (opts.mode === 'always') return { strategy: 'multi-stage', reason: 'query.rewrite.mode is always' };
  if (MULTI_HOP.test(query)) return { strategy: 'multi-stage', reason: 'multi-hop wording' };
  const words = query.trim().split(/\s+/).filter(Boolean).length;
  if (words >= opts.minWords) return { strategy: 'multi-stage', reason: `long query (${words} words)` };
  return { strategy: 'standard', reason: 'simple query' };
}

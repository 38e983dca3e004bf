/**
 * Stage "understand": the first stage of a search. Takes the raw query and the caller's filter and principal;
 * returns the query plan (normalized text, entities, intent, corrected terms) and the document predicate
 * retrieval applies inside top-k. Trace: `filter.compile`, `query.analyze`, and `query.expand` (RM3) or
 * `query.rewrite` (LLM) when those run. Degrades: an LLM rewrite that fails keeps the original query
 * (`query.rewrite`); understanding itself cannot degrade (an invalid filter is the caller's error).
 */

import type { Principal } from '../access/principal.js';
import type { QuarryConfig } from '../config/config.js';
import type { LlmProvider } from '../generate/llm/types.js';
import type { VisibleStatistics } from '../indexes/lexical/bm25-index.js';
import type { Retriever } from '../retrieve/bm25-retriever.js';
import { type CompiledFilter, compileFilter } from '../retrieve/filter.js';
import type { StageBudget, StageContext } from '../stage.js';
import type { StoredChunk } from '../types.js';
import { queryPlanDetail } from './fusion-weights.js';
import { type ExpandedQuery, expandQuery } from './prf.js';
import { rewriteQuery } from './rewrite.js';
import { type QueryPlan, understandQuery, type Vocabulary } from './understand.js';

export interface UnderstandInput {
  query: string;
  filter?: unknown;
  /** Who asks: decides which documents retrieval may return. */
  principal: Principal;
  /** Typo correction for this request (default: `query.typos`). */
  typos?: boolean | undefined;
}

export interface UnderstandDeps {
  config: QuarryConfig['query'];
  /** `retrieval.intentWeights`: whether the intent's suggested weights and k are applied (the trace says). */
  intentWeights: boolean;
  analyze(text: string): string[];
  /** The corpus vocabulary; with `allowGroup`, only words of the documents the search may return. */
  vocabulary(allowGroup?: (group: number) => boolean, statistics?: VisibleStatistics): Vocabulary;
  /**
   * The catalog's group predicate for a compiled filter and principal (fails closed on unknown documents).
   * Undefined = every document passes (no filter, and nothing is hidden from this principal).
   */
  predicate(
    filter: CompiledFilter | undefined,
    principal: Principal,
  ): ((group: number) => boolean) | undefined;
  /**
   * The documents hidden from `principal`, for BM25 statistics over what it may read; undefined = score
   * with the whole store's (nothing hidden, or `bm25.statistics: 'store'`).
   */
  statistics(principal: Principal): VisibleStatistics | undefined;
}

export interface Understood {
  plan: QueryPlan;
  /** Which documents (index groups) may be returned; undefined = all. */
  allowGroup: ((group: number) => boolean) | undefined;
  /** What BM25 leaves out of its statistics for this caller; undefined = store-wide statistics. */
  statistics: VisibleStatistics | undefined;
}

export function understand(input: UnderstandInput, deps: UnderstandDeps, ctx: StageContext): Understood {
  const { trace } = ctx;
  const filter = trace.stage(
    'filter.compile',
    () => (input.filter === undefined ? undefined : compileFilter(input.filter)),
    (f) => ({ filter: f?.source ?? null, principal: input.principal.kind }),
  );
  const allowGroup = deps.predicate(filter, input.principal);
  const statistics = deps.statistics(input.principal);
  const plan = trace.stage(
    'query.analyze',
    () =>
      understandQuery(
        input.query,
        { analyze: deps.analyze, vocabulary: deps.vocabulary(allowGroup, statistics) },
        { ...deps.config, typos: input.typos ?? deps.config.typos },
      ),
    (p) => queryPlanDetail(p, deps.intentWeights),
  );
  return { plan, allowGroup, statistics };
}

export interface ExpandDeps {
  config: QuarryConfig['query'];
  bm25: Retriever;
  analyze(text: string): string[];
  getChunks(ids: number[]): ReadonlyMap<number, StoredChunk>;
}

/** RM3 pseudo-relevance feedback: expand the plan's terms with those of the first-pass top chunks. */
export function expand(
  query: string,
  understood: Understood,
  deps: ExpandDeps,
  ctx: StageContext,
): ExpandedQuery {
  const cfg = deps.config;
  return ctx.trace.stage(
    'query.expand',
    () => {
      const { plan, allowGroup, statistics } = understood;
      const first = deps.bm25.retrieve({ query, terms: plan.terms, k: cfg.prfDocs, allowGroup, statistics });
      const chunks = deps.getChunks(first.candidates.map((c) => c.chunkId));
      const feedback = first.candidates.map((c) => {
        const chunk = chunks.get(c.chunkId);
        return {
          terms: chunk === undefined ? [] : deps.analyze(`${chunk.title} ${chunk.text}`),
          score: c.score,
        };
      });
      return expandQuery(plan.terms, feedback, {
        fbDocs: cfg.prfDocs,
        fbTerms: cfg.prfTerms,
        originalWeight: cfg.prfOriginalWeight,
      });
    },
    (x) => ({ expansion: x.expansion }),
  );
}

/**
 * Multi-stage rewriting: the LLM rewrites the query, adds variants and splits a multi-hop question. Returns
 * the distinct queries to retrieve (the original first). A failed rewrite returns only the original.
 */
export async function rewrite(
  query: string,
  reason: string,
  deps: { provider: LlmProvider; config: QuarryConfig['query']['rewrite'] },
  budget: StageBudget,
  ctx: StageContext,
): Promise<string[]> {
  const cfg = deps.config;
  const rewritten = await ctx.trace
    .stageAsync(
      'query.rewrite',
      () =>
        rewriteQuery(deps.provider, query, {
          variants: cfg.variants,
          maxSubQueries: cfg.maxSubQueries,
          maxTokens: cfg.maxTokens,
          signal: budget.signal,
        }),
      (r) => ({ strategy: 'multi-stage', reason, ...r }),
    )
    .finally(() => budget.release());
  if (rewritten.fallbackReason !== undefined)
    ctx.degrade('query.rewrite', `kept the original query: ${rewritten.fallbackReason}`);
  return [...new Set([query, rewritten.rewritten, ...rewritten.variants, ...rewritten.subQueries])];
}

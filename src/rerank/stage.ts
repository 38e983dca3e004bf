/**
 * Stage "rerank": re-scores a wide pool of the fused hits with the configured reranker (cross-encoder,
 * HTTP, LLM or learned-to-rank) under the smaller of its budget slice and `rerank.budgetMs`, and returns
 * the top k. Trace: `rerank` (status, pool, how candidates moved). Degrades: a reranker that throws or runs
 * out of time keeps the fused order, with a `rerank` degradation naming the reranker and why.
 */
import type { StageBudget, StageContext } from '../stage.js';
import type { SearchHit } from '../types.js';
import { type RerankStatus, rerankHits } from './run-rerank.js';
import type { Reranker, RerankRequest } from './types.js';

export interface RerankInput {
  query: string;
  hits: SearchHit[];
  k: number;
}

export interface RerankOptions {
  pool: number;
  budgetMs: number;
  earlyExitGap?: number | undefined;
  /** Receives the usage of each billed reranker call (the request's usage meter). */
  onUsage?: RerankRequest['onUsage'];
  /** The caller's hidden documents, for rerankers that read corpus statistics. */
  statistics?: RerankRequest['statistics'];
}

export interface Reranked {
  hits: SearchHit[];
  rerank: { reranker: string; status: RerankStatus; reason?: string };
}

export async function rerank(
  input: RerankInput,
  reranker: Reranker,
  opts: RerankOptions,
  slice: StageBudget,
  ctx: StageContext,
): Promise<Reranked> {
  const budgetMs = Math.min(slice.ms, opts.budgetMs);
  const signal = AbortSignal.any([slice.signal, AbortSignal.timeout(Math.max(1, Math.floor(budgetMs)))]);
  try {
    const outcome = await ctx.trace.stageAsync(
      'rerank',
      () =>
        rerankHits(reranker, input.query, input.hits, {
          pool: opts.pool,
          signal,
          earlyExitGap: opts.earlyExitGap,
          ...(opts.onUsage === undefined ? {} : { onUsage: opts.onUsage }),
          ...(opts.statistics === undefined ? {} : { statistics: opts.statistics }),
        }),
      (o) => ({
        reranker: o.reranker,
        status: o.status,
        ...(o.reason === undefined ? {} : { reason: o.reason }),
        pool: o.pool,
        budgetMs: Math.round(budgetMs),
        moves: o.moves.slice(0, Math.max(input.k, 20)),
      }),
    );
    if (outcome.status === 'timeout' || outcome.status === 'error')
      ctx.degrade(
        'rerank',
        `rerank ${outcome.status}: reranker "${outcome.reranker}" ` +
          `${outcome.status === 'timeout' ? `exceeded ${Math.round(budgetMs)} ms` : 'failed'}` +
          `${outcome.reason === undefined ? '' : ` (${outcome.reason})`}; the fused order was kept`,
      );
    return {
      hits: outcome.hits.slice(0, input.k).map((h, i) => ({ ...h, rank: i + 1 })),
      rerank: {
        reranker: outcome.reranker,
        status: outcome.status,
        ...(outcome.reason === undefined ? {} : { reason: outcome.reason }),
      },
    };
  } finally {
    slice.release();
  }
}

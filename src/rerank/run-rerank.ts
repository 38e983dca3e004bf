/**
 * The rerank stage as the pipeline runs it: take a wide pool of fused candidates (reranking only the final
 * top 5 could never fix recall), score them under the stage's latency budget, and on timeout or error keep the
 * fused order and say why. An early exit skips reranking when the fused top result is decisively ahead.
 */
import { abortable } from '../net/abort.js';
import type { SearchHit } from '../types.js';
import type { Reranker, RerankRequest } from './types.js';

export interface RerankStageOptions {
  /** Candidates handed to the reranker (the rest keep their fused order after them). */
  pool: number;
  /** Aborts when the stage's budget runs out. */
  signal?: AbortSignal;
  /**
   * Skip reranking when (top1 − top2) / |top1| of the fused scores is at least this (undefined = never skip).
   * Only meaningful for score scales where 0 means "no evidence" (BM25, min-max fused).
   */
  earlyExitGap?: number;
  /** The caller's hidden documents, for corpus statistics (see `RerankRequest.statistics`). */
  statistics?: RerankRequest['statistics'];
  /** Receives the usage of each billed call the reranker makes (see `RerankRequest.onUsage`). */
  onUsage?: RerankRequest['onUsage'];
}

export type RerankStatus = 'reranked' | 'skipped-decisive' | 'skipped-empty' | 'timeout' | 'error';

export interface RerankOutcome {
  hits: SearchHit[];
  status: RerankStatus;
  reranker: string;
  pool: number;
  /** For timeouts and errors: what happened (the fused order was kept). */
  reason?: string;
  /** How the pool moved: chunk id, fused rank, reranked rank, rerank score. */
  moves: Array<{ chunkId: number; fusedRank: number; rank: number; score: number }>;
}

export async function rerankHits(
  reranker: Reranker,
  query: string,
  hits: SearchHit[],
  opts: RerankStageOptions,
): Promise<RerankOutcome> {
  const pool = hits.slice(0, Math.max(1, opts.pool));
  const base = { reranker: reranker.id, pool: pool.length, moves: [] };
  if (pool.length < 2) return { ...base, hits, status: 'skipped-empty' };
  if (opts.earlyExitGap !== undefined && decisive(pool, opts.earlyExitGap))
    return { ...base, hits, status: 'skipped-decisive' };
  let scores: Awaited<ReturnType<Reranker['rerank']>>;
  try {
    if (opts.signal?.aborted) throw opts.signal.reason;
    scores = await abortable(
      reranker.rerank({
        query,
        hits: pool,
        signal: opts.signal,
        ...(opts.onUsage === undefined ? {} : { onUsage: opts.onUsage }),
        ...(opts.statistics === undefined ? {} : { statistics: opts.statistics }),
      }),
      opts.signal,
    );
  } catch (e) {
    const timedOut = opts.signal?.aborted === true;
    return {
      ...base,
      hits,
      status: timedOut ? 'timeout' : 'error',
      reason: e instanceof Error ? e.message : String(e),
    };
  }
  const byIndex = new Float64Array(pool.length).fill(Number.NEGATIVE_INFINITY);
  for (const s of scores)
    if (Number.isInteger(s.index) && s.index >= 0 && s.index < pool.length && Number.isFinite(s.score))
      byIndex[s.index] = s.score;
  // Ties (and anything the reranker did not score) keep their fused order: a stable sort on the pool index.
  const order = pool.map((_, i) => i).sort((a, b) => byIndex[b]! - byIndex[a]! || a - b);
  const reranked = order.map((i, r) => {
    const h = pool[i]!;
    const score = byIndex[i]!;
    return {
      ...h,
      rank: r + 1,
      score: Number.isFinite(score) ? score : h.score,
      scores: { ...h.scores, fused: { score: h.score, rank: h.rank }, rerank: { score, rank: r + 1 } },
    };
  });
  const tail = hits.slice(pool.length).map((h, i) => ({ ...h, rank: pool.length + i + 1 }));
  return {
    ...base,
    hits: [...reranked, ...tail],
    status: 'reranked',
    moves: reranked.map((h) => ({
      chunkId: h.chunk.id,
      fusedRank: h.scores.fused!.rank,
      rank: h.rank,
      score: Math.round(h.score * 10000) / 10000,
    })),
  };
}

function decisive(pool: SearchHit[], gap: number): boolean {
  const a = pool[0]?.score;
  const b = pool[1]?.score;
  if (a === undefined || b === undefined || a <= 0) return false;
  return (a - b) / Math.abs(a) >= gap;
}

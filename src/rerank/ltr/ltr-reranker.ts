/**
 * The learning-to-rank reranker: extracts cheap features over the fused pool and scores each candidate with
 * the linear model. Runs in-process in a few milliseconds per 100 candidates, so it needs no latency budget of
 * its own beyond honouring the abort signal.
 */
import { QuarryError } from '../../errors.js';
import type { SearchHit } from '../../types.js';
import type { Reranker, RerankRequest, RerankScore } from '../types.js';
import { extractFeatures, type LtrDeps } from './features.js';
import { compileModel, type LtrModel, parseLtrModel } from './model.js';

export interface LtrRerankerOptions {
  /** Suffix of the reranker id (`ltr:<name>`); default `default`. */
  name?: string;
}

function aborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) {
    throw signal.reason instanceof Error ? signal.reason : new DOMException('rerank aborted', 'AbortError');
  }
}

/** A Reranker over a validated model (the model is re-validated here: it may come from anywhere). */
export function createLtrReranker(
  model: LtrModel,
  deps: LtrDeps,
  options: LtrRerankerOptions = {},
): Reranker {
  const compiled = compileModel(parseLtrModel(model));
  return {
    id: `ltr:${options.name ?? 'default'}`,
    async rerank(request: RerankRequest): Promise<RerankScore[]> {
      aborted(request.signal);
      if (request.hits.length === 0) return [];
      const s = request.statistics;
      // Corpus statistics as the caller sees them: hidden documents must not move its feature values.
      const d: LtrDeps =
        s === undefined || s.hiddenGroups.size === 0
          ? deps
          : { ...deps, idf: (t) => deps.idf(t, s), avgLengths: () => deps.avgLengths(s) };
      const { rows } = extractFeatures(request.query, request.hits, d);
      aborted(request.signal);
      return rows.map((row, index) => ({ index, score: compiled.score(row) }));
    },
  };
}

/** Hits reordered by reranker scores (ties keep the fused order), with ranks renumbered from 1. */
export function applyRerank(hits: readonly SearchHit[], scores: readonly RerankScore[]): SearchHit[] {
  const score = new Float64Array(hits.length).fill(Number.NEGATIVE_INFINITY);
  for (const s of scores) {
    if (!Number.isInteger(s.index) || s.index < 0 || s.index >= hits.length || !Number.isFinite(s.score)) {
      throw new QuarryError('INVALID_ARGUMENT', `reranker returned an invalid score for index ${s.index}`);
    }
    score[s.index] = s.score;
  }
  return hits
    .map((h, i) => ({ h, i }))
    .sort((a, b) => score[b.i]! - score[a.i]! || a.i - b.i)
    .map(({ h }, r) => ({ ...h, rank: r + 1 }));
}

/**
 * Stage "retrieve", one step per retriever: BM25 over the lexical index, dense over the configured
 * embedding model's vector index, and exact matching of routed entities. Each takes the understood query
 * (terms, normalized text, document predicate) and a depth, and returns its own ranked candidate list.
 * Trace: `retrieve.bm25`, `retrieve.prepare` (which dense model, whether it can run), `retrieve.dense`,
 * `retrieve.exact`. Degrades: dense that was asked for but cannot run (no trained or synced index, the
 * query embedding failed or ran out of time) is skipped with a `retrieve.dense` degradation, and the
 * other retrievers answer alone.
 */
import type { DenseModels, DenseUse, PendingQueryVector } from '../indexes/dense/dense-models.js';
import type { Bm25Params, VisibleStatistics } from '../indexes/lexical/bm25-index.js';
import type { QueryEntity } from '../query/understand.js';
import type { StageContext } from '../stage.js';
import type { Candidate, StoredChunk } from '../types.js';
import type { RetrieveResult, Retriever } from './bm25-retriever.js';
import { type ExactCandidate, retrieveExactMatches } from './exact-retriever.js';

/** Which documents (index groups) may be returned; undefined = all. */
export type GroupPredicate = ((group: number) => boolean) | undefined;

/** A retriever's ranked list, as fusion takes it. */
export type RetrievedList = Array<Candidate & { group: number }>;

const round = (x: number): number => Math.round(x * 10000) / 10000;

export interface Bm25StageInput {
  query: string;
  terms: string[];
  /** Per-term weights from query expansion. */
  weights?: number[] | undefined;
  depth: number;
  allowGroup: GroupPredicate;
  collapseDocuments?: boolean | undefined;
  /** Documents hidden from the caller, left out of the statistics (and the counts the trace shows). */
  statistics?: VisibleStatistics | undefined;
  /**
   * Show the counts BM25 scored with (document frequencies, N, avgdl, chunks matched, chunks filtered out)
   * in the trace. True for the store owner, and for anyone when the statistics are the caller's visible ones;
   * false for others under `bm25.statistics: 'store'`, where they would reveal that documents they may not
   * read contain the query's words.
   */
  storeStats: boolean;
}

export function retrieveBm25(
  input: Bm25StageInput,
  deps: { bm25: Retriever; params: Bm25Params },
  ctx: StageContext,
): RetrieveResult {
  return ctx.trace.stage(
    'retrieve.bm25',
    () =>
      deps.bm25.retrieve({
        query: input.query,
        terms: input.terms,
        ...(input.weights === undefined ? {} : { weights: input.weights }),
        k: input.depth,
        allowGroup: input.allowGroup,
        collapseDocuments: input.collapseDocuments,
        statistics: input.statistics,
      }),
    (r) => ({
      k: input.depth,
      params: deps.params,
      queryTerms: r.queryTerms,
      ...(input.storeStats
        ? {
            statistics: r.stats.statistics,
            documents: r.stats.documents,
            averageLengths: r.stats.averageLengths,
            termStats: r.stats.terms,
            matchedChunks: r.stats.matched,
            filteredOut: r.stats.filteredOut,
          }
        : { storeStats: 'withheld: counts over the whole store are shown to the store owner only' }),
      candidates: r.candidates.map((c) => ({ chunkId: c.chunkId, rank: c.rank, score: round(c.score) })),
    }),
  );
}

/**
 * Decide whether dense retrieval runs for this query (which model, whether its index and query vector are
 * there). Not ready means BM25 answers alone, and the result says so.
 */
export function prepareDense(
  normalized: string,
  deps: {
    dense: DenseModels;
    queryVectors?: ReadonlyMap<string, Float32Array> | undefined;
    pending?: PendingQueryVector | undefined;
  },
  ctx: StageContext,
): DenseUse {
  const use = ctx.trace.stage(
    'retrieve.prepare',
    () => deps.dense.prepare(normalized, deps.queryVectors, deps.pending),
    (u) => u.detail,
  );
  if (!use.ready) {
    const why = use.pending?.failure ?? String(use.detail.dense ?? 'unavailable');
    ctx.degrade(
      'retrieve.dense',
      `dense model "${use.model.name}" did not run (${why}); BM25 answered alone`,
    );
  }
  return use;
}

/** Dense top-`depth` for a prepared query; undefined when it could not run after all (degraded). */
export function retrieveDense(
  use: DenseUse,
  input: { normalized: string; depth: number; allowGroup: GroupPredicate },
  deps: { dense: DenseModels },
  ctx: StageContext,
): RetrievedList | undefined {
  const r = ctx.trace.stage(
    'retrieve.dense',
    () => {
      const found = deps.dense.retrieve(use, input.normalized, input.depth, input.allowGroup);
      return { ...found, hits: found.hits?.map((h, i) => ({ ...h, rank: i + 1, retriever: 'dense' })) };
    },
    (x) => ({
      k: input.depth,
      ...x.detail,
      candidates: (x.hits ?? []).map((c) => ({ chunkId: c.chunkId, rank: c.rank, score: round(c.score) })),
    }),
  );
  if (r.hits === undefined)
    ctx.degrade(
      'retrieve.dense',
      `dense model "${use.model.name}" did not run (${String(r.detail.skipped ?? 'no vectors')}); ` +
        'BM25 answered alone',
    );
  else if (use.pending?.syncFailure !== undefined)
    ctx.degrade(
      'retrieve.dense',
      `dense index "${use.model.name}" is behind the store (catch-up failed: ${use.pending.syncFailure})`,
    );
  return r.hits;
}

/** Chunks that contain a routed entity (error code, quoted phrase…) verbatim. */
export function retrieveExact(
  entities: QueryEntity[],
  input: { depth: number; allowGroup: GroupPredicate; statistics?: VisibleStatistics | undefined },
  deps: {
    bm25: Retriever;
    analyze(text: string): string[];
    getChunks(ids: number[]): ReadonlyMap<number, StoredChunk>;
  },
  ctx: StageContext,
): ExactCandidate[] {
  return ctx.trace.stage(
    'retrieve.exact',
    () =>
      retrieveExactMatches(
        { bm25: deps.bm25, analyze: deps.analyze, loadChunks: deps.getChunks },
        entities.map((e) => e.text),
        input.depth,
        input.allowGroup,
        input.statistics,
      ),
    (x) => ({
      entities,
      candidates: x.map((c) => ({ chunkId: c.chunkId, rank: c.rank, score: round(c.score) })),
    }),
  );
}

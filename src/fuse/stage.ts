/**
 * Stage "fuse": turns the retrievers' lists into one ranking. Hybrid retrieval fuses BM25, dense and exact
 * lists (RRF or score normalization, with per-retriever and per-doc-type weights); a single retriever's
 * list is kept as ranked, with exact matches promoted to the top; multi-stage retrieval fuses the lists of
 * every query phrasing with RRF. Freshness (time decay, newest version only) re-scores the result.
 * Trace: `fuse`, `freshness`. Does not degrade: with one list there is nothing to fuse, and it says so by
 * leaving `fused` false.
 */
import type { QuarryConfig } from '../config/config.js';
import type { FusionWeightsDecision } from '../query/fusion-weights.js';
import type { CatalogDocument } from '../retrieve/catalog.js';
import type { RetrievedList } from '../retrieve/stage.js';
import type { StageContext } from '../stage.js';
import type { SearchHit } from '../types.js';
import { applyFreshness, type FreshnessOptions } from './freshness.js';
import { fuse } from './fusion.js';

/** One candidate of the final ranking, with each retriever's rank and score. */
export interface RankedCandidate {
  chunkId: number;
  group: number;
  score: number;
  scores: SearchHit['scores'];
}

export interface FuseInput {
  lexical?: RetrievedList | undefined;
  dense?: RetrievedList | undefined;
  exact?: RetrievedList | undefined;
  /** Retriever weights to apply (the configured ones, or the query intent's), and why. */
  weights: FusionWeightsDecision;
  /** Candidates shown in the trace. */
  show: number;
  collapseDocuments?: boolean | undefined;
}

export interface Fused {
  ranked: RankedCandidate[];
  /** True when two retrievers' lists were fused (their hits may repeat a passage: dedupe after loading). */
  fused: boolean;
}

const round = (x: number): number => Math.round(x * 10000) / 10000;

export function fuseLists(
  input: FuseInput,
  deps: { config: QuarryConfig['retrieval']['fusion']; document(group: number): CatalogDocument | undefined },
  ctx: StageContext,
): Fused {
  const { lexical, dense, exact } = input;
  if (lexical === undefined || dense === undefined) return { ranked: single(input), fused: false };
  const fusion = deps.config;
  const fusedList = ctx.trace.stage(
    'fuse',
    () =>
      fuse(
        [
          { retriever: 'bm25', candidates: lexical },
          { retriever: 'dense', candidates: dense.map((d) => ({ ...d })) },
          ...(exact !== undefined && exact.length > 0 ? [{ retriever: 'exact', candidates: exact }] : []),
        ],
        {
          method: fusion.method,
          rrfK: fusion.rrfK,
          weights: { ...input.weights.applied, exact: 1 },
          weightsFor: (g) => {
            const t = deps.document(g)?.doc_type;
            return t === undefined ? undefined : fusion.byDocType[t];
          },
        },
      ),
    (f) => ({
      method: fusion.method,
      weights: input.weights,
      byDocType: fusion.byDocType,
      candidates: f
        .slice(0, input.show)
        .map((c) => ({ chunkId: c.chunkId, rank: c.rank, score: round(c.score), sources: c.sources })),
    }),
  );
  let ranked = fusedList.map((f) => ({
    chunkId: f.chunkId,
    group: f.group,
    score: f.score,
    scores: f.sources,
  }));
  if (input.collapseDocuments) {
    const seen = new Set<number>();
    ranked = ranked.filter((r) => !seen.has(r.group) && seen.add(r.group));
  }
  return { ranked, fused: true };
}

/** One retriever's list as ranked, exact matches first (in BM25 order), then the rest. */
function single(input: FuseInput): RankedCandidate[] {
  let only = input.lexical ?? input.dense ?? [];
  const name = input.lexical !== undefined ? 'bm25' : 'dense';
  const exact = input.exact;
  if (exact !== undefined && exact.length > 0) {
    const verbatim = new Set(exact.map((c) => c.chunkId));
    const byId = new Map(only.map((c) => [c.chunkId, c]));
    // An exact match BM25 ranked below depth joins too.
    only = [
      ...exact.map((c) => byId.get(c.chunkId) ?? { ...c, retriever: 'bm25' }),
      ...only.filter((c) => !verbatim.has(c.chunkId)),
    ];
  }
  return only.map((c) => ({
    chunkId: c.chunkId,
    group: c.group,
    score: c.score,
    scores: { [name]: { score: c.score, rank: c.rank } },
  }));
}

/** Time decay and newest-version-only over the ranking (a no-op when neither is configured). */
export function applyFreshnessStage(
  ranked: RankedCandidate[],
  freshness: FreshnessOptions,
  show: number,
  deps: { document(group: number): CatalogDocument | undefined },
  ctx: StageContext,
): RankedCandidate[] {
  if (!freshnessOn(freshness)) return ranked;
  return ctx.trace.stage(
    'freshness',
    () => applyFreshness(ranked, deps.document, freshness),
    (f) => ({ options: freshness, superseded: f.superseded, adjusted: f.adjusted.slice(0, show) }),
  ).ranked;
}

export function freshnessOn(f: FreshnessOptions): boolean {
  return f.halfLifeDays !== undefined || f.latestBy !== undefined;
}

/**
 * Multi-stage retrieval: fuse the hit lists of every phrasing of the query with RRF (a chunk many phrasings
 * agree on rises); `k` hits, one per document when `collapseDocuments`.
 */
export function fuseQueries(
  queries: string[],
  lists: SearchHit[][],
  opts: { rrfK: number; k: number; collapseDocuments?: boolean | undefined },
  ctx: StageContext,
): SearchHit[] {
  const byChunk = new Map<number, SearchHit>();
  for (const hits of lists) for (const h of hits) if (!byChunk.has(h.chunk.id)) byChunk.set(h.chunk.id, h);
  const fused = ctx.trace.stage(
    'fuse',
    () =>
      fuse(
        lists.map((hits, i) => ({
          retriever: `q${i}`,
          candidates: hits.map((h) => ({
            chunkId: h.chunk.id,
            group: 0,
            score: h.score,
            rank: h.rank,
            retriever: `q${i}`,
          })),
        })),
        { method: 'rrf', rrfK: opts.rrfK },
      ),
    (f) => ({
      method: 'rrf',
      queries,
      candidates: f
        .slice(0, Math.max(opts.k, 20))
        .map((c) => ({ chunkId: c.chunkId, rank: c.rank, score: round(c.score), sources: c.sources })),
    }),
  );
  let ranked = fused;
  if (opts.collapseDocuments) {
    const seen = new Set<string>();
    ranked = fused.filter((f) => {
      const doc = byChunk.get(f.chunkId)!.chunk.docId;
      return !seen.has(doc) && seen.add(doc) !== undefined;
    });
  }
  return ranked.slice(0, opts.k).map((f, i) => {
    const h = byChunk.get(f.chunkId)!;
    return { ...h, rank: i + 1, score: f.score, scores: { ...h.scores, ...f.sources } };
  });
}

/**
 * Retrieval-quality and latency metrics for Quarry's benchmarks. Ranking metrics follow trec_eval (as pytrec_eval
 * and BEIR use it) so our numbers can be compared with published ones; latency percentiles follow numpy's default.
 */

import { QuarryError } from '../errors.js';

/** Judgments: query id → doc id → relevance grade. A grade ≤ 0 means "judged, not relevant". */
export type Qrels = Map<string, Map<string, number>>;

export interface ScoredDoc {
  docId: string;
  score: number;
}

/** A run: query id → retrieved documents with scores, in any order (they are ranked by {@link rankDocs}). */
export type Run = Map<string, ScoredDoc[]>;

/**
 * A per-query metric. `ranking` is either doc ids already in rank order (rank = position) or scored docs, which
 * are ranked with {@link rankDocs}. `judgments` are the query's qrels (undefined = nothing judged).
 */
export type QueryMetric = (
  ranking: readonly string[] | readonly ScoredDoc[],
  judgments: ReadonlyMap<string, number> | undefined,
) => number;

export type MetricKind = 'ndcg' | 'recall' | 'mrr' | 'hit' | 'precision';
/** A metric name as used in specs and results, e.g. `ndcg@10`, `recall@100`, `mrr@10`, `hit@5`, `precision@10`. */
export type MetricName = `${MetricKind}@${number}`;

/**
 * trec_eval's docno order: compares like C `strcmp` on UTF-8 bytes, which is code-point order. Plain `<` on JS
 * strings compares UTF-16 code units and disagrees for astral characters vs U+E000–U+FFFF.
 */
function compareCodePoints(a: string, b: string): number {
  const ia = a[Symbol.iterator]();
  const ib = b[Symbol.iterator]();
  for (;;) {
    const x = ia.next();
    const y = ib.next();
    if (x.done) return y.done ? 0 : -1;
    if (y.done) return 1;
    const cx = x.value.codePointAt(0)!;
    const cy = y.value.codePointAt(0)!;
    if (cx !== cy) return cx < cy ? -1 : 1;
  }
}

/**
 * Ranks a scored list the way trec_eval does (a sorted copy; the input is untouched):
 * - score descending;
 * - ties broken by doc id DESCENDING in byte order (trec_eval's `comp_sim_docno`), so with equal scores `b`
 *   ranks above `a` and `"9"` above `"10"`. Input order never matters, which makes runs reproducible.
 * - Duplicate doc ids keep only their best-ranked occurrence; later copies are dropped and take no rank. trec_eval
 *   itself rejects a run with duplicates and pytrec_eval's dict input cannot express them; keeping the best one
 *   is what a chunk-level retriever needs when its hits are mapped to documents (a doc ranks at its best chunk).
 * NaN scores are rejected: they make the order undefined.
 */
export function rankDocs(list: readonly ScoredDoc[]): string[] {
  for (const d of list) {
    if (Number.isNaN(d.score)) {
      throw new QuarryError('INVALID_ARGUMENT', `score of document "${d.docId}" is NaN`, { docId: d.docId });
    }
  }
  const sorted = [...list].sort((a, b) =>
    a.score !== b.score ? b.score - a.score : compareCodePoints(b.docId, a.docId),
  );
  return dedupe(sorted.map((d) => d.docId));
}

/** Keeps the first occurrence of every id (the best rank). */
function dedupe(ids: readonly string[]): string[] {
  const seen = new Set<string>();
  const out: string[] = [];
  for (const id of ids) {
    if (seen.has(id)) continue;
    seen.add(id);
    out.push(id);
  }
  return out;
}

function toRanking(ranking: readonly string[] | readonly ScoredDoc[]): string[] {
  if (ranking.length === 0) return [];
  if (typeof ranking[0] === 'string') return dedupe(ranking as readonly string[]);
  return rankDocs(ranking as readonly ScoredDoc[]);
}

function checkK(k: number): void {
  if (!Number.isInteger(k) || k < 1) {
    throw new QuarryError('INVALID_ARGUMENT', `metric cutoff must be a positive integer, got ${k}`, { k });
  }
}

/** Relevance grade of a doc; unjudged = 0. */
function grade(judgments: ReadonlyMap<string, number> | undefined, docId: string): number {
  return judgments?.get(docId) ?? 0;
}

/** Number of judged-relevant docs (grade > 0, like trec_eval's default relevance_level 1 for integer grades). */
function countRelevant(judgments: ReadonlyMap<string, number> | undefined): number {
  let n = 0;
  if (judgments) for (const g of judgments.values()) if (g > 0) n++;
  return n;
}

/**
 * trec_eval `ndcg_cut_k`: DCG@k = Σ_{rank ≤ k} grade / log2(rank + 1) with linear gain (grade ≤ 0 gains 0);
 * IDCG@k is the same sum over all judged-relevant grades sorted descending, whether retrieved or not. 0 when the
 * query has no relevant judgment. Sums run in rank order, like trec_eval, so results match it to the last bits.
 */
export function ndcgAt(k: number): QueryMetric {
  checkK(k);
  return (ranking, judgments) => {
    const ideal: number[] = [];
    if (judgments) for (const g of judgments.values()) if (g > 0) ideal.push(g);
    if (ideal.length === 0) return 0;
    ideal.sort((a, b) => b - a);
    let idcg = 0;
    for (let i = 0; i < Math.min(k, ideal.length); i++) idcg += ideal[i]! / Math.log2(i + 2);
    const ranked = toRanking(ranking);
    let dcg = 0;
    for (let i = 0; i < Math.min(k, ranked.length); i++) {
      const g = grade(judgments, ranked[i]!);
      if (g > 0) dcg += g / Math.log2(i + 2);
    }
    return dcg / idcg;
  };
}

/** trec_eval `recall_k`: relevant docs in the top k / all judged-relevant docs (0 when there are none). */
export function recallAt(k: number): QueryMetric {
  checkK(k);
  return (ranking, judgments) => {
    const total = countRelevant(judgments);
    if (total === 0) return 0;
    return relevantInTop(toRanking(ranking), judgments, k) / total;
  };
}

/** trec_eval `P_k`: relevant docs in the top k / k — always divided by k, even when fewer than k were returned. */
export function precisionAt(k: number): QueryMetric {
  checkK(k);
  return (ranking, judgments) => relevantInTop(toRanking(ranking), judgments, k) / k;
}

/** MRR@k as BEIR computes it: 1 / rank of the first relevant doc within the top k, else 0. */
export function mrrAt(k: number): QueryMetric {
  checkK(k);
  return (ranking, judgments) => {
    const ranked = toRanking(ranking);
    for (let i = 0; i < Math.min(k, ranked.length); i++) {
      if (grade(judgments, ranked[i]!) > 0) return 1 / (i + 1);
    }
    return 0;
  };
}

/** Hit@k (success@k): 1 if any relevant doc is in the top k, else 0. */
export function hitAt(k: number): QueryMetric {
  checkK(k);
  return (ranking, judgments) => (relevantInTop(toRanking(ranking), judgments, k) > 0 ? 1 : 0);
}

function relevantInTop(
  ranked: readonly string[],
  judgments: ReadonlyMap<string, number> | undefined,
  k: number,
): number {
  let n = 0;
  for (let i = 0; i < Math.min(k, ranked.length); i++) if (grade(judgments, ranked[i]!) > 0) n++;
  return n;
}

const FACTORIES: Record<MetricKind, (k: number) => QueryMetric> = {
  ndcg: ndcgAt,
  recall: recallAt,
  mrr: mrrAt,
  hit: hitAt,
  precision: precisionAt,
};

/** Parses a metric name such as `ndcg@10` into its per-query function. */
export function metricByName(name: string): QueryMetric {
  const m = /^(ndcg|recall|mrr|hit|precision)@([1-9]\d*)$/.exec(name);
  if (!m) {
    throw new QuarryError(
      'INVALID_ARGUMENT',
      `unknown metric "${name}" (expected ndcg|recall|mrr|hit|precision@k, e.g. ndcg@10)`,
      { metric: name },
    );
  }
  return FACTORIES[m[1] as MetricKind](Number(m[2]));
}

export interface EvaluationResult {
  /** Mean of every requested metric over the evaluated queries, keyed by metric name (`ndcg@10`, …). */
  mean: Record<string, number>;
  /** Per-query values for every evaluated query (in qrels order), keyed by metric name. */
  perQuery: Map<string, Record<string, number>>;
  /** Number of evaluated queries: those with at least one relevant judgment. */
  queryCount: number;
  /** Evaluated queries that the run has no entry for; they scored 0 on every metric. */
  missingFromRun: string[];
}

/**
 * Scores a run against qrels. The evaluated queries are exactly those with ≥ 1 relevant judgment (grade > 0):
 * - queries in the run but not in the qrels are ignored (like trec_eval);
 * - queries whose judgments are all ≤ 0 are excluded: no metric is defined for them (trec_eval would score them 0
 *   and pull the mean down);
 * - judged queries missing from the run score 0 on every metric (like `trec_eval -c`; pytrec_eval/BEIR instead
 *   average over the run's queries only, which flatters a run that skips hard queries).
 * With no evaluated query the means are 0.
 */
export function evaluateRun(
  qrels: ReadonlyMap<string, ReadonlyMap<string, number>>,
  run: ReadonlyMap<string, readonly ScoredDoc[]>,
  spec: readonly string[],
): EvaluationResult {
  const names = [...new Set(spec)];
  const metrics = names.map((name) => [name, metricByName(name)] as const);
  const sums = new Map<string, number>(names.map((n) => [n, 0]));
  const perQuery = new Map<string, Record<string, number>>();
  const missingFromRun: string[] = [];

  for (const [qid, judgments] of qrels) {
    if (countRelevant(judgments) === 0) continue;
    const list = run.get(qid);
    if (list === undefined) missingFromRun.push(qid);
    const ranked = rankDocs(list ?? []); // ranked once, shared by every metric
    const values: Record<string, number> = {};
    for (const [name, fn] of metrics) {
      const v = fn(ranked, judgments);
      values[name] = v;
      sums.set(name, sums.get(name)! + v);
    }
    perQuery.set(qid, values);
  }

  const queryCount = perQuery.size;
  const mean: Record<string, number> = {};
  for (const name of names) mean[name] = queryCount === 0 ? 0 : sums.get(name)! / queryCount;
  return { mean, perQuery, queryCount, missingFromRun };
}

/**
 * Percentiles by linear interpolation between closest ranks — numpy's default (`method="linear"`, R type 7):
 * on the sorted samples x[0..n-1], percentile p (0–100) sits at h = (n − 1)·p/100 and equals
 * x[⌊h⌋] + (h − ⌊h⌋)·(x[⌊h⌋+1] − x[⌊h⌋]). So p0 = min, p100 = max, and p50 of an even count is the mid-point.
 * Throws on an empty sample, a non-finite sample, or p outside [0, 100].
 */
export function percentiles(samples: readonly number[], ps: readonly number[]): number[] {
  if (samples.length === 0) throw new QuarryError('INVALID_ARGUMENT', 'percentiles of an empty sample');
  for (const s of samples) {
    if (!Number.isFinite(s)) throw new QuarryError('INVALID_ARGUMENT', `sample is not a finite number: ${s}`);
  }
  const x = [...samples].sort((a, b) => a - b);
  return ps.map((p) => {
    if (!(p >= 0 && p <= 100)) {
      throw new QuarryError('INVALID_ARGUMENT', `percentile must be within [0, 100], got ${p}`, { p });
    }
    const h = ((x.length - 1) * p) / 100;
    const lo = Math.floor(h);
    const below = x[lo]!;
    const above = x[Math.min(lo + 1, x.length - 1)]!;
    return below + (h - lo) * (above - below);
  });
}

export interface LatencySummary {
  p50: number;
  p95: number;
  p99: number;
  mean: number;
  max: number;
  count: number;
}

/** Summary of latency samples in milliseconds; percentiles as in {@link percentiles}. Throws on no samples. */
export function latencySummary(ms: readonly number[]): LatencySummary {
  const [p50, p95, p99] = percentiles(ms, [50, 95, 99]) as [number, number, number];
  let sum = 0;
  let max = -Infinity;
  for (const v of ms) {
    sum += v;
    if (v > max) max = v;
  }
  return { p50, p95, p99, mean: sum / ms.length, max, count: ms.length };
}

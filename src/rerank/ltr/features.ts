/**
 * Learning-to-rank features: cheap per query–chunk signals computed over a reranking pool (the fused top
 * 50–100). The linear model in model.ts weighs them; train.ts learns the weights from judgments. Scores whose
 * scale varies from query to query are min-max normalized within the pool so one weight fits every query.
 */

import type { VisibleStatistics } from '../../indexes/lexical/bm25-index.js';
import { expandQuery } from '../../query/prf.js';
import { extractEntities } from '../../query/understand.js';
import type { SearchHit } from '../../types.js';

/** Every feature the extractor computes, in vector order. A model uses any subset, by name. */
export const FEATURE_NAMES = [
  /** First-stage BM25 score (recomputed from the text when the hit has none), min-max within the pool. */
  'bm25',
  /** BM25 of the query over the title field (document title + section headings), min-max within the pool. */
  'bm25_title',
  /** BM25 of the query over the chunk body, min-max within the pool. */
  'bm25_body',
  /** Cosine of the query and chunk embeddings (raw; 0 without a dense index). */
  'dense',
  /** The same cosine, min-max within the pool. */
  'dense_norm',
  /** Cosine of the chunk with the centroid of the pool's top-5 vectors (dense pseudo-relevance), min-max. */
  'dense_prf',
  /** BM25 of the RM3-expanded query (feedback: the pool's top 5), min-max within the pool. */
  'rm3',
  /** idf-weighted share of distinct query terms found in the chunk (title or body). */
  'coverage',
  /** idf-weighted share of distinct query terms found in the title field. */
  'title_coverage',
  /** Matched distinct query terms / length of the shortest span covering them (0 when fewer than 2 match). */
  'proximity',
  /** Share of adjacent query-term bigrams that occur adjacent and in order in the chunk. */
  'phrase',
  /** Share of the query's exact entities (codes, ids, quoted phrases) found verbatim; 0 when it has none. */
  'entity',
  /** ln(fused rank): where the first stage put the chunk. */
  'fused_rank',
  /** ln(1 + chunk ordinal within its document): early chunks state what a document is about. */
  'ordinal',
  /** Section depth (number of headings above the chunk). */
  'depth',
  /** ln(1 + analyzed body terms). */
  'length',
  /** ln(1 + age in days (whole hours) of the document's updated_at, relative to the newest document in the pool). */
  'age',
  /** Cosine of the first part of a concatenated embedding (the built-in embedder's LSA topics), min-max. */
  'dense_lsa',
  /** Cosine of the second part (the built-in embedder's hashed character n-grams), min-max; 0 with one part. */
  'dense_ngram',
  /** BM25 over title and body with the classic k1 1.2, b 0.75 (more tf saturation room, more length penalty), min-max. */
  'bm25_classic',
  /** bm25 × coverage: lexical score counts most when the chunk also matches most of the query's idf mass. */
  'bm25_x_coverage',
  /** bm25 × dense_norm: agreement of the lexical and dense views. */
  'bm25_x_dense',
  /** bm25², dense_norm²: lets the linear model bend its response to the top of each pool. */
  'bm25_sq',
  'dense_sq',
  /** bm25 × ln(1 + distinct query terms), dense_norm × the same: long queries shift trust between views. */
  'bm25_x_qlen',
  'dense_x_qlen',
] as const;

export type FeatureName = (typeof FEATURE_NAMES)[number];

export const FEATURE_INDEX: ReadonlyMap<string, number> = new Map(FEATURE_NAMES.map((n, i) => [n, i]));

/** What feature extraction needs from the indexes, as plain functions (no index types leak in). */
export interface LtrDeps {
  /** The lexical index's analyzer (the same chain that indexed the chunks). */
  analyze(text: string): string[];
  /** idf of an analyzed term in the lexical index (over what `statistics`' caller may read, when given). */
  idf(term: string, statistics?: VisibleStatistics): number;
  /** Average analyzed length of the title field (title + headings) and of the body over the corpus. */
  avgLengths(statistics?: VisibleStatistics): { title: number; body: number };
  /** BM25 parameters (default k1 0.9, b 0.4 as the lexical index). */
  bm25?: { k1: number; b: number };
  /** Query embedding in the dense index's space; undefined when there is no dense index. */
  embedQuery?(query: string): Float32Array | undefined;
  /** Stored vectors of chunks (absent ids have none). */
  chunkVectors?(chunkIds: readonly number[]): ReadonlyMap<number, Float32Array>;
  /**
   * Dimensions of the parts a concatenated embedding is made of, in order (the built-in embedder: LSA, then
   * hashed n-grams). Each part gets its own cosine; absent, the per-part features are 0.
   */
  denseParts?(): readonly number[] | undefined;
  /**
   * Analyzed chunks by chunk id, reused across queries (chunk ids are never reused, so entries cannot go
   * stale). Analysis is most of the feature cost; the caller bounds the cache.
   */
  chunkCache?: ChunkTermsCache;
}

/** A chunk's analyzed title field and body with their term counts. */
export interface AnalyzedChunk {
  title: string[];
  body: string[];
  tf: { title: Map<string, number>; body: Map<string, number>; all: Map<string, number> };
}

/** A bounded first-in-first-out cache of analyzed chunks. */
export class ChunkTermsCache {
  private readonly entries = new Map<number, AnalyzedChunk>();
  constructor(readonly maxEntries = 20_000) {}
  get size(): number {
    return this.entries.size;
  }
  get(chunkId: number): AnalyzedChunk | undefined {
    return this.entries.get(chunkId);
  }
  set(chunkId: number, value: AnalyzedChunk): void {
    if (this.entries.size >= this.maxEntries) {
      const oldest = this.entries.keys().next();
      if (!oldest.done) this.entries.delete(oldest.value);
    }
    this.entries.set(chunkId, value);
  }
}

/** One pool's features: `rows[i]` is the vector of `hits[i]`, in FEATURE_NAMES order. */
export interface PoolFeatures {
  rows: Float64Array[];
}

const PRF_DOCS = 5;
const HOUR_MS = 3_600_000;

function counts(terms: readonly string[], into = new Map<string, number>()): Map<string, number> {
  for (const t of terms) into.set(t, (into.get(t) ?? 0) + 1);
  return into;
}

/** The title field as the lexical index builds it: document title, then section headings. */
export function titleText(hit: Pick<SearchHit, 'chunk'>): string {
  const c = hit.chunk;
  return c.sectionPath.length > 0 ? `${c.title} ${c.sectionPath.join(' ')}` : c.title;
}

/**
 * Lucene-style BM25 of weighted query terms against one field's term counts:
 * Σ w(t) · idf(t) · tf / (tf + k1 · (1 − b + b · dl / avgdl)).
 */
export function bm25Field(
  query: ReadonlyMap<string, number>,
  tf: ReadonlyMap<string, number>,
  length: number,
  avgLength: number,
  idf: (t: string) => number,
  params: { k1: number; b: number },
): number {
  const norm = params.k1 * (1 - params.b + (params.b * length) / (avgLength > 0 ? avgLength : 1));
  let s = 0;
  for (const [t, w] of query) {
    const f = tf.get(t);
    if (f !== undefined && f > 0) s += w * idf(t) * (f / (f + norm));
  }
  return s;
}

/** Shortest window of `terms` holding every distinct matched query term at least once; 0 if < 2 match. */
export function proximity(query: ReadonlySet<string>, terms: readonly string[]): number {
  const matched = new Set<string>();
  for (const t of terms) if (query.has(t)) matched.add(t);
  const need = matched.size;
  if (need < 2) return 0;
  const inWindow = new Map<string, number>();
  let have = 0;
  let best = Number.POSITIVE_INFINITY;
  let lo = 0;
  for (let hi = 0; hi < terms.length; hi++) {
    const t = terms[hi]!;
    if (!matched.has(t)) continue;
    const n = (inWindow.get(t) ?? 0) + 1;
    inWindow.set(t, n);
    if (n === 1) have++;
    while (have === need) {
      best = Math.min(best, hi - lo + 1);
      const l = terms[lo]!;
      lo++;
      if (!matched.has(l)) continue;
      const m = inWindow.get(l)! - 1;
      inWindow.set(l, m);
      if (m === 0) have--;
    }
  }
  return need / best;
}

/** Share of distinct adjacent query bigrams found adjacent and in order in `terms`; 0 for < 2 query terms. */
export function phraseMatch(queryTerms: readonly string[], terms: readonly string[]): number {
  const wanted = new Set<string>();
  for (let i = 0; i + 1 < queryTerms.length; i++) wanted.add(`${queryTerms[i]}\u0000${queryTerms[i + 1]}`);
  if (wanted.size === 0) return 0;
  const found = new Set<string>();
  for (let i = 0; i + 1 < terms.length; i++) {
    const g = `${terms[i]}\u0000${terms[i + 1]}`;
    if (wanted.has(g)) found.add(g);
  }
  return found.size / wanted.size;
}

function minMax(values: Float64Array | number[]): number[] {
  let lo = Number.POSITIVE_INFINITY;
  let hi = Number.NEGATIVE_INFINITY;
  for (const v of values) {
    if (v < lo) lo = v;
    if (v > hi) hi = v;
  }
  const span = hi - lo;
  return Array.from(values, (v) => (span > 0 ? (v - lo) / span : 0));
}

const CLASSIC_BM25 = { k1: 1.2, b: 0.75 };

/**
 * Cosines of a whole concatenated embedding and of its two parts [0, split) and [split, end), in one pass
 * (the vectors are long and this runs for every pool candidate). Written to out[0..2].
 */
function splitCosines(a: Float32Array, b: Float32Array, split: number, out: Float64Array): void {
  const sums = [0, 0, 0, 0, 0, 0];
  const n = Math.min(a.length, b.length);
  for (const [from, to, o] of [
    [0, Math.min(split, n), 0],
    [Math.min(split, n), n, 3],
  ] as const) {
    let dot = 0;
    let na = 0;
    let nb = 0;
    for (let i = from; i < to; i++) {
      dot += a[i]! * b[i]!;
      na += a[i]! * a[i]!;
      nb += b[i]! * b[i]!;
    }
    sums[o] = dot;
    sums[o + 1] = na;
    sums[o + 2] = nb;
  }
  const [d1, a1, b1, d2, a2, b2] = sums as [number, number, number, number, number, number];
  const ratio = (dot: number, na: number, nb: number) => (na > 0 && nb > 0 ? dot / Math.sqrt(na * nb) : 0);
  out[0] = ratio(d1 + d2, a1 + a2, b1 + b2);
  out[1] = ratio(d1, a1, b1);
  out[2] = ratio(d2, a2, b2);
}

function cosine(a: Float32Array | Float64Array, b: Float32Array | Float64Array): number {
  let dot = 0;
  let na = 0;
  let nb = 0;
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    dot += a[i]! * b[i]!;
    na += a[i]! * a[i]!;
    nb += b[i]! * b[i]!;
  }
  return na > 0 && nb > 0 ? dot / Math.sqrt(na * nb) : 0;
}

type ScoreName = 'bm25' | 'title' | 'body' | 'dense' | 'lsa' | 'ngram' | 'classic' | 'densePrf' | 'rm3';
type RawScores = Record<ScoreName, Float64Array>;
/** Each score min–max normalized over the pool. */
type NormScores = Record<ScoreName, ReturnType<typeof minMax>>;

/** The query as the features see it: analyzed terms, their counts, idf (memoized) and entities. */
interface QueryView {
  terms: string[];
  weights: Map<string, number>;
  set: Set<string>;
  idf(t: string): number;
  idfTotal: number;
  entities: string[];
}

/**
 * Features of every hit of one pool. `hits` are in fused order (hit.rank is the fused rank); the top of that
 * order is the feedback set for the pseudo-relevance features.
 */
export function extractFeatures(query: string, hits: readonly SearchHit[], deps: LtrDeps): PoolFeatures {
  const n = hits.length;
  const q = queryView(query, deps);
  const analyzed = analyzeHits(hits, deps);
  const raw = Object.fromEntries(
    ['bm25', 'title', 'body', 'dense', 'lsa', 'ngram', 'classic', 'densePrf', 'rm3'].map((k) => [
      k,
      new Float64Array(n),
    ]),
  ) as RawScores;
  lexicalScores(hits, analyzed, q, deps, raw);
  // Pseudo-relevance: the first stage's top chunks stand in for relevant ones (RM3 and the dense centroid).
  const feedbackCount = Math.min(PRF_DOCS, n);
  rm3Scores(analyzed, q, deps, feedbackCount, raw);
  denseScores(query, hits, deps, feedbackCount, raw);
  const age = ageFeature(hits);
  const norm = Object.fromEntries(Object.entries(raw).map(([k, v]) => [k, minMax(v)])) as NormScores;
  const rows: Float64Array[] = [];
  for (let i = 0; i < n; i++)
    rows.push(featureRow(i, hits[i]!, analyzed[i]!, q, { raw, norm, age: age[i]! }));
  return { rows };
}

function queryView(query: string, deps: LtrDeps): QueryView {
  const idfMemo = new Map<string, number>();
  const idf = (t: string): number => {
    let v = idfMemo.get(t);
    if (v === undefined) {
      v = deps.idf(t);
      idfMemo.set(t, v);
    }
    return v;
  };
  const terms = deps.analyze(query);
  const set = new Set(terms);
  let idfTotal = 0;
  for (const t of set) idfTotal += idf(t);
  const entities = extractEntities(query).map((e) => e.text.toLowerCase());
  return { terms, weights: counts(terms), set, idf, idfTotal, entities };
}

function analyzeHits(hits: readonly SearchHit[], deps: LtrDeps): AnalyzedChunk[] {
  return hits.map((h) => {
    const cached = deps.chunkCache?.get(h.chunk.id);
    if (cached !== undefined) return cached;
    const title = deps.analyze(titleText(h));
    const body = deps.analyze(h.chunk.text);
    const tfTitle = counts(title);
    const tfBody = counts(body);
    const a = { title, body, tf: { title: tfTitle, body: tfBody, all: counts(body, counts(title)) } };
    deps.chunkCache?.set(h.chunk.id, a);
    return a;
  });
}

/** BM25 per field, over both fields, and classic BM25; the first stage's BM25 score when it has one. */
function lexicalScores(
  hits: readonly SearchHit[],
  analyzed: readonly AnalyzedChunk[],
  q: QueryView,
  deps: LtrDeps,
  raw: RawScores,
): void {
  const params = deps.bm25 ?? { k1: 0.9, b: 0.4 };
  const avg = deps.avgLengths();
  const avgAll = avg.title + avg.body;
  for (let i = 0; i < hits.length; i++) {
    const a = analyzed[i]!;
    const len = a.title.length + a.body.length;
    raw.title[i] = bm25Field(q.weights, a.tf.title, a.title.length, avg.title, q.idf, params);
    raw.body[i] = bm25Field(q.weights, a.tf.body, a.body.length, avg.body, q.idf, params);
    const first = hits[i]!.scores.bm25?.score;
    raw.bm25[i] = first ?? bm25Field(q.weights, a.tf.all, len, avgAll, q.idf, params);
    raw.classic[i] = bm25Field(q.weights, a.tf.all, len, avgAll, q.idf, CLASSIC_BM25);
  }
}

/** BM25 of the RM3-expanded query, the top `feedbackCount` hits as feedback. */
function rm3Scores(
  analyzed: readonly AnalyzedChunk[],
  q: QueryView,
  deps: LtrDeps,
  feedbackCount: number,
  raw: RawScores,
): void {
  const params = deps.bm25 ?? { k1: 0.9, b: 0.4 };
  const avg = deps.avgLengths();
  const avgAll = avg.title + avg.body;
  const fbScores = minMax(raw.bm25);
  const expanded = expandQuery(
    q.terms,
    analyzed.slice(0, feedbackCount).map((a, i) => ({
      terms: [...a.title, ...a.body],
      // Feedback documents weigh by their normalized score; the floor keeps the weakest in the set.
      score: 0.5 + 0.5 * fbScores[i]!,
    })),
    { fbDocs: feedbackCount, fbTerms: 10, originalWeight: 0.5 },
  );
  const rm3Weights = new Map<string, number>();
  for (let i = 0; i < expanded.terms.length; i++) rm3Weights.set(expanded.terms[i]!, expanded.weights[i]!);
  for (let i = 0; i < analyzed.length; i++) {
    const a = analyzed[i]!;
    raw.rm3[i] = bm25Field(rm3Weights, a.tf.all, a.title.length + a.body.length, avgAll, q.idf, params);
  }
}

/** Query–chunk cosines (whole vector and, for the built-in layout, its LSA and n-gram parts) and the PRF centroid. */
function denseScores(
  query: string,
  hits: readonly SearchHit[],
  deps: LtrDeps,
  feedbackCount: number,
  raw: RawScores,
): void {
  const qv = deps.embedQuery?.(query);
  if (qv === undefined) return;
  const vectors = deps.chunkVectors?.(hits.map((h) => h.chunk.id));
  // Two parts only: the built-in embedder's layout. Other layouts keep the per-part features at 0.
  const parts = deps.denseParts?.();
  const split = parts !== undefined && parts.length === 2 && parts[0]! > 0 ? parts[0] : undefined;
  const cos = new Float64Array(3);
  let centroid: Float64Array | undefined;
  for (let i = 0; i < feedbackCount; i++) {
    const v = vectors?.get(hits[i]!.chunk.id);
    if (v === undefined) continue;
    centroid ??= new Float64Array(v.length);
    for (let d = 0; d < v.length; d++) centroid[d]! += v[d]!;
  }
  for (let i = 0; i < hits.length; i++) {
    const h = hits[i]!;
    const v = vectors?.get(h.chunk.id);
    raw.densePrf[i] = v !== undefined && centroid !== undefined ? cosine(centroid, v) : 0;
    if (v === undefined) {
      raw.dense[i] = h.scores.dense?.score ?? 0;
      continue;
    }
    splitCosines(qv, v, split ?? v.length, cos);
    raw.dense[i] = cos[0]!;
    if (split !== undefined) {
      raw.lsa[i] = cos[1]!;
      raw.ngram[i] = cos[2]!;
    }
  }
}

/** Age against the newest hit of the pool, in whole hours then days (log); 0 for an unknown date. */
function ageFeature(hits: readonly SearchHit[]): number[] {
  let newest = Number.NEGATIVE_INFINITY;
  const times = hits.map((h) => {
    const t = Date.parse(h.document.updated_at);
    if (Number.isFinite(t) && t > newest) newest = t;
    return t;
  });
  // Whole hours: documents written in one ingest differ by milliseconds, which is not age.
  return times.map((t) => (Number.isFinite(t) ? Math.log1p(Math.floor((newest - t) / HOUR_MS) / 24) : 0));
}

/** One hit's feature row, in FEATURE_NAMES order. */
function featureRow(
  i: number,
  h: SearchHit,
  a: AnalyzedChunk,
  q: QueryView,
  s: { raw: RawScores; norm: NormScores; age: number },
): Float64Array {
  const { raw, norm } = s;
  let covered = 0;
  let titleCovered = 0;
  for (const t of q.set) {
    if (a.tf.all.has(t)) covered += q.idf(t);
    if (a.tf.title.has(t)) titleCovered += q.idf(t);
  }
  const all = [...a.title, ...a.body];
  let entity = 0;
  if (q.entities.length > 0) {
    const text = `${titleText(h)}\n${h.chunk.text}`.toLowerCase();
    entity = q.entities.filter((e) => text.includes(e)).length / q.entities.length;
  }
  const qLen = Math.log1p(q.set.size);
  const row = new Float64Array(FEATURE_NAMES.length);
  row[0] = norm.bm25[i]!;
  row[1] = norm.title[i]!;
  row[2] = norm.body[i]!;
  row[3] = raw.dense[i]!;
  row[4] = norm.dense[i]!;
  row[5] = norm.densePrf[i]!;
  row[6] = norm.rm3[i]!;
  row[7] = q.idfTotal > 0 ? covered / q.idfTotal : 0;
  row[8] = q.idfTotal > 0 ? titleCovered / q.idfTotal : 0;
  row[9] = proximity(q.set, all);
  row[10] = phraseMatch(q.terms, all);
  row[11] = entity;
  row[12] = Math.log(Math.max(1, h.rank));
  row[13] = Math.log1p(Math.max(0, h.chunk.ordinal));
  row[14] = h.chunk.sectionPath.length;
  row[15] = Math.log1p(a.body.length);
  row[16] = s.age;
  row[17] = norm.lsa[i]!;
  row[18] = norm.ngram[i]!;
  row[19] = norm.classic[i]!;
  const lexical = norm.bm25[i]!;
  const dense = norm.dense[i]!;
  row[20] = lexical * row[7]!;
  row[21] = lexical * dense;
  row[22] = lexical * lexical;
  row[23] = dense * dense;
  row[24] = lexical * qLen;
  row[25] = dense * qLen;
  return row;
}

/**
 * Training the learning-to-rank model from judged reranking pools: pairwise logistic loss (RankNet) with L2
 * on standardized features, optionally refined by coordinate ascent directly on nDCG@10. Deterministic for a
 * given seed. Judgments come from BEIR qrels, a golden-set JSONL or a feedback JSONL (helpful / not helpful).
 */
import fs from 'node:fs';
import { z } from 'zod';
import { Prng } from '../../embed/local/linalg.js';
import { QuarryError } from '../../errors.js';
import { FEATURE_INDEX, FEATURE_NAMES, type FeatureName } from './features.js';
import { compileModel, type LtrModel } from './model.js';

/** One training query: its pool's feature rows, each candidate's grade and the query's ideal grades. */
export interface TrainingQuery {
  id: string;
  rows: Float64Array[];
  /** Relevance grade of each pool candidate (unjudged = 0). */
  grades: number[];
  /** Every judged-relevant grade of the query, retrieved or not (the nDCG ideal). */
  ideal: number[];
}

export type TrainingMethod = 'ranknet' | 'lambdarank' | 'ranknet+ca';

/**
 * Features a model is trained on unless told otherwise: the set chosen by cross-validation on scifact train
 * and nfcorpus dev (bench/ltr.ts --cv). The extractor computes more; they stay opt-in via `features`.
 */
export const DEFAULT_FEATURES: readonly FeatureName[] = [
  ...FEATURE_NAMES.slice(0, 17),
  'bm25_x_coverage',
  'bm25_x_dense',
];

export const TrainOptionsSchema = z.object({
  /**
   * `ranknet`: pairwise logistic loss; `lambdarank`: the same with pairs weighted by their nDCG@10 swap
   * gain; `ranknet+ca`: RankNet, then coordinate ascent on train nDCG@10.
   */
  method: z.enum(['ranknet', 'lambdarank', 'ranknet+ca']).default('lambdarank'),
  /** Features to use (default: DEFAULT_FEATURES). */
  features: z.array(z.string()).optional(),
  /** L2 penalty on the weights (per pair-averaged loss). */
  l2: z.number().min(0).default(1e-3),
  /** Full-batch Adam steps. */
  iterations: z.number().int().min(1).max(100_000).default(400),
  learningRate: z.number().positive().default(0.05),
  /** Pairs sampled per query at most (seeded), so queries with many judged documents do not dominate. */
  maxPairsPerQuery: z.number().int().min(1).default(500),
  seed: z.number().int().default(42),
  /** Coordinate-ascent rounds over all features (`ranknet+ca` only). */
  caRounds: z.number().int().min(1).max(50).default(3),
});
export type TrainOptions = z.input<typeof TrainOptionsSchema>;

export interface TrainResult {
  model: Pick<LtrModel, 'features' | 'weights' | 'bias' | 'normalization'>;
  pairs: number;
  queries: number;
  /** Mean nDCG@10 of the pools in first-stage order and after reranking with the learned model. */
  ndcgBefore: number;
  ndcgAfter: number;
  /** Pairwise loss at the end of the RankNet stage. */
  loss: number;
}

/** The embedder's seeded PRNG as a function, so pair sampling and coordinate order repeat exactly. */
export function seededRandom(seed: number): () => number {
  const prng = new Prng(seed);
  return () => prng.next();
}

function idealDcg(ideal: readonly number[], k: number): number {
  const sorted = ideal.filter((g) => g > 0).sort((a, b) => b - a);
  let idcg = 0;
  for (let i = 0; i < Math.min(k, sorted.length); i++) idcg += sorted[i]! / Math.log2(i + 2);
  return idcg;
}

/** nDCG@k (linear gain, as trec_eval) of candidates ordered by `scores`; ties keep pool order. */
export function ndcgOfScores(
  scores: ArrayLike<number>,
  grades: readonly number[],
  ideal: readonly number[],
  k = 10,
): number {
  const sortedIdeal = ideal.filter((g) => g > 0).sort((a, b) => b - a);
  let idcg = 0;
  for (let i = 0; i < Math.min(k, sortedIdeal.length); i++) idcg += sortedIdeal[i]! / Math.log2(i + 2);
  if (idcg === 0) return 0;
  const order = Array.from({ length: grades.length }, (_, i) => i).sort(
    (a, b) => scores[b]! - scores[a]! || a - b,
  );
  let dcg = 0;
  for (let r = 0; r < Math.min(k, order.length); r++) {
    const g = grades[order[r]!]!;
    if (g > 0) dcg += g / Math.log2(r + 2);
  }
  return dcg / idcg;
}

function firstStageNdcg(queries: readonly TrainingQuery[]): number {
  let s = 0;
  for (const q of queries)
    s += ndcgOfScores(
      q.rows.map((_, i) => -i),
      q.grades,
      q.ideal,
    );
  return queries.length === 0 ? 0 : s / queries.length;
}

/** Trains a linear ranker on judged pools. Queries without a relevant candidate in the pool add no pairs. */
export function trainLinearRanker(
  queries: readonly TrainingQuery[],
  options: TrainOptions = {},
): TrainResult {
  const opts = TrainOptionsSchema.parse(options);
  const names = opts.features ?? [...DEFAULT_FEATURES];
  const unknown = names.filter((f) => !FEATURE_INDEX.has(f));
  if (unknown.length > 0)
    throw new QuarryError('INVALID_ARGUMENT', `unknown features: ${unknown.join(', ')}`);
  const cols = names.map((f) => FEATURE_INDEX.get(f)!);
  const d = cols.length;

  // Standardize on every pool row, so weights are comparable and the learning rate fits all features.
  const mean = new Array<number>(d).fill(0);
  const sq = new Array<number>(d).fill(0);
  let count = 0;
  for (const q of queries)
    for (const row of q.rows) {
      count++;
      for (let j = 0; j < d; j++) mean[j]! += row[cols[j]!]!;
    }
  for (let j = 0; j < d; j++) mean[j] = count > 0 ? mean[j]! / count : 0;
  for (const q of queries)
    for (const row of q.rows) for (let j = 0; j < d; j++) sq[j]! += (row[cols[j]!]! - mean[j]!) ** 2;
  const std = sq.map((s) => {
    const v = count > 1 ? Math.sqrt(s / (count - 1)) : 0;
    // A (near-)constant feature carries no ranking signal; scaling it up would only amplify rounding noise.
    return v > 1e-6 ? v : 1;
  });
  const z = (row: Float64Array, j: number) => (row[cols[j]!]! - mean[j]!) / std[j]!;

  // Pairs as standardized difference vectors, each query weighted equally.
  const random = seededRandom(opts.seed);
  const diffs: Float64Array[] = [];
  const pairWeight: number[] = [];
  const pairQuery: number[] = [];
  const pairAt: Array<[number, number]> = [];
  const zrows = queries.map((q) => q.rows.map((row) => Float64Array.from(cols, (_, j) => z(row, j))));
  const idcg = queries.map((q) => idealDcg(q.ideal, 10));
  let activeQueries = 0;
  queries.forEach((q, qi) => {
    const pairs: Array<[number, number]> = [];
    for (let i = 0; i < q.rows.length; i++)
      for (let j = 0; j < q.rows.length; j++) if (q.grades[i]! > q.grades[j]!) pairs.push([i, j]);
    if (pairs.length === 0) return;
    activeQueries++;
    // Seeded partial Fisher–Yates: a uniform sample without replacement.
    const take = Math.min(pairs.length, opts.maxPairsPerQuery);
    for (let i = 0; i < take; i++) {
      const r = i + Math.floor(random() * (pairs.length - i));
      [pairs[i], pairs[r]] = [pairs[r]!, pairs[i]!];
    }
    for (const [a, b] of pairs.slice(0, take)) {
      const v = new Float64Array(d);
      for (let j = 0; j < d; j++) v[j] = zrows[qi]![a]![j]! - zrows[qi]![b]![j]!;
      diffs.push(v);
      pairWeight.push(1 / take);
      pairQuery.push(qi);
      pairAt.push([a, b]);
    }
  });
  const totalWeight = activeQueries;
  const lambda = opts.method === 'lambdarank';

  // Full-batch Adam on the mean per-query pairwise logistic loss + L2. LambdaRank weighs each pair by the
  // nDCG@10 change of swapping it in the current ranking, so effort goes to the top of the list.
  const w = new Float64Array(d);
  const m1 = new Float64Array(d);
  const m2 = new Float64Array(d);
  const grad = new Float64Array(d);
  const ranks = queries.map((q) => new Int32Array(q.rows.length));
  let loss = 0;
  const b1 = 0.9;
  const b2 = 0.999;
  for (let it = 1; it <= opts.iterations && diffs.length > 0; it++) {
    grad.fill(0);
    loss = 0;
    if (lambda) {
      for (let qi = 0; qi < queries.length; qi++) {
        const scores = zrows[qi]!.map((r) => {
          let x = 0;
          for (let j = 0; j < d; j++) x += w[j]! * r[j]!;
          return x;
        });
        const order = scores.map((_, i) => i).sort((a, b) => scores[b]! - scores[a]! || a - b);
        order.forEach((doc, r) => {
          ranks[qi]![doc] = r;
        });
      }
    }
    for (let p = 0; p < diffs.length; p++) {
      const v = diffs[p]!;
      let s = 0;
      for (let j = 0; j < d; j++) s += w[j]! * v[j]!;
      let pw = pairWeight[p]! / totalWeight;
      if (lambda) {
        const qi = pairQuery[p]!;
        const [a, b] = pairAt[p]!;
        const q = queries[qi]!;
        const ra = ranks[qi]![a]!;
        const rb = ranks[qi]![b]!;
        const disc = (r: number) => (r < 10 ? 1 / Math.log2(r + 2) : 0);
        pw *= (Math.abs((q.grades[a]! - q.grades[b]!) * (disc(ra) - disc(rb))) / (idcg[qi]! || 1)) * 10;
      }
      // log(1 + e^(−s)) and its derivative, computed stably for large |s|.
      loss += pw * (s > 0 ? Math.log1p(Math.exp(-s)) : -s + Math.log1p(Math.exp(s)));
      const g = -pw / (1 + Math.exp(s));
      for (let j = 0; j < d; j++) grad[j]! += g * v[j]!;
    }
    for (let j = 0; j < d; j++) {
      loss += 0.5 * opts.l2 * w[j]! ** 2;
      const gj = grad[j]! + opts.l2 * w[j]!;
      m1[j] = b1 * m1[j]! + (1 - b1) * gj;
      m2[j] = b2 * m2[j]! + (1 - b2) * gj * gj;
      const mh = m1[j]! / (1 - b1 ** it);
      const vh = m2[j]! / (1 - b2 ** it);
      w[j]! -= (opts.learningRate * mh) / (Math.sqrt(vh) + 1e-8);
    }
  }

  const weights = Array.from(w);
  if (opts.method === 'ranknet+ca')
    coordinateAscent(queries, cols, mean, std, weights, opts.caRounds, random);

  const model = {
    features: names,
    weights: weights.map(round6),
    bias: 0,
    normalization: { mean: mean.map(round6), std: std.map(round6) },
  };
  const compiled = compileModel({
    format: 'quarry-ltr',
    version: 1,
    ...model,
    trainedOn: {},
    metrics: {},
  });
  let after = 0;
  for (const q of queries)
    after += ndcgOfScores(
      q.rows.map((r) => compiled.score(r)),
      q.grades,
      q.ideal,
    );
  return {
    model,
    pairs: diffs.length,
    queries: activeQueries,
    ndcgBefore: firstStageNdcg(queries),
    ndcgAfter: queries.length === 0 ? 0 : after / queries.length,
    loss,
  };
}

function round6(x: number): number {
  return Math.round(x * 1e6) / 1e6;
}

/**
 * Coordinate ascent (Metzler & Croft 2007) on mean nDCG@10: move one weight at a time along a step ladder,
 * keep a move only when the metric improves. Starts from the RankNet weights, so it can only refine them.
 */
function coordinateAscent(
  queries: readonly TrainingQuery[],
  cols: number[],
  mean: number[],
  std: number[],
  weights: number[],
  rounds: number,
  random: () => number,
): void {
  const d = cols.length;
  const zrows = queries.map((q) =>
    q.rows.map((row) => Float64Array.from(cols, (c, j) => (row[c]! - mean[j]!) / std[j]!)),
  );
  const useful = queries.map((q) => q.grades.some((g) => g > 0));
  const evaluate = (w: number[]): number => {
    let s = 0;
    for (let qi = 0; qi < queries.length; qi++) {
      if (!useful[qi]) continue;
      const q = queries[qi]!;
      const scores = zrows[qi]!.map((r) => {
        let x = 0;
        for (let j = 0; j < d; j++) x += w[j]! * r[j]!;
        return x;
      });
      s += ndcgOfScores(scores, q.grades, q.ideal);
    }
    return s;
  };
  let best = evaluate(weights);
  const scale = Math.max(1e-3, ...weights.map(Math.abs));
  const steps = [0.5, 0.25, 0.1, 0.05, 0.02].map((s) => s * scale);
  for (let round = 0; round < rounds; round++) {
    let improved = false;
    const order = Array.from({ length: d }, (_, i) => i);
    for (let i = d - 1; i > 0; i--) {
      const r = Math.floor(random() * (i + 1));
      [order[i], order[r]] = [order[r]!, order[i]!];
    }
    for (const j of order) {
      for (const step of steps) {
        for (const dir of [1, -1]) {
          const trial = [...weights];
          trial[j] = weights[j]! + dir * step;
          const v = evaluate(trial);
          if (v > best + 1e-9) {
            best = v;
            weights[j] = trial[j]!;
            improved = true;
          }
        }
      }
    }
    if (!improved) break;
  }
}

/** Judgments keyed by query text: docId → grade (≤ 0 = judged not relevant). */
export type Judgments = Map<string, Map<string, number>>;

const GoldenLine = z.object({
  query: z.string().min(1),
  relevant: z.record(z.string(), z.number().refine(Number.isFinite)),
});
const FeedbackLine = z.object({ query: z.string().min(1), docId: z.string().min(1), helpful: z.boolean() });

function readJsonl<T>(file: string, schema: z.ZodType<T>, what: string): T[] {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    throw new QuarryError('DATASET', `cannot read ${what} ${file}`, { file }, e);
  }
  const out: T[] = [];
  text.split(/\r?\n/).forEach((line, i) => {
    if (line.trim() === '') return;
    let json: unknown;
    try {
      json = JSON.parse(line);
    } catch (e) {
      throw new QuarryError('DATASET', `${file}:${i + 1}: malformed JSON`, { file, line: i + 1 }, e);
    }
    const parsed = schema.safeParse(json);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      throw new QuarryError(
        'DATASET',
        `${file}:${i + 1}: invalid ${what} line (${issue?.path.join('.') || '(root)'}: ${issue?.message})`,
        { file, line: i + 1 },
      );
    }
    out.push(parsed.data);
  });
  return out;
}

/** Golden set: `{"query": "...", "relevant": {"<docId>": grade}}` per line; repeated queries merge. */
export function readGoldenSet(file: string): Judgments {
  const out: Judgments = new Map();
  for (const l of readJsonl(file, GoldenLine, 'golden-set')) {
    const m = out.get(l.query) ?? new Map<string, number>();
    for (const [doc, g] of Object.entries(l.relevant)) m.set(doc, g);
    out.set(l.query, m);
  }
  return out;
}

/**
 * Feedback: `{"query","docId","helpful": bool}` per line. A document's grade is 1 when most of its votes say
 * helpful, else 0 (judged, not relevant); ties count as not helpful.
 */
export function readFeedback(file: string): Judgments {
  return judgmentsFromVotes(readJsonl(file, FeedbackLine, 'feedback'));
}

/** Feedback votes (from a file or recorded in a store) as judgments, by majority per query and document. */
export function judgmentsFromVotes(
  votes: Iterable<{ query: string; docId: string; helpful: boolean }>,
): Judgments {
  const tally = new Map<string, Map<string, number>>();
  for (const v of votes) {
    const m = tally.get(v.query) ?? new Map<string, number>();
    m.set(v.docId, (m.get(v.docId) ?? 0) + (v.helpful ? 1 : -1));
    tally.set(v.query, m);
  }
  const out: Judgments = new Map();
  for (const [q, m] of tally) out.set(q, new Map([...m].map(([doc, v]) => [doc, v > 0 ? 1 : 0])));
  return out;
}

/**
 * Pseudo-relevance feedback (RM3, as in Anserini): assume the first-pass top documents are relevant, take
 * the terms that carry the most probability mass in them, and interpolate them with the original query.
 * It helps recall-oriented collections and can hurt precise ones, so it is off by default and measured.
 */

export interface PrfOptions {
  /** Feedback documents from the first pass. */
  fbDocs: number;
  /** Expansion terms added. */
  fbTerms: number;
  /** Weight of the original query in the interpolation (Anserini's default 0.5). */
  originalWeight: number;
}

export const DEFAULT_PRF: PrfOptions = { fbDocs: 10, fbTerms: 10, originalWeight: 0.5 };

export interface FeedbackDocument {
  terms: string[];
  score: number;
}

export interface ExpandedQuery {
  terms: string[];
  weights: number[];
  expansion: Array<{ term: string; weight: number }>;
}

/**
 * RM3: P(t|R) ∝ Σ_D P(t|D)·P(D|q), with P(t|D) = tf/|D| and P(D|q) from the normalized first-pass scores;
 * then q' = λ·q + (1 − λ)·top-m(P(t|R)), both sides normalized to sum to 1.
 */
export function expandQuery(
  original: string[],
  feedback: FeedbackDocument[],
  opts: PrfOptions = DEFAULT_PRF,
): ExpandedQuery {
  const docs = feedback.slice(0, opts.fbDocs).filter((d) => d.terms.length > 0 && d.score > 0);
  if (original.length === 0 || docs.length === 0) {
    return { terms: original, weights: original.map(() => 1), expansion: [] };
  }
  const scoreSum = docs.reduce((a, d) => a + d.score, 0);
  const rel = new Map<string, number>();
  for (const d of docs) {
    const pd = d.score / scoreSum;
    const tf = new Map<string, number>();
    for (const t of d.terms) tf.set(t, (tf.get(t) ?? 0) + 1);
    for (const [t, n] of tf) rel.set(t, (rel.get(t) ?? 0) + (n / d.terms.length) * pd);
  }
  const top = [...rel].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1)).slice(0, opts.fbTerms);
  const topSum = top.reduce((a, [, w]) => a + w, 0) || 1;
  const qCounts = new Map<string, number>();
  for (const t of original) qCounts.set(t, (qCounts.get(t) ?? 0) + 1);
  const weights = new Map<string, number>();
  for (const [t, n] of qCounts) weights.set(t, (opts.originalWeight * n) / original.length);
  for (const [t, w] of top) weights.set(t, (weights.get(t) ?? 0) + ((1 - opts.originalWeight) * w) / topSum);
  const terms = [...weights.keys()];
  return {
    terms,
    weights: terms.map((t) => weights.get(t)!),
    expansion: top.map(([term, w]) => ({ term, weight: w / topSum })),
  };
}

/**
 * Sentence-level compression for context assembly: inside a source, keep the sentences that matter for the
 * query (query-term overlap weighted by idf, plus a cheap neighbour of a strong hit for continuity) so more
 * distinct evidence fits the window. Works on offsets only, so kept text stays an exact slice of the source.
 */

/** A sentence of a text, by offsets into that text (end exclusive, trimmed of surrounding whitespace). */
export interface SentenceSpan {
  start: number;
  end: number;
}

export interface ScoredSentence extends SentenceSpan {
  /** Σ idf of the distinct query terms the sentence contains. */
  score: number;
}

export interface CompressionDeps {
  /** The index's analyzer: text → normalized terms (the same as the query was analyzed with). */
  analyze(text: string): string[];
  /** Inverse document frequency of an analyzed term (0 for unknown terms is fine). */
  idf(term: string): number;
  countTokens(text: string): number;
}

export interface CompressionOptions {
  /** A sentence is relevant when its score reaches this share of the best sentence's score. */
  keepRatio: number;
  /** A sentence is a strong hit at this share of the best score; its neighbours may be kept too. */
  strongRatio: number;
  /** A neighbour of a strong hit is kept only when it costs at most this many tokens ("when cheap"). */
  neighbourMaxTokens: number;
}

export const DEFAULT_COMPRESSION: CompressionOptions = {
  keepRatio: 0.3,
  strongRatio: 0.6,
  neighbourMaxTokens: 40,
};

// Made on first use: building a segmenter loads ICU break data (~15 ms), which commands that never
// compress (search, stats) should not pay at start.
let segmenter: Intl.Segmenter | undefined;
const SPACE = /\s/;

export function splitSentences(text: string): SentenceSpan[] {
  const out: SentenceSpan[] = [];
  segmenter ??= new Intl.Segmenter('en', { granularity: 'sentence' });
  for (const seg of segmenter.segment(text)) {
    let s = seg.index;
    let e = seg.index + seg.segment.length;
    while (s < e && SPACE.test(text[s]!)) s++;
    while (e > s && SPACE.test(text[e - 1]!)) e--;
    if (e > s) out.push({ start: s, end: e });
  }
  return out;
}

/** Query terms with their weights; terms the index has never seen weigh nothing. */
export function queryWeights(
  question: string,
  deps: Pick<CompressionDeps, 'analyze' | 'idf'>,
): Map<string, number> {
  const weights = new Map<string, number>();
  for (const term of deps.analyze(question)) {
    if (weights.has(term)) continue;
    const w = deps.idf(term);
    weights.set(term, Number.isFinite(w) && w > 0 ? w : 0);
  }
  return weights;
}

export function scoreSentences(
  text: string,
  weights: Map<string, number>,
  deps: Pick<CompressionDeps, 'analyze'>,
): ScoredSentence[] {
  return splitSentences(text).map((s) => {
    let score = 0;
    for (const term of new Set(deps.analyze(text.slice(s.start, s.end)))) score += weights.get(term) ?? 0;
    return { ...s, score };
  });
}

export interface SentencePlan {
  sentences: ScoredSentence[];
  /**
   * Sentence indices in the order they should be given up last-to-first: relevant sentences by score, then
   * cheap neighbours of strong hits. Sentences not listed are dropped by compression.
   */
  priority: number[];
}

/**
 * Which sentences compression keeps, most valuable first. Undefined when no sentence shares a term with the
 * query: then there is nothing to judge relevance by (a dense-only hit), and the caller keeps text order.
 */
export function planCompression(
  text: string,
  weights: Map<string, number>,
  deps: Pick<CompressionDeps, 'analyze' | 'countTokens'>,
  opts: CompressionOptions = DEFAULT_COMPRESSION,
): SentencePlan | undefined {
  const sentences = scoreSentences(text, weights, deps);
  const best = Math.max(0, ...sentences.map((s) => s.score));
  if (best <= 0) return undefined;
  const relevant = sentences
    .map((s, i) => ({ i, score: s.score }))
    .filter((s) => s.score >= best * opts.keepRatio)
    .sort((a, b) => b.score - a.score || a.i - b.i)
    .map((s) => s.i);
  const chosen = new Set(relevant);
  const neighbours: number[] = [];
  for (const i of relevant) {
    if (sentences[i]!.score < best * opts.strongRatio) continue;
    for (const j of [i - 1, i + 1]) {
      const s = sentences[j];
      if (!s || chosen.has(j)) continue;
      if (deps.countTokens(text.slice(s.start, s.end)) > opts.neighbourMaxTokens) continue;
      chosen.add(j);
      neighbours.push(j);
    }
  }
  return { sentences, priority: [...relevant, ...neighbours] };
}

/** Kept sentences (by index) as maximal runs of consecutive sentences, in text order. */
export function runsOf(sentences: readonly SentenceSpan[], kept: Iterable<number>): SentenceSpan[] {
  const order = [...new Set(kept)].sort((a, b) => a - b);
  const runs: SentenceSpan[] = [];
  let prev = -2;
  for (const i of order) {
    const s = sentences[i];
    if (!s) continue;
    const last = runs[runs.length - 1];
    if (last && i === prev + 1) last.end = s.end;
    else runs.push({ start: s.start, end: s.end });
    prev = i;
  }
  return runs;
}

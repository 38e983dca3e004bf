/**
 * Semantic chunking (optional): inside a section the chunker has to cut anyway, choose the cuts where the
 * topic shifts — where the similarity of neighbouring sentences drops — instead of wherever the token budget
 * happens to run out. The chunker still enforces the budget inside each topic segment.
 */
import { z } from 'zod';
import { forEachNgramHash, resolveHashedNgramOptions } from '../embed/local/hashed-ngrams.js';
import { QuarryError } from '../errors.js';

export const SemanticChunkingConfigSchema = z.object({
  /** Off by default: chunks are then exactly those of structure-aware chunking. */
  enabled: z.boolean().default(false),
  /**
   * k in "a gap between sentences is a topic boundary when its smoothed similarity is below mean − k·std of
   * the section's gaps (and a local minimum)". Relative, because how similar sentences look depends on the
   * embedder, the sentence lengths and the domain; larger k = fewer, sharper boundaries.
   */
  threshold: z.number().min(0).max(5).default(1),
  /** Sentences compared on each side of a gap (smoothing: one short sentence does not make a boundary). */
  window: z.number().int().min(1).max(16).default(2),
  /** A topic segment under this many tokens merges with the neighbour across its weaker boundary. */
  minTokens: z.number().int().min(0).max(8192).default(32),
});

export type SemanticChunkingConfig = z.infer<typeof SemanticChunkingConfigSchema>;
export type SemanticChunkingInput = z.input<typeof SemanticChunkingConfigSchema>;

/** One vector per sentence, in order; compared by cosine. A real embedder can replace the default. */
export type SentenceEmbedder = (texts: readonly string[]) => Float32Array[];

export function resolveSemanticChunking(input: SemanticChunkingInput | undefined): SemanticChunkingConfig {
  const parsed = SemanticChunkingConfigSchema.safeParse(input ?? {});
  if (!parsed.success) {
    const issues = parsed.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ');
    throw new QuarryError('INVALID_ARGUMENT', `semantic chunking options: ${issues}`, {
      issues: parsed.error.issues,
    });
  }
  return parsed.data;
}

const NGRAMS = resolveHashedNgramOptions({ dimension: 1024 });

/**
 * Hashed character n-gram vectors (the built-in embedder's surface features), weighted by an idf computed
 * over the texts passed in — the sentences of one section. Needs no trained model, so it works at ingest
 * before any corpus model exists, and n-grams every sentence of the section shares (its general vocabulary)
 * weigh least, which is what separates topics within it.
 */
export function embedSentences(texts: readonly string[]): Float32Array[] {
  const dimension = NGRAMS.dimension;
  const tfs = texts.map((t) => {
    const tf = new Map<number, number>();
    forEachNgramHash(t, NGRAMS, (h) => tf.set(h, (tf.get(h) ?? 0) + 1));
    return tf;
  });
  const df = new Map<number, number>();
  for (const tf of tfs) for (const h of tf.keys()) df.set(h, (df.get(h) ?? 0) + 1);
  const n = texts.length;
  return tfs.map((tf) => {
    const acc = new Float64Array(dimension);
    for (const [h, count] of tf) {
      const w = (1 + Math.log(count)) * (Math.log((1 + n) / (1 + df.get(h)!)) + 1);
      // Signed buckets: collisions cancel out on average instead of inflating every cosine.
      acc[h % dimension]! += h & 0x80000000 ? -w : w;
    }
    return normalized(acc);
  });
}

/**
 * Similarity at each gap between consecutive sentences (gap g lies between sentence g and g + 1): the cosine
 * of the weighted sums of the vectors of up to `window` sentences on either side, clipped at the section's
 * ends. Weights are the sentences' token counts, so a stretch of text is judged by what most of it says, not
 * swung by a short aside ("The default is 0.4.") that shares no words with anything.
 */
export function gapSimilarities(
  vectors: readonly Float32Array[],
  window: number,
  weights?: readonly number[],
): number[] {
  const sims: number[] = [];
  const w = Math.max(1, Math.floor(window));
  for (let g = 0; g + 1 < vectors.length; g++) {
    const left = sumOf(vectors, weights, Math.max(0, g - w + 1), g + 1);
    const right = sumOf(vectors, weights, g + 1, Math.min(vectors.length, g + 1 + w));
    sims.push(cosine(left, right));
  }
  return sims;
}

/** Gaps whose similarity is a local minimum below mean − k·std of all gaps (population std), ascending. */
export function topicBoundaries(sims: readonly number[], k: number): number[] {
  if (sims.length === 0) return [];
  const mean = sims.reduce((a, b) => a + b, 0) / sims.length;
  const std = Math.sqrt(sims.reduce((a, b) => a + (b - mean) ** 2, 0) / sims.length);
  const cut = mean - k * std;
  const out: number[] = [];
  sims.forEach((s, g) => {
    // Strict on the left, lenient on the right: a flat-bottomed dip yields one boundary, its first gap.
    const left = sims[g - 1];
    const right = sims[g + 1];
    if (s < cut && (left === undefined || s < left) && (right === undefined || s <= right)) out.push(g);
  });
  return out;
}

/**
 * Moves each boundary that falls inside a paragraph onto an adjacent paragraph break (gap g ± 1), the lower
 * of the two if both are. Smoothing blurs where a dip lies by about a sentence, and where the author broke
 * the paragraph is the better cut: a glossary entry's short last sentence then stays with its entry.
 */
export function snapToBreaks(
  gaps: readonly number[],
  sims: readonly number[],
  breaks: readonly boolean[],
): number[] {
  const out = new Set<number>();
  for (const g of gaps) {
    if (breaks[g]) {
      out.add(g);
      continue;
    }
    const near = [g - 1, g + 1].filter((n) => breaks[n] === true);
    near.sort((a, b) => sims[a]! - sims[b]!);
    out.add(near[0] ?? g);
  }
  return [...out].sort((a, b) => a - b);
}

/**
 * Where topic segments start: indices of sentences that open a new segment (never 0), ascending. `tokens`
 * are the sentences' token counts, used to merge segments under `minTokens` into the neighbour on the side
 * of the weaker boundary (the higher similarity), smallest segment first, until none is left or one remains.
 * `breaks[g]` tells whether gap g is a paragraph or block break (see snapToBreaks).
 */
export function topicSegmentStarts(
  texts: readonly string[],
  tokens: readonly number[],
  config: SemanticChunkingConfig,
  embed: SentenceEmbedder = embedSentences,
  breaks: readonly boolean[] = [],
): number[] {
  if (texts.length !== tokens.length) {
    throw new QuarryError('INVALID_ARGUMENT', 'one token count per sentence is required', {
      sentences: texts.length,
      tokens: tokens.length,
    });
  }
  if (texts.length < 2) return [];
  const vectors = embed(texts);
  if (vectors.length !== texts.length || vectors.some((v) => v.length !== vectors[0]!.length)) {
    throw new QuarryError('INVALID_ARGUMENT', 'the sentence embedder must return one vector per sentence', {
      sentences: texts.length,
      vectors: vectors.length,
    });
  }
  const sims = gapSimilarities(vectors, config.window, tokens);
  const gaps = snapToBreaks(topicBoundaries(sims, config.threshold), sims, breaks);
  const prefix = [0];
  for (const t of tokens) prefix.push(prefix[prefix.length - 1]! + t);
  // Segment j spans sentences [bounds[j], bounds[j + 1]); gap g means a segment starts at sentence g + 1.
  const bounds = [0, ...gaps.map((g) => g + 1), texts.length];
  const size = (j: number): number => prefix[bounds[j + 1]!]! - prefix[bounds[j]!]!;
  while (bounds.length > 2) {
    let smallest = -1;
    for (let j = 0; j + 1 < bounds.length; j++) {
      if (size(j) < config.minTokens && (smallest < 0 || size(j) < size(smallest))) smallest = j;
    }
    if (smallest < 0) break;
    // Boundary indices into `bounds`: `smallest` opens the segment, `smallest + 1` closes it.
    const open = smallest > 0 ? smallest : undefined;
    const close = smallest + 2 < bounds.length ? smallest + 1 : undefined;
    const simAt = (b: number): number => sims[bounds[b]! - 1]!;
    const drop =
      open === undefined ? close! : close === undefined ? open : simAt(open) >= simAt(close) ? open : close;
    bounds.splice(drop, 1);
  }
  return bounds.slice(1, -1);
}

function sumOf(
  vectors: readonly Float32Array[],
  weights: readonly number[] | undefined,
  from: number,
  to: number,
): Float64Array {
  const acc = new Float64Array(vectors[from]!.length);
  for (let i = from; i < to; i++) {
    const v = vectors[i]!;
    const f = weights?.[i] ?? 1;
    for (let d = 0; d < acc.length; d++) acc[d]! += f * v[d]!;
  }
  return acc;
}

function cosine(a: Float64Array, b: Float64Array): number {
  let dot = 0;
  let na = 0;
  let nb = 0;
  for (let d = 0; d < a.length; d++) {
    dot += a[d]! * b[d]!;
    na += a[d]! * a[d]!;
    nb += b[d]! * b[d]!;
  }
  return na > 0 && nb > 0 ? dot / Math.sqrt(na * nb) : 0;
}

function normalized(acc: Float64Array): Float32Array {
  let norm = 0;
  for (const x of acc) norm += x * x;
  const f = norm > 0 ? 1 / Math.sqrt(norm) : 0;
  const out = new Float32Array(acc.length);
  for (let d = 0; d < acc.length; d++) out[d] = acc[d]! * f;
  return out;
}

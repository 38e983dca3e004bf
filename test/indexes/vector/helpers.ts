/** Seeded synthetic vectors and a naive brute-force reference for the vector index tests. */
import { Prng } from '../../../src/embed/local/linalg.js';
import type { VectorHit, VectorMetric } from '../../../src/indexes/vector/types.js';

export function rng(seed: number): () => number {
  const prng = new Prng(seed);
  return () => prng.next();
}

export function gaussian(r: () => number): () => number {
  return () => {
    const u = Math.max(r(), 1e-12);
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * r());
  };
}

/** Uniform random vectors in [-1, 1)^dim. */
export function randomVectors(n: number, dim: number, seed: number): Float32Array[] {
  const r = rng(seed);
  return Array.from({ length: n }, () => Float32Array.from({ length: dim }, () => r() * 2 - 1));
}

/**
 * Gaussian clusters on the unit sphere: normalize(centre + spread · N(0, I/dim)). The corpus has `n`
 * vectors; `queries` more are drawn from the same centres with `querySpread` (held out; queries noisier than
 * passages, as short questions are).
 */
export function clusteredCorpus(
  n: number,
  queries: number,
  dim: number,
  clusters: number,
  seed: number,
  spread = 1,
  querySpread = 2,
): { vectors: Float32Array[]; queries: Float32Array[] } {
  const g = gaussian(rng(seed));
  const pick = rng(seed + 1);
  const unit = (v: Float32Array): Float32Array => {
    let s = 0;
    for (const x of v) s += x * x;
    return v.map((x) => x / Math.sqrt(s));
  };
  const centres = Array.from({ length: clusters }, () => unit(Float32Array.from({ length: dim }, g)));
  const draw = (sp: number): Float32Array => {
    const c = centres[Math.floor(pick() * clusters)]!;
    return unit(c.map((x) => x + (sp / Math.sqrt(dim)) * g()));
  };
  return {
    vectors: Array.from({ length: n }, () => draw(spread)),
    queries: Array.from({ length: queries }, () => draw(querySpread)),
  };
}

/** Naive reference: score every vector in float64, sort by score desc then chunk id asc. */
export function bruteForce(
  vectors: Map<number, { group: number; v: Float32Array }>,
  query: Float32Array,
  k: number,
  metric: VectorMetric,
  allow: (g: number) => boolean = () => true,
): VectorHit[] {
  const norm = (v: Float32Array): number => Math.sqrt(v.reduce((s, x) => s + x * x, 0));
  const qn = norm(query);
  const scored: VectorHit[] = [];
  for (const [chunkId, { group, v }] of vectors) {
    if (!allow(group)) continue;
    let score = 0;
    if (metric === 'l2') {
      for (let i = 0; i < v.length; i++) score -= (v[i]! - query[i]!) ** 2;
    } else {
      for (let i = 0; i < v.length; i++) score += v[i]! * query[i]!;
      if (metric === 'cosine') score /= norm(v) * qn;
    }
    scored.push({ chunkId, group, score });
  }
  scored.sort((a, b) => b.score - a.score || a.chunkId - b.chunkId);
  return scored.slice(0, k);
}

export function recallAt(truth: VectorHit[][], got: VectorHit[][]): number {
  let sum = 0;
  for (let i = 0; i < truth.length; i++) {
    const want = new Set(truth[i]!.map((h) => h.chunkId));
    let hit = 0;
    for (const h of got[i]!) if (want.has(h.chunkId)) hit++;
    sum += want.size === 0 ? 1 : hit / want.size;
  }
  return sum / truth.length;
}

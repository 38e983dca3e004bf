import { describe, expect, it } from 'vitest';
import { QuarryError } from '../../../src/errors.js';
import { ExactIndex } from '../../../src/indexes/vector/exact-index.js';
import type { VectorIndexInfo, VectorMetric } from '../../../src/indexes/vector/types.js';
import { bruteForce, clusteredCorpus, randomVectors, recallAt } from './helpers.js';

const info = (metric: VectorMetric = 'cosine', dimension = 16): VectorIndexInfo => ({
  modelId: 'test-model',
  dimension,
  metric,
});

function expectQuarryError(fn: () => unknown, code: string, pattern: RegExp): void {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(QuarryError);
    expect((e as QuarryError).code).toBe(code);
    expect((e as Error).message).toMatch(pattern);
    return;
  }
  throw new Error('expected an error');
}

describe('ExactIndex', () => {
  for (const metric of ['cosine', 'ip', 'l2'] as const) {
    it(`top-k equals a naive brute force on random data (${metric})`, () => {
      const vectors = randomVectors(1500, 24, 11);
      const idx = new ExactIndex(info(metric, 24));
      const ref = new Map<number, { group: number; v: Float32Array }>();
      vectors.forEach((v, i) => {
        idx.add(i * 3 + 1, i % 37, v);
        ref.set(i * 3 + 1, { group: i % 37, v });
      });
      for (const q of randomVectors(25, 24, 99)) {
        const got = idx.search(q, 10);
        const want = bruteForce(ref, q, 10, metric);
        expect(got.map((h) => h.chunkId)).toEqual(want.map((h) => h.chunkId));
        expect(got.map((h) => h.group)).toEqual(want.map((h) => h.group));
        got.forEach((h, i) => {
          expect(h.score).toBeCloseTo(want[i]!.score, 4);
        });
      }
    });
  }

  it('normalizes for cosine: a scaled copy of a vector scores 1 against it', () => {
    const idx = new ExactIndex(info());
    const [a, b] = randomVectors(2, 16, 3);
    idx.add(1, 1, a!);
    idx.add(2, 2, b!);
    const hits = idx.search(
      a!.map((x) => x * 42),
      1,
    );
    expect(hits[0]!.chunkId).toBe(1);
    expect(hits[0]!.score).toBeCloseTo(1, 6);
  });

  it('returns every vector when k exceeds the size, none for k = 0 or an empty index', () => {
    const idx = new ExactIndex(info());
    const q = randomVectors(1, 16, 5)[0]!;
    expect(idx.search(q, 10)).toEqual([]);
    randomVectors(4, 16, 6).forEach((v, i) => {
      idx.add(i, 0, v);
    });
    expect(idx.search(q, 10)).toHaveLength(4);
    expect(idx.search(q, 0)).toEqual([]);
    expectQuarryError(() => idx.search(q, -1), 'INVALID_ARGUMENT', /k must be a non-negative integer/);
    expectQuarryError(() => idx.search(q, 1.5), 'INVALID_ARGUMENT', /k must be/);
  });

  it('remove hides a vector; re-adding brings it back; replacing keeps one copy', () => {
    const vectors = randomVectors(50, 16, 7);
    const idx = new ExactIndex(info());
    vectors.forEach((v, i) => {
      idx.add(i, i, v);
    });
    const q = vectors[10]!;
    expect(idx.search(q, 1)[0]!.chunkId).toBe(10);
    expect(idx.remove(10)).toBe(true);
    expect(idx.remove(10)).toBe(false);
    expect(idx.has(10)).toBe(false);
    expect(idx.size).toBe(49);
    expect(idx.search(q, 50).some((h) => h.chunkId === 10)).toBe(false);
    idx.add(10, 10, q);
    expect(idx.search(q, 1)[0]).toMatchObject({ chunkId: 10, group: 10 });
    // Replace chunk 10 with another vector and group: old vector gone, one entry.
    idx.add(10, 99, vectors[20]!);
    expect(idx.size).toBe(50);
    const hits = idx.search(vectors[20]!, 50);
    expect(hits.filter((h) => h.chunkId === 10)).toHaveLength(1);
    expect(hits.find((h) => h.chunkId === 10)!.group).toBe(99);
  });

  it('compaction after many removes keeps results identical to a fresh index', () => {
    const vectors = randomVectors(600, 16, 8);
    const idx = new ExactIndex(info());
    vectors.forEach((v, i) => {
      idx.add(i, i % 5, v);
    });
    for (let i = 0; i < 600; i += 2) idx.remove(i); // triggers automatic compaction
    expect(idx.store.count).toBeLessThan(600);
    const fresh = new ExactIndex(info());
    vectors.forEach((v, i) => {
      if (i % 2 === 1) fresh.add(i, i % 5, v);
    });
    for (const q of randomVectors(10, 16, 9)) expect(idx.search(q, 7)).toEqual(fresh.search(q, 7));
  });

  it('rejects vectors of the wrong dimension, non-finite or all-zero, naming the chunk', () => {
    const idx = new ExactIndex(info());
    expectQuarryError(
      () => idx.add(7, 1, new Float32Array(15).fill(1)),
      'INVALID_ARGUMENT',
      /chunk 7: vector has dimension 15, expected 16 \(model "test-model"\)/,
    );
    const nan = new Float32Array(16).fill(1);
    nan[3] = Number.NaN;
    expectQuarryError(() => idx.add(8, 1, nan), 'INVALID_ARGUMENT', /chunk 8: vector component 3 is NaN/);
    const inf = new Float32Array(16).fill(1);
    inf[0] = Number.POSITIVE_INFINITY;
    expectQuarryError(() => idx.add(9, 1, inf), 'INVALID_ARGUMENT', /chunk 9: .*Infinity/);
    expectQuarryError(
      () => idx.add(10, 1, new Float32Array(16)),
      'INVALID_ARGUMENT',
      /chunk 10: vector is all zeros/,
    );
    expectQuarryError(() => idx.add(-1, 1, new Float32Array(16).fill(1)), 'INVALID_ARGUMENT', /chunk id/);
    expect(idx.size).toBe(0);
    expectQuarryError(
      () => idx.search(new Float32Array(8).fill(1), 3),
      'INVALID_ARGUMENT',
      /query: vector has dimension 8, expected 16/,
    );
    // A bad replacement leaves the old vector in place.
    idx.add(1, 1, new Float32Array(16).fill(1));
    expect(() => idx.add(1, 1, new Float32Array(16))).toThrow(QuarryError);
    expect(idx.has(1)).toBe(true);
  });

  it('assertCompatible names both models and dimensions', () => {
    const idx = new ExactIndex(info());
    expect(() => idx.assertCompatible(info())).not.toThrow();
    expectQuarryError(
      () => idx.assertCompatible({ modelId: 'other-model', dimension: 16, metric: 'cosine' }),
      'INVALID_ARGUMENT',
      /model "other-model" \(dimension 16, cosine\).*model "test-model" \(dimension 16, cosine\)/,
    );
    expectQuarryError(
      () => idx.assertCompatible({ modelId: 'test-model', dimension: 32, metric: 'cosine' }),
      'INVALID_ARGUMENT',
      /dimension 32.*dimension 16/,
    );
    expect(() => new ExactIndex({ modelId: '', dimension: 4, metric: 'cosine' })).toThrow(/model id/);
    expect(() => new ExactIndex({ modelId: 'm', dimension: 0, metric: 'cosine' })).toThrow(/dimension/);
  });

  it('filtered search with 1% of groups admissible returns k admissible hits, predicate once per group', () => {
    const vectors = randomVectors(3000, 16, 12);
    const idx = new ExactIndex(info());
    const ref = new Map<number, { group: number; v: Float32Array }>();
    vectors.forEach((v, i) => {
      const group = i % 300; // 300 documents of 10 chunks
      idx.add(i, group, v);
      ref.set(i, { group, v });
    });
    const allowed = (g: number): boolean => g % 100 === 0; // 3 of 300 groups, 30 chunks
    for (const q of randomVectors(5, 16, 13)) {
      const calls = new Map<number, number>();
      const hits = idx.search(q, 10, {
        allowGroup: (g) => {
          calls.set(g, (calls.get(g) ?? 0) + 1);
          return allowed(g);
        },
      });
      expect(hits).toHaveLength(10);
      expect(hits.every((h) => allowed(h.group))).toBe(true);
      expect(hits.map((h) => h.chunkId)).toEqual(
        bruteForce(ref, q, 10, 'cosine', allowed).map((h) => h.chunkId),
      );
      expect(Math.max(...calls.values())).toBe(1);
      // Fewer admissible than k: all of them.
      expect(idx.search(q, 50, { allowGroup: allowed })).toHaveLength(30);
      expect(idx.search(q, 5, { allowGroup: () => false })).toEqual([]);
    }
  });

  for (const quantization of ['int8', 'binary'] as const) {
    it(`${quantization} quantization with exact rescoring keeps recall@10 ≥ 0.95 and exact scores`, () => {
      // 256-d: one sign bit per dimension ranks too coarsely at low dimension (see defaultRescoreFactor).
      const { vectors, queries } = clusteredCorpus(5000, 100, 256, 25, 21);
      const float = new ExactIndex(info('cosine', 256));
      const quant = new ExactIndex(info('cosine', 256), { quantization });
      vectors.forEach((v, i) => {
        float.add(i, i % 100, v);
        quant.add(i, i % 100, v);
      });
      const truth = queries.map((q) => float.search(q, 10));
      const got = queries.map((q) => quant.search(q, 10));
      expect(recallAt(truth, got)).toBeGreaterThanOrEqual(0.95);
      // Rescored: any returned chunk carries its exact float score.
      const exactScore = new Map(float.search(queries[0]!, 5000).map((h) => [h.chunkId, h.score]));
      for (const h of got[0]!) expect(h.score).toBe(exactScore.get(h.chunkId));
      // Filtered quantized search: only admissible hits, k of them.
      const allow = (g: number): boolean => g % 10 === 3;
      const filtered = quant.search(queries[1]!, 10, { allowGroup: allow });
      expect(filtered).toHaveLength(10);
      expect(filtered.every((h) => allow(h.group))).toBe(true);
      // Removal and compaction keep codes aligned with vectors.
      for (let i = 0; i < 5000; i += 3) {
        float.remove(i);
        quant.remove(i);
      }
      const truth2 = queries.map((q) => float.search(q, 10));
      expect(
        recallAt(
          truth2,
          queries.map((q) => quant.search(q, 10)),
        ),
      ).toBeGreaterThanOrEqual(0.95);
    });
  }
});

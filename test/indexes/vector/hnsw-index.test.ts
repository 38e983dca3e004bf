import { beforeAll, describe, expect, it } from 'vitest';
import { ExactIndex } from '../../../src/indexes/vector/exact-index.js';
import { HNSW_DEFAULTS, HnswIndex, loadHnswlib } from '../../../src/indexes/vector/hnsw-index.js';
import type { VectorIndexInfo } from '../../../src/indexes/vector/types.js';
import { clusteredCorpus, randomVectors, recallAt } from './helpers.js';

const info: VectorIndexInfo = { modelId: 'test-model', dimension: 64, metric: 'cosine' };

describe('HnswIndex (real hnswlib-node)', () => {
  // One 10k clustered 64-d corpus shared by the tests below (built once: the expensive part).
  const N = 10_000;
  const { vectors, queries } = clusteredCorpus(N, 200, 64, 50, 31);
  const group = (i: number): number => Math.floor(i / 10); // 1,000 documents of 10 chunks
  let hnsw: HnswIndex;
  let exact: ExactIndex;

  beforeAll(() => {
    hnsw = HnswIndex.create(info, {}, 2048); // grows by resizeIndex past 2,048
    exact = new ExactIndex(info);
    vectors.forEach((v, i) => {
      hnsw.add(i, group(i), v);
      exact.add(i, group(i), v);
    });
  });

  it(`reaches recall@10 ≥ 0.95 against exact search at the default efSearch (${HNSW_DEFAULTS.efSearch})`, () => {
    expect(hnsw.size).toBe(N);
    const truth = queries.map((q) => exact.search(q, 10));
    const got = queries.map((q) => hnsw.search(q, 10));
    expect(hnsw.lastSearch.strategy).toBe('graph');
    const recall = recallAt(truth, got);
    expect(recall).toBeGreaterThanOrEqual(0.95);
    // Scores are rescored with the stored floats: identical to the exact index's for the same chunk.
    const exactScores = new Map(exact.search(queries[0]!, N).map((h) => [h.chunkId, h.score]));
    for (const h of got[0]!) expect(h.score).toBe(exactScores.get(h.chunkId));
    for (const hits of got) {
      for (let i = 1; i < hits.length; i++) expect(hits[i - 1]!.score).toBeGreaterThanOrEqual(hits[i]!.score);
    }
  });

  it('filtered search with 1% of groups admissible returns k hits, all admissible (exact over admissible)', () => {
    const allow = (g: number): boolean => g % 100 === 7; // 10 of 1,000 documents = 100 chunks
    for (const q of queries.slice(0, 20)) {
      const hits = hnsw.search(q, 10, { allowGroup: allow });
      expect(hnsw.lastSearch.strategy).toBe('exact-filtered');
      expect(hits).toHaveLength(10);
      expect(hits.every((h) => allow(h.group))).toBe(true);
      expect(hits).toEqual(exact.search(q, 10, { allowGroup: allow }));
    }
  });

  it('still returns k admissible hits when the graph walk is forced at 1% (fallback when the walk comes up short)', () => {
    const forced = hnsw.options.filterScanRatio;
    hnsw.options.filterScanRatio = 0;
    try {
      const allow = (g: number): boolean => g % 100 === 7;
      const truth = queries.slice(0, 20).map((q) => exact.search(q, 10, { allowGroup: allow }));
      const got = queries.slice(0, 20).map((q) => {
        const hits = hnsw.search(q, 10, { allowGroup: allow });
        expect(hits).toHaveLength(10);
        expect(hits.every((h) => allow(h.group))).toBe(true);
        return hits;
      });
      expect(recallAt(truth, got)).toBeGreaterThanOrEqual(0.9);
      // Only 1 document (10 chunks) admissible and k = 15: every admissible chunk, via the exact fallback.
      const one = (g: number): boolean => g === 123;
      const hits = hnsw.search(queries[0]!, 15, { allowGroup: one });
      expect(hits.map((h) => h.chunkId).sort((a, b) => a - b)).toEqual(
        Array.from({ length: 10 }, (_, i) => 1230 + i),
      );
    } finally {
      hnsw.options.filterScanRatio = forced;
    }
  });

  it('walks the graph with the filter callback when many groups are admissible', () => {
    const allow = (g: number): boolean => g % 2 === 0;
    const truth = queries.map((q) => exact.search(q, 10, { allowGroup: allow }));
    const got = queries.map((q) => hnsw.search(q, 10, { allowGroup: allow }));
    expect(hnsw.lastSearch.strategy).toBe('graph-filtered');
    expect(hnsw.lastSearch.admissibleEstimate).toBeGreaterThan(0.3);
    for (const hits of got) expect(hits.every((h) => allow(h.group))).toBe(true);
    expect(recallAt(truth, got)).toBeGreaterThanOrEqual(0.95);
  });

  it('remove hides vectors; re-adding reuses the graph node and finds it again', () => {
    const small = HnswIndex.create(info, {}, 16);
    const vs = randomVectors(300, 64, 41);
    vs.forEach((v, i) => {
      small.add(i, i, v);
    });
    expect(small.search(vs[5]!, 1)[0]!.chunkId).toBe(5);
    expect(small.remove(5)).toBe(true);
    expect(small.remove(5)).toBe(false);
    expect(small.search(vs[5]!, 300).some((h) => h.chunkId === 5)).toBe(false);
    expect(small.size).toBe(299);
    const slotsBefore = small.store.count;
    small.add(5, 5, vs[5]!);
    expect(small.store.count).toBe(slotsBefore); // dead slot reused, graph did not grow
    expect(small.search(vs[5]!, 1)[0]).toMatchObject({ chunkId: 5, group: 5 });
    // Replacing chunk 7's vector: found under its new vector, not its old one.
    small.add(7, 70, vs[200]!);
    const top = small.search(vs[200]!, 2).map((h) => h.chunkId);
    expect(top).toContain(7);
    expect(small.search(vs[7]!, 1)[0]!.chunkId).not.toBe(7);
    expect(small.size).toBe(300);
    // Dimension errors name the chunk.
    expect(() => small.add(9, 1, new Float32Array(3).fill(1))).toThrow(
      /chunk 9: vector has dimension 3, expected 64/,
    );
  });

  it('explains how to fix a missing hnswlib-node', () => {
    const missing = (): never => {
      throw new Error("Cannot find module 'hnswlib-node'\nRequire stack: …");
    };
    expect(() => loadHnswlib(missing)).toThrow(
      /hnswlib-node.*could not be loaded \(Cannot find module 'hnswlib-node'\).*npm install hnswlib-node@3\.0\.0.*annThreshold/,
    );
    expect(() => loadHnswlib(() => ({}))).toThrow(/no HierarchicalNSW export/);
    expect(typeof loadHnswlib().HierarchicalNSW).toBe('function');
    expect(() => hnsw.search(queries[0]!, 10, { ef: 0 })).toThrow(/ef must be a positive integer/);
  });

  it('reports memory and answers an empty index', () => {
    const empty = HnswIndex.create(info);
    expect(empty.search(queries[0]!, 10)).toEqual([]);
    expect(hnsw.memoryBytes()).toBeGreaterThan(N * 64 * 4 * 2);
  });
});

import { describe, expect, it } from 'vitest';
import { collapseDuplicates, fuse, type RankedList } from '../../src/fuse/fusion.js';

const list = (retriever: string, items: Array<[number, number]>): RankedList => ({
  retriever,
  candidates: items.map(([chunkId, score], i) => ({
    chunkId,
    group: chunkId,
    score,
    rank: i + 1,
    retriever,
  })),
});

describe('fuse', () => {
  const bm25 = list('bm25', [
    [1, 10],
    [2, 8],
    [3, 2],
  ]);
  const dense = list('dense', [
    [3, 0.9],
    [4, 0.8],
    [1, 0.1],
  ]);

  it('RRF sums weight/(k + rank) over lists', () => {
    const out = fuse([bm25, dense], { method: 'rrf', rrfK: 60 });
    // 1: 1/61 + 1/63 = 0.032266; 3: 1/63 + 1/61 = same → tie broken by chunk id; 2: 1/62; 4: 1/62
    expect(out.map((f) => f.chunkId)).toEqual([1, 3, 2, 4]);
    expect(out[0]!.score).toBeCloseTo(1 / 61 + 1 / 63, 12);
    expect(out[0]!.sources).toEqual({ bm25: { rank: 1, score: 10 }, dense: { rank: 3, score: 0.1 } });
    expect(out.map((f) => f.rank)).toEqual([1, 2, 3, 4]);
  });

  it('RRF weights per retriever', () => {
    const out = fuse([bm25, dense], { method: 'rrf', rrfK: 60, weights: { bm25: 1, dense: 0 } });
    expect(out.slice(0, 3).map((f) => f.chunkId)).toEqual([1, 2, 3]);
    expect(out[3]!.score).toBe(0);
  });

  it('min-max fusion is a convex combination of per-list normalized scores', () => {
    const out = fuse([bm25, dense], { method: 'minmax', weights: { bm25: 0.7, dense: 0.3 } });
    // bm25 normalized: 1→1, 2→0.75, 3→0; dense: 3→1, 4→0.875, 1→0
    const score = Object.fromEntries(out.map((f) => [f.chunkId, f.score]));
    expect(score[1]).toBeCloseTo(0.7, 12);
    expect(score[2]).toBeCloseTo(0.525, 12);
    expect(score[3]).toBeCloseTo(0.3, 12);
    expect(score[4]).toBeCloseTo(0.2625, 12);
    expect(out.map((f) => f.chunkId)).toEqual([1, 2, 3, 4]);
    expect(out.find((f) => f.chunkId === 4)!.sources.dense!.normalized).toBeCloseTo(0.875, 12);
  });

  it('z-score fusion treats absence as the list minimum, not the mean', () => {
    const out = fuse([bm25, dense], { method: 'zscore' });
    const c2 = out.find((f) => f.chunkId === 2)!;
    const c4 = out.find((f) => f.chunkId === 4)!;
    // chunk 2 is absent from dense: it gets dense's lowest z (that of chunk 1), so it is not rewarded.
    const denseMean = (0.9 + 0.8 + 0.1) / 3;
    const denseSd = Math.sqrt(((0.9 - denseMean) ** 2 + (0.8 - denseMean) ** 2 + (0.1 - denseMean) ** 2) / 3);
    const bmMean = 20 / 3;
    const bmSd = Math.sqrt(((10 - bmMean) ** 2 + (8 - bmMean) ** 2 + (2 - bmMean) ** 2) / 3);
    expect(c2.score).toBeCloseTo((8 - bmMean) / bmSd + (0.1 - denseMean) / denseSd, 10);
    expect(c4.score).toBeCloseTo((0.8 - denseMean) / denseSd + (2 - bmMean) / bmSd, 10);
  });

  it('per-candidate weights (e.g. by doc_type) override the collection weights', () => {
    // Chunk 4 is a "technical" document: BM25-only weighting drops it to the bottom.
    const out = fuse([bm25, dense], {
      method: 'minmax',
      weights: { bm25: 0.5, dense: 0.5 },
      weightsFor: (g) => (g === 4 ? { bm25: 1, dense: 0 } : undefined),
    });
    expect(out.find((f) => f.chunkId === 4)!.score).toBe(0);
    expect(out.find((f) => f.chunkId === 3)!.score).toBeCloseTo(0.5, 12);
  });

  it('limits the output and handles empty lists', () => {
    expect(fuse([bm25, dense], { method: 'rrf', limit: 2 })).toHaveLength(2);
    expect(fuse([list('bm25', []), list('dense', [])], { method: 'minmax' })).toEqual([]);
    const single = fuse([list('bm25', [[9, 3]])], { method: 'minmax' });
    expect(single).toEqual([
      { chunkId: 9, group: 9, score: 1, rank: 1, sources: { bm25: { rank: 1, score: 3, normalized: 1 } } },
    ]);
  });
});

describe('collapseDuplicates', () => {
  it('keeps the better-ranked of identical texts and of heavily overlapping spans', () => {
    const items = [
      { chunkId: 1, docId: 'a', start: 0, end: 100, text: 'Alpha  beta gamma' },
      { chunkId: 2, docId: 'b', start: 0, end: 17, text: 'alpha beta GAMMA' },
      { chunkId: 3, docId: 'a', start: 60, end: 160, text: 'different words here' },
      { chunkId: 4, docId: 'a', start: 90, end: 190, text: 'more words' },
      { chunkId: 5, docId: 'c', start: 60, end: 160, text: 'other doc same span' },
    ];
    const { kept, removed } = collapseDuplicates(items);
    // 3 overlaps 1 by 40 of 100 chars (< 50%): kept. 4 overlaps 3 by 70 of 100: a duplicate of 3.
    expect(kept.map((k) => k.chunkId)).toEqual([1, 3, 5]);
    expect(removed).toEqual([
      { chunkId: 2, duplicateOf: 1, reason: 'same-text' },
      { chunkId: 4, duplicateOf: 3, reason: 'overlap' },
    ]);
  });
});

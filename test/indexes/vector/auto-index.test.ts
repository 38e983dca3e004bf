import { describe, expect, it } from 'vitest';
import {
  type AutoVectorIndex,
  createVectorIndex,
  DEFAULT_ANN_THRESHOLD,
  deserializeVectorIndex,
} from '../../../src/indexes/vector/auto-index.js';
import type { VectorIndexInfo } from '../../../src/indexes/vector/types.js';
import { clusteredCorpus, recallAt } from './helpers.js';

const info: VectorIndexInfo = { modelId: 'test-model', dimension: 32, metric: 'cosine' };

/** What a store artifact read back from disk looks like: one contiguous Buffer. */
function toBuffer(parts: Uint8Array[]): Buffer {
  return Buffer.concat(parts);
}

function fill(index: AutoVectorIndex, vectors: Float32Array[], from = 0): void {
  for (let i = from; i < vectors.length; i++) index.add(i, i % 50, vectors[i]!);
}

describe('createVectorIndex (exact → HNSW)', () => {
  const { vectors, queries } = clusteredCorpus(1200, 60, 32, 12, 51);

  it('starts exact and switches to HNSW at the threshold, keeping results', () => {
    expect(createVectorIndex(info).annThreshold).toBe(DEFAULT_ANN_THRESHOLD);
    const idx = createVectorIndex(info, { annThreshold: 1000 });
    fill(idx, vectors.slice(0, 999));
    expect(idx.kind).toBe('exact');
    const before = queries.map((q) => idx.search(q, 10));
    const beforeFiltered = queries.map((q) => idx.search(q, 5, { allowGroup: (g) => g === 3 }));
    idx.add(999, 999 % 50, vectors[999]!);
    expect(idx.kind).toBe('hnsw');
    expect(idx.size).toBe(1000);
    idx.remove(999); // back to 999: same set as before the switch
    expect(
      recallAt(
        before,
        queries.map((q) => idx.search(q, 10)),
      ),
    ).toBeGreaterThanOrEqual(0.98);
    expect(queries.map((q) => idx.search(q, 5, { allowGroup: (g) => g === 3 }))).toEqual(beforeFiltered);
    fill(idx, vectors, 999);
    expect(idx.size).toBe(1200);
    expect(idx.search(vectors[1100]!, 1)[0]!.chunkId).toBe(1100);
    expect(() => createVectorIndex(info, { annThreshold: 0 })).toThrow(/annThreshold/);
  });

  it('checks query compatibility', () => {
    const idx = createVectorIndex(info);
    expect(() => idx.assertCompatible({ ...info, modelId: 'other' })).toThrow(/"other".*"test-model"/);
  });
});

describe('vector index persistence', () => {
  const { vectors, queries } = clusteredCorpus(800, 30, 32, 10, 61);

  for (const kind of ['exact', 'hnsw'] as const) {
    it(`round-trips a ${kind} index with removals, then keeps accepting writes`, () => {
      const idx = createVectorIndex(info, { annThreshold: kind === 'exact' ? Infinity : 500 });
      fill(idx, vectors);
      for (let i = 0; i < 800; i += 7) idx.remove(i);
      expect(idx.kind).toBe(kind);
      const bytes = toBuffer(idx.serialize(42));
      const annThreshold = kind === 'exact' ? Number.POSITIVE_INFINITY : 500;
      const back = deserializeVectorIndex(bytes, { info, indexVersion: 42 }, { annThreshold });
      expect(back).toBeDefined();
      expect(back!.kind).toBe(kind);
      expect(back!.size).toBe(idx.size);
      expect(back!.has(7)).toBe(false);
      expect(back!.has(8)).toBe(true);
      for (const q of queries) {
        expect(back!.search(q, 10)).toEqual(idx.search(q, 10));
        const allow = (g: number): boolean => g % 25 === 1;
        expect(back!.search(q, 10, { allowGroup: allow })).toEqual(idx.search(q, 10, { allowGroup: allow }));
      }
      back!.add(7, 7, vectors[7]!);
      expect(back!.search(vectors[7]!, 1)[0]!.chunkId).toBe(7);
      back!.remove(8);
      expect(back!.has(8)).toBe(false);
    });
  }

  it('an exact artifact at or above the threshold comes back as HNSW', () => {
    const idx = createVectorIndex(info, { annThreshold: Infinity });
    fill(idx, vectors);
    const back = deserializeVectorIndex(
      toBuffer(idx.serialize(1)),
      { info, indexVersion: 1 },
      { annThreshold: 600 },
    );
    expect(back!.kind).toBe('hnsw');
    expect(back!.search(vectors[3]!, 1)[0]!.chunkId).toBe(3);
  });

  it('rejects stale versions, other models, other settings, garbage and corruption (caller rebuilds)', () => {
    const exact = createVectorIndex(info);
    fill(exact, vectors.slice(0, 100));
    const hnsw = createVectorIndex(info, { annThreshold: 50 });
    fill(hnsw, vectors.slice(0, 100));
    for (const idx of [exact, hnsw]) {
      const good = toBuffer(idx.serialize(5));
      const expected = { info, indexVersion: 5 };
      expect(deserializeVectorIndex(good, expected, { annThreshold: 50 })).toBeDefined();
      expect(deserializeVectorIndex(good, { info, indexVersion: 6 })).toBeUndefined();
      expect(
        deserializeVectorIndex(good, { info: { ...info, modelId: 'other' }, indexVersion: 5 }),
      ).toBeUndefined();
      expect(
        deserializeVectorIndex(good, { info: { ...info, dimension: 16 }, indexVersion: 5 }),
      ).toBeUndefined();
      expect(
        deserializeVectorIndex(good, { info: { ...info, metric: 'ip' }, indexVersion: 5 }),
      ).toBeUndefined();
      expect(deserializeVectorIndex(good.subarray(0, good.length - 100), expected)).toBeUndefined();
      expect(deserializeVectorIndex(good.subarray(0, 10), expected)).toBeUndefined();
      const flipped = Buffer.from(good);
      flipped[flipped.length - 200]! ^= 0xff;
      expect(deserializeVectorIndex(flipped, expected)).toBeUndefined();
    }
    const good = toBuffer(hnsw.serialize(5));
    expect(deserializeVectorIndex(good, { info, indexVersion: 5 }, { hnsw: { m: 32 } })).toBeUndefined();
    const expected = { info, indexVersion: 5 };
    expect(deserializeVectorIndex(Buffer.alloc(0), expected)).toBeUndefined();
    expect(
      deserializeVectorIndex(Buffer.from('not an index at all, just some text'), expected),
    ).toBeUndefined();
    expect(
      deserializeVectorIndex(Buffer.from('QVECIDX\n\xff\xff\xff\xff{"format":1}', 'latin1'), expected),
    ).toBeUndefined();
    const header = Buffer.from('{"format":1}');
    const lying = Buffer.concat([Buffer.from('QVECIDX\n'), Buffer.from([header.length, 0, 0, 0]), header]);
    expect(deserializeVectorIndex(lying, expected)).toBeUndefined();
  });
});

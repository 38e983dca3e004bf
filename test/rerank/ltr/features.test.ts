import { describe, expect, it } from 'vitest';
import {
  ChunkTermsCache,
  extractFeatures,
  FEATURE_INDEX,
  FEATURE_NAMES,
  type LtrDeps,
  phraseMatch,
  proximity,
} from '../../../src/rerank/ltr/features.js';
import type { SearchHit } from '../../../src/types.js';

function hit(
  id: number,
  rank: number,
  title: string,
  text: string,
  extra: { sectionPath?: string[]; updated?: string; scores?: SearchHit['scores']; ordinal?: number } = {},
): SearchHit {
  const updated = extra.updated ?? '2024-01-01T00:00:00.000Z';
  return {
    rank,
    score: 1 / rank,
    chunk: {
      id,
      docId: `d${id}`,
      ordinal: extra.ordinal ?? 0,
      sectionOrdinal: 0,
      sectionPath: extra.sectionPath ?? [],
      start: 0,
      end: text.length,
      text,
      tokenCount: text.split(' ').length,
      title,
    },
    document: {
      id: `d${id}`,
      source: `d${id}.md`,
      title,
      created_at: updated,
      updated_at: updated,
      version: 1,
      doc_type: 'text',
      tags: [],
      access_groups: [],
      access_users: [],
      fields: {},
    },
    scores: extra.scores ?? {},
  };
}

const IDF: Record<string, number> = { alpha: 2, beta: 1 };
const deps = (over: Partial<LtrDeps> = {}): LtrDeps => ({
  analyze: (t) => t.toLowerCase().split(/\W+/).filter(Boolean),
  idf: (t) => IDF[t] ?? 0.5,
  avgLengths: () => ({ title: 1, body: 2 }),
  // b = 0 removes length normalization, so each term adds idf · tf / (tf + 1).
  bm25: { k1: 1, b: 0 },
  ...over,
});
const f = (row: Float64Array, name: string) => row[FEATURE_INDEX.get(name)!]!;

describe('LTR features on hand-made chunks', () => {
  const hits = [
    hit(1, 1, 'Alpha', 'alpha beta gamma', {
      scores: { bm25: { score: 3, rank: 1 } },
      updated: '2024-01-10T00:00:00.000Z',
    }),
    hit(2, 2, 'Other', 'beta beta', { sectionPath: ['Intro', 'Setup'], ordinal: 3 }),
  ];

  it('computes every feature as documented', () => {
    const { rows } = extractFeatures('alpha beta', hits, deps());
    const [a, b] = rows as [Float64Array, Float64Array];
    expect(a).toHaveLength(FEATURE_NAMES.length);
    // BM25 title: A has alpha once → 2·1/2 = 1; B none → 0. Body: A 2·½ + 1·½ = 1.5; B 1·2/3. Min-max → 1, 0.
    expect(f(a, 'bm25_title')).toBe(1);
    expect(f(b, 'bm25_title')).toBe(0);
    expect(f(a, 'bm25_body')).toBe(1);
    expect(f(b, 'bm25_body')).toBe(0);
    // First-stage BM25 3 for A; B has none, so it is recomputed (2/3) — A is still the pool maximum.
    expect(f(a, 'bm25')).toBe(1);
    expect(f(b, 'bm25')).toBe(0);
    // Coverage: idf of matched distinct terms / idf of all query terms (3).
    expect(f(a, 'coverage')).toBeCloseTo(1, 12);
    expect(f(b, 'coverage')).toBeCloseTo(1 / 3, 12);
    expect(f(a, 'title_coverage')).toBeCloseTo(2 / 3, 12);
    expect(f(b, 'title_coverage')).toBe(0);
    // A's field sequence: alpha | alpha beta gamma → alpha and beta adjacent: 2 terms / span 2.
    expect(f(a, 'proximity')).toBe(1);
    expect(f(b, 'proximity')).toBe(0); // one distinct term matched
    expect(f(a, 'phrase')).toBe(1);
    expect(f(b, 'phrase')).toBe(0);
    expect(f(a, 'entity')).toBe(0); // the query has no entity
    expect(f(a, 'fused_rank')).toBe(0);
    expect(f(b, 'fused_rank')).toBeCloseTo(Math.log(2), 12);
    expect(f(b, 'ordinal')).toBeCloseTo(Math.log(4), 12);
    expect(f(a, 'depth')).toBe(0);
    expect(f(b, 'depth')).toBe(2);
    expect(f(a, 'length')).toBeCloseTo(Math.log(4), 12);
    expect(f(b, 'length')).toBeCloseTo(Math.log(3), 12);
    // B is 9 days older than the newest document in the pool.
    expect(f(a, 'age')).toBe(0);
    expect(f(b, 'age')).toBeCloseTo(Math.log(10), 12);
    // Without a dense index the dense features are 0.
    expect(f(a, 'dense')).toBe(0);
    expect(f(b, 'dense_prf')).toBe(0);
    // RM3 feedback comes from the same two chunks; A matches the original query better.
    expect(f(a, 'rm3')).toBe(1);
    expect(f(b, 'rm3')).toBe(0);
  });

  it('uses the dense index when there is one, and falls back to the hit score', () => {
    const vectors = new Map([[1, Float32Array.from([1, 0])]]);
    const { rows } = extractFeatures(
      'alpha beta',
      [hits[0]!, { ...hits[1]!, scores: { dense: { score: 0.25, rank: 7 } } }],
      deps({ embedQuery: () => Float32Array.from([3, 4]), chunkVectors: () => vectors }),
    );
    const [a, b] = rows as [Float64Array, Float64Array];
    expect(f(a, 'dense')).toBeCloseTo(0.6, 6); // cos([3,4],[1,0])
    expect(f(b, 'dense')).toBe(0.25); // no stored vector: the retriever's cosine
    expect(f(a, 'dense_norm')).toBe(1);
    expect(f(b, 'dense_norm')).toBe(0);
  });

  describe('embedding parts, classic BM25 and interactions (three-chunk pool)', () => {
    const pool = [...hits, hit(3, 3, 'Third', 'gamma')];
    // Query [1,0 | 0,1]; parts of 2 + 2 dimensions.
    const vectors = new Map([
      [1, Float32Array.from([1, 0, 1, 0])], // lsa cos 1, n-gram cos 0, whole 1/2
      [2, Float32Array.from([1, 1, 0, 1])], // lsa 1/√2, n-gram 1, whole 2/√6
      [3, Float32Array.from([0, 1, 1, 0])], // lsa 0, n-gram 0, whole 0
    ]);
    const dense = {
      embedQuery: () => Float32Array.from([1, 0, 0, 1]),
      chunkVectors: () => vectors,
    };

    it('gives each part of a concatenated embedding its own cosine, min-max within the pool', () => {
      const { rows } = extractFeatures('alpha beta', pool, deps({ ...dense, denseParts: () => [2, 2] }));
      const [a, b, c] = rows as [Float64Array, Float64Array, Float64Array];
      expect(f(a, 'dense_lsa')).toBe(1);
      expect(f(b, 'dense_lsa')).toBeCloseTo(Math.SQRT1_2, 6);
      expect(f(c, 'dense_lsa')).toBe(0);
      expect(f(a, 'dense_ngram')).toBe(0);
      expect(f(b, 'dense_ngram')).toBe(1);
      expect(f(c, 'dense_ngram')).toBe(0);
      // The whole-vector cosine is unchanged by the split.
      expect(f(b, 'dense')).toBeCloseTo(2 / Math.sqrt(6), 6);
    });

    it('leaves the per-part features at 0 when the embedding layout is unknown', () => {
      const { rows } = extractFeatures('alpha beta', pool, deps(dense));
      for (const r of rows) {
        expect(f(r, 'dense_lsa')).toBe(0);
        expect(f(r, 'dense_ngram')).toBe(0);
      }
    });

    it('scores classic BM25 (k1 1.2, b 0.75) over title + body whatever the index parameters', () => {
      const { rows } = extractFeatures('alpha beta', pool, deps());
      // avgdl = 1 + 2 = 3. A: dl 4, alpha tf 2 (idf 2), beta tf 1 (idf 1): norm 1.2·(0.25 + 0.75·4/3) = 1.5
      // → 2·2/3.5 + 1/2.5. B: dl 5 (title "Other Intro Setup"), beta tf 2: norm 1.8 → 2/3.8. C: 0.
      const bScore = 2 / 3.8 / (4 / 3.5 + 1 / 2.5);
      expect(f(rows[0]!, 'bm25_classic')).toBe(1);
      expect(f(rows[1]!, 'bm25_classic')).toBeCloseTo(bScore, 12);
      expect(f(rows[2]!, 'bm25_classic')).toBe(0);
    });

    it('computes the interaction and square features from the normalized scores', () => {
      const { rows } = extractFeatures('alpha beta', pool, deps(dense));
      const [a, b, c] = rows as [Float64Array, Float64Array, Float64Array];
      // bm25: A 3 (first stage), B 2/3 recomputed, C 0 → 1, 2/9, 0. dense: 1/2, 2/√6, 0 → √6/4, 1, 0.
      const bmB = 2 / 9;
      const dnA = Math.sqrt(6) / 4;
      const qLen = Math.log(3); // two distinct query terms
      expect(f(b, 'bm25')).toBeCloseTo(bmB, 12);
      expect(f(a, 'dense_norm')).toBeCloseTo(dnA, 6);
      expect(f(b, 'bm25_x_coverage')).toBeCloseTo(bmB / 3, 12); // B covers beta: idf 1 of 3
      expect(f(a, 'bm25_x_coverage')).toBeCloseTo(1, 12);
      expect(f(a, 'bm25_x_dense')).toBeCloseTo(dnA, 6);
      expect(f(b, 'bm25_x_dense')).toBeCloseTo(bmB, 6);
      expect(f(b, 'bm25_sq')).toBeCloseTo(bmB * bmB, 12);
      expect(f(a, 'dense_sq')).toBeCloseTo(0.375, 6);
      expect(f(b, 'bm25_x_qlen')).toBeCloseTo(bmB * qLen, 12);
      expect(f(b, 'dense_x_qlen')).toBeCloseTo(qLen, 6);
      for (const name of [
        'bm25_x_coverage',
        'bm25_x_dense',
        'bm25_sq',
        'dense_sq',
        'bm25_x_qlen',
        'dense_x_qlen',
      ])
        expect(f(c, name)).toBe(0);
    });
  });

  it('matches exact entities verbatim', () => {
    const pool = [
      hit(1, 1, 'Log', 'disk failed with ERR_DISK_FULL today'),
      hit(2, 2, 'Log', 'disk full error'),
    ];
    const { rows } = extractFeatures('why ERR_DISK_FULL', pool, deps());
    expect(f(rows[0]!, 'entity')).toBe(1);
    expect(f(rows[1]!, 'entity')).toBe(0);
  });

  it('reuses analyzed chunks from the cache', () => {
    const cache = new ChunkTermsCache(1);
    let calls = 0;
    const d = deps({
      analyze: (t) => {
        calls++;
        return t.toLowerCase().split(/\W+/).filter(Boolean);
      },
      chunkCache: cache,
    });
    const first = extractFeatures('alpha', [hits[0]!], d).rows[0]!;
    const before = calls;
    const again = extractFeatures('alpha', [hits[0]!], d).rows[0]!;
    expect(calls - before).toBe(1); // only the query was analyzed
    expect(Array.from(again)).toEqual(Array.from(first));
    extractFeatures('alpha', [hits[1]!], d);
    expect(cache.size).toBe(1); // bounded: the older entry was evicted
    expect(cache.get(1)).toBeUndefined();
  });
});

describe('proximity and phrase helpers', () => {
  it('finds the shortest span covering every matched query term', () => {
    const q = new Set(['a', 'b', 'c']);
    // a x x b x c … a b c  → the last three are adjacent
    expect(proximity(q, ['a', 'x', 'x', 'b', 'x', 'c', 'y', 'a', 'b', 'c'])).toBe(1);
    expect(proximity(q, ['a', 'x', 'b', 'x', 'x', 'c'])).toBeCloseTo(3 / 6, 12);
    expect(proximity(q, ['a', 'x', 'x', 'b'])).toBeCloseTo(2 / 4, 12); // c never matches
    expect(proximity(q, ['a', 'a'])).toBe(0);
  });

  it('counts query bigrams found in order', () => {
    expect(phraseMatch(['a', 'b', 'c'], ['a', 'b', 'x', 'c'])).toBe(0.5);
    expect(phraseMatch(['a', 'b'], ['b', 'a'])).toBe(0);
    expect(phraseMatch(['a'], ['a'])).toBe(0);
  });
});

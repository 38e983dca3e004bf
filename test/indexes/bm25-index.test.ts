import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { createAnalyzer, LUCENE_ENGLISH_STOPWORDS, tokenize } from '../../src/indexes/lexical/analyzer.js';
import { Bm25Index, type Bm25Params } from '../../src/indexes/lexical/bm25-index.js';
import { byteToLength, lengthToByte } from '../../src/indexes/lexical/lucene-norms.js';

const EXACT: Bm25Params = { k1: 0.9, b: 0.4, lengthNorm: 'exact' };
const FIELD = [{ name: 'contents', weight: 1 }];

function tinyIndex(params: Bm25Params = EXACT): Bm25Index {
  const idx = new Bm25Index(params, FIELD);
  idx.add({ chunkId: 1, group: 1, fields: { contents: ['a', 'b', 'c'] } });
  idx.add({ chunkId: 2, group: 2, fields: { contents: ['a', 'a', 'd', 'e'] } });
  idx.add({ chunkId: 3, group: 3, fields: { contents: ['f', 'g'] } });
  return idx;
}

describe('Bm25Index scoring (Lucene BM25 formula)', () => {
  it('scores a hand-computed example exactly', () => {
    // N=3, avgdl=3, df(a)=2 → idf = ln(1 + 1.5/2.5) = ln 1.6 = 0.4700036
    // chunk 1: tf=1, norm = 0.9·(0.6 + 0.4·3/3) = 0.9  → 0.4700036 · 1/1.9  = 0.2473703
    // chunk 2: tf=2, norm = 0.9·(0.6 + 0.4·4/3) = 1.02 → 0.4700036 · 2/3.02 = 0.3112607
    const hits = tinyIndex().search({ contents: ['a'] }, { k: 10 });
    expect(hits.map((h) => h.chunkId)).toEqual([2, 1]);
    expect(hits[0]!.score).toBeCloseTo(0.3112607, 6);
    expect(hits[1]!.score).toBeCloseTo(0.2473703, 6);
  });

  it('weights repeated query terms by their count, as bag-of-words queries do', () => {
    const idx = tinyIndex();
    const once = idx.search({ contents: ['a'] }, { k: 1 })[0]!.score;
    const twice = idx.search({ contents: ['a', 'a'] }, { k: 1 })[0]!.score;
    expect(twice).toBeCloseTo(2 * once, 10);
  });

  it('Lucene length norms equal exact lengths below 24 tokens', () => {
    const exact = tinyIndex(EXACT).search({ contents: ['a', 'd'] }, { k: 3 });
    const lucene = tinyIndex({ ...EXACT, lengthNorm: 'lucene' }).search({ contents: ['a', 'd'] }, { k: 3 });
    expect(lucene).toEqual(exact);
  });

  it('returns nothing for unknown terms and k=0', () => {
    const idx = tinyIndex();
    expect(idx.search({ contents: ['zzz'] }, { k: 10 })).toEqual([]);
    expect(idx.search({ contents: ['a'] }, { k: 0 })).toEqual([]);
  });

  it('k1 and b are query-time parameters', () => {
    const idx = tinyIndex();
    const before = idx.search({ contents: ['a'] }, { k: 2 })[0]!.score;
    idx.setParams({ k1: 1.2, b: 0.75, lengthNorm: 'exact' });
    const after = idx.search({ contents: ['a'] }, { k: 2 })[0]!.score;
    // chunk 2: norm = 1.2·(0.25 + 0.75·4/3) = 1.5 → ln1.6 · 2/3.5 = 0.2685735
    expect(after).toBeCloseTo(0.2685735, 6);
    expect(after).not.toBeCloseTo(before, 3);
  });
});

describe('Lucene one-byte length encoding', () => {
  it('is the identity below 24 and lossy above, as SmallFloat.intToByte4', () => {
    for (let i = 0; i < 24; i++) expect(byteToLength(lengthToByte(i))).toBe(i);
    // 100 − 24 = 76 = 0b1001100 → 7 bits, shift 3, mantissa (76>>>3)&7 = 1, exponent (3+1)<<3 = 32 → 24 + 33
    expect(lengthToByte(100)).toBe(57);
    // 57 − 24 = 33 → mantissa 1 | 8 = 9, shift 3 → 72; 24 + 72 = 96
    expect(byteToLength(57)).toBe(96);
    let prev = -1;
    for (let len = 0; len < 100_000; len += 7) {
      const decoded = byteToLength(lengthToByte(len));
      expect(decoded).toBeLessThanOrEqual(len);
      expect(decoded).toBeGreaterThanOrEqual(prev);
      prev = decoded;
    }
  });
});

describe('Bm25Index deletes', () => {
  it('a deleted chunk is gone and statistics are recomputed without it', () => {
    const idx = tinyIndex();
    expect(idx.remove(2)).toBe(true);
    expect(idx.remove(2)).toBe(false);
    const hits = idx.search({ contents: ['a'] }, { k: 10 });
    expect(hits.map((h) => h.chunkId)).toEqual([1]);
    // N=2, df(a)=1 → idf = ln 2; avgdl = 5/2; norm = 0.9·(0.6 + 0.4·3/2.5) = 0.972 → ln2/1.972 = 0.3514945
    expect(hits[0]!.score).toBeCloseTo(0.3514945, 6);
    expect(idx.search({ contents: ['d'] }, { k: 10 })).toEqual([]);
    expect(idx.size).toBe(2);
  });

  it('re-adding a chunk id replaces the old postings', () => {
    const idx = tinyIndex();
    idx.add({ chunkId: 2, group: 2, fields: { contents: ['x', 'y'] } });
    expect(idx.search({ contents: ['d'] }, { k: 10 })).toEqual([]);
    expect(idx.search({ contents: ['x'] }, { k: 10 }).map((h) => h.chunkId)).toEqual([2]);
    expect(idx.size).toBe(3);
  });
});

// Deterministic PRNG so failures reproduce.
function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

describe('Bm25Index incremental updates equal a fresh build', () => {
  it('after random adds, replaces and bulk deletes, results match an index built from the live set', () => {
    const rand = rng(42);
    const vocab = Array.from({ length: 60 }, (_, i) => `t${i}`);
    const docOf = (): string[] =>
      Array.from({ length: 3 + Math.floor(rand() * 30) }, () => vocab[Math.floor(rand() * rand() * 60)]!);
    const live = new Map<number, { group: number; terms: string[] }>();
    const idx = new Bm25Index({ k1: 0.9, b: 0.4, lengthNorm: 'lucene' }, FIELD);
    let nextId = 1;
    for (let step = 0; step < 3000; step++) {
      const r = rand();
      if (r < 0.6 || live.size < 10) {
        const id = nextId++;
        const d = { group: id % 17, terms: docOf() };
        live.set(id, d);
        idx.add({ chunkId: id, group: d.group, fields: { contents: d.terms } });
      } else if (r < 0.8) {
        const ids = [...live.keys()];
        const id = ids[Math.floor(rand() * ids.length)]!;
        const d = { group: id % 17, terms: docOf() };
        live.set(id, d);
        idx.add({ chunkId: id, group: d.group, fields: { contents: d.terms } });
      } else {
        const ids = [...live.keys()].filter(() => rand() < 0.05);
        for (const id of ids) live.delete(id);
        idx.removeMany(ids);
      }
      if (step === 1500) idx.compact();
    }
    const fresh = new Bm25Index({ k1: 0.9, b: 0.4, lengthNorm: 'lucene' }, FIELD);
    for (const [id, d] of [...live].sort((a, b) => a[0] - b[0]))
      fresh.add({ chunkId: id, group: d.group, fields: { contents: d.terms } });
    expect(idx.size).toBe(live.size);
    for (let q = 0; q < 50; q++) {
      const terms = [vocab[Math.floor(rand() * 60)]!, vocab[Math.floor(rand() * 60)]!];
      const a = idx.search({ contents: terms }, { k: 20 });
      const b = fresh.search({ contents: terms }, { k: 20 });
      expect(a.map((h) => h.score)).toEqual(b.map((h) => expect.closeTo(h.score, 9) as unknown as number));
      expect(new Set(a.map((h) => h.chunkId))).toEqual(new Set(b.map((h) => h.chunkId)));
    }
  });
});

describe('Bm25Index filtered top-k', () => {
  it('returns k results when k documents match, even when the best-scoring ones are filtered out', () => {
    const idx = new Bm25Index(EXACT, FIELD);
    // Chunks 1..100: the term appears (101 − i) times, so low ids score highest.
    for (let i = 1; i <= 100; i++) {
      idx.add({ chunkId: i, group: i, fields: { contents: [...Array(101 - i).fill('w'), 'pad', 'pad'] } });
    }
    const allow = (g: number): boolean => g % 10 === 0; // 10 of 100, all among the lowest scores
    const stats = { terms: [], matched: 0, filteredOut: 0 };
    const hits = idx.search({ contents: ['w'] }, { k: 10, allowGroup: allow }, stats);
    expect(hits).toHaveLength(10);
    expect(hits.every((h) => h.group % 10 === 0)).toBe(true);
    expect(hits.map((h) => h.chunkId)).toEqual([10, 20, 30, 40, 50, 60, 70, 80, 90, 100]);
    expect(stats.matched).toBe(100);
    expect(stats.filteredOut).toBeGreaterThan(0);
    expect(idx.search({ contents: ['w'] }, { k: 10, allowGroup: () => false })).toEqual([]);
  });

  it('collapses to the best chunk per group', () => {
    const idx = new Bm25Index(EXACT, FIELD);
    idx.add({ chunkId: 1, group: 7, fields: { contents: ['w', 'x'] } });
    idx.add({ chunkId: 2, group: 7, fields: { contents: ['w', 'w', 'x'] } });
    idx.add({ chunkId: 3, group: 8, fields: { contents: ['w', 'x', 'y', 'z'] } });
    const hits = idx.search({ contents: ['w'] }, { k: 10, collapseGroups: true });
    expect(hits.map((h) => [h.group, h.chunkId])).toEqual([
      [7, 2],
      [8, 3],
    ]);
  });
});

describe('Bm25Index collapsed top-k', () => {
  /** The reference: score every chunk, keep each group's best (ties: earlier-indexed), sort, take k. */
  function collapsedByFullSort(
    idx: Bm25Index,
    terms: string[],
    k: number,
    allowGroup?: (g: number) => boolean,
  ): Array<[number, number]> {
    const all = idx.search({ contents: terms }, { k: 1_000_000 });
    const seen = new Set<number>();
    return all
      .filter(
        (h) => (allowGroup === undefined || allowGroup(h.group)) && !seen.has(h.group) && seen.add(h.group),
      )
      .slice(0, k)
      .map((h) => [h.group, h.chunkId]);
  }

  it('ranks exactly as collapsing every matching chunk then sorting would, with and without a filter', () => {
    const vocab = ['w', 'x', 'y', 'z', 'v'];
    fc.assert(
      fc.property(
        fc.array(
          fc.record({
            group: fc.integer({ min: 1, max: 25 }),
            terms: fc.array(fc.constantFrom(...vocab), { minLength: 1, maxLength: 6 }),
          }),
          { minLength: 1, maxLength: 120 },
        ),
        fc.array(fc.constantFrom(...vocab), { minLength: 1, maxLength: 3 }),
        fc.integer({ min: 1, max: 12 }),
        fc.integer({ min: 1, max: 4 }),
        (chunks, query, k, mod) => {
          const idx = new Bm25Index(EXACT, FIELD);
          for (const [i, c] of chunks.entries())
            idx.add({ chunkId: i + 1, group: c.group, fields: { contents: c.terms } });
          const got = idx.search({ contents: query }, { k, collapseGroups: true });
          expect(got.map((h) => [h.group, h.chunkId])).toEqual(collapsedByFullSort(idx, query, k));
          const allowGroup = (g: number): boolean => g % mod === 0;
          const filtered = idx.search({ contents: query }, { k, collapseGroups: true, allowGroup });
          expect(filtered.map((h) => [h.group, h.chunkId])).toEqual(
            collapsedByFullSort(idx, query, k, allowGroup),
          );
        },
      ),
      { numRuns: 200 },
    );
  });
});

describe('analyzer', () => {
  it('lowercases, strips possessives, removes Lucene stop-words and Porter-stems', () => {
    const a = createAnalyzer();
    expect(a.analyze("The Quarry's runners are running into the studies")).toEqual([
      'quarri',
      'runner',
      'run',
      'studi',
    ]);
    expect(LUCENE_ENGLISH_STOPWORDS).toHaveLength(33);
  });

  it('keeps UAX #29 word joins: decimals, thousands, abbreviations, apostrophes', () => {
    expect(tokenize("U.S. 1,000 3.5mg don't e-mail")).toEqual([
      'U.S',
      '1,000',
      '3.5mg',
      "don't",
      'e',
      'mail',
    ]);
  });

  it('segments CJK text into words so it is searchable', () => {
    const terms = createAnalyzer().analyze('数据库中的检索系统');
    expect(terms).toContain('检索');
    expect(terms.length).toBeGreaterThan(2);
    expect(createAnalyzer().analyze('東京の天気は晴れです').length).toBeGreaterThan(2);
  });

  it('segments Thai, Lao, Khmer and Myanmar text (scripts below U+2E80 written without spaces)', () => {
    const a = createAnalyzer();
    expect(a.analyze('กรุงเทพมหานครเป็นเมืองหลวงของประเทศไทย')).toEqual(
      expect.arrayContaining(['เมือง', 'หลวง', 'ประเทศไทย']),
    );
    for (const text of ['ນະຄອນຫຼວງວຽງຈັນເປັນເມືອງຫຼວງ', 'ភ្នំពេញជារាជធានីនៃប្រទេសកម្ពុជា', 'ရန်ကုန်မြို့သည်မြို့ကြီးဖြစ်သည်'])
      expect(a.analyze(text).length).toBeGreaterThan(2);
    // Scripts written with spaces are left to the word pattern: Vietnamese and Greek keep their words whole.
    expect(a.analyze('Hà Nội là thủ đô')).toEqual(['hà', 'nội', 'là', 'thủ', 'đô']);
    expect(a.analyze('ἀρχὴ σοφίας')).toEqual(['ἀρχὴ', 'σοφίας']);
  });

  it('is configurable per collection', () => {
    const a = createAnalyzer({ stopwords: 'none', stemmer: 'none', lowercase: false });
    expect(a.analyze('The Runners')).toEqual(['The', 'Runners']);
    expect(createAnalyzer({ stopwords: ['runners'] }).analyze('the runners')).toEqual(['the']);
    expect(() => createAnalyzer({ stemmer: 'snowball' as never })).toThrow();
  });
});

import { describe, expect, it } from 'vitest';
import { QuarryError } from '../../src/errors.js';
import {
  evaluateRun,
  hitAt,
  latencySummary,
  metricByName,
  mrrAt,
  ndcgAt,
  percentiles,
  precisionAt,
  type Qrels,
  type Run,
  rankDocs,
  recallAt,
  type ScoredDoc,
} from '../../src/eval/metrics.js';

// log2 values used below: log2(2) = 1, log2(3) = 1.5849625007, log2(4) = 2, log2(6) = 2.5849625007.

const judged = (entries: Record<string, number>) => new Map(Object.entries(entries));
const scored = (...ids: string[]): ScoredDoc[] => ids.map((docId, i) => ({ docId, score: ids.length - i }));

describe('rankDocs (trec_eval ordering)', () => {
  it('sorts by score descending without touching the input', () => {
    const input = [
      { docId: 'a', score: 1 },
      { docId: 'b', score: 3 },
      { docId: 'c', score: 2 },
    ];
    expect(rankDocs(input)).toEqual(['b', 'c', 'a']);
    expect(input.map((d) => d.docId)).toEqual(['a', 'b', 'c']);
  });

  it('breaks score ties by doc id descending, as strings', () => {
    const input = [
      { docId: 'a', score: 1 },
      { docId: 'b', score: 1 },
      { docId: 'c', score: 2 },
      { docId: '10', score: 0 },
      { docId: '9', score: 0 },
    ];
    // c has the top score; a/b tie → 'b' > 'a' first; 10/9 tie → '9' > '10' as strings (strcmp), so 9 first.
    expect(rankDocs(input)).toEqual(['c', 'b', 'a', '9', '10']);
    // Input order does not matter.
    expect(rankDocs([...input].reverse())).toEqual(['c', 'b', 'a', '9', '10']);
  });

  it('orders ties by code point like strcmp on UTF-8, not by UTF-16 units', () => {
    // U+FF21 (fullwidth A) < U+1F600 (emoji) in code points, but its UTF-16 unit 0xFF21 > surrogate 0xD83D.
    const ranked = rankDocs([
      { docId: '\uFF21', score: 1 },
      { docId: '\u{1F600}', score: 1 },
    ]);
    expect(ranked).toEqual(['\u{1F600}', '\uFF21']);
  });

  it('keeps only the best-ranked occurrence of a duplicate doc id', () => {
    expect(
      rankDocs([
        { docId: 'd2', score: 3 },
        { docId: 'd1', score: 4 },
        { docId: 'd2', score: 5 },
        { docId: 'd3', score: 2 },
      ]),
    ).toEqual(['d2', 'd1', 'd3']);
  });

  it('rejects NaN scores', () => {
    expect(() => rankDocs([{ docId: 'a', score: Number.NaN }])).toThrow(QuarryError);
  });
});

describe('per-query metrics, binary qrels', () => {
  // 3 relevant docs (d1, d3, d5); the run returns d1, d2, d3, d4 (ranks 1–4).
  const q = judged({ d1: 1, d3: 1, d5: 1, d2: 0 });
  const run = scored('d1', 'd2', 'd3', 'd4');

  it('nDCG@3', () => {
    // DCG@3  = 1/log2(2) + 0 + 1/log2(4) = 1 + 0.5 = 1.5
    // IDCG@3 = 1/log2(2) + 1/log2(3) + 1/log2(4) = 1 + 0.6309297536 + 0.5 = 2.1309297536
    // nDCG@3 = 1.5 / 2.1309297536 = 0.7039180890
    expect(ndcgAt(3)(run, q)).toBeCloseTo(0.703918089, 9);
  });

  it('recall, precision, MRR, hit', () => {
    expect(recallAt(1)(run, q)).toBeCloseTo(1 / 3, 12); // d1 of 3 relevant
    expect(recallAt(3)(run, q)).toBeCloseTo(2 / 3, 12); // d1, d3 of 3 relevant
    expect(precisionAt(2)(run, q)).toBe(0.5); // d1 in the top 2
    expect(precisionAt(4)(run, q)).toBe(0.5); // d1, d3 in the top 4
    expect(mrrAt(10)(run, q)).toBe(1); // d1 at rank 1
    expect(hitAt(1)(run, q)).toBe(1);
  });

  it('MRR and hit respect the cutoff', () => {
    const late = scored('x', 'y', 'd3'); // first relevant at rank 3
    expect(mrrAt(3)(late, q)).toBeCloseTo(1 / 3, 12);
    expect(mrrAt(2)(late, q)).toBe(0);
    expect(hitAt(2)(late, q)).toBe(0);
    expect(hitAt(3)(late, q)).toBe(1);
  });

  it('accepts doc ids already in rank order', () => {
    expect(ndcgAt(3)(['d1', 'd2', 'd3'], q)).toBeCloseTo(0.703918089, 9);
    expect(mrrAt(10)(['d2', 'd3'], q)).toBe(0.5);
  });
});

describe('per-query metrics, graded qrels', () => {
  // Grades a=3, b=2, c=1, z=0 (judged non-relevant); x is unjudged. The run puts them in the order c, z, b, x, a,
  // so the ideal order (a, b, c) differs from the retrieved one.
  const q = judged({ a: 3, b: 2, c: 1, z: 0 });
  const run = scored('c', 'z', 'b', 'x', 'a');

  it('nDCG@5 — checked by hand to 4 decimals', () => {
    // DCG@5  = 1/log2(2) + 0/log2(3) + 2/log2(4) + 0/log2(5) + 3/log2(6)
    //        = 1 + 0 + 1 + 0 + 3/2.5849625007 = 2 + 1.1605584217 = 3.1605584217
    // IDCG@5 = 3/log2(2) + 2/log2(3) + 1/log2(4) = 3 + 1.2618595071 + 0.5 = 4.7618595071
    // nDCG@5 = 3.1605584217 / 4.7618595071 = 0.6637
    expect(ndcgAt(5)(run, q)).toBeCloseTo(0.6637, 4);
    expect(ndcgAt(5)(run, q)).toBeCloseTo(0.6637235763, 9);
  });

  it('nDCG@3 cuts both DCG and IDCG at 3', () => {
    // DCG@3 = 1 + 0 + 2/2 = 2; IDCG@3 = 4.7618595071 (three relevant grades); 2 / 4.7618595071 = 0.4200039915
    expect(ndcgAt(3)(run, q)).toBeCloseTo(0.4200039915, 9);
  });

  it('the ideal ordering scores 1, and nDCG uses grades not binary relevance', () => {
    expect(ndcgAt(10)(['a', 'b', 'c'], q)).toBeCloseTo(1, 12);
    // b, a, c: DCG = 2 + 3/log2(3) + 1/2 = 2 + 1.8927892607 + 0.5 = 4.3927892607; / 4.7618595071 = 0.9224945117
    expect(ndcgAt(10)(['b', 'a', 'c'], q)).toBeCloseTo(0.9224945117, 9);
  });

  it('recall counts any grade > 0 as relevant', () => {
    expect(recallAt(3)(run, q)).toBeCloseTo(2 / 3, 12); // c, b of a, b, c
    expect(recallAt(5)(run, q)).toBe(1);
  });
});

describe('edge cases', () => {
  it('k larger than the list', () => {
    // One doc returned (relevant), 2 relevant judged, k = 10.
    const q = judged({ d1: 1, d2: 1 });
    const run = scored('d1');
    // DCG = 1; IDCG@10 = 1 + 1/log2(3) = 1.6309297536; nDCG = 0.6131471928
    expect(ndcgAt(10)(run, q)).toBeCloseTo(0.6131471928, 9);
    expect(recallAt(10)(run, q)).toBe(0.5);
    expect(precisionAt(10)(run, q)).toBe(0.1); // trec_eval P_k always divides by k
    expect(mrrAt(10)(run, q)).toBe(1);
    expect(hitAt(10)(run, q)).toBe(1);
  });

  it('ties change the result exactly as trec_eval would', () => {
    // a and b tie; trec_eval ranks b (greater id) first, so relevant a lands at rank 2.
    const run = [
      { docId: 'a', score: 1 },
      { docId: 'b', score: 1 },
    ];
    const q = judged({ a: 1 });
    expect(mrrAt(10)(run, q)).toBe(0.5);
    // DCG = 1/log2(3) = 0.6309297536; IDCG = 1
    expect(ndcgAt(10)(run, q)).toBeCloseTo(0.6309297536, 9);
    expect(hitAt(1)(run, q)).toBe(0);
  });

  it('a duplicate doc id neither counts twice nor takes a rank', () => {
    const run = [
      { docId: 'd2', score: 5 },
      { docId: 'd1', score: 4 },
      { docId: 'd2', score: 3 },
      { docId: 'd3', score: 2 },
    ];
    // Deduplicated ranking: d2, d1, d3 — d3 is at rank 3, inside the cutoff.
    expect(mrrAt(3)(run, judged({ d3: 1 }))).toBeCloseTo(1 / 3, 12);
    // d2 relevant: counted once, so P@4 = 1/4 (not 2/4) and recall = 1 (not 2).
    expect(precisionAt(4)(run, judged({ d2: 1 }))).toBe(0.25);
    expect(recallAt(4)(run, judged({ d2: 1 }))).toBe(1);
    // Same rule for ranked id lists.
    expect(precisionAt(3)(['d2', 'd2', 'd2'], judged({ d2: 1 }))).toBeCloseTo(1 / 3, 12);
  });

  it('no relevant judgment → every metric is 0', () => {
    const q = judged({ a: 0, b: -1 });
    for (const m of [ndcgAt(10), recallAt(10), mrrAt(10), hitAt(10), precisionAt(10)]) {
      expect(m(scored('a', 'b'), q)).toBe(0);
      expect(m(scored('a'), undefined)).toBe(0);
    }
  });

  it('an empty run scores 0', () => {
    const q = judged({ a: 1 });
    expect(ndcgAt(10)([], q)).toBe(0);
    expect(recallAt(10)([], q)).toBe(0);
  });

  it('rejects invalid cutoffs and metric names', () => {
    expect(() => ndcgAt(0)).toThrow(QuarryError);
    expect(() => recallAt(2.5)).toThrow(QuarryError);
    expect(() => metricByName('map@10')).toThrow(/unknown metric "map@10"/);
    expect(() => metricByName('ndcg@0')).toThrow(QuarryError);
    expect(() => metricByName('ndcg')).toThrow(QuarryError);
    expect(metricByName('ndcg@3')(['d1', 'd2', 'd3'], judged({ d1: 1, d3: 1, d5: 1 }))).toBeCloseTo(
      0.703918089,
      9,
    );
  });
});

describe('evaluateRun', () => {
  const qrels: Qrels = new Map([
    ['q1', judged({ d1: 1, d3: 1, d5: 1, d2: 0 })], // binary case above
    ['q2', judged({ a: 3, b: 2, c: 1, z: 0 })], // graded case above
    ['q3', judged({ x: 0 })], // no relevant doc → excluded
    ['q4', judged({ y: 1 })], // relevant but missing from the run → scores 0
  ]);
  const run: Run = new Map([
    ['q1', scored('d1', 'd2', 'd3', 'd4')],
    // Unsorted input on purpose: sorted it is c, z, b, x, a.
    [
      'q2',
      [
        { docId: 'a', score: 1 },
        { docId: 'c', score: 5 },
        { docId: 'b', score: 3 },
        { docId: 'x', score: 2 },
        { docId: 'z', score: 4 },
      ],
    ],
    ['q3', scored('x')],
    ['q5', scored('zz')], // not in qrels → ignored
  ]);
  const spec = ['ndcg@10', 'recall@10', 'recall@100', 'mrr@10', 'hit@5', 'precision@5'];

  it('averages over the queries with a relevant judgment, counting missing ones as 0', () => {
    const r = evaluateRun(qrels, run, spec);
    expect(r.queryCount).toBe(3); // q1, q2, q4
    expect([...r.perQuery.keys()]).toEqual(['q1', 'q2', 'q4']);
    expect(r.missingFromRun).toEqual(['q4']);
    expect(Object.keys(r.mean)).toEqual(spec);

    // nDCG@10: q1 = 1.5 / 2.1309297536 = 0.7039180890; q2 = 0.6637235763 (same as @5: 5 docs returned); q4 = 0
    // mean = (0.7039180890 + 0.6637235763 + 0) / 3 = 0.4558805551
    expect(r.mean['ndcg@10']).toBeCloseTo(0.4558805551, 9);
    // recall@10: q1 = 2/3, q2 = 3/3, q4 = 0 → (2/3 + 1) / 3 = 5/9
    expect(r.mean['recall@10']).toBeCloseTo(5 / 9, 12);
    expect(r.mean['recall@100']).toBeCloseTo(5 / 9, 12);
    // MRR@10: q1 = 1 (d1 at 1), q2 = 1 (c at 1), q4 = 0 → 2/3; hit@5 likewise
    expect(r.mean['mrr@10']).toBeCloseTo(2 / 3, 12);
    expect(r.mean['hit@5']).toBeCloseTo(2 / 3, 12);
    // P@5: q1 = 2/5, q2 = 3/5, q4 = 0 → 1/3
    expect(r.mean['precision@5']).toBeCloseTo(1 / 3, 12);

    expect(r.perQuery.get('q4')).toEqual({
      'ndcg@10': 0,
      'recall@10': 0,
      'recall@100': 0,
      'mrr@10': 0,
      'hit@5': 0,
      'precision@5': 0,
    });
    expect(r.perQuery.get('q2')?.['ndcg@10']).toBeCloseTo(0.6637235763, 9);
  });

  it('returns zero means when nothing is evaluable, and validates the spec', () => {
    const r = evaluateRun(new Map([['q', judged({ a: 0 })]]), run, ['ndcg@10']);
    expect(r).toEqual({ mean: { 'ndcg@10': 0 }, perQuery: new Map(), queryCount: 0, missingFromRun: [] });
    expect(() => evaluateRun(qrels, run, ['ndcg@10', 'bogus'])).toThrow(QuarryError);
  });
});

describe('percentiles and latency', () => {
  it('interpolates linearly like numpy', () => {
    // sorted 1, 2, 3, 4 (n = 4): p50 → h = 3 · 0.5 = 1.5 → 2 + 0.5·(3 − 2) = 2.5
    // p95 → h = 2.85 → 3 + 0.85·(4 − 3) = 3.85; p0 = min; p100 = max; p25 → h = 0.75 → 1.75
    expect(percentiles([4, 1, 3, 2], [50, 95, 0, 100, 25])).toEqual([2.5, 3.85, 1, 4, 1.75]);
    expect(percentiles([7], [0, 50, 99])).toEqual([7, 7, 7]);
  });

  it('rejects empty samples and out-of-range percentiles', () => {
    expect(() => percentiles([], [50])).toThrow(QuarryError);
    expect(() => percentiles([1], [101])).toThrow(QuarryError);
    expect(() => percentiles([1], [-1])).toThrow(QuarryError);
    expect(() => percentiles([Number.NaN], [50])).toThrow(QuarryError);
    expect(() => latencySummary([])).toThrow(QuarryError);
  });

  it('summarises latencies', () => {
    // sorted 1..5: p50 → h = 2 → 3; p95 → h = 3.8 → 4.8; p99 → h = 3.96 → 4.96; mean = 15/5 = 3
    const s = latencySummary([5, 1, 3, 2, 4]);
    expect(s.p50).toBe(3);
    expect(s.p95).toBeCloseTo(4.8, 12);
    expect(s.p99).toBeCloseTo(4.96, 12);
    expect(s).toMatchObject({ mean: 3, max: 5, count: 5 });
  });
});

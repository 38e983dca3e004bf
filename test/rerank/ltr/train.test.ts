import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { FEATURE_INDEX, FEATURE_NAMES } from '../../../src/rerank/ltr/features.js';
import { compileModel } from '../../../src/rerank/ltr/model.js';
import {
  ndcgOfScores,
  readFeedback,
  readGoldenSet,
  seededRandom,
  type TrainingQuery,
  trainLinearRanker,
} from '../../../src/rerank/ltr/train.js';

/**
 * Synthetic pools: relevance follows a noisy mix of `coverage` (strong) and `phrase` (weak), while the
 * first-stage order (pool order) only follows `bm25`, which is unrelated noise. A learner must find the mix.
 */
function syntheticPools(nQueries: number, seed: number): TrainingQuery[] {
  const rnd = seededRandom(seed);
  const cov = FEATURE_INDEX.get('coverage')!;
  const phr = FEATURE_INDEX.get('phrase')!;
  const bm = FEATURE_INDEX.get('bm25')!;
  return Array.from({ length: nQueries }, (_, qi) => {
    const rows = Array.from({ length: 30 }, () => {
      const r = new Float64Array(FEATURE_NAMES.length);
      r[cov] = rnd();
      r[phr] = rnd();
      r[bm] = rnd();
      return r;
    });
    rows.sort((a, b) => b[bm]! - a[bm]!);
    const latent = rows.map((r) => 2 * r[cov]! + 0.5 * r[phr]! + 0.3 * rnd());
    const cut = [...latent].sort((a, b) => b - a)[2]!;
    const grades = latent.map((l) => (l >= cut ? (l > cut + 0.3 ? 2 : 1) : 0));
    return { id: `q${qi}`, rows, grades, ideal: grades.filter((g) => g > 0) };
  });
}

function meanNdcg(model: ReturnType<typeof trainLinearRanker>['model'], pools: TrainingQuery[]): number {
  const c = compileModel({ format: 'quarry-ltr', version: 1, ...model, trainedOn: {}, metrics: {} });
  return (
    pools.reduce(
      (s, q) =>
        s +
        ndcgOfScores(
          q.rows.map((r) => c.score(r)),
          q.grades,
          q.ideal,
        ),
      0,
    ) / pools.length
  );
}

const FEATURES = ['bm25', 'coverage', 'phrase', 'length'];

describe('training the linear ranker', () => {
  const train = syntheticPools(60, 1);
  const heldOut = syntheticPools(40, 2);

  for (const method of ['ranknet', 'lambdarank', 'ranknet+ca'] as const) {
    it(`${method} learns the relevance signal and beats the first-stage order on held-out pools`, () => {
      const r = trainLinearRanker(train, { method, features: FEATURES, iterations: 150 });
      expect(r.queries).toBe(60);
      expect(r.pairs).toBeGreaterThan(1000);
      expect(r.ndcgAfter).toBeGreaterThan(r.ndcgBefore + 0.3);
      const before =
        heldOut.reduce(
          (s, q) =>
            s +
            ndcgOfScores(
              q.rows.map((_, i) => -i),
              q.grades,
              q.ideal,
            ),
          0,
        ) / heldOut.length;
      expect(meanNdcg(r.model, heldOut)).toBeGreaterThan(before + 0.3);
      const w = (f: string) => r.model.weights[r.model.features.indexOf(f)]!;
      expect(w('coverage')).toBeGreaterThan(w('phrase'));
      expect(w('phrase')).toBeGreaterThan(Math.abs(w('bm25')));
      // `length` is constant (0) in the pools: standardization leaves it no say.
      expect(r.model.normalization.std[r.model.features.indexOf('length')]).toBe(1);
    });
  }

  it('is deterministic for a seed; the seed drives pair sampling', () => {
    const opts = { features: FEATURES, iterations: 60, maxPairsPerQuery: 20 };
    const a = trainLinearRanker(train, { ...opts, seed: 7 });
    const b = trainLinearRanker(train, { ...opts, seed: 7 });
    const c = trainLinearRanker(train, { ...opts, seed: 8 });
    expect(b.model).toEqual(a.model);
    expect(c.model.weights).not.toEqual(a.model.weights);
  });

  it('adds no pairs for queries without a relevant candidate', () => {
    const r = trainLinearRanker(
      [{ id: 'x', rows: train[0]!.rows, grades: train[0]!.rows.map(() => 0), ideal: [1] }],
      { features: FEATURES, iterations: 5 },
    );
    expect(r.pairs).toBe(0);
    expect(r.queries).toBe(0);
  });
});

describe('judgment sources', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'quarry-ltr-judg-'));
  const file = (name: string, text: string) => {
    const p = path.join(dir, name);
    fs.writeFileSync(p, text);
    return p;
  };

  it('reads a golden set, merging repeated queries', () => {
    const g = readGoldenSet(
      file(
        'golden.jsonl',
        '{"query":"a","relevant":{"d1":2}}\n\n{"query":"a","relevant":{"d2":1}}\n{"query":"b","relevant":{}}\n',
      ),
    );
    expect([...g.get('a')!]).toEqual([
      ['d1', 2],
      ['d2', 1],
    ]);
    expect(g.get('b')!.size).toBe(0);
  });

  it('turns feedback votes into grades (majority helpful = 1, else judged 0)', () => {
    const f = readFeedback(
      file(
        'feedback.jsonl',
        [
          '{"query":"q","docId":"d1","helpful":true}',
          '{"query":"q","docId":"d1","helpful":true}',
          '{"query":"q","docId":"d1","helpful":false}',
          '{"query":"q","docId":"d2","helpful":false}',
          '{"query":"q","docId":"d3","helpful":true}',
          '{"query":"q","docId":"d3","helpful":false}',
        ].join('\n'),
      ),
    );
    expect(Object.fromEntries(f.get('q')!)).toEqual({ d1: 1, d2: 0, d3: 0 });
  });

  it('names the file and line of an invalid record', () => {
    const bad = file(
      'bad.jsonl',
      '{"query":"q","docId":"d1","helpful":true}\n{"query":"q","docId":"d1","helpful":"yes"}\n',
    );
    expect(() => readFeedback(bad)).toThrow(/bad\.jsonl:2: invalid feedback line \(helpful/);
    expect(() => readGoldenSet(file('bad2.jsonl', 'not json\n'))).toThrow(/bad2\.jsonl:1: malformed JSON/);
  });
});

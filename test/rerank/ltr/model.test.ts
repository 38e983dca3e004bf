import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { QuarryError } from '../../../src/errors.js';
import { FEATURE_INDEX, FEATURE_NAMES } from '../../../src/rerank/ltr/features.js';
import {
  compileModel,
  defaultLtrModel,
  type LtrModel,
  loadLtrModel,
  parseLtrModel,
} from '../../../src/rerank/ltr/model.js';
import { DEFAULT_FEATURES } from '../../../src/rerank/ltr/train.js';

const valid = (): LtrModel => ({
  format: 'quarry-ltr',
  version: 1,
  features: ['bm25', 'coverage'],
  weights: [2, -1],
  bias: 0.5,
  normalization: { mean: [0.5, 0.2], std: [0.25, 0.1] },
  trainedOn: { dataset: 'synthetic', split: 'train' },
  metrics: { 'train_ndcg@10_after': 0.9 },
});

function rejects(input: unknown, pattern: RegExp): void {
  let error: unknown;
  try {
    parseLtrModel(input, 'm.json');
  } catch (e) {
    error = e;
  }
  expect(error).toBeInstanceOf(QuarryError);
  expect((error as QuarryError).code).toBe('RANKER_MODEL');
  expect((error as QuarryError).exitCode).toBe(2);
  expect((error as QuarryError).message).toMatch(pattern);
}

describe('LTR model JSON', () => {
  it('accepts a valid model and scores with standardized features', () => {
    const model = parseLtrModel(valid());
    const row = new Float64Array(FEATURE_NAMES.length);
    row[FEATURE_INDEX.get('bm25')!] = 1;
    row[FEATURE_INDEX.get('coverage')!] = 0.4;
    // 0.5 + 2·(1 − 0.5)/0.25 − 1·(0.4 − 0.2)/0.1 = 0.5 + 4 − 2
    expect(compileModel(model).score(row)).toBeCloseTo(2.5, 12);
  });

  it('refuses unknown features by name and lists the known ones', () => {
    rejects({ ...valid(), features: ['bm25', 'pagerank'] }, /unknown feature "pagerank" \(known: bm25, /);
  });

  it('refuses wrong format, version and mismatched lengths', () => {
    rejects({ ...valid(), format: 'xgboost' }, /format/);
    rejects({ ...valid(), version: 2 }, /version/);
    rejects({ ...valid(), weights: [1] }, /weights: has 1 entries, expected 2/);
    rejects(
      { ...valid(), normalization: { mean: [0, 0], std: [1, 0] } },
      /normalization\.std\.1: must be > 0/,
    );
    rejects({ ...valid(), features: ['bm25', 'bm25'] }, /duplicate "bm25"/);
    rejects({ ...valid(), bias: Number.NaN }, /bias/);
    rejects(null, /\(root\)/);
  });

  it('reports unreadable and malformed files', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'quarry-ltr-model-'));
    try {
      const bad = path.join(dir, 'bad.json');
      fs.writeFileSync(bad, '{"format": ');
      expect(() => loadLtrModel(bad)).toThrow(/malformed JSON/);
      expect(() => loadLtrModel(path.join(dir, 'missing.json'))).toThrow(/cannot read/);
      const good = path.join(dir, 'good.json');
      fs.writeFileSync(good, JSON.stringify(valid()));
      expect(loadLtrModel(good).weights).toEqual([2, -1]);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('ships a default model trained on scifact train only', () => {
    const model = defaultLtrModel();
    expect(model.trainedOn).toMatchObject({ dataset: 'scifact', split: 'train' });
    expect(model.features.length).toBeGreaterThan(5);
    // `quarry train-ranker` with default options reproduces the shipped model: same feature set.
    expect(model.features).toEqual([...DEFAULT_FEATURES]);
  });
});

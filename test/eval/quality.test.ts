import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { runEval } from '../../src/eval/run-eval.js';

const datasets = path.resolve(import.meta.dirname, '../../../shared/datasets');
const has = (name: string): boolean => fs.existsSync(path.join(datasets, name, 'corpus.jsonl'));
if (!fs.existsSync(datasets)) console.warn(`skipping dataset quality tests: ${datasets} not found`);

describe('BM25 quality on shared benchmarks (quarry eval defaults)', () => {
  it.skipIf(!has('scifact'))('scifact nDCG@10 is within ±0.005 of Anserini BM25 flat (0.6789)', async () => {
    const r = await runEval({ dataset: path.join(datasets, 'scifact') });
    expect(r.queries).toBe(300);
    expect(r.corpus.documents).toBe(5183);
    expect(Math.abs(r.metrics['ndcg@10'] - 0.6789)).toBeLessThanOrEqual(0.005);
    expect(Math.abs(r.metrics['recall@100'] - 0.9253)).toBeLessThanOrEqual(0.01);
    expect(r.bm25).toMatchObject({ k1: 0.9, b: 0.4 });
  });

  it.skipIf(!has('nfcorpus'))('nfcorpus matches the reference plain BM25 on this copy (0.3299)', async () => {
    const r = await runEval({ dataset: path.join(datasets, 'nfcorpus') });
    expect(r.queries).toBe(323);
    expect(Math.abs(r.metrics['ndcg@10'] - 0.3299)).toBeLessThanOrEqual(0.01);
  });

  it.skipIf(!has('cranfield'))('cranfield matches the reference plain BM25 (0.3515)', async () => {
    const r = await runEval({ dataset: path.join(datasets, 'cranfield') });
    expect(Math.abs(r.metrics['ndcg@10'] - 0.3515)).toBeLessThanOrEqual(0.01);
  });
});

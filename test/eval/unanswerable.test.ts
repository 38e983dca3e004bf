/**
 * Near-miss abstention on squad-v1.1-dev (`--unanswerable 0.1`: every 10th paragraph held out, its
 * questions unanswerable while the rest of their article stays): on the first 2,000 questions the default
 * answerer abstains on most near misses and still answers the answerable ones. Full-set figures are in
 * docs/benchmarks.md ("Answer quality"). Skips when the shared datasets are absent.
 */
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { runEval } from '../../src/eval/run-eval.js';

const datasets = path.resolve(import.meta.dirname, '../../../shared/datasets');
const squad = path.join(datasets, 'squad-v1.1-dev');
const has = fs.existsSync(path.join(squad, 'corpus.jsonl'));
if (!has) console.warn(`skipping near-miss abstention test: ${squad} not found`);

describe('abstention on SQuAD near misses', () => {
  it.skipIf(!has)('abstains on most unanswerable questions and answers the answerable ones', async () => {
    const r = await runEval({ dataset: squad, unanswerable: 0.1, limit: 2000 });
    expect(r.unanswerable).toMatchObject({
      share: 0.1,
      heldOutDocuments: 206,
      documents: 2067,
      questions: 1075,
    });
    const a = r.answers!.abstention!;
    expect(a.unanswerable.questions).toBeGreaterThan(100);
    expect(r.metrics.abstention_correct_unanswerable).toBeGreaterThanOrEqual(0.5);
    expect(r.metrics['answer_hit@1']).toBeGreaterThanOrEqual(0.6);
    expect(r.metrics.abstention_correct_answerable).toBeGreaterThanOrEqual(0.8);
  });
});

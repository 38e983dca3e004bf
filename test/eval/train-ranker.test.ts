import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { trainRanker } from '../../src/eval/train-ranker.js';
import { loadLtrModel } from '../../src/rerank/ltr/model.js';

const TOPICS = [
  'solar',
  'wind',
  'hydro',
  'nuclear',
  'battery',
  'geothermal',
  'tidal',
  'biomass',
  'hydrogen',
  'coal',
];
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'quarry-ltr-beir-'));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

/**
 * A BEIR-layout set where each topic has the document about it (topic in the title, named once in the text)
 * and a decoy that repeats the topic word in its text under another title, which BM25 prefers.
 */
function writeDataset(): string {
  const corpus: string[] = [];
  const queries: string[] = [];
  const qrels = ['query-id\tcorpus-id\tscore'];
  TOPICS.forEach((t, i) => {
    corpus.push(
      JSON.stringify({
        _id: `doc-${t}`,
        title: `${t} energy output`,
        text: `How ${t} plants produce power for the grid.`,
      }),
    );
    corpus.push(
      JSON.stringify({
        _id: `decoy-${t}`,
        title: `Market notes ${i}`,
        text: `${t} ${t} ${t} energy output prices ${t} and ${t} futures.`,
      }),
    );
    queries.push(JSON.stringify({ _id: `q${i}`, text: `${t} energy output` }));
    qrels.push(`q${i}\tdoc-${t}\t1`);
  });
  fs.writeFileSync(path.join(dir, 'corpus.jsonl'), `${corpus.join('\n')}\n`);
  fs.writeFileSync(path.join(dir, 'queries.jsonl'), `${queries.join('\n')}\n`);
  fs.mkdirSync(path.join(dir, 'qrels'));
  fs.writeFileSync(path.join(dir, 'qrels', 'train.tsv'), `${qrels.join('\n')}\n`);
  return dir;
}

const dataset = writeDataset();

describe('trainRanker', () => {
  it('ingests a BEIR set, trains on its pools and writes a model that fixes the first-stage order', async () => {
    const golden = path.join(dir, 'golden.jsonl');
    fs.writeFileSync(golden, `${JSON.stringify({ query: 'tidal plants', relevant: { 'doc-tidal': 1 } })}\n`);
    const out = path.join(dir, 'out', 'model.json');
    const report = await trainRanker({
      dataset,
      split: 'train',
      out,
      retriever: 'bm25',
      depth: 20,
      golden,
      train: { iterations: 100 },
    });
    expect(report.queries).toBe(11);
    expect(report.trainedQueries).toBe(11);
    expect(report.pairs).toBeGreaterThan(100);
    // BM25 ranks every decoy first; the learned model puts the titled document on top.
    expect(report.ndcgBefore).toBeLessThan(0.7);
    expect(report.ndcgAfter).toBe(1);
    const model = loadLtrModel(out);
    expect(model.trainedOn).toMatchObject({
      split: 'train',
      retriever: 'bm25',
      depth: 20,
      sources: ['qrels', 'golden'],
    });
    expect(model.metrics['train_ndcg@10_after']).toBe(1);
  });

  it('rejects invalid options at the boundary', async () => {
    await expect(trainRanker({ dataset, out: path.join(dir, 'x.json'), depth: 0 })).rejects.toThrow(/depth/);
    await expect(trainRanker({ dataset, split: 'test', out: path.join(dir, 'x.json') })).rejects.toThrow(
      /no qrels for split "test"/,
    );
  });
});

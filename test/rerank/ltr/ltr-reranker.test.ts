import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Quarry } from '../../../src/pipeline/quarry.js';
import { ltrDepsFor } from '../../../src/pipeline/rerank-deps.js';
import { applyRerank, createLtrReranker } from '../../../src/rerank/ltr/ltr-reranker.js';
import { defaultLtrModel, type LtrModel } from '../../../src/rerank/ltr/model.js';

const DOCS: Record<string, string> = {
  // Says "solar panel efficiency" over and over, under an unrelated title: BM25's favourite.
  'wind.md': `# Wind farms\n\n${'Solar panel efficiency is compared with turbines; solar panel efficiency again. '.repeat(4)}`,
  // The document actually about the topic, which mentions the words once.
  'solar.md':
    '# Solar panel efficiency\n\nHow much light a photovoltaic module turns into power, and why the panel heats up.',
  'hydro.md': '# Hydro power\n\nDams, turbines and solar comparisons in passing.',
  'grid.md': '# Grid storage\n\nBatteries smooth the output of panel arrays and wind farms.',
};

function model(weights: Record<string, number>): LtrModel {
  const features = Object.keys(weights);
  return {
    format: 'quarry-ltr',
    version: 1,
    features,
    weights: features.map((f) => weights[f]!),
    bias: 0,
    normalization: { mean: features.map(() => 0), std: features.map(() => 1) },
    trainedOn: { dataset: 'hand-made' },
    metrics: {},
  };
}

let dir: string;
let quarry: Quarry;
beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'quarry-ltr-rerank-'));
  const docs = path.join(dir, 'docs');
  fs.mkdirSync(docs);
  for (const [name, text] of Object.entries(DOCS)) fs.writeFileSync(path.join(docs, name), text);
  quarry = Quarry.open({ store: path.join(dir, 'store') });
  await quarry.ingest([docs]);
});
afterAll(() => {
  quarry.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

describe('LTR reranker on real pipeline hits', () => {
  it('reorders the fused pool by the model', async () => {
    const { hits } = quarry.searchSync('solar panel efficiency', { k: 10, retriever: 'bm25' });
    expect(hits.length).toBeGreaterThanOrEqual(3);
    expect(hits[0]!.document.title).toBe('Wind farms'); // the first stage's choice
    const reranker = createLtrReranker(model({ title_coverage: 1 }), ltrDepsFor(quarry), {
      name: 'title',
    });
    expect(reranker.id).toBe('ltr:title');
    const scores = await reranker.rerank({ query: 'solar panel efficiency', hits });
    expect(scores.map((s) => s.index).sort()).toEqual(hits.map((_, i) => i));
    const reranked = applyRerank(hits, scores);
    expect(reranked[0]!.document.title).toBe('Solar panel efficiency');
    expect(reranked.map((h) => h.rank)).toEqual(hits.map((_, i) => i + 1));
    expect(new Set(reranked.map((h) => h.chunk.id))).toEqual(new Set(hits.map((h) => h.chunk.id)));
  });

  it('keeps the fused order when the model only trusts the fused rank', async () => {
    const { hits } = quarry.searchSync('solar panel efficiency', { k: 10, retriever: 'bm25' });
    const reranker = createLtrReranker(model({ fused_rank: -1 }), ltrDepsFor(quarry));
    const reranked = applyRerank(hits, await reranker.rerank({ query: 'solar panel efficiency', hits }));
    expect(reranked.map((h) => h.chunk.id)).toEqual(hits.map((h) => h.chunk.id));
  });

  it('scores real hits with the bundled model', async () => {
    const { hits } = quarry.searchSync('wind turbines', { k: 10, retriever: 'bm25' });
    const scores = await createLtrReranker(defaultLtrModel(), ltrDepsFor(quarry)).rerank({
      query: 'wind turbines',
      hits,
    });
    expect(scores).toHaveLength(hits.length);
    for (const s of scores) expect(Number.isFinite(s.score)).toBe(true);
  });

  it('rejects when the latency budget is already spent', async () => {
    const { hits } = quarry.searchSync('solar', { k: 10, retriever: 'bm25' });
    const reranker = createLtrReranker(model({ bm25: 1 }), ltrDepsFor(quarry));
    const controller = new AbortController();
    controller.abort(new Error('budget exhausted'));
    await expect(reranker.rerank({ query: 'solar', hits, signal: controller.signal })).rejects.toThrow(
      'budget exhausted',
    );
  });

  it('refuses an invalid model and invalid scores', () => {
    expect(() => createLtrReranker(model({ bogus: 1 }), ltrDepsFor(quarry))).toThrow(
      /unknown feature "bogus"/,
    );
    const { hits } = quarry.searchSync('solar', { k: 10, retriever: 'bm25' });
    expect(() => applyRerank(hits, [{ index: hits.length, score: 1 }])).toThrow(/invalid score/);
  });
});

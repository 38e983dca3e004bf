/**
 * Learning-to-rank reranking quality and cost.
 *
 *   npx tsx bench/ltr.ts [--model src/rerank/ltr/default-model.json | --train] [--method lambdarank|ranknet|ranknet+ca]
 *                        [--features a,b,…] [--datasets scifact,nfcorpus,cranfield] [--store-root <dir>]
 *
 * - `--train` trains on scifact train (hybrid pool, top 100) and evaluates that model; otherwise the model file
 *   is evaluated as is (default: the bundled model, itself trained on scifact train only).
 * - For each dataset present in ../shared/datasets: nDCG@10 on its test split of BM25 alone, hybrid alone, and
 *   each reranked by the model (pool = top 100, one chunk per document, as `quarry eval`), plus the rerank
 *   latency per query (feature extraction + scoring) p50/p95. nfcorpus dev is printed too (the tuning split).
 * - `--store-root` keeps one store per dataset there, so repeated runs skip ingestion and embedder training.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { loadBeirDataset } from '../src/eval/beir.js';
import { evaluateRun, latencySummary, type Run } from '../src/eval/metrics.js';
import { buildTrainingPools, openDatasetStore } from '../src/eval/train-ranker.js';
import { ltrDepsFor } from '../src/pipeline/rerank-deps.js';
import { FEATURE_NAMES } from '../src/rerank/ltr/features.js';
import { applyRerank, createLtrReranker } from '../src/rerank/ltr/ltr-reranker.js';
import { type LtrModel, loadLtrModel } from '../src/rerank/ltr/model.js';
import { type TrainingMethod, trainLinearRanker } from '../src/rerank/ltr/train.js';

const args = process.argv.slice(2);
const opt = (name: string, dflt: string): string => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 && args[i + 1] !== undefined ? args[i + 1]! : dflt;
};
const ROOT = path.resolve(import.meta.dirname, '..');
const DATASET_ROOT = path.resolve(ROOT, '../shared/datasets');
const DATASETS = opt('datasets', 'scifact,nfcorpus,cranfield').split(',').filter(Boolean);
const STORE_ROOT = opt('store-root', path.join(os.tmpdir(), 'quarry-ltr-bench'));
const DEPTH = 100;
const SPLITS: Record<string, string[]> = {
  scifact: ['test'],
  nfcorpus: ['dev', 'test'],
  cranfield: ['test'],
};

async function main(): Promise<void> {
  const command = `npx tsx bench/ltr.ts ${args.join(' ')}`.trim();
  console.log(`$ ${command}`);
  let model: LtrModel;
  if (args.includes('--train')) {
    const ds = await loadBeirDataset(path.join(DATASET_ROOT, 'scifact'), 'train');
    const { quarry, close } = await openDatasetStore(ds.corpusPath, path.join(STORE_ROOT, 'scifact'));
    try {
      quarry.dense.ensure();
      const t0 = performance.now();
      const pools = buildTrainingPools(
        quarry,
        ltrDepsFor(quarry),
        ds.queries.map((q) => ({ id: q.id, text: q.text, judgments: ds.qrels.get(q.id) ?? new Map() })),
        { retriever: 'hybrid', depth: DEPTH },
      );
      const t1 = performance.now();
      const features = args.includes('--features') ? opt('features', '').split(',') : undefined;
      const method = opt('method', 'lambdarank') as TrainingMethod;
      const r = trainLinearRanker(pools, { method, ...(features ? { features } : {}) });
      console.log(
        `trained on scifact train: ${r.queries} queries, ${r.pairs} pairs, train nDCG@10 ${r.ndcgBefore.toFixed(4)} → ${r.ndcgAfter.toFixed(4)} (pools ${((t1 - t0) / 1000).toFixed(1)} s, training ${((performance.now() - t1) / 1000).toFixed(1)} s)`,
      );
      model = {
        format: 'quarry-ltr',
        version: 1,
        ...r.model,
        trainedOn: { dataset: 'scifact', split: 'train' },
        metrics: {},
      };
      const out = opt('out', '');
      if (out !== '') fs.writeFileSync(out, `${JSON.stringify(model, null, 2)}\n`);
    } finally {
      close();
    }
  } else {
    model = loadLtrModel(opt('model', path.join(ROOT, 'src/rerank/ltr/default-model.json')));
  }
  console.log(
    `model weights: ${model.features.map((f, i) => `${f} ${model.weights[i]!.toFixed(3)}`).join(', ')}`,
  );
  console.log(
    '\n| set | split | retriever | nDCG@10 first stage | nDCG@10 reranked | Δ | rerank p50 ms | p95 ms |',
  );
  console.log('|---|---|---|---:|---:|---:|---:|---:|');
  for (const name of DATASETS) {
    const dir = path.join(DATASET_ROOT, name);
    if (!fs.existsSync(dir)) {
      console.log(`| ${name} | — | skipped: ${dir} not found | | | | | |`);
      continue;
    }
    const first = await loadBeirDataset(dir, SPLITS[name]?.[0] ?? 'test');
    const { quarry, close } = await openDatasetStore(first.corpusPath, path.join(STORE_ROOT, name));
    try {
      quarry.dense.ensure();
      const reranker = createLtrReranker(model, ltrDepsFor(quarry));
      for (const split of SPLITS[name] ?? ['test']) {
        const ds = split === first.split ? first : await loadBeirDataset(dir, split);
        for (const retriever of ['bm25', 'hybrid'] as const) {
          const before: Run = new Map();
          const after: Run = new Map();
          const ms: number[] = [];
          for (const q of ds.queries) {
            const { hits } = quarry.searchSync(q.text, { k: DEPTH, collapseDocuments: true, retriever });
            const t0 = performance.now();
            const scores = await reranker.rerank({ query: q.text, hits });
            const reranked = applyRerank(hits, scores);
            ms.push(performance.now() - t0);
            before.set(
              q.id,
              hits.map((h, i) => ({ docId: h.chunk.docId, score: hits.length - i })),
            );
            after.set(
              q.id,
              reranked.map((h, i) => ({ docId: h.chunk.docId, score: hits.length - i })),
            );
          }
          const b = evaluateRun(ds.qrels, before, ['ndcg@10']).mean['ndcg@10']!;
          const a = evaluateRun(ds.qrels, after, ['ndcg@10']).mean['ndcg@10']!;
          const lat = latencySummary(ms);
          console.log(
            `| ${name} | ${split} | ${retriever} | ${b.toFixed(4)} | **${a.toFixed(4)}** | ${(a - b >= 0 ? '+' : '') + (a - b).toFixed(4)} | ${lat.p50.toFixed(2)} | ${lat.p95.toFixed(2)} |`,
          );
        }
      }
    } finally {
      close();
    }
  }
  console.log(`\nfeatures known: ${FEATURE_NAMES.join(', ')}`);
}

await main();

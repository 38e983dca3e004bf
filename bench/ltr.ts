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
 * - `--cv [--candidates a,b,…] [--folds 5]` chooses a model without touching any test split: every candidate
 *   (feature set + training options, listed in CANDIDATES) is trained and scored with k-fold cross-validation
 *   over scifact train (same seeded folds for all; held-out folds scored on hybrid and BM25 pools), then
 *   trained on all of scifact train and scored on nfcorpus dev. Pools are cached in the store root.
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
import { compileModel, type LtrModel, loadLtrModel } from '../src/rerank/ltr/model.js';
import {
  ndcgOfScores,
  seededRandom,
  type TrainingMethod,
  type TrainingQuery,
  type TrainOptions,
  trainLinearRanker,
} from '../src/rerank/ltr/train.js';

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

const BASE = FEATURE_NAMES.slice(0, 17);
/** Candidates compared by `--cv`: `base` is the earlier 17-feature recipe, `inter` the shipped one (DEFAULT_FEATURES). */
const CANDIDATES: Record<string, { features: string[]; train?: TrainOptions }> = {
  base: { features: BASE },
  'base-ranknet': { features: BASE, train: { method: 'ranknet' } },
  'base-ca': { features: BASE, train: { method: 'ranknet+ca' } },
  'base-it1500': { features: BASE, train: { iterations: 1500 } },
  parts: { features: [...BASE, 'dense_lsa', 'dense_ngram'] },
  classic: { features: [...BASE, 'bm25_classic'] },
  inter: { features: [...BASE, 'bm25_x_coverage', 'bm25_x_dense'] },
  squares: { features: [...BASE, 'bm25_sq', 'dense_sq'] },
  qlen: { features: [...BASE, 'bm25_x_qlen', 'dense_x_qlen'] },
  'parts+inter': { features: [...BASE, 'dense_lsa', 'dense_ngram', 'bm25_x_coverage', 'bm25_x_dense'] },
  all: { features: [...FEATURE_NAMES] },
  'all-it1500': { features: [...FEATURE_NAMES], train: { iterations: 1500 } },
  'all-l2e-2': { features: [...FEATURE_NAMES], train: { l2: 1e-2 } },
};

type Pools = TrainingQuery[];

function serializePools(p: Pools): string {
  return JSON.stringify(p.map((q) => ({ ...q, rows: q.rows.map((r) => Array.from(r)) })));
}

function parsePools(text: string): Pools {
  const raw = JSON.parse(text) as Array<Omit<TrainingQuery, 'rows'> & { rows: number[][] }>;
  return raw.map((q) => ({ ...q, rows: q.rows.map((r) => Float64Array.from(r)) }));
}

/** Judged pools of one dataset split and retriever, cached under the store root per feature layout. */
async function judgedPools(name: string, split: string, retriever: 'bm25' | 'hybrid'): Promise<Pools> {
  const layout = FEATURE_NAMES.join(',').length.toString(36) + FEATURE_NAMES.length;
  const cache = path.join(STORE_ROOT, `pools-${name}-${split}-${retriever}-${DEPTH}-${layout}.json`);
  if (fs.existsSync(cache)) return parsePools(fs.readFileSync(cache, 'utf8'));
  const ds = await loadBeirDataset(path.join(DATASET_ROOT, name), split);
  const { quarry, close } = await openDatasetStore(ds.corpusPath, path.join(STORE_ROOT, name));
  try {
    quarry.dense.ensure();
    const pools = buildTrainingPools(
      quarry,
      ltrDepsFor(quarry),
      ds.queries.map((q) => ({ id: q.id, text: q.text, judgments: ds.qrels.get(q.id) ?? new Map() })),
      { retriever, depth: DEPTH },
    );
    fs.writeFileSync(cache, serializePools(pools));
    return pools;
  } finally {
    close();
  }
}

function scoreWith(model: ReturnType<typeof trainLinearRanker>['model'], pools: Pools): number[] {
  const compiled = compileModel({ format: 'quarry-ltr', version: 1, ...model, trainedOn: {}, metrics: {} });
  return pools.map((q) =>
    ndcgOfScores(
      q.rows.map((r) => compiled.score(r)),
      q.grades,
      q.ideal,
    ),
  );
}

const mean = (xs: readonly number[]) => xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length);

/** Mean and standard error of per-query differences (paired, so shared query difficulty cancels). */
function paired(a: readonly number[], b: readonly number[]): string {
  const d = a.map((x, i) => x - b[i]!);
  const m = mean(d);
  const se = Math.sqrt(d.reduce((s, x) => s + (x - m) ** 2, 0) / Math.max(1, d.length - 1) / d.length);
  return `${m >= 0 ? '+' : ''}${m.toFixed(4)} ± ${se.toFixed(4)}`;
}

async function crossValidate(): Promise<void> {
  const folds = Number(opt('folds', '5'));
  const names = opt('candidates', Object.keys(CANDIDATES).join(',')).split(',').filter(Boolean);
  const hybrid = await judgedPools('scifact', 'train', 'hybrid');
  const bm25 = await judgedPools('scifact', 'train', 'bm25');
  const dev = await judgedPools('nfcorpus', 'dev', 'hybrid');
  // One seeded assignment of queries to folds, shared by every candidate.
  const random = seededRandom(7);
  const order = hybrid.map((_, i) => i);
  for (let i = order.length - 1; i > 0; i--) {
    const r = Math.floor(random() * (i + 1));
    [order[i], order[r]] = [order[r]!, order[i]!];
  }
  const foldOf = new Int32Array(hybrid.length);
  order.forEach((q, i) => {
    foldOf[q] = i % folds;
  });
  const firstStage = (pools: Pools) =>
    pools.map((q) =>
      ndcgOfScores(
        q.rows.map((_, i) => -i),
        q.grades,
        q.ideal,
      ),
    );
  const fsH = firstStage(hybrid);
  const fsB = firstStage(bm25);
  const fsD = firstStage(dev);
  console.log(
    `scifact train: ${hybrid.length} queries, ${folds} folds; first stage nDCG@10 hybrid ${mean(fsH).toFixed(4)}, bm25 ${mean(fsB).toFixed(4)}; nfcorpus dev hybrid ${mean(fsD).toFixed(4)}`,
  );
  console.log(
    '\n| candidate | features | CV hybrid | Δ vs base (paired ± se) | CV bm25 pool | nfcorpus dev hybrid | fit s |',
  );
  console.log('|---|---:|---:|---:|---:|---:|---:|');
  let baseH: number[] | undefined;
  for (const name of names) {
    const c = CANDIDATES[name];
    if (c === undefined) throw new Error(`unknown candidate ${name}`);
    const cvH = new Array<number>(hybrid.length).fill(0);
    const cvB = new Array<number>(bm25.length).fill(0);
    const t0 = performance.now();
    for (let f = 0; f < folds; f++) {
      const train = hybrid.filter((_, i) => foldOf[i] !== f);
      const r = trainLinearRanker(train, { ...c.train, features: c.features });
      const held = hybrid.map((_, i) => i).filter((i) => foldOf[i] === f);
      const sh = scoreWith(
        r.model,
        held.map((i) => hybrid[i]!),
      );
      const sb = scoreWith(
        r.model,
        held.map((i) => bm25[i]!),
      );
      held.forEach((qi, j) => {
        cvH[qi] = sh[j]!;
        cvB[qi] = sb[j]!;
      });
    }
    const full = trainLinearRanker(hybrid, { ...c.train, features: c.features });
    const devScores = scoreWith(full.model, dev);
    const secs = (performance.now() - t0) / 1000 / (folds + 1);
    // Per-query CV figures are kept so a later run can compare against `base` without refitting it.
    const saved = path.join(STORE_ROOT, `cv-${folds}-${name}.json`);
    fs.writeFileSync(saved, JSON.stringify(cvH));
    const baseFile = path.join(STORE_ROOT, `cv-${folds}-base.json`);
    baseH ??= fs.existsSync(baseFile)
      ? (JSON.parse(fs.readFileSync(baseFile, 'utf8')) as number[])
      : undefined;
    console.log(
      `| ${name} | ${c.features.length} | ${mean(cvH).toFixed(4)} | ${baseH ? paired(cvH, baseH) : '—'} | ${mean(cvB).toFixed(4)} | ${mean(devScores).toFixed(4)} | ${secs.toFixed(1)} |`,
    );
  }
}

async function main(): Promise<void> {
  const command = `npx tsx bench/ltr.ts ${args.join(' ')}`.trim();
  console.log(`$ ${command}`);
  if (args.includes('--cv')) {
    await crossValidate();
    return;
  }
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

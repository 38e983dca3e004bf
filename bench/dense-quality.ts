/**
 * Dense-retrieval quality of the built-in local embedder, alone and fused with BM25.
 *
 *   npx tsx bench/dense-quality.ts [--datasets scifact,nfcorpus,cranfield] [--variants <spec,…>] [--depth 100]
 *                                  [--max-dim 1280] [--bm25-cache <dir>] [--json out.json]
 *   npx tsx bench/dense-quality.ts --scale 100000     # training/embedding time on N generated passages only
 *
 * For every dataset present in ../shared/datasets (absent ones are skipped):
 * - BM25 through the public Quarry API, as `quarry eval` runs it (whole documents per chunk, one hit per
 *   document), top 1,000 per query;
 * - the local embedder trained on the corpus (title + text of every document; no labels);
 * - dense retrieval by exact cosine over all documents;
 * - fusion over the union of BM25 top-1,000 and dense top-1,000 (dense scores exact for every candidate;
 *   a document outside BM25's top-1,000 gets BM25's lowest normalized score, 0 for min-max):
 *   RRF (k = 60, equal weights), min-max convex combination and z-score combination with dense weight w.
 *
 * The embedder variant and w are chosen on the tuning splits only — scifact train and nfcorpus dev, by mean
 * nDCG@10 — and then reported on the test splits of all sets (cranfield has no dev split: zero-shot).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { HashedNgramModel, type HashedNgramOptions } from '../src/embed/local/hashed-ngrams.js';
import { LocalEmbedder } from '../src/embed/local/local-embedder.js';
import { LsaModel } from '../src/embed/local/lsa.js';
import { type BeirQuery, loadBeirDataset, readCorpus } from '../src/eval/beir.js';
import { evaluateRun, type Qrels, type Run, type ScoredDoc } from '../src/eval/metrics.js';
import { fuse } from '../src/fuse/fusion.js';
import { Quarry } from '../src/pipeline/quarry.js';

const args = process.argv.slice(2);
const opt = (name: string, dflt: string): string => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 && args[i + 1] !== undefined ? args[i + 1]! : dflt;
};
const DATASETS = opt('datasets', 'scifact,nfcorpus,cranfield').split(',').filter(Boolean);
const DATASET_ROOT = path.resolve(import.meta.dirname, '../../shared/datasets');
const TUNE_SPLIT: Record<string, string> = { scifact: 'train', nfcorpus: 'dev' };
const DEPTH = 1000;
const METRICS = ['ndcg@10', 'recall@100', 'mrr@10'] as const;
const WEIGHTS = [0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.5, 0.6];
/** Candidates per retriever in the pipeline's fusion (`retrieval.depth`, default 100). */
const PIPELINE_DEPTH = Number(opt('depth', '100'));

/**
 * An embedder variant, written `lsa<k>[p<sigmaPower>][q<powerIterations>][+ng<dim>[n<min>-<max>][s0][w<share>]]`
 * (e.g. `lsa256p1+ng1024w0.7`) or `ng<dim>…` for n-grams alone: LSA dimensions, Σ exponent, SVD power
 * iterations, n-gram dimension, n-gram lengths, `s0` = keep stop-words, n-gram share of the cosine.
 */
interface Variant {
  name: string;
  k: number;
  sigmaPower: number;
  powerIterations: number;
  ngramDim: number;
  ngramWeight: number;
  ngramOptions: HashedNgramOptions;
}

function parseVariant(spec: string): Variant {
  const m = /^(?:lsa(\d+)(?:p([\d.]+))?(?:q(\d))?)?(?:\+?ng(\d+)(?:n(\d)-(\d))?(s0)?(?:w([\d.]+))?)?$/.exec(
    spec,
  );
  if (!m || (m[1] === undefined && m[4] === undefined)) throw new Error(`bad variant "${spec}"`);
  const hasLsa = m[1] !== undefined;
  const hasNg = m[4] !== undefined;
  return {
    name: spec,
    k: hasLsa ? Number(m[1]) : 256,
    sigmaPower: m[2] !== undefined ? Number(m[2]) : 1,
    powerIterations: m[3] !== undefined ? Number(m[3]) : 1,
    ngramDim: hasNg ? Number(m[4]) : 1024,
    ngramWeight: !hasNg ? 0 : !hasLsa ? 1 : m[8] !== undefined ? Number(m[8]) : 0.5,
    ngramOptions: {
      dimension: hasNg ? Number(m[4]) : 1024,
      ...(m[5] !== undefined ? { minN: Number(m[5]), maxN: Number(m[6]) } : {}),
      ...(m[7] !== undefined ? { skipStopwords: false } : {}),
    },
  };
}

const DEFAULT_VARIANTS = [
  'lsa256p1',
  'ng1024',
  'lsa256p1+ng1024w0.3',
  'lsa256p1+ng1024w0.5',
  'lsa256p1+ng1024w0.7',
  'lsa256p1+ng1024w0.8',
  'lsa256p0.5+ng1024w0.7',
  'lsa128p1+ng1024w0.7',
  'lsa256p1+ng512w0.7',
  'lsa256p1+ng2048w0.7',
].join(',');
/** Variants wider than this are measured but not eligible as the default (vector storage per chunk). */
const MAX_DIM = Number(opt('max-dim', '1280'));
const dimOf = (v: Variant): number => (v.ngramWeight < 1 ? v.k : 0) + (v.ngramWeight > 0 ? v.ngramDim : 0);
const VARIANTS = opt('variants', DEFAULT_VARIANTS).split(',').filter(Boolean).map(parseVariant);
const lsaKey = (v: Variant): string => `${v.k}q${v.powerIterations}`;
const LSA_CONFIGS = new Map(VARIANTS.filter((v) => v.ngramWeight < 1).map((v) => [lsaKey(v), v]));
const ngramKey = (v: Variant): string => JSON.stringify(v.ngramOptions);
const NGRAM_CONFIGS = new Map(
  VARIANTS.filter((v) => v.ngramWeight > 0).map((v) => [ngramKey(v), v.ngramOptions]),
);

type Metrics = Record<(typeof METRICS)[number], number>;

interface Split {
  split: string;
  queries: BeirQuery[];
  qrels: Qrels;
  /** BM25 top-DEPTH per query: corpus indices and scores, best first. */
  bm25: { idx: Int32Array; score: Float64Array }[];
}

interface Corpus {
  name: string;
  ids: string[];
  texts: string[];
  test: Split;
  tune?: Split;
  lsa: Map<string, LsaModel>;
  ngrams: Map<string, HashedNgramModel>;
  timings: Record<string, number>;
}

function log(msg: string): void {
  process.stderr.write(`${msg}\n`);
}

async function loadCorpus(name: string): Promise<Corpus | undefined> {
  const dir = path.join(DATASET_ROOT, name);
  if (!fs.existsSync(path.join(dir, 'corpus.jsonl'))) {
    log(`skipping ${name}: ${dir}/corpus.jsonl not found`);
    return undefined;
  }
  const test = await loadBeirDataset(dir, 'test');
  const tuneSplit = TUNE_SPLIT[name];
  const tune = tuneSplit ? await loadBeirDataset(dir, tuneSplit) : undefined;
  const ids: string[] = [];
  const texts: string[] = [];
  for await (const d of readCorpus(test.corpusPath)) {
    ids.push(d.id);
    texts.push(d.title ? `${d.title} ${d.text}` : d.text);
  }
  const index = new Map(ids.map((id, i) => [id, i]));
  const timings: Record<string, number> = {};

  // BM25 through the public API with `quarry eval`'s settings (optionally cached between runs).
  const cacheDir = opt('bm25-cache', '');
  const cacheFile = cacheDir ? path.join(cacheDir, `${name}.bm25.json`) : '';
  let splits: Split[];
  if (cacheFile && fs.existsSync(cacheFile)) {
    const cached = JSON.parse(fs.readFileSync(cacheFile, 'utf8')) as { idx: number[]; score: number[] }[][];
    splits = (tune ? [tune, test] : [test]).map((ds, s) => ({
      split: ds.split,
      queries: ds.queries,
      qrels: ds.qrels,
      bm25: cached[s]!.map((r) => ({ idx: Int32Array.from(r.idx), score: Float64Array.from(r.score) })),
    }));
  } else {
    splits = await runBm25(name, test.corpusPath, tune ? [tune, test] : [test], index, timings);
    if (cacheFile) {
      fs.mkdirSync(cacheDir, { recursive: true });
      fs.writeFileSync(
        cacheFile,
        JSON.stringify(splits.map((s) => s.bm25.map((r) => ({ idx: [...r.idx], score: [...r.score] })))),
      );
    }
  }

  const lsa = new Map<string, LsaModel>();
  for (const [key, v] of LSA_CONFIGS) {
    const k = v.k;
    const model = LsaModel.train(texts, { dimensions: k, powerIterations: v.powerIterations });
    lsa.set(key, model);
    timings[`lsa${key}TrainMs`] = model.trainingStats!.totalMs;
    log(
      `${name}: LSA k=${k} q=${v.powerIterations} trained in ${(model.trainingStats!.totalMs / 1000).toFixed(1)} s ` +
        `(${model.trainingStats!.documents} docs, vocabulary ${model.trainingStats!.vocabulary}, ` +
        `nnz ${model.trainingStats!.nonZeros}, analyze ${(model.trainingStats!.analyzeMs / 1000).toFixed(1)} s, ` +
        `SVD ${(model.trainingStats!.svdMs / 1000).toFixed(1)} s)`,
    );
  }
  const ngrams = new Map<string, HashedNgramModel>();
  for (const [key, o] of NGRAM_CONFIGS) {
    const t = performance.now();
    ngrams.set(key, HashedNgramModel.train(texts, o));
    timings[`ngram${o.dimension}TrainMs`] = performance.now() - t;
  }
  const corpus: Corpus = { name, ids, texts, test: splits.at(-1)!, lsa, ngrams, timings };
  if (tune) corpus.tune = splits[0]!;
  return corpus;
}

async function runBm25(
  name: string,
  corpusPath: string,
  datasets: { split: string; queries: BeirQuery[]; qrels: Qrels }[],
  index: Map<string, number>,
  timings: Record<string, number>,
): Promise<Split[]> {
  const store = fs.mkdtempSync(path.join(os.tmpdir(), 'quarry-dense-'));
  const quarry = Quarry.open({
    store,
    config: {
      chunking: { maxTokens: 8192, overlapTokens: 0, parentMaxTokens: 32768 },
      ingest: { batchSize: 512 },
    },
  });
  try {
    let t = performance.now();
    await quarry.ingest([corpusPath]);
    timings.ingestMs = performance.now() - t;
    t = performance.now();
    const splits = datasets.map((ds) => {
      const bm25 = ds.queries.map((q) => {
        const hits = quarry.searchSync(q.text, { k: DEPTH, collapseDocuments: true, retriever: 'bm25' }).hits;
        const idx = new Int32Array(hits.length);
        const score = new Float64Array(hits.length);
        hits.forEach((h, i) => {
          const j = index.get(h.chunk.docId);
          if (j === undefined) throw new Error(`${name}: BM25 returned unknown document ${h.chunk.docId}`);
          idx[i] = j;
          score[i] = h.score;
        });
        return { idx, score };
      });
      return { split: ds.split, queries: ds.queries, qrels: ds.qrels, bm25 };
    });
    timings.bm25SearchMs = performance.now() - t;
    return splits;
  } finally {
    quarry.close();
    fs.rmSync(store, { recursive: true, force: true });
  }
}

/** Row-major matrix of unit vectors. */
interface Vectors {
  dim: number;
  data: Float32Array;
}

function embedAll(n: number, dim: number, fill: (i: number, out: Float32Array) => void): Vectors {
  const data = new Float32Array(n * dim);
  const row = new Float32Array(dim);
  for (let i = 0; i < n; i++) {
    fill(i, row);
    data.set(row, i * dim);
  }
  return { dim, data };
}

/** Cosine of every query with every document: queries × docs, Float32. */
function cosines(queries: Vectors, docs: Vectors): Float32Array[] {
  const nq = queries.data.length / queries.dim;
  const nd = docs.data.length / docs.dim;
  const dim = docs.dim;
  const out: Float32Array[] = [];
  for (let q = 0; q < nq; q++) {
    const s = new Float32Array(nd);
    const qo = q * dim;
    for (let d = 0; d < nd; d++) {
      const o = d * dim;
      let dot = 0;
      for (let c = 0; c < dim; c++) dot += queries.data[qo + c]! * docs.data[o + c]!;
      s[d] = dot;
    }
    out.push(s);
  }
  return out;
}

/** Dense cosines of one variant for a split: (1 − w)·cos_lsa + w·cos_ngrams. */
interface DenseScores {
  scores: Float32Array[];
}

const cosineCache = new Map<string, Float32Array[]>();

function lsaCosines(c: Corpus, split: Split, variant: Variant): Float32Array[] {
  const p = variant.sigmaPower;
  const key = `${c.name}/${split.split}/lsa${lsaKey(variant)}/p${p}`;
  let v = cosineCache.get(key);
  if (!v) {
    const model = c.lsa.get(lsaKey(variant))!.withSigmaPower(p);
    const docs = embedAll(c.texts.length, model.dimension, (i, out) =>
      model.embedTermsInto(model.analyze(c.texts[i]!), out),
    );
    const qs = embedAll(split.queries.length, model.dimension, (i, out) =>
      model.embedTermsInto(model.analyze(split.queries[i]!.text), out),
    );
    v = cosines(qs, docs);
    cosineCache.set(key, v);
  }
  return v;
}

function ngramCosines(c: Corpus, split: Split, variant: Variant): Float32Array[] {
  const key = `${c.name}/${split.split}/${ngramKey(variant)}`;
  let v = cosineCache.get(key);
  if (!v) {
    const model = c.ngrams.get(ngramKey(variant))!;
    const docs = embedAll(c.texts.length, model.dimension, (i, out) => model.embedInto(c.texts[i]!, out));
    const qs = embedAll(split.queries.length, model.dimension, (i, out) =>
      model.embedInto(split.queries[i]!.text, out),
    );
    v = cosines(qs, docs);
    cosineCache.set(key, v);
  }
  return v;
}

function denseScores(c: Corpus, split: Split, v: Variant): DenseScores {
  if (v.ngramWeight === 0) return { scores: lsaCosines(c, split, v) };
  if (v.ngramWeight === 1) return { scores: ngramCosines(c, split, v) };
  const a = lsaCosines(c, split, v);
  const b = ngramCosines(c, split, v);
  return {
    scores: a.map((x, q) => {
      const y = b[q]!;
      const out = new Float32Array(x.length);
      for (let i = 0; i < x.length; i++) out[i] = (1 - v.ngramWeight) * x[i]! + v.ngramWeight * y[i]!;
      return out;
    }),
  };
}

/** Indices of the top-n scores, best first (ties by index). */
function topN(scores: Float32Array, n: number): Int32Array {
  const idx = Array.from({ length: scores.length }, (_, i) => i);
  idx.sort((a, b) => scores[b]! - scores[a]! || a - b);
  return Int32Array.from(idx.slice(0, n));
}

type Method = 'rrf' | 'minmax' | 'zscore';
type Fusion = { kind: 'bm25' } | { kind: 'dense' } | { kind: Method; w: number };

/**
 * How candidates are formed and scores normalized:
 * - `union`: BM25 top-1,000 ∪ dense top-1,000; dense scores exact for every candidate (normalized over the
 *   union), BM25 normalized over its list, a document outside BM25's list gets BM25's floor.
 * - `lists`: what the pipeline's `fuse()` (src/fuse/fusion.ts) does with `retrieval.depth` candidates per
 *   retriever: each list normalized over itself; a candidate absent from a list gets that list's floor
 *   (min-max 0, z-score min(lowest z, 0), RRF nothing).
 */
type Mode = 'union' | 'lists';

/** Per-query fusion inputs over the candidate set, computed once per (split, variant, mode). */
interface Prepared {
  cand: Int32Array;
  bMinmax: Float64Array;
  bZ: Float64Array;
  dMinmax: Float64Array;
  dZ: Float64Array;
  bRrf: Float64Array;
  dRrf: Float64Array;
  dense: Float32Array;
  denseTop: Int32Array;
}

interface Stats {
  min: number;
  max: number;
  mean: number;
  sd: number;
}

function stats(values: Iterable<number>): Stats {
  let min = Infinity;
  let max = -Infinity;
  let sum = 0;
  let n = 0;
  const xs: number[] = [];
  for (const v of values) {
    min = Math.min(min, v);
    max = Math.max(max, v);
    sum += v;
    n++;
    xs.push(v);
  }
  const mean = n > 0 ? sum / n : 0;
  let sq = 0;
  for (const v of xs) sq += (v - mean) ** 2;
  return { min, max, mean, sd: n > 0 ? Math.sqrt(sq / n) : 0 };
}

const minmaxOf = (s: Stats, x: number): number => (s.max > s.min ? (x - s.min) / (s.max - s.min) : 1);
const zOf = (s: Stats, x: number): number => (s.sd > 0 ? (x - s.mean) / s.sd : 0);

function prepareQuery(
  bm25: { idx: Int32Array; score: Float64Array },
  dense: Float32Array,
  denseTop: Int32Array,
  mode: Mode,
  depth: number,
): Prepared {
  const bIdx = mode === 'lists' ? bm25.idx.subarray(0, depth) : bm25.idx;
  const bScore = mode === 'lists' ? bm25.score.subarray(0, depth) : bm25.score;
  const dIdx = mode === 'lists' ? denseTop.subarray(0, depth) : denseTop;
  const pos = new Map<number, number>();
  const candList: number[] = [];
  for (const j of bIdx) if (!pos.has(j)) pos.set(j, candList.push(j) - 1);
  for (const j of dIdx) if (!pos.has(j)) pos.set(j, candList.push(j) - 1);
  const n = candList.length;
  const cand = Int32Array.from(candList);
  const p: Prepared = {
    cand,
    bMinmax: new Float64Array(n),
    bZ: new Float64Array(n),
    dMinmax: new Float64Array(n),
    dZ: new Float64Array(n),
    bRrf: new Float64Array(n),
    dRrf: new Float64Array(n),
    dense,
    denseTop,
  };
  const bs = stats(bScore);
  // Absent from BM25's list: as bad as its worst (union) or the pipeline's floor min(lowest z, 0) (lists).
  const bFloorZ = bScore.length === 0 ? 0 : mode === 'lists' ? Math.min(zOf(bs, bs.min), 0) : zOf(bs, bs.min);
  p.bZ.fill(bFloorZ);
  bIdx.forEach((j, r) => {
    const i = pos.get(j)!;
    p.bMinmax[i] = minmaxOf(bs, bScore[r]!);
    p.bZ[i] = zOf(bs, bScore[r]!);
    p.bRrf[i] = 1 / (60 + r + 1);
  });
  dIdx.forEach((j, r) => {
    p.dRrf[pos.get(j)!] = 1 / (60 + r + 1);
  });
  if (mode === 'union') {
    // Exact dense score for every candidate, normalized over the candidates.
    const ds = stats(Array.from(cand, (j) => dense[j]!));
    cand.forEach((j, i) => {
      p.dMinmax[i] = minmaxOf(ds, dense[j]!);
      p.dZ[i] = zOf(ds, dense[j]!);
    });
  } else {
    const ds = stats(Array.from(dIdx, (j) => dense[j]!));
    p.dZ.fill(dIdx.length > 0 ? Math.min(zOf(ds, ds.min), 0) : 0);
    dIdx.forEach((j) => {
      const i = pos.get(j)!;
      p.dMinmax[i] = minmaxOf(ds, dense[j]!);
      p.dZ[i] = zOf(ds, dense[j]!);
    });
  }
  return p;
}

/** Fused top-100 for one query (enough for nDCG@10, Recall@100, MRR@10). */
function fuseQuery(
  bm25: { idx: Int32Array; score: Float64Array },
  p: Prepared | undefined,
  f: Fusion,
  ids: string[],
): ScoredDoc[] {
  const keep = 100;
  if (f.kind === 'bm25' || p === undefined) {
    return Array.from(bm25.idx.slice(0, keep), (j, r) => ({ docId: ids[j]!, score: bm25.score[r]! }));
  }
  if (f.kind === 'dense') {
    return Array.from(p.denseTop.slice(0, keep), (j) => ({ docId: ids[j]!, score: p.dense[j]! }));
  }
  const n = p.cand.length;
  const score = new Float64Array(n);
  const [b, d] =
    f.kind === 'minmax' ? [p.bMinmax, p.dMinmax] : f.kind === 'zscore' ? [p.bZ, p.dZ] : [p.bRrf, p.dRrf];
  for (let i = 0; i < n; i++) score[i] = (1 - f.w) * b[i]! + f.w * d[i]!;
  const order = Array.from({ length: n }, (_, i) => i);
  order.sort((x, y) => score[y]! - score[x]! || p.cand[x]! - p.cand[y]!);
  return order.slice(0, keep).map((i) => ({ docId: ids[p.cand[i]!]!, score: score[i]! }));
}

function prepare(split: Split, dense: DenseScores, mode: Mode): Prepared[] {
  return split.queries.map((_, i) => {
    const d = dense.scores[i]!;
    return prepareQuery(split.bm25[i]!, d, topN(d, DEPTH), mode, PIPELINE_DEPTH);
  });
}

function evaluate(c: Corpus, split: Split, prepared: Prepared[] | undefined, f: Fusion): Metrics {
  const run: Run = new Map();
  split.queries.forEach((q, i) => {
    run.set(q.id, fuseQuery(split.bm25[i]!, prepared?.[i], f, c.ids));
  });
  return evaluateRun(split.qrels, run, [...METRICS]).mean as Metrics;
}

/** The same hybrid through the pipeline's own `fuse()`, to check that `lists` mode mirrors it. */
function evaluateWithPipelineFuse(
  c: Corpus,
  split: Split,
  dense: DenseScores,
  method: Method,
  w: number,
): Metrics {
  const run: Run = new Map();
  split.queries.forEach((q, i) => {
    const b = split.bm25[i]!;
    const d = dense.scores[i]!;
    const top = topN(d, PIPELINE_DEPTH);
    const fused = fuse(
      [
        {
          retriever: 'bm25',
          candidates: Array.from(b.idx.subarray(0, PIPELINE_DEPTH), (j, r) => ({
            chunkId: j,
            group: j,
            score: b.score[r]!,
            rank: r + 1,
            retriever: 'bm25',
          })),
        },
        {
          retriever: 'dense',
          candidates: Array.from(top, (j, r) => ({
            chunkId: j,
            group: j,
            score: d[j]!,
            rank: r + 1,
            retriever: 'dense',
          })),
        },
      ],
      { method, weights: { bm25: 1 - w, dense: w }, rrfK: 60 },
    );
    run.set(
      q.id,
      fused.slice(0, 100).map((x) => ({ docId: c.ids[x.chunkId]!, score: x.score })),
    );
  });
  return evaluateRun(split.qrels, run, [...METRICS]).mean as Metrics;
}

const fmt = (x: number): string => x.toFixed(4);
const fusionName = (f: Fusion): string =>
  f.kind === 'bm25' || f.kind === 'dense' ? f.kind : `${f.kind} w=${f.w}`;

/** The fusions tried on the tuning splits: RRF with weights, min-max and z-score with dense weight w. */
const FUSIONS: Fusion[] = (['rrf', 'minmax', 'zscore'] as const).flatMap((kind) =>
  (kind === 'rrf' ? [0.5, ...WEIGHTS] : WEIGHTS).map((w) => ({ kind, w })),
);
const MODES: Mode[] = ['union', 'lists'];

async function main(): Promise<void> {
  const t0 = performance.now();
  const corpora: Corpus[] = [];
  for (const name of DATASETS) {
    const c = await loadCorpus(name);
    if (c) corpora.push(c);
  }
  if (corpora.length === 0) {
    log(`no dataset found under ${DATASET_ROOT}; nothing to measure`);
    return;
  }
  const tuneSets = corpora.filter((c) => c.tune !== undefined);
  const tuneNames = tuneSets.map((c) => `${c.name}/${c.tune!.split}`);

  // ---- Tuning (train/dev splits only): every variant × mode × fusion, mean nDCG@10 over the tuning sets ----
  interface TuneRow {
    variant: Variant;
    mode: Mode;
    fusion: Fusion;
    perSet: number[];
    mean: number;
  }
  const tuneRows: TuneRow[] = [];
  const denseTune = new Map<Variant, number[]>();
  const bm25Tune = tuneSets.map((c) => evaluate(c, c.tune!, undefined, { kind: 'bm25' })['ndcg@10']);
  for (const v of VARIANTS) {
    const per = new Map<string, number[]>();
    const densePer: number[] = [];
    for (const c of tuneSets) {
      const dense = denseScores(c, c.tune!, v);
      for (const mode of MODES) {
        const prepared = prepare(c.tune!, dense, mode);
        if (mode === 'union') densePer.push(evaluate(c, c.tune!, prepared, { kind: 'dense' })['ndcg@10']);
        for (const f of FUSIONS) {
          const key = `${mode}|${fusionName(f)}`;
          per.set(key, [...(per.get(key) ?? []), evaluate(c, c.tune!, prepared, f)['ndcg@10']]);
        }
      }
    }
    denseTune.set(v, densePer);
    for (const mode of MODES) {
      for (const f of FUSIONS) {
        const perSet = per.get(`${mode}|${fusionName(f)}`)!;
        tuneRows.push({ variant: v, mode, fusion: f, perSet, mean: mean(perSet) });
      }
    }
    log(`tuned ${v.name}: dense ${fmt(mean(densePer))}`);
  }
  const best = (rows: TuneRow[]): TuneRow => rows.reduce((a, b) => (b.mean > a.mean ? b : a));
  const bestOf = (v: Variant, mode: Mode, kind: Method): TuneRow =>
    best(tuneRows.filter((r) => r.variant === v && r.mode === mode && r.fusion.kind === kind));
  const wOf = (r: TuneRow): number => (r.fusion as { w: number }).w;

  console.log(`\n## Tuning on ${tuneNames.join(' + ')} (mean nDCG@10; w = dense weight)\n`);
  console.log(
    `BM25: ${tuneNames.map((n, i) => `${n} ${fmt(bm25Tune[i]!)}`).join(', ')}; mean ${fmt(mean(bm25Tune))}\n`,
  );
  const cols = MODES.flatMap((m) =>
    (['rrf', 'minmax', 'zscore'] as const).map(
      (k) => `${m === 'lists' ? `lists@${PIPELINE_DEPTH}` : 'union'} ${k}`,
    ),
  );
  console.log(`| variant | dim | dense | ${cols.join(' | ')} |`);
  console.log(`|${' --- |'.repeat(3 + cols.length)}`);
  for (const v of VARIANTS) {
    const cells = MODES.flatMap((m) =>
      (['rrf', 'minmax', 'zscore'] as const).map((k) => {
        const r = bestOf(v, m, k);
        return `${fmt(r.mean)} (${wOf(r)})`;
      }),
    );
    const dim = dimOf(v);
    console.log(`| ${v.name} | ${dim} | ${fmt(mean(denseTune.get(v)!))} | ${cells.join(' | ')} |`);
  }

  // Embedder: the variant (≤ MAX_DIM dimensions) whose best pipeline-mode fusion scores highest; then w per
  // (mode, method) for it.
  const eligible = tuneRows.filter((r) => r.mode === 'lists' && dimOf(r.variant) <= MAX_DIM);
  if (eligible.length === 0) throw new Error(`no variant within --max-dim ${MAX_DIM}`);
  const chosenRow = best(eligible);
  const chosen = chosenRow.variant;
  const picks = new Map<string, TuneRow>();
  for (const mode of MODES)
    for (const k of ['rrf', 'minmax', 'zscore'] as const) picks.set(`${mode}|${k}`, bestOf(chosen, mode, k));
  const defaultPick = best((['rrf', 'minmax', 'zscore'] as const).map((k) => picks.get(`lists|${k}`)!));
  console.log(
    `\nChosen on ${tuneNames.join(' + ')} only, among variants of ≤ ${MAX_DIM} dimensions: embedder ${chosen.name} ` +
      `(LSA k=${chosen.k}, sigmaPower=${chosen.sigmaPower}, n-gram dim ${chosen.ngramDim}, ngramWeight=${chosen.ngramWeight}).`,
  );
  for (const [key, r] of picks)
    console.log(`- ${key}: w=${wOf(r)} (tune ${fmt(r.mean)}: ${r.perSet.map(fmt).join(' / ')})`);
  console.log(
    `Default hybrid (pipeline fusion, depth ${PIPELINE_DEPTH}): ${defaultPick.fusion.kind} with dense weight ${wOf(defaultPick)}.`,
  );
  for (const mode of MODES) {
    console.log(
      `w sensitivity, ${mode} min-max (${chosen.name}): ` +
        tuneRows
          .filter((r) => r.variant === chosen && r.mode === mode && r.fusion.kind === 'minmax')
          .map((r) => `${wOf(r)}: ${fmt(r.mean)}`)
          .join(', '),
    );
  }

  // ---- Test: chosen settings, every set (cranfield zero-shot) ----
  interface TestRow {
    dataset: string;
    method: string;
    m: Metrics;
  }
  const testRows: TestRow[] = [];
  const mismatches: string[] = [];
  let embedderId = '';
  for (const c of corpora) {
    const embedder = LocalEmbedder.fromModels(
      (c.lsa.get(lsaKey(chosen)) ?? LsaModel.train(c.texts, { dimensions: chosen.k })).withSigmaPower(
        chosen.sigmaPower,
      ),
      c.ngrams.get(ngramKey(chosen)),
      chosen.ngramWeight,
    );
    embedderId = embedder.id.replace(/:[0-9a-f]{12}$/, ':<hash>');
    // Dense scores straight from the embedder (the vectors the pipeline stores).
    const docs = embedAll(c.texts.length, embedder.dimension, (i, out) =>
      out.set(embedder.embedSync(c.texts[i]!)),
    );
    const qs = embedAll(c.test.queries.length, embedder.dimension, (i, out) =>
      out.set(embedder.embedSync(c.test.queries[i]!.text)),
    );
    const dense: DenseScores = { scores: cosines(qs, docs) };
    const prepared = new Map(MODES.map((m) => [m, prepare(c.test, dense, m)]));
    testRows.push({ dataset: c.name, method: 'BM25', m: evaluate(c, c.test, undefined, { kind: 'bm25' }) });
    testRows.push({
      dataset: c.name,
      method: 'dense',
      m: evaluate(c, c.test, prepared.get('union')!, { kind: 'dense' }),
    });
    for (const mode of MODES) {
      for (const k of ['rrf', 'minmax', 'zscore'] as const) {
        const w = k === 'rrf' ? 0.5 : wOf(picks.get(`${mode}|${k}`)!);
        const label = `${mode === 'lists' ? `lists@${PIPELINE_DEPTH}` : 'union'} ${k === 'rrf' ? 'RRF k=60 (equal)' : `${k} w=${w}`}`;
        testRows.push({
          dataset: c.name,
          method: label,
          m: evaluate(c, c.test, prepared.get(mode)!, { kind: k, w }),
        });
      }
    }
    // The default through the pipeline's own fuse(): must match lists mode.
    const viaFuse = evaluateWithPipelineFuse(
      c,
      c.test,
      dense,
      defaultPick.fusion.kind as Method,
      wOf(defaultPick),
    );
    const mine = evaluate(c, c.test, prepared.get('lists')!, {
      kind: defaultPick.fusion.kind as Method,
      w: wOf(defaultPick),
    });
    if (Math.abs(viaFuse['ndcg@10'] - mine['ndcg@10']) > 1e-9)
      mismatches.push(`${c.name} ${fmt(viaFuse['ndcg@10'])} vs ${fmt(mine['ndcg@10'])}`);
    // Information only (never used for selection): test nDCG@10 of the default method across w.
    const sens = WEIGHTS.map(
      (w) =>
        `${w}: ${fmt(evaluate(c, c.test, prepared.get('lists')!, { kind: defaultPick.fusion.kind as Method, w })['ndcg@10'])}`,
    );
    log(`${c.name} test ${defaultPick.fusion.kind} nDCG@10 by w (information only): ${sens.join(', ')}`);
  }

  const command = `npx tsx bench/dense-quality.ts${args.length > 0 ? ` ${args.join(' ')}` : ''}`;
  console.log(`\n## Test splits\n\nCommand: \`${command}\`  \nEmbedder: ${embedderId} (${chosen.name})\n`);
  console.log('| dataset | method | nDCG@10 | Recall@100 | MRR@10 |');
  console.log('| --- | --- | --- | --- | --- |');
  for (const r of testRows) {
    console.log(
      `| ${r.dataset} | ${r.method} | ${fmt(r.m['ndcg@10'])} | ${fmt(r.m['recall@100'])} | ${fmt(r.m['mrr@10'])} |`,
    );
  }
  console.log(
    mismatches.length === 0
      ? `\nlists@${PIPELINE_DEPTH} ${defaultPick.fusion.kind} matches src/fuse/fusion.ts fuse() exactly on every set.`
      : `\nWARNING: lists mode differs from fuse(): ${mismatches.join('; ')}`,
  );

  // Verdict for the default hybrid.
  const defaultLabel = `lists@${PIPELINE_DEPTH} ${defaultPick.fusion.kind === 'rrf' ? 'RRF k=60 (equal)' : `${defaultPick.fusion.kind} w=${wOf(defaultPick)}`}`;
  const row = (ds: string, method: string): Metrics =>
    testRows.find((r) => r.dataset === ds && r.method === method)!.m;
  const deltas = corpora.map((c) => row(c.name, defaultLabel)['ndcg@10'] - row(c.name, 'BM25')['ndcg@10']);
  const verdict = corpora.map(
    (c, i) =>
      `${c.name} ${fmt(row(c.name, 'BM25')['ndcg@10'])} → ${fmt(row(c.name, defaultLabel)['ndcg@10'])} (${deltas[i]! >= 0 ? '+' : ''}${fmt(deltas[i]!)})`,
  );
  console.log(`\nDefault hybrid (${defaultLabel}) vs BM25, nDCG@10: ${verdict.join('; ')}.`);
  console.log(
    `Hybrid ≥ BM25 on every set: ${deltas.every((d) => d >= 0) ? 'yes' : 'NO'}; mean change ` +
      `${mean(deltas) >= 0 ? '+' : ''}${fmt(mean(deltas))} (${mean(deltas) > 0 ? 'better' : 'not better'} on average).`,
  );
  if (corpora.some((c) => c.name === 'scifact')) {
    const v = row('scifact', defaultLabel)['ndcg@10'];
    console.log(
      `scifact nDCG@10 (default hybrid): ${fmt(v)} vs goal 0.70 — ${v >= 0.7 ? 'reached' : 'not reached'}.`,
    );
  }
  console.log('\nTimings (s):');
  for (const c of corpora) {
    console.log(
      `- ${c.name}: ${Object.entries(c.timings)
        .map(([k, v]) => `${k.replace(/Ms$/, '')} ${(v / 1000).toFixed(1)}`)
        .join(', ')}`,
    );
  }
  console.log(`- total ${((performance.now() - t0) / 1000).toFixed(0)} s`);

  const jsonOut = opt('json', '');
  if (jsonOut) {
    fs.writeFileSync(
      jsonOut,
      JSON.stringify(
        {
          command,
          chosen: {
            variant: chosen,
            picks: Object.fromEntries([...picks].map(([k, r]) => [k, { w: wOf(r), tune: r.mean }])),
          },
          tuneRows: tuneRows.map((r) => ({
            variant: r.variant.name,
            mode: r.mode,
            fusion: fusionName(r.fusion),
            perSet: r.perSet,
            mean: r.mean,
          })),
          testRows,
        },
        null,
        2,
      ),
    );
  }
}

/**
 * Training cost at scale: N passages sampled from scifact's word stream in short contiguous runs (as
 * bench/bm25.ts generates them), ~120 words each; the default local embedder is trained and timed.
 */
async function scaleRun(n: number): Promise<void> {
  const corpusPath = path.join(DATASET_ROOT, 'scifact', 'corpus.jsonl');
  if (!fs.existsSync(corpusPath)) {
    log(`skipping --scale: ${corpusPath} not found`);
    return;
  }
  const words: string[] = [];
  for await (const d of readCorpus(corpusPath))
    for (const w of `${d.title} ${d.text}`.split(/\s+/)) if (w) words.push(w);
  let seed = 12345;
  const rand = (): number => {
    seed = (seed * 1664525 + 1013904223) >>> 0;
    return seed / 2 ** 32;
  };
  const texts: string[] = [];
  for (let i = 0; i < n; i++) {
    const len = Math.round(40 + rand() * 160);
    const parts: string[] = [];
    while (parts.length < len) {
      const start = Math.floor(rand() * (words.length - 20));
      const run = 5 + Math.floor(rand() * 15);
      for (let j = 0; j < run && parts.length < len; j++) parts.push(words[start + j]!);
    }
    texts.push(parts.join(' '));
  }
  const t0 = performance.now();
  const embedder = LocalEmbedder.train(texts);
  const trainMs = performance.now() - t0;
  const st = embedder.lsa.trainingStats!;
  const t1 = performance.now();
  for (const t of texts) embedder.embedSync(t);
  const embedMs = performance.now() - t1;
  const t2 = performance.now();
  const queries = texts.slice(0, 2000).map((t) => t.split(' ').slice(0, 12).join(' '));
  for (const q of queries) embedder.embedSync(q);
  const queryMs = (performance.now() - t2) / queries.length;
  console.log(
    `${n} generated passages: ${embedder.id}, dimension ${embedder.dimension}, model ${(embedder.serialize().length / 1e6).toFixed(1)} MB\n` +
      `- train total ${(trainMs / 1000).toFixed(1)} s (LSA: analyze ${(st.analyzeMs / 1000).toFixed(1)} s, SVD ${(st.svdMs / 1000).toFixed(1)} s, ` +
      `vocabulary ${st.vocabulary}, nnz ${st.nonZeros}; n-grams ${((trainMs - st.totalMs) / 1000).toFixed(1)} s)\n` +
      `- embed all passages ${(embedMs / 1000).toFixed(1)} s (${Math.round((n / embedMs) * 1000)} passages/s); ` +
      `query embedding ${queryMs.toFixed(3)} ms mean`,
  );
}

function mean(xs: readonly number[]): number {
  return xs.length === 0 ? 0 : xs.reduce((a, b) => a + b, 0) / xs.length;
}

const scale = opt('scale', '');
if (scale) await scaleRun(Number(scale));
else await main();

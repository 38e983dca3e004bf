/**
 * Dense vector index benchmark: exact (float, int8, binary) and HNSW on N synthetic clustered vectors.
 * Prints build time, memory per vector, recall@10 against exact search at several efSearch values, queries/s
 * and p50/p95/p99 latency, and filtered (10 % and 1 % of documents admissible) recall and queries/s.
 *
 *   npx tsx --expose-gc bench/vector.ts [--n 100000] [--dim 256] [--queries 300] [--clusters n/200]
 *       [--spread 1] [--query-spread 2] [--ef 16,32,64,128,256] [--seed 7] [--no-hnsw]
 *
 * Why synthetic: Quarry's embedded default ships no embedding model and the machine has no network, so no
 * real embeddings of a 100k-passage corpus exist here. Gaussian clusters (C random unit centres, each passage
 * = normalize(centre + spread · N(0, I/dim)); held-out queries drawn around the same centres with twice the
 * noise, as short questions are noisier views of a topic than passages) give topical structure and a
 * controllable N and dimension. The within-cluster noise is full-rank, so neighbours are less distinct than
 * in real embeddings (whose variance concentrates in fewer directions): a harder case for ANN, not an easier.
 * Single-threaded, top-10; the machine may be shared, so latencies are indicative.
 */

import { Prng } from '../src/embed/local/linalg.js';
import { latencySummary } from '../src/eval/metrics.js';
import { DEFAULT_ANN_THRESHOLD } from '../src/indexes/vector/auto-index.js';
import { defaultRescore, ExactIndex } from '../src/indexes/vector/exact-index.js';
import { HNSW_DEFAULTS, HnswIndex } from '../src/indexes/vector/hnsw-index.js';
import type { VectorHit, VectorIndex, VectorIndexInfo } from '../src/indexes/vector/types.js';

const args = process.argv.slice(2);
const opt = (name: string, dflt: string): string => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 && args[i + 1] !== undefined ? args[i + 1]! : dflt;
};
const N = Number(opt('n', '100000'));
const DIM = Number(opt('dim', '256'));
const QUERIES = Number(opt('queries', '300'));
const CLUSTERS = Number(opt('clusters', String(Math.max(8, Math.round(N / 200)))));
const SPREAD = Number(opt('spread', '1'));
const QUERY_SPREAD = Number(opt('query-spread', '2'));
const EFS = opt('ef', '16,32,64,128,256').split(',').map(Number);
const SEED = Number(opt('seed', '7'));
const WITH_HNSW = !args.includes('--no-hnsw');
const K = 10;
/** Chunks per document: groups are documents, as in the pipeline. */
const CHUNKS_PER_DOC = 8;

// ---- data ---------------------------------------------------------------------------------------------

function rng(seed: number): () => number {
  const prng = new Prng(seed);
  return () => prng.next();
}

function gaussian(r: () => number): () => number {
  let spare: number | undefined;
  return () => {
    if (spare !== undefined) {
      const s = spare;
      spare = undefined;
      return s;
    }
    const u = Math.max(r(), 1e-12);
    const v = r();
    const m = Math.sqrt(-2 * Math.log(u));
    spare = m * Math.sin(2 * Math.PI * v);
    return m * Math.cos(2 * Math.PI * v);
  };
}

function normalize(v: Float32Array): Float32Array {
  let s = 0;
  for (const x of v) s += x * x;
  const inv = 1 / Math.sqrt(s);
  for (let i = 0; i < v.length; i++) v[i] = v[i]! * inv;
  return v;
}

function makeData(): { vectors: Float32Array[]; queries: Float32Array[]; groups: Uint32Array } {
  const g = gaussian(rng(SEED));
  const pick = rng(SEED + 1);
  const centres: Float32Array[] = [];
  for (let c = 0; c < CLUSTERS; c++) {
    const v = new Float32Array(DIM);
    for (let i = 0; i < DIM; i++) v[i] = g();
    centres.push(normalize(v));
  }
  const sigma = SPREAD / Math.sqrt(DIM);
  const point = (s: number): Float32Array => {
    const c = centres[Math.floor(pick() * CLUSTERS)]!;
    const v = new Float32Array(DIM);
    for (let i = 0; i < DIM; i++) v[i] = c[i]! + s * g();
    return normalize(v);
  };
  const vectors = Array.from({ length: N }, () => point(sigma));
  const queries = Array.from({ length: QUERIES }, () => point(QUERY_SPREAD / Math.sqrt(DIM)));
  // Documents: consecutive runs of chunks; document ids shuffled so filters do not align with insert order.
  const docs = Math.ceil(N / CHUNKS_PER_DOC);
  const perm = Uint32Array.from({ length: docs }, (_, i) => i);
  for (let i = docs - 1; i > 0; i--) {
    const j = Math.floor(pick() * (i + 1));
    [perm[i], perm[j]] = [perm[j]!, perm[i]!];
  }
  const groups = Uint32Array.from({ length: N }, (_, i) => perm[Math.floor(i / CHUNKS_PER_DOC)]!);
  return { vectors, queries, groups };
}

// ---- measurement --------------------------------------------------------------------------------------

interface Row {
  index: string;
  setting: string;
  recall: number | undefined;
  qps: number;
  p50: number;
  p95: number;
  p99: number;
  note?: string;
}
const rows: Row[] = [];
const builds: Array<{
  index: string;
  seconds: number;
  perVecEst: number;
  perVecJs: number;
  perVecRss: number;
}> = [];

function recallAt(truth: VectorHit[][], got: VectorHit[][]): number {
  let sum = 0;
  for (let i = 0; i < truth.length; i++) {
    const want = new Set(truth[i]!.map((h) => h.chunkId));
    if (want.size === 0) {
      sum += 1;
      continue;
    }
    let hit = 0;
    for (const h of got[i]!) if (want.has(h.chunkId)) hit++;
    sum += hit / want.size;
  }
  return sum / truth.length;
}

function run(
  index: string,
  setting: string,
  queries: Float32Array[],
  fn: (q: Float32Array) => VectorHit[],
  truth: VectorHit[][] | undefined,
  note?: string,
): VectorHit[][] {
  for (const q of queries.slice(0, 20)) fn(q); // warm-up
  const lat: number[] = [];
  const out: VectorHit[][] = [];
  const t0 = performance.now();
  for (const q of queries) {
    const s = performance.now();
    out.push(fn(q));
    lat.push(performance.now() - s);
  }
  const elapsed = (performance.now() - t0) / 1000;
  const l = latencySummary(lat);
  rows.push({
    index,
    setting,
    recall: truth === undefined ? undefined : recallAt(truth, out),
    qps: queries.length / elapsed,
    p50: l.p50,
    p95: l.p95,
    p99: l.p99,
    note,
  });
  return out;
}

/** Resident set and JS-managed bytes (heap + typed arrays), after a GC when exposed (`--expose-gc`). */
function memNow(): { rss: number; js: number } {
  (globalThis as { gc?: () => void }).gc?.();
  const m = process.memoryUsage();
  return { rss: m.rss, js: m.heapUsed + m.arrayBuffers };
}

/** Every built index stays reachable, so one build's garbage collection cannot offset the next's growth. */
const keep: VectorIndex[] = [];

function build(
  name: string,
  make: () => VectorIndex,
  vectors: Float32Array[],
  groups: Uint32Array,
  onProgress?: (i: number, ms: number) => void,
): VectorIndex {
  const before = memNow();
  const t0 = performance.now();
  const idx = make();
  for (let i = 0; i < vectors.length; i++) {
    idx.add(i, groups[i]!, vectors[i]!);
    onProgress?.(i + 1, performance.now() - t0);
  }
  const seconds = (performance.now() - t0) / 1000;
  keep.push(idx);
  const after = memNow();
  builds.push({
    index: name,
    seconds,
    perVecEst: idx.memoryBytes() / vectors.length,
    perVecJs: (after.js - before.js) / vectors.length,
    perVecRss: (after.rss - before.rss) / vectors.length,
  });
  return idx;
}

// ---- run ----------------------------------------------------------------------------------------------

const started = performance.now();
const pct = (x: number): string => `${+(x * 100).toFixed(2)}%`;
const info: VectorIndexInfo = { modelId: 'synthetic', dimension: DIM, metric: 'cosine' };
console.log(
  `vector bench: n=${N} dim=${DIM} clusters=${CLUSTERS} spread=${SPREAD} query-spread=${QUERY_SPREAD} ` +
    `queries=${QUERIES} k=${K} seed=${SEED}`,
);
const data = makeData();
console.log(`data generated in ${((performance.now() - started) / 1000).toFixed(1)} s`);
console.log(
  `defaults: HNSW M=${HNSW_DEFAULTS.m} efConstruction=${HNSW_DEFAULTS.efConstruction} ` +
    `efSearch=${HNSW_DEFAULTS.efSearch} filterScanRatio=${HNSW_DEFAULTS.filterScanRatio}; ` +
    `annThreshold=${DEFAULT_ANN_THRESHOLD}; binary pool max(20·k, ${pct(defaultRescore('binary', DIM).fraction)} of n)`,
);

const pred10 = (g: number): boolean => g % 10 === 0;
const pred1 = (g: number): boolean => g % 100 === 0;

// HNSW first, while the process has allocated (and freed) little, so its RSS growth is least confounded.
let at20k: number | undefined;
const hnsw = WITH_HNSW
  ? (build(
      'hnsw M=16 efC=200',
      () => HnswIndex.create(info, {}, N),
      data.vectors,
      data.groups,
      (i, ms) => {
        if (i === 20_000) at20k = ms / 1000;
      },
    ) as HnswIndex)
  : undefined;

const exact = build('exact float32', () => new ExactIndex(info), data.vectors, data.groups);
const truth = run('exact float32', '-', data.queries, (q) => exact.search(q, K), undefined, 'ground truth');
const truth10 = run(
  'exact float32',
  'filter 10%',
  data.queries,
  (q) => exact.search(q, K, { allowGroup: pred10 }),
  undefined,
);
const truth1 = run(
  'exact float32',
  'filter 1%',
  data.queries,
  (q) => exact.search(q, K, { allowGroup: pred1 }),
  undefined,
);

// Quantized variants: int8 at its default pool; binary at the default (max(20·k, 2.56/dim of the collection),
// i.e. 1 % at 256-d) and at half and twice that share, to show the recall/speed curve.
const binaryDefault = defaultRescore('binary', DIM).fraction;
for (const [label, opts, filtered] of [
  ['exact int8 (pool 4·k, default)', { quantization: 'int8' }, true],
  [
    `exact binary (pool ${pct(binaryDefault / 2)} of n)`,
    { quantization: 'binary', rescoreFraction: binaryDefault / 2 },
    false,
  ],
  [`exact binary (pool ${pct(binaryDefault)} of n, default)`, { quantization: 'binary' }, true],
  [
    `exact binary (pool ${pct(binaryDefault * 2)} of n)`,
    { quantization: 'binary', rescoreFraction: binaryDefault * 2 },
    false,
  ],
] as const) {
  const idx = build(label, () => new ExactIndex(info, opts), data.vectors, data.groups);
  run(label, '-', data.queries, (q) => idx.search(q, K), truth);
  if (filtered) {
    run(label, 'filter 10%', data.queries, (q) => idx.search(q, K, { allowGroup: pred10 }), truth10);
    run(label, 'filter 1%', data.queries, (q) => idx.search(q, K, { allowGroup: pred1 }), truth1);
  }
}

if (hnsw !== undefined) {
  for (const ef of EFS) run('hnsw', `ef=${ef}`, data.queries, (q) => hnsw.search(q, K, { ef }), truth);
  const strategies = (fn: (q: Float32Array) => VectorHit[]) => {
    const counts = new Map<string, number>();
    return {
      fn: (q: Float32Array) => {
        const r = fn(q);
        counts.set(hnsw.lastSearch.strategy, (counts.get(hnsw.lastSearch.strategy) ?? 0) + 1);
        return r;
      },
      note: () => [...counts].map(([s, c]) => `${s}×${c}`).join(' '),
    };
  };
  for (const [label, pred, t] of [
    ['filter 10%', pred10, truth10],
    ['filter 1%', pred1, truth1],
  ] as const) {
    const dflt = hnsw.options.filterScanRatio;
    for (const mode of ['auto', 'graph only', 'exact only'] as const) {
      hnsw.options.filterScanRatio =
        mode === 'auto' ? dflt : mode === 'graph only' ? 0 : Number.POSITIVE_INFINITY;
      const s = strategies((q) => hnsw.search(q, K, { allowGroup: pred }));
      run('hnsw', `${label}, ${mode}`, data.queries, s.fn, t);
      rows[rows.length - 1]!.note = s.note();
    }
    hnsw.options.filterScanRatio = dflt;
  }
}

// ---- report -------------------------------------------------------------------------------------------

const fmt = (x: number, d = 2): string => x.toFixed(d);
console.log('\nBuild');
console.log('| index | build s | vectors/s | est. bytes/vector | JS Δ bytes/vector | RSS Δ bytes/vector |');
console.log('|---|---:|---:|---:|---:|---:|');
for (const b of builds) {
  console.log(
    `| ${b.index} | ${fmt(b.seconds)} | ${Math.round(N / b.seconds)} | ${Math.round(b.perVecEst)} | ` +
      `${Math.round(b.perVecJs)} | ${Math.round(b.perVecRss)} |`,
  );
}
console.log(
  'est. = memoryBytes() (typed arrays at capacity, which grows by doubling, + lookup tables + hnswlib model);\n' +
    'JS Δ = heap + ArrayBuffer growth over the build; RSS Δ includes native memory but under-counts when\n' +
    'pages freed earlier are reused (run with --expose-gc for steadier figures); HNSW is built first, while little has been freed.',
);
if (at20k !== undefined)
  console.log(`(HNSW: first 20,000 inserts took ${fmt(at20k)} s — the exact→ANN switch stall)`);
console.log('\nSearch (top-10, single-threaded)');
console.log('| index | setting | recall@10 | q/s | p50 ms | p95 ms | p99 ms | note |');
console.log('|---|---|---:|---:|---:|---:|---:|---|');
for (const r of rows) {
  console.log(
    `| ${r.index} | ${r.setting} | ${r.recall === undefined ? '(truth)' : fmt(r.recall, 3)} | ${Math.round(r.qps)} | ` +
      `${fmt(r.p50, 3)} | ${fmt(r.p95, 3)} | ${fmt(r.p99, 3)} | ${r.note ?? ''} |`,
  );
}
console.log(`\ntotal ${((performance.now() - started) / 1000).toFixed(0)} s`);

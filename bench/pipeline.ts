/**
 * Pipeline overhead benchmark: what the public `search()` costs on top of Quarry's own BM25 index, side by
 * side in one run with a plain exhaustive BM25 (a Map of postings, no pruning) as an anchor, on scifact and on
 * generated corpora of N passages. Also the whole in-process memory per passage after ingest. Prints figures;
 * it is not a test.
 *
 *   npx tsx bench/pipeline.ts [--sizes 5k,100k,500k] [--seconds 1] [--rounds 3] [--no-scifact]
 *
 * Engines, each answering the same queries, BM25 top-10:
 *   (a) `quarry.search(q, { k: 10, collapseDocuments: true })`, as `quarry eval` calls it (caches off);
 *   (b) Quarry's BM25 index alone: analyze the query, `bm25.search(terms, { k: 10 })`;
 *   (c) a plain exhaustive BM25 in JS over a Map of typed-array postings, same analyzer and length norms.
 * Timing rotates the engines in rounds so load from other processes hits them alike: compare the ratios.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import v8 from 'node:v8';
import vm from 'node:vm';
import { loadBeirDataset, readCorpus } from '../src/eval/beir.js';
import { evaluateRun, type Qrels, type Run } from '../src/eval/metrics.js';
import { type Analyzer, createAnalyzer } from '../src/indexes/lexical/analyzer.js';
import { LENGTH_TABLE, lengthToByte } from '../src/indexes/lexical/lucene-norms.js';
import { Quarry } from '../src/pipeline/quarry.js';
import { type Doc, generatePassages } from './corpus.js';

const args = process.argv.slice(2);
const opt = (name: string, dflt: string): string => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 && args[i + 1] !== undefined ? args[i + 1]! : dflt;
};
const parseSize = (s: string): number => {
  const m = /^(\d+(?:\.\d+)?)([km]?)$/i.exec(s.trim());
  if (m === null) throw new Error(`--sizes: cannot read "${s}" (use e.g. 5k,100k,500k)`);
  return Math.round(
    Number(m[1]) * (m[2]?.toLowerCase() === 'k' ? 1e3 : m[2]?.toLowerCase() === 'm' ? 1e6 : 1),
  );
};
const SIZES = opt('sizes', '5k,100k,500k').split(',').filter(Boolean).map(parseSize);
const SECONDS = Number(opt('seconds', '1'));
const ROUNDS = Number(opt('rounds', '3'));
const WORDS = Number(opt('words', '56'));
const SCIFACT = !args.includes('--no-scifact');
const scifactDir = path.resolve(import.meta.dirname, '../../shared/datasets/scifact');

v8.setFlagsFromString('--expose-gc');
const gc = vm.runInNewContext('gc') as () => void;

function settledMemory(): number {
  for (let i = 0; i < 3; i++) gc();
  const m = process.memoryUsage();
  return m.heapUsed + m.external;
}

const K1 = 0.9;
const B = 0.4;

/** The anchor: exhaustive term-at-a-time BM25 (Lucene's formula and length bytes), Map of postings. */
class PlainBm25 {
  private readonly postings = new Map<string, { docs: Uint32Array; tfs: Uint16Array }>();
  private readonly norm: Float64Array;
  private readonly acc: Float64Array;
  private readonly touched: Uint32Array;
  readonly ids: string[];

  constructor(
    docs: Iterable<{ id: string; terms: string[] }>,
    private readonly analyzer: Analyzer,
  ) {
    const ids: string[] = [];
    const lengths: number[] = [];
    const building = new Map<string, { docs: number[]; tfs: number[] }>();
    for (const d of docs) {
      const n = ids.length;
      ids.push(d.id);
      lengths.push(d.terms.length);
      const tf = new Map<string, number>();
      for (const t of d.terms) tf.set(t, (tf.get(t) ?? 0) + 1);
      for (const [t, c] of tf) {
        let p = building.get(t);
        if (p === undefined) {
          p = { docs: [], tfs: [] };
          building.set(t, p);
        }
        p.docs.push(n);
        p.tfs.push(c);
      }
    }
    for (const [t, p] of building)
      this.postings.set(t, { docs: Uint32Array.from(p.docs), tfs: Uint16Array.from(p.tfs) });
    const avgdl = lengths.reduce((a, b) => a + b, 0) / Math.max(1, lengths.length) || 1;
    this.norm = new Float64Array(ids.length);
    for (let d = 0; d < ids.length; d++)
      this.norm[d] = K1 * (1 - B + (B * LENGTH_TABLE[lengthToByte(lengths[d]!)]!) / avgdl);
    this.acc = new Float64Array(ids.length);
    this.touched = new Uint32Array(ids.length);
    this.ids = ids;
  }

  search(query: string, k: number): number[] {
    const terms = this.analyzer.analyze(query);
    const counts = new Map<string, number>();
    for (const t of terms) counts.set(t, (counts.get(t) ?? 0) + 1);
    const { acc, touched, norm } = this;
    const n = this.ids.length;
    let nTouched = 0;
    for (const [t, qtf] of counts) {
      const p = this.postings.get(t);
      if (p === undefined) continue;
      const df = p.docs.length;
      const w = qtf * Math.log(1 + (n - df + 0.5) / (df + 0.5));
      for (let i = 0; i < df; i++) {
        const d = p.docs[i]!;
        const tf = p.tfs[i]!;
        if (acc[d] === 0) touched[nTouched++] = d;
        acc[d]! += (w * tf) / (tf + norm[d]!);
      }
    }
    // Top-k by insertion into a small sorted array (k is 10).
    const top: number[] = [];
    for (let i = 0; i < nTouched; i++) {
      const d = touched[i]!;
      const s = acc[d]!;
      if (top.length === k && s <= acc[top[k - 1]!]!) continue;
      let j = top.length < k ? top.length : k - 1;
      while (j > 0 && (acc[top[j - 1]!]! < s || (acc[top[j - 1]!] === s && top[j - 1]! > d))) {
        if (j < k) top[j] = top[j - 1]!;
        j--;
      }
      top[j] = d;
    }
    for (let i = 0; i < nTouched; i++) acc[touched[i]!] = 0;
    return top;
  }
}

interface Timing {
  qps: number;
  p50: number;
  p95: number;
}

interface Engine {
  name: string;
  run(q: string): unknown;
  lat: number[];
  queries: number;
  ms: number;
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

/** Rotate the engines through `ROUNDS` rounds of `SECONDS` each over the query list. */
async function timeEngines(engines: Engine[], queries: string[]): Promise<Map<string, Timing>> {
  for (const e of engines) for (const q of queries.slice(0, 30)) await e.run(q); // warm-up (JIT)
  for (let r = 0; r < ROUNDS; r++) {
    const order = r % 2 === 0 ? engines : [...engines].reverse();
    for (const e of order) {
      const t0 = performance.now();
      let i = 0;
      while (performance.now() - t0 < SECONDS * 1000 || i < Math.min(queries.length, 20)) {
        const q = queries[i % queries.length]!;
        const s = performance.now();
        await e.run(q);
        e.lat.push(performance.now() - s);
        i++;
      }
      e.ms += performance.now() - t0;
      e.queries += i;
    }
  }
  const out = new Map<string, Timing>();
  for (const e of engines) {
    const sorted = [...e.lat].sort((a, b) => a - b);
    out.set(e.name, {
      qps: (e.queries / e.ms) * 1000,
      p50: percentile(sorted, 50),
      p95: percentile(sorted, 95),
    });
  }
  return out;
}

interface CorpusRow {
  corpus: string;
  passages: number;
  timings: Map<string, Timing>;
  firstQueryMs: number;
  firstTypoMs: number;
  ingestS: number;
  bytesPerPassage: number;
  bm25BytesPerPassage: number;
  ndcg?: { search: number; anchor: number };
  sameTop10: number;
}

const rows: CorpusRow[] = [];

/**
 * Load what every store shares once per process (modules, tokenizer tables, the stemmer) before the memory
 * baseline, so bytes per passage count what grows with the corpus.
 */
async function loadFixedCosts(): Promise<void> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'quarry-bench-warm-'));
  const file = path.join(dir, 'warm.jsonl');
  fs.writeFileSync(
    file,
    `${JSON.stringify({ _id: 'w', title: 'warm up', text: 'load the modules once' })}\n`,
  );
  const q = Quarry.open({ store: dir, config: { cache: { responses: false, retrievals: false } } });
  await q.ingest([file]);
  await q.search('modules');
  q.close();
  fs.rmSync(dir, { recursive: true, force: true });
}

async function benchCorpus(
  label: string,
  corpusFile: string,
  queries: Array<{ id: string; text: string }>,
  qrels: Qrels | undefined,
): Promise<void> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'quarry-bench-pipeline-'));
  await loadFixedCosts();
  const before = settledMemory();
  const quarry = Quarry.open({
    store: dir,
    config: {
      ingest: { batchSize: 1000 },
      // As `quarry eval`: whole documents as chunks, and no response caches (every query runs the pipeline).
      chunking: { maxTokens: 8192, overlapTokens: 0, parentMaxTokens: 32768 },
      cache: { responses: false, retrievals: false },
    },
  });
  const t0 = performance.now();
  const report = await quarry.ingest([corpusFile]);
  const ingestS = (performance.now() - t0) / 1000;
  const passages = quarry.stats().chunks;
  const opts = { k: 10, collapseDocuments: true } as const;
  const f0 = performance.now();
  await quarry.search(queries[0]!.text, opts);
  const firstQueryMs = performance.now() - f0;
  // The first query with a word the index does not know: typo correction's first use.
  const typo = `${queries[1]!.text} ${misspelt(queries[1]!.text)}`;
  const t1 = performance.now();
  const typoSearch = await quarry.search(typo, { ...opts, trace: true });
  const firstTypoMs = performance.now() - t1;
  const corrected = typoSearch.trace?.stages.find((s) => s.stage === 'query.analyze')?.detail.corrections;
  const bytesPerPassage = (settledMemory() - before) / Math.max(1, passages);
  const bm25BytesPerPassage = quarry.lexical.bm25.memoryBytes() / Math.max(1, passages);
  console.log(
    `[${label}] ingest ${report.added} documents / ${passages} chunks in ${ingestS.toFixed(1)} s; first search ${firstQueryMs.toFixed(0)} ms; ` +
      `first search with a typo ${firstTypoMs.toFixed(0)} ms (${JSON.stringify(corrected)}); ` +
      `memory ${bytesPerPassage.toFixed(0)} B/passage (BM25 index ${bm25BytesPerPassage.toFixed(0)})`,
  );

  // The anchor is built after the memory reading so it is not counted as Quarry's.
  const analyzer = createAnalyzer(quarry.config.analyzer);
  const docs: Array<{ id: string; terms: string[] }> = [];
  for await (const d of readCorpus(corpusFile))
    docs.push({ id: d.id, terms: analyzer.analyze(`${d.title} ${d.text}`) });
  const anchor = new PlainBm25(docs, analyzer);
  docs.length = 0;

  const lexical = quarry.lexical;
  const engines: Engine[] = [
    { name: 'search', run: (q) => quarry.search(q, opts), lat: [], queries: 0, ms: 0 },
    {
      name: 'index',
      run: (q) => lexical.bm25.search(lexical.analyzeQuery(q), { k: 10 }),
      lat: [],
      queries: 0,
      ms: 0,
    },
    { name: 'anchor', run: (q) => anchor.search(q, 10), lat: [], queries: 0, ms: 0 },
  ];
  const texts = queries.map((q) => q.text);
  const timings = await timeEngines(engines, texts);

  // Rankings: search() against the anchor (differences: typo correction, ties).
  const runSearch: Run = new Map();
  const runAnchor: Run = new Map();
  let same = 0;
  for (const q of queries) {
    const a = (await quarry.search(q.text, opts)).hits.map((h) => h.chunk.docId);
    const c = anchor.search(q.text, 10).map((d) => anchor.ids[d]!);
    if (a.join(' ') === c.join(' ')) same++;
    runSearch.set(
      q.id,
      a.map((docId, i) => ({ docId, score: 100 - i })),
    );
    runAnchor.set(
      q.id,
      c.map((docId, i) => ({ docId, score: 100 - i })),
    );
  }
  const ndcg =
    qrels === undefined
      ? undefined
      : {
          search: evaluateRun(qrels, runSearch, ['ndcg@10']).mean['ndcg@10']!,
          anchor: evaluateRun(qrels, runAnchor, ['ndcg@10']).mean['ndcg@10']!,
        };
  rows.push({
    corpus: label,
    passages,
    timings,
    firstQueryMs,
    firstTypoMs,
    ingestS,
    bytesPerPassage,
    bm25BytesPerPassage,
    ndcg,
    sameTop10: same / queries.length,
  });
  quarry.close();
  fs.rmSync(dir, { recursive: true, force: true });
}

/** The query's longest word with two inner letters swapped: a typo one edit from a corpus word. */
function misspelt(query: string): string {
  const word =
    [...query.matchAll(/\p{L}{6,}/gu)].map((m) => m[0]).sort((a, b) => b.length - a.length)[0] ?? 'granite';
  return `${word.slice(0, 2)}${word[3]}${word[2]}${word.slice(4)}`;
}

/** Seeded synthetic source text (Zipf-distributed pseudo-words) for when scifact is not on disk. */
function syntheticSource(): { docs: Doc[]; queries: Array<{ id: string; text: string }> } {
  let seed = 987654321;
  const rand = (): number => {
    seed = (seed * 1664525 + 1013904223) >>> 0;
    return seed / 2 ** 32;
  };
  const letters = 'abcdefghiklmnoprstuvwy';
  const vocab = Array.from({ length: 30_000 }, () => {
    const len = 3 + Math.floor(rand() * 8);
    let w = '';
    for (let i = 0; i < len; i++) w += letters[Math.floor(rand() * letters.length)];
    return w;
  });
  const zipf = (): string => vocab[Math.min(vocab.length - 1, Math.floor(vocab.length ** rand()) - 1)]!;
  const docs = Array.from({ length: 5_000 }, (_, i) => ({
    id: `s${i}`,
    title: '',
    text: Array.from({ length: 150 }, zipf).join(' '),
  }));
  const queries = Array.from({ length: 300 }, (_, i) => ({
    id: `q${i}`,
    text: Array.from({ length: 8 + Math.floor(rand() * 6) }, zipf).join(' '),
  }));
  return { docs, queries };
}

async function main(): Promise<void> {
  console.log(
    `# Pipeline overhead benchmark  (node ${process.version}, ${os.cpus().length} cores, ${os.cpus()[0]?.model ?? ''})`,
  );
  console.log(`command: npx tsx bench/pipeline.ts ${args.join(' ')}`.trim());
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'quarry-bench-gen-'));
  let source: Doc[];
  let queries: Array<{ id: string; text: string }>;
  if (fs.existsSync(scifactDir)) {
    const ds = await loadBeirDataset(scifactDir, 'test');
    source = [];
    for await (const d of readCorpus(ds.corpusPath)) source.push({ id: d.id, title: d.title, text: d.text });
    queries = ds.queries;
    if (SCIFACT) await benchCorpus('scifact', ds.corpusPath, ds.queries, ds.qrels);
  } else {
    console.log(
      `scifact: skipped (${scifactDir} not found); generated corpora use a seeded synthetic vocabulary`,
    );
    ({ docs: source, queries } = syntheticSource());
  }
  for (const n of SIZES) {
    const file = path.join(tmp, `passages-${n}.jsonl`);
    // Written in slices so the 500k-passage corpus is never one giant string.
    const passages = generatePassages(source, n, WORDS);
    const fd = fs.openSync(file, 'w');
    for (let i = 0; i < passages.length; i += 10_000)
      fs.writeSync(
        fd,
        `${passages
          .slice(i, i + 10_000)
          .map((p) => JSON.stringify({ _id: p.id, text: p.text }))
          .join('\n')}\n`,
      );
    fs.closeSync(fd);
    passages.length = 0;
    await benchCorpus(`${n.toLocaleString('en-US')} passages`, file, queries, undefined);
    fs.rmSync(file);
  }
  fs.rmSync(tmp, { recursive: true, force: true });

  const f = (x: number, d = 0): string =>
    x.toLocaleString('en-US', { maximumFractionDigits: d, minimumFractionDigits: d });
  console.log(
    '\n| corpus | search() q/s | p50 / p95 ms | BM25 index q/s | p50 / p95 ms | plain Map BM25 q/s | p50 / p95 ms | search ÷ index | search ÷ plain | first search / with a typo ms | B/passage (BM25) | same top-10 as plain | nDCG@10 search / plain |',
  );
  console.log('|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|');
  for (const r of rows) {
    const a = r.timings.get('search')!;
    const b = r.timings.get('index')!;
    const c = r.timings.get('anchor')!;
    console.log(
      `| ${r.corpus} | ${f(a.qps)} | ${f(a.p50, 3)} / ${f(a.p95, 3)} | ${f(b.qps)} | ${f(b.p50, 3)} / ${f(b.p95, 3)} | ` +
        `${f(c.qps)} | ${f(c.p50, 3)} / ${f(c.p95, 3)} | ${f(b.qps / a.qps, 2)}× | ${f(c.qps / a.qps, 2)}× | ` +
        `${f(r.firstQueryMs)} / ${f(r.firstTypoMs)} | ${f(r.bytesPerPassage)} (${f(r.bm25BytesPerPassage)}) | ${f(r.sameTop10 * 100, 1)} % | ` +
        `${r.ndcg === undefined ? '' : `${f(r.ndcg.search, 4)} / ${f(r.ndcg.anchor, 4)}`} |`,
    );
  }
}

await main();

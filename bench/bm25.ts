/**
 * BM25 benchmark: Quarry's lexical search path against peer libraries in one run, on scifact and on a
 * generated corpus of N passages (default 100,000). Prints figures; it is not a test.
 *
 *   npx tsx bench/bm25.ts [--passages 100000] [--words 56] [--peers minisearch,orama,fts5] [--seconds 3]
 *
 * Single-threaded, top-10. Throughput = queries answered in a timed loop over the query set.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { create as createOrama, insertMultiple as oramaInsert, search as oramaSearch } from '@orama/orama';
import Database from 'better-sqlite3';
import MiniSearch from 'minisearch';
import { loadBeirDataset, readCorpus } from '../src/eval/beir.js';
import { evaluateRun, latencySummary, type Run } from '../src/eval/metrics.js';
import { Quarry } from '../src/pipeline/quarry.js';
import { createBm25Retriever } from '../src/retrieve/bm25-retriever.js';
import { type Doc, generatePassages } from './corpus.js';

const args = process.argv.slice(2);
const opt = (name: string, dflt: string): string => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 && args[i + 1] !== undefined ? args[i + 1]! : dflt;
};
const PASSAGES = Number(opt('passages', '100000'));
const PEERS = new Set(opt('peers', 'minisearch,orama,fts5').split(',').filter(Boolean));
const SECONDS = Number(opt('seconds', '3'));
/** Mean words per generated passage: MS MARCO's passage corpus averages about 56 words. */
const WORDS = Number(opt('words', '56'));
const datasets = path.resolve(import.meta.dirname, '../../shared/datasets');
const scifactDir = path.join(datasets, 'scifact');

type SearchFn = (q: string) => string[];

interface Row {
  corpus: string;
  engine: string;
  qps: number;
  p50: number;
  p99: number;
  ndcg?: number;
  note?: string;
}

const rows: Row[] = [];

function timeQueries(
  queries: string[],
  fn: SearchFn,
  seconds = SECONDS,
): { qps: number; p50: number; p99: number } {
  for (const q of queries.slice(0, 20)) fn(q); // warm-up
  const lat: number[] = [];
  const t0 = performance.now();
  let n = 0;
  while (performance.now() - t0 < seconds * 1000) {
    for (const q of queries) {
      const s = performance.now();
      fn(q);
      lat.push(performance.now() - s);
      n++;
    }
  }
  const elapsed = (performance.now() - t0) / 1000;
  const l = latencySummary(lat);
  return { qps: n / elapsed, p50: l.p50, p99: l.p99 };
}

function ndcgOf(
  fn: SearchFn,
  queries: Array<{ id: string; text: string }>,
  qrels: Map<string, Map<string, number>>,
): number {
  const run: Run = new Map();
  for (const q of queries)
    run.set(
      q.id,
      fn(q.text).map((docId, i) => ({ docId, score: 1000 - i })),
    );
  return evaluateRun(qrels, run, ['ndcg@10']).mean['ndcg@10']!;
}

function tmpDir(label: string): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), `quarry-bench-${label}-`));
}

/** Peers, each built over the same documents and asked the same queries. */
function peers(docs: Doc[], label: string): Array<{ name: string; search: SearchFn; buildMs: number }> {
  const out: Array<{ name: string; search: SearchFn; buildMs: number }> = [];
  if (PEERS.has('minisearch')) {
    const t = performance.now();
    const ms = new MiniSearch<Doc>({ fields: ['title', 'text'], idField: 'id' });
    ms.addAll(docs);
    out.push({
      name: 'MiniSearch 7.2 (defaults)',
      search: (q) =>
        ms
          .search(q)
          .slice(0, 10)
          .map((r) => String(r.id)),
      buildMs: performance.now() - t,
    });
  }
  if (PEERS.has('orama') && docs.length <= 20_000) {
    const t = performance.now();
    const db = createOrama({ schema: { id: 'string', title: 'string', text: 'string' } as const });
    // Orama's insert is async-capable; with no hooks it completes synchronously.
    void oramaInsert(db, docs);
    out.push({
      name: 'Orama 3.1 (defaults)',
      search: (q) => {
        const r = oramaSearch(db, { term: q, properties: ['title', 'text'], limit: 10 }) as {
          hits: Array<{ document: { id: string } }>;
        };
        return r.hits.map((h) => h.document.id);
      },
      buildMs: performance.now() - t,
    });
  }
  if (PEERS.has('fts5')) {
    const t = performance.now();
    const dir = tmpDir(`fts5-${label}`);
    const db = new Database(path.join(dir, 'fts.db'));
    db.exec("CREATE VIRTUAL TABLE docs USING fts5(id UNINDEXED, body, tokenize='porter')");
    const ins = db.prepare('INSERT INTO docs (id, body) VALUES (?, ?)');
    db.transaction(() => {
      for (const d of docs) ins.run(d.id, `${d.title} ${d.text}`);
    })();
    const stmt = db.prepare<[string], { id: string }>(
      'SELECT id FROM docs WHERE docs MATCH ? ORDER BY bm25(docs) LIMIT 10',
    );
    out.push({
      name: 'SQLite FTS5 bm25() (porter, OR query)',
      search: (q) => {
        const terms = q.toLowerCase().match(/[\p{L}\p{N}]+/gu) ?? [];
        if (terms.length === 0) return [];
        return stmt.all(terms.map((x) => `"${x}"`).join(' OR ')).map((r) => r.id);
      },
      buildMs: performance.now() - t,
    });
  }
  return out;
}

async function loadDocs(file: string): Promise<Doc[]> {
  const docs: Doc[] = [];
  for await (const d of readCorpus(file)) docs.push({ id: d.id, title: d.title, text: d.text });
  return docs;
}

async function benchQuarry(
  label: string,
  corpusFile: string,
  queries: Array<{ id: string; text: string }>,
  qrels?: Map<string, Map<string, number>>,
  chunkTokens?: number,
): Promise<void> {
  const dir = tmpDir(label);
  const quarry = Quarry.open({
    store: dir,
    config: {
      ingest: { batchSize: 1000 },
      ...(chunkTokens
        ? { chunking: { maxTokens: chunkTokens, overlapTokens: 0, parentMaxTokens: chunkTokens * 4 } }
        : {}),
    },
  });
  const report = await quarry.ingest([corpusFile]);
  const stats = quarry.stats();
  const secs = report.durationMs / 1000;
  console.log(
    `\n[${label}] ingest: ${report.added} documents, ${report.chunks} chunks in ${secs.toFixed(2)} s = ` +
      `${(report.added / secs).toFixed(0)} docs/s, ${(report.chunks / secs).toFixed(0)} chunks/s; ` +
      `store on disk ${(stats.bytesOnDisk / 1048576).toFixed(1)} MiB (${(stats.bytesOnDisk / Math.max(1, stats.chunks)).toFixed(0)} B/chunk); ` +
      `BM25 index in memory ${(stats.index.memoryBytes / 1048576).toFixed(1)} MiB (${(stats.index.memoryBytes / Math.max(1, stats.chunks)).toFixed(0)} B/chunk)`,
  );
  const retriever = createBm25Retriever(quarry.lexical);
  const texts = queries.map((q) => q.text);
  const core: SearchFn = (q) =>
    retriever.retrieve({ query: q, k: 10 }).candidates.map((c) => String(c.chunkId));
  const docIdOf = (q: string): string[] =>
    quarry.searchSync(q, { k: 10, collapseDocuments: true }).hits.map((h) => h.chunk.docId);
  const t1 = timeQueries(texts, core);
  const ndcg = qrels ? ndcgOf(docIdOf, queries, qrels) : undefined;
  rows.push({ corpus: label, engine: 'Quarry BM25 search path (analyze + index top-10)', ...t1, ndcg });
  const t2 = timeQueries(texts, (q) => quarry.searchSync(q, { k: 10 }).hits.map((h) => h.chunk.docId));
  rows.push({
    corpus: label,
    engine: 'Quarry searchSync (+ filter compile, hit load from SQLite)',
    ...t2,
    ndcg,
  });
  const t3 = timeQueries(texts, (q) =>
    quarry.searchSync(q, { k: 10, filter: { doc_type: 'record' } }).hits.map((h) => h.chunk.docId),
  );
  rows.push({ corpus: label, engine: 'Quarry searchSync with a metadata filter', ...t3 });
  quarry.close();
  fs.rmSync(dir, { recursive: true, force: true });
}

async function main(): Promise<void> {
  if (!fs.existsSync(scifactDir)) {
    console.log(`skipping: ${scifactDir} not found`);
    return;
  }
  console.log(
    `# BM25 benchmark  (node ${process.version}, ${os.cpus().length} cores, ${os.cpus()[0]?.model ?? ''})`,
  );
  console.log(`command: npx tsx bench/bm25.ts ${args.join(' ')}`.trim());
  const ds = await loadBeirDataset(scifactDir, 'test');
  const docs = await loadDocs(ds.corpusPath);

  await benchQuarry('scifact', ds.corpusPath, ds.queries, ds.qrels, 8192);
  for (const p of peers(docs, 'scifact')) {
    const t = timeQueries(
      ds.queries.map((q) => q.text),
      p.search,
    );
    rows.push({
      corpus: 'scifact',
      engine: p.name,
      ...t,
      ndcg: ndcgOf(p.search, ds.queries, ds.qrels),
      note: `build ${(p.buildMs / 1000).toFixed(1)} s`,
    });
  }

  if (PASSAGES > 0) {
    const passages = generatePassages(docs, PASSAGES, WORDS);
    const dir = tmpDir('gen');
    const file = path.join(dir, 'passages.jsonl');
    fs.writeFileSync(
      file,
      passages.map((p) => JSON.stringify({ _id: p.id, title: p.title, text: p.text })).join('\n'),
    );
    const label = `generated ${PASSAGES.toLocaleString('en-US')} passages (~${WORDS} words)`;
    await benchQuarry(label, file, ds.queries);
    for (const p of peers(passages, 'gen')) {
      // Peers are 10–1000× slower at this size: 60 queries, one timed pass, keeps the run bounded.
      const t = timeQueries(ds.queries.map((q) => q.text).slice(0, 60), p.search, 1);
      rows.push({ corpus: label, engine: p.name, ...t, note: `build ${(p.buildMs / 1000).toFixed(1)} s` });
    }
    fs.rmSync(dir, { recursive: true, force: true });
  }

  console.log('\n| corpus | engine | queries/s | p50 ms | p99 ms | nDCG@10 | note |');
  console.log('|---|---|---:|---:|---:|---:|---|');
  for (const r of rows) {
    console.log(
      `| ${r.corpus} | ${r.engine} | ${r.qps.toFixed(0)} | ${r.p50.toFixed(3)} | ${r.p99.toFixed(3)} | ${r.ndcg === undefined ? '' : r.ndcg.toFixed(4)} | ${r.note ?? ''} |`,
    );
  }
}

await main();

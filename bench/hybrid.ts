/**
 * Hybrid retrieval latency at scale: BM25 + dense (built-in embedder) + fusion on a generated corpus, through
 * the same search path users get. Prints build times and per-query p50/p95/p99. Not a test.
 *
 *   npx tsx bench/hybrid.ts [--passages 100000] [--ngram-weight 0.7] [--queries 300]
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { loadBeirDataset, readCorpus } from '../src/eval/beir.js';
import { latencySummary } from '../src/eval/metrics.js';
import { Quarry } from '../src/pipeline/quarry.js';
import { type Doc, generatePassages } from './corpus.js';

const args = process.argv.slice(2);
const opt = (name: string, dflt: string): string => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 && args[i + 1] !== undefined ? args[i + 1]! : dflt;
};
const PASSAGES = Number(opt('passages', '100000'));
const NGRAM = Number(opt('ngram-weight', '0.7'));
const QUERIES = Number(opt('queries', '300'));
const scifact = path.resolve(import.meta.dirname, '../../shared/datasets/scifact');

if (!fs.existsSync(scifact)) {
  console.log(`skipping: ${scifact} not found`);
  process.exit(0);
}
console.log(`# hybrid benchmark (node ${process.version}, ${os.cpus().length} cores)`);
console.log(`command: npx tsx bench/hybrid.ts ${args.join(' ')}`.trim());
const ds = await loadBeirDataset(scifact, 'test');
const source: Doc[] = [];
for await (const d of readCorpus(ds.corpusPath)) source.push({ id: d.id, title: d.title, text: d.text });
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'quarry-hybrid-bench-'));
const file = path.join(dir, 'passages.jsonl');
fs.writeFileSync(
  file,
  generatePassages(source, PASSAGES, 56)
    .map((p) => JSON.stringify({ _id: p.id, title: p.title, text: p.text }))
    .join('\n'),
);
const quarry = Quarry.open({
  store: path.join(dir, 'store'),
  config: { ingest: { batchSize: 1000 }, retrieval: { dense: { ngramWeight: NGRAM } } },
});
try {
  let t = performance.now();
  const report = await quarry.ingest([file]);
  console.log(
    `ingest: ${report.added} passages, ${report.chunks} chunks in ${((performance.now() - t) / 1000).toFixed(1)} s`,
  );
  t = performance.now();
  quarry.dense.ensure();
  console.log(
    `dense build (train embedder + embed + ${quarry.dense.kind} index): ${((performance.now() - t) / 1000).toFixed(1)} s; ` +
      `model ${quarry.dense.embedder?.id}; vector index ${(quarry.dense.memoryBytes() / quarry.dense.size).toFixed(0)} B/chunk`,
  );
  const queries = ds.queries.slice(0, QUERIES).map((q) => q.text);
  for (const q of queries.slice(0, 20)) quarry.searchSync(q, { k: 10, retriever: 'hybrid' });
  for (const retriever of ['bm25', 'dense', 'hybrid'] as const) {
    const lat: number[] = [];
    for (const q of queries) {
      const s = performance.now();
      quarry.searchSync(q, { k: 10, retriever });
      lat.push(performance.now() - s);
    }
    const l = latencySummary(lat);
    console.log(
      `| ${retriever} | ${queries.length} queries | p50 ${l.p50.toFixed(2)} ms | p95 ${l.p95.toFixed(2)} ms | p99 ${l.p99.toFixed(2)} ms |`,
    );
  }
} finally {
  quarry.close();
  fs.rmSync(dir, { recursive: true, force: true });
}

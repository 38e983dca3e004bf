/**
 * Cost of BM25 statistics over the documents a caller may read (`bm25.statistics: 'visible'`) against
 * store-wide ones (`'store'`), on scifact with a share of its documents restricted to one group. Prints
 * figures; it is not a test.
 *
 *   npx tsx bench/visible-statistics.ts [--restricted 0.2] [--seconds 3] [--writes 10]
 *
 * Through the public `search()` (BM25, top-10, one chunk per document, no result cache), single-threaded:
 * q/s for the owner (reads everything: the store-wide fast path) and for a principal the restricted
 * documents are hidden from, in each mode; the first search after a write (when the hidden set's view is
 * rebuilt) against the next one; and the owner's nDCG@10, which must not move.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { type Principal, TRUSTED_LOCAL, userPrincipal } from '../src/access/principal.js';
import { loadBeirDataset, readCorpus } from '../src/eval/beir.js';
import { evaluateRun, latencySummary, type Run } from '../src/eval/metrics.js';
import type { DocumentInput } from '../src/ingest/add-documents.js';
import { Quarry } from '../src/pipeline/quarry.js';

const args = process.argv.slice(2);
const opt = (name: string, dflt: string): string => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 && args[i + 1] !== undefined ? args[i + 1]! : dflt;
};
const RESTRICTED = Number(opt('restricted', '0.2'));
const SECONDS = Number(opt('seconds', '3'));
const WRITES = Number(opt('writes', '10'));
const scifactDir = path.resolve(import.meta.dirname, '../../shared/datasets/scifact');

if (!fs.existsSync(path.join(scifactDir, 'corpus.jsonl'))) {
  console.log(`scifact not found at ${scifactDir}: skipped`);
  process.exit(0);
}

const OUTSIDER = userPrincipal({ userId: 'olga', groups: ['staff'] });
const SEARCH = { retriever: 'bm25', k: 10, collapseDocuments: true, cache: false } as const;

async function timeQueries(
  q: Quarry,
  queries: string[],
  principal: Principal,
): Promise<{ qps: number; p50: number; p99: number }> {
  for (const text of queries.slice(0, 20)) await q.search(text, { ...SEARCH, principal }); // warm-up
  const lat: number[] = [];
  const t0 = performance.now();
  while (performance.now() - t0 < SECONDS * 1000) {
    for (const text of queries) {
      const s = performance.now();
      await q.search(text, { ...SEARCH, principal });
      lat.push(performance.now() - s);
    }
  }
  const l = latencySummary(lat);
  return { qps: lat.length / ((performance.now() - t0) / 1000), p50: l.p50, p99: l.p99 };
}

async function ndcg(
  q: Quarry,
  queries: Array<{ id: string; text: string }>,
  qrels: Map<string, Map<string, number>>,
  principal: Principal,
): Promise<number> {
  const run: Run = new Map();
  for (const query of queries) {
    const r = await q.search(query.text, { ...SEARCH, principal });
    run.set(
      query.id,
      r.hits.map((h, i) => ({ docId: h.document.id, score: 1000 - i })),
    );
  }
  return evaluateRun(qrels, run, ['ndcg@10']).mean['ndcg@10']!;
}

/** The first search after a write (the view of the hidden set is rebuilt) and the one after it, medians. */
async function afterWrite(
  q: Quarry,
  query: string,
  principal: Principal,
): Promise<{ first: number; next: number }> {
  const first: number[] = [];
  const next: number[] = [];
  for (let i = 0; i < WRITES; i++) {
    await q.addDocuments([{ id: `bench-write-${i}`, text: `Write number ${i} of the benchmark.` }]);
    let s = performance.now();
    await q.search(query, { ...SEARCH, principal });
    first.push(performance.now() - s);
    s = performance.now();
    await q.search(query, { ...SEARCH, principal });
    next.push(performance.now() - s);
  }
  q.deleteDocuments(Array.from({ length: WRITES }, (_, i) => `bench-write-${i}`));
  return { first: latencySummary(first).p50, next: latencySummary(next).p50 };
}

const data = await loadBeirDataset(scifactDir);
const qrels = data.qrels as Map<string, Map<string, number>>;
const docs: DocumentInput[] = [];
let i = 0;
for await (const d of readCorpus(data.corpusPath)) {
  // Every n-th document (deterministic, spread over the corpus) is restricted to the group "lab".
  const hidden = RESTRICTED > 0 && i++ % Math.round(1 / RESTRICTED) === 0;
  docs.push({
    id: d.id,
    title: d.title,
    text: d.text,
    ...(hidden ? { access: { groups: ['lab'] } } : {}),
  });
}
const hiddenCount = docs.filter((d) => d.access !== undefined).length;
const store = fs.mkdtempSync(path.join(os.tmpdir(), 'quarry-bench-visible-'));
const ingestStart = performance.now();
{
  const q = Quarry.open({ store, config: { ingest: { batchSize: 1000 } } });
  for (let at = 0; at < docs.length; at += 1000) await q.addDocuments(docs.slice(at, at + 1000));
  q.close();
}
const texts = data.queries.map((q) => q.text);
console.log(
  `scifact: ${docs.length} documents, ${hiddenCount} (${((100 * hiddenCount) / docs.length).toFixed(0)} %) ` +
    `restricted to one group; ${texts.length} queries; ingested in ${((performance.now() - ingestStart) / 1000).toFixed(1)} s; ` +
    `load: ${os
      .loadavg()
      .map((x) => x.toFixed(2))
      .join(' ')}`,
);

const rows: string[] = [];
const figures: Record<
  string,
  { owner: number; outsider: number; ndcg: number; write: { first: number; next: number } }
> = {};
for (const statistics of ['store', 'visible'] as const) {
  const q = Quarry.open({ store, config: { bm25: { statistics } } });
  const owner = await timeQueries(q, texts, TRUSTED_LOCAL);
  const outsider = await timeQueries(q, texts, OUTSIDER);
  const ownerNdcg = await ndcg(q, data.queries, qrels, TRUSTED_LOCAL);
  const outsiderNdcg = await ndcg(q, data.queries, qrels, OUTSIDER);
  const write = await afterWrite(q, texts[0]!, OUTSIDER);
  figures[statistics] = { owner: owner.qps, outsider: outsider.qps, ndcg: ownerNdcg, write };
  rows.push(
    `| ${statistics} | owner | ${owner.qps.toFixed(0)} | ${owner.p50.toFixed(2)} | ${owner.p99.toFixed(2)} | ${ownerNdcg.toFixed(4)} | |`,
    `| ${statistics} | principal without "lab" | ${outsider.qps.toFixed(0)} | ${outsider.p50.toFixed(2)} | ` +
      `${outsider.p99.toFixed(2)} | ${outsiderNdcg.toFixed(4)} | ${write.first.toFixed(2)} / ${write.next.toFixed(2)} |`,
  );
  q.close();
}
fs.rmSync(store, { recursive: true, force: true });

console.log(
  '\n| statistics | caller | q/s | p50 ms | p99 ms | nDCG@10 | search after a write: first / next ms (median) |',
);
console.log('|---|---|---|---|---|---|---|');
for (const r of rows) console.log(r);
const v = figures.visible!;
const s = figures.store!;
console.log(
  `\nowner nDCG@10 ${s.ndcg.toFixed(4)} (store) vs ${v.ndcg.toFixed(4)} (visible): ${s.ndcg === v.ndcg ? 'unchanged' : 'CHANGED'}; ` +
    `principal with hidden documents: ${((100 * v.outsider) / s.outsider).toFixed(0)} % of the store-mode q/s; ` +
    `load after: ${os
      .loadavg()
      .map((x) => x.toFixed(2))
      .join(' ')}`,
);

/**
 * Cost of BM25 statistics over the documents a caller may read (`bm25.statistics: 'visible'`) against
 * store-wide ones (`'store'`), on scifact with a share of its documents restricted to one group. Prints
 * figures; it is not a test.
 *
 *   npx tsx bench/visible-statistics.ts [--restricted 0.2] [--seconds 1] [--rounds 3] [--writes 10]
 *
 * Through the public `search()` (BM25, top-10, one chunk per document, no result cache), single-threaded:
 * q/s for the owner (reads everything: the store-wide fast path) and for a principal the restricted
 * documents are hidden from, in each mode; the first search after a write (when the hidden set's view is
 * rebuilt) against the next one; and the owner's nDCG@10, which must not move. The four (mode, caller) pairs
 * take turns in rounds, so load from other processes hits them alike.
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
const SECONDS = Number(opt('seconds', '1'));
const WRITES = Number(opt('writes', '10'));
const ROUNDS = Number(opt('rounds', '3'));
const scifactDir = path.resolve(import.meta.dirname, '../../shared/datasets/scifact');

if (!fs.existsSync(path.join(scifactDir, 'corpus.jsonl'))) {
  console.log(`scifact not found at ${scifactDir}: skipped`);
  process.exit(0);
}

const OUTSIDER = userPrincipal({ userId: 'olga', groups: ['staff'] });
const SEARCH = { retriever: 'bm25', k: 10, collapseDocuments: true, cache: false } as const;

/** Latencies of one turn of `seconds` over the query set, appended to `lat`. */
async function turn(q: Quarry, queries: string[], principal: Principal, lat: number[]): Promise<void> {
  const t0 = performance.now();
  while (performance.now() - t0 < SECONDS * 1000) {
    for (const text of queries) {
      const s = performance.now();
      await q.search(text, { ...SEARCH, principal });
      lat.push(performance.now() - s);
    }
  }
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

const MODES = ['store', 'visible'] as const;
const CALLERS = [
  ['owner', TRUSTED_LOCAL],
  ['principal without "lab"', OUTSIDER],
] as const;
const open = (statistics: 'store' | 'visible'): Quarry =>
  Quarry.open({ store, config: { bm25: { statistics } } });
const lat = new Map<string, number[]>();
const nd = new Map<string, number>();
{
  const instances = MODES.map(open);
  for (const [m, q] of instances.entries())
    for (const [name, who] of CALLERS) {
      for (const text of texts.slice(0, 20)) await q.search(text, { ...SEARCH, principal: who }); // warm-up
      nd.set(`${MODES[m]} ${name}`, await ndcg(q, data.queries, qrels, who));
    }
  for (let r = 0; r < ROUNDS; r++)
    for (const [m, q] of instances.entries())
      for (const [name, who] of CALLERS) {
        const key = `${MODES[m]} ${name}`;
        if (!lat.has(key)) lat.set(key, []);
        const t0 = performance.now();
        await turn(q, texts, who, lat.get(key)!);
        lat.set(`${key} ms`, [...(lat.get(`${key} ms`) ?? []), performance.now() - t0]);
      }
  for (const q of instances) q.close();
}
const writes = new Map<string, { first: number; next: number }>();
for (const mode of MODES) {
  const q = open(mode);
  writes.set(mode, await afterWrite(q, texts[0]!, OUTSIDER));
  q.close();
}
fs.rmSync(store, { recursive: true, force: true });

console.log(
  '\n| statistics | caller | q/s | p50 ms | p99 ms | nDCG@10 | search after a write: first / next ms (median) |',
);
console.log('|---|---|---:|---:|---:|---:|---:|');
const qps = new Map<string, number>();
for (const mode of MODES)
  for (const [name] of CALLERS) {
    const key = `${mode} ${name}`;
    const l = lat.get(key)!;
    const ms = lat.get(`${key} ms`)!.reduce((a, b) => a + b, 0);
    qps.set(key, l.length / (ms / 1000));
    const sum = latencySummary(l);
    const w =
      name === 'owner' ? '' : `${writes.get(mode)!.first.toFixed(2)} / ${writes.get(mode)!.next.toFixed(2)}`;
    console.log(
      `| ${mode} | ${name} | ${qps.get(key)!.toFixed(0)} | ${sum.p50.toFixed(3)} | ${sum.p99.toFixed(3)} | ` +
        `${nd.get(key)!.toFixed(4)} | ${w} |`,
    );
  }
const ownerStore = nd.get('store owner')!;
const ownerVisible = nd.get('visible owner')!;
console.log(
  `\nowner nDCG@10 ${ownerStore.toFixed(4)} (store) vs ${ownerVisible.toFixed(4)} (visible): ` +
    `${ownerStore === ownerVisible ? 'unchanged' : 'CHANGED'}; principal with hidden documents: ` +
    `${((100 * qps.get('visible principal without "lab"')!) / qps.get('store principal without "lab"')!).toFixed(0)} % ` +
    `of the store-mode q/s; load after: ${os
      .loadavg()
      .map((x) => x.toFixed(2))
      .join(' ')}`,
);

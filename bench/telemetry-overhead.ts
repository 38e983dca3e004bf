/**
 * Telemetry overhead: the public `quarry.search()` with telemetry off, with Prometheus metrics on, and with
 * metrics plus OpenTelemetry spans into the SDK's in-memory exporter (a SimpleSpanProcessor: every span is
 * exported synchronously, the most expensive setup). Modes take turns in rounds so load from other processes
 * hits them alike. On scifact when ../shared/datasets/scifact exists (its test queries), else on generated
 * passages. Prints figures; it is not a test.
 *
 *   npx tsx bench/telemetry-overhead.ts [--seconds 2] [--rounds 5] [--passages 5000] [--no-scifact]
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { loadBeirDataset } from '../src/eval/beir.js';
import { disableMetrics, enableMetrics } from '../src/observability/metrics.js';
import { configureTelemetry, shutdownTelemetry } from '../src/observability/tracing.js';
import { Quarry } from '../src/pipeline/quarry.js';
import { generatePassages } from './corpus.js';

const args = process.argv.slice(2);
const opt = (name: string, dflt: string): string => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 && args[i + 1] !== undefined ? args[i + 1]! : dflt;
};
const SECONDS = Number(opt('seconds', '2'));
const ROUNDS = Number(opt('rounds', '5'));
const PASSAGES = Number(opt('passages', '5000'));
const scifactDir = path.resolve(import.meta.dirname, '../../shared/datasets/scifact');
const useScifact = !args.includes('--no-scifact') && fs.existsSync(path.join(scifactDir, 'corpus.jsonl'));

type Mode = 'off' | 'metrics' | 'metrics+spans';
const MODES: Mode[] = ['off', 'metrics', 'metrics+spans'];
// A new exporter each round: shutting telemetry down shuts its exporter down for good.
let exporter = new InMemorySpanExporter();

async function setMode(mode: Mode): Promise<void> {
  await shutdownTelemetry();
  disableMetrics();
  exporter = new InMemorySpanExporter();
  if (mode !== 'off') enableMetrics();
  if (mode === 'metrics+spans')
    await configureTelemetry({ spanProcessor: new SimpleSpanProcessor(exporter) });
}

async function main(): Promise<void> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'quarry-bench-telemetry-'));
  const quarry = Quarry.open({
    store: dir,
    config: {
      ingest: { batchSize: 1000 },
      chunking: { maxTokens: 8192, overlapTokens: 0, parentMaxTokens: 32768 },
      // Every query runs the whole pipeline.
      cache: { responses: false, retrievals: false },
    },
  });
  let queries: string[];
  let corpus: string;
  if (useScifact) {
    const ds = await loadBeirDataset(scifactDir);
    queries = ds.queries.map((q) => q.text);
    await quarry.ingest([ds.corpusPath]);
    corpus = `scifact (${quarry.stats().chunks} passages, ${queries.length} queries)`;
  } else {
    const seed = [
      { id: 's', title: '', text: SEED_TEXT },
      { id: 't', title: '', text: SEED_TEXT.split(' ').reverse().join(' ') },
    ];
    const docs = generatePassages(seed, PASSAGES, 56);
    await quarry.addDocuments(docs.map((d) => ({ id: d.id, text: d.text })));
    queries = generatePassages(seed, 300, 6).map((d) => d.text);
    corpus = `generated passages (${quarry.stats().chunks} passages, ${queries.length} queries)`;
  }
  const opts = { k: 10, collapseDocuments: true } as const;
  for (const q of queries.slice(0, 50)) await quarry.search(q, opts); // warm-up (JIT, typo tables)

  const lat = new Map<Mode, number[]>(MODES.map((m) => [m, []]));
  const time = new Map<Mode, number>(MODES.map((m) => [m, 0]));
  let spans = 0;
  let i = 0;
  for (let round = 0; round < ROUNDS; round++) {
    for (const mode of MODES) {
      await setMode(mode);
      const l = lat.get(mode)!;
      const t0 = performance.now();
      while (performance.now() - t0 < SECONDS * 1000) {
        const s = performance.now();
        await quarry.search(queries[i++ % queries.length]!, opts);
        l.push(performance.now() - s);
      }
      time.set(mode, time.get(mode)! + performance.now() - t0);
      if (mode === 'metrics+spans') spans += exporter.getFinishedSpans().length;
    }
  }
  await setMode('off');
  quarry.close();
  fs.rmSync(dir, { recursive: true, force: true });

  const qps = (m: Mode) => (lat.get(m)!.length / time.get(m)!) * 1000;
  const base = qps('off');
  console.log(`command: npx tsx bench/telemetry-overhead.ts ${args.join(' ')}`.trim());
  console.log(
    `corpus: ${corpus}; ${ROUNDS} rounds × ${SECONDS} s per mode; load average ${os.loadavg()[0]!.toFixed(1)}`,
  );
  console.log('| mode | searches | q/s | p50 ms | p99 ms | throughput overhead vs off |');
  console.log('|---|---:|---:|---:|---:|---:|');
  for (const m of MODES) {
    const sorted = [...lat.get(m)!].sort((a, b) => a - b);
    const pct = (p: number) => sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))]!;
    const over = m === 'off' ? '—' : `${(((base - qps(m)) / base) * 100).toFixed(1)} %`;
    console.log(
      `| ${m} | ${sorted.length} | ${qps(m).toFixed(0)} | ${pct(0.5).toFixed(3)} | ${pct(0.99).toFixed(3)} | ${over} |`,
    );
  }
  const perSearch = spans / Math.max(1, lat.get('metrics+spans')!.length);
  console.log(`spans exported with spans on: ${spans} (${perSearch.toFixed(1)} per search)`);
}

// Enough distinct words for a generated corpus when scifact is absent.
const SEED_TEXT =
  `retrieval augmented generation indexes documents into chunks and ranks them with bm25 and dense
vectors before a reranker orders a wide pool of candidates the context window is packed with the best chunks and
the model writes an answer with citations that the validator checks against the sources every stage reports its
timings scores and token counts into the trace so a worse answer can be pinned on retrieval ranking or generation
caches keep embeddings retrieval results and responses keyed by the index version and the access scope of the
caller tenants are isolated keys carry scopes documents carry allowed groups and a security level ingest parses
markdown html pdf and json records splits them by headings and sentences embeds the chunks and writes them in
batches protein expression cells tumor growth receptor binding clinical trial patients therapy mutation gene
pathway inflammation vaccine antibody immune response dose risk cohort mortality infection virus bacteria`
    .split(/\s+/)
    .join(' ');

await main();

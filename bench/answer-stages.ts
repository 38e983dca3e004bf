/**
 * Per-stage latency of the LLM answer path on SQuAD (retrieve, rerank, assemble, generate, validate), with the
 * LLM replaced by a loopback server that speaks the OpenAI chat-completions SSE protocol and answers at once
 * (one grounded, cited sentence). The generate figure is therefore Quarry's own streaming overhead (HTTP,
 * SSE parsing, citation parsing), not a model's speed; the other stages are what they would be with any LLM.
 * Not a test.
 *
 *   npx tsx bench/answer-stages.ts [--questions 1000] [--reranker ltr|none] [--retriever bm25|hybrid]
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { STAGE_GROUPS } from '../src/eval/answers.js';
import { loadBeirDataset } from '../src/eval/beir.js';
import { latencySummary } from '../src/eval/metrics.js';
import { Quarry } from '../src/pipeline/quarry.js';
import { startFakeOpenAIChatServer } from '../test/generate/llm/fake-openai-chat-server.js';

const args = process.argv.slice(2);
const opt = (name: string, dflt: string): string => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 && args[i + 1] !== undefined ? args[i + 1]! : dflt;
};
const QUESTIONS = Number(opt('questions', '1000'));
const RERANKER = opt('reranker', 'ltr') as 'ltr' | 'none';
const RETRIEVER = opt('retriever', 'bm25') as 'bm25' | 'hybrid';
const squad = path.resolve(import.meta.dirname, '../../shared/datasets/squad-v1.1-dev');
if (!fs.existsSync(squad)) {
  console.log(`skipping: ${squad} not found`);
  process.exit(0);
}
console.log(`# answer-stage latency (node ${process.version}, ${os.cpus().length} cores)`);
console.log(`command: npx tsx bench/answer-stages.ts ${args.join(' ')}`.trim());

const ds = await loadBeirDataset(squad, 'test');
const server = await startFakeOpenAIChatServer();
// A faithful, instant model: the first sentence of source [1], cited.
server.respond = (body) => {
  const user = (body.messages as Array<{ role: string; content: string }>).find(
    (m) => m.role === 'user',
  )!.content;
  const first = /\[1\][^\n]*\n([^\n]+)/.exec(user)?.[1] ?? '';
  const sentence = (first.split(/(?<=[.!?])\s/)[0] ?? first).replace(/[.!?]$/, '');
  return sentence.length > 0
    ? { kind: 'reply', deltas: `${sentence} [1].`.split(/(?<= )/), usage: { input: 800, output: 40 } }
    : { kind: 'reply', deltas: ["I don't have enough information."] };
};
const store = fs.mkdtempSync(path.join(os.tmpdir(), 'quarry-answer-bench-'));
const q = Quarry.open({
  store,
  config: {
    chunking: { maxTokens: 8192, overlapTokens: 0, parentMaxTokens: 32768 },
    ingest: { batchSize: 512 },
    rerank: { reranker: RERANKER },
    cache: { responses: false, retrievals: false },
    llm: {
      provider: 'openai',
      baseURL: server.url,
      model: 'gpt-4o-mini',
      maxTokens: 256,
      contextWindow: 4096,
    },
  },
});
const t0 = performance.now();
await q.ingest([ds.corpusPath]);
console.log(
  `ingested ${q.stats().documents} paragraphs in ${((performance.now() - t0) / 1000).toFixed(1)} s`,
);

const groups: Record<string, string[]> = STAGE_GROUPS;
const times = new Map(Object.keys(groups).map((g) => [g, [] as number[]]));
const total: number[] = [];
let supported = 0;
let fallbacks = 0;
const questions = ds.queries.slice(0, QUESTIONS);
// Warm-up: builds the dense index and fills caches, so figures are steady-state.
await q.ask(questions[0]!.text, { retriever: RETRIEVER });
for (const question of questions) {
  const a0 = performance.now();
  const a = await q.ask(question.text, { retriever: RETRIEVER, trace: true });
  total.push(performance.now() - a0);
  if (a.fallback) fallbacks++;
  if ((a.validation?.supported ?? 0) > 0) supported++;
  for (const [g, names] of Object.entries(groups))
    times
      .get(g)!
      .push(a.trace!.stages.filter((s) => names.includes(s.stage)).reduce((x, s) => x + s.durationMs, 0));
}
console.log(
  `questions ${questions.length}, retriever ${RETRIEVER}, reranker ${RERANKER}, fallbacks ${fallbacks}, answers with a supported sentence ${supported}`,
);
console.log('stage       p50 ms   p95 ms');
for (const [g, t] of times) {
  const s = latencySummary(t);
  console.log(`${g.padEnd(10)} ${s.p50.toFixed(3).padStart(7)} ${s.p95.toFixed(3).padStart(8)}`);
}
const s = latencySummary(total);
console.log(`${'total'.padEnd(10)} ${s.p50.toFixed(3).padStart(7)} ${s.p95.toFixed(3).padStart(8)}`);
q.close();
await server.close();
fs.rmSync(store, { recursive: true, force: true });

/**
 * Streaming asks under load: scifact ingested, `quarry serve` (the built CLI) in its own process with an
 * OpenAI-compatible LLM, and that LLM a stand-in in a third process (bench/fixtures/standin-llm.mjs: a fixed
 * time to first token, then a fixed answer at a fixed rate). N streaming `POST /v1/ask` connections are
 * opened at once on loopback and each is held to completion. Reports completed/errors, client-side time to
 * the first `delta` event and to the end of the stream (p50/p99), peak RSS of the server and the stand-in,
 * and wall time. Bounded: a hard timeout kills both children and exits non-zero.
 *
 *   node scripts/build.mjs && npx tsx bench/server-streams.ts [--connections 2000] [--tokens 20] \
 *     [--gap-ms 50] [--ttft-ms 1000] [--timeout-s 180] [--dataset ../shared/datasets/scifact]
 */
import { execSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Agent, request } from 'undici';
import { Quarry } from '../src/pipeline/quarry.js';
import { boundedRun, memoryOf, pct, startChild, stopChildren } from './fixtures/processes.js';

const arg = (name: string, def: string) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1]! : def;
};
const connections = Number(arg('connections', '2000'));
const tokens = Number(arg('tokens', '20'));
const gapMs = Number(arg('gap-ms', '50'));
const ttftMs = Number(arg('ttft-ms', '1000'));
const timeoutS = Number(arg('timeout-s', '180'));
/** Write a V8 CPU profile of the server process into this folder (open it in Chrome DevTools). */
const cpuProf = arg('cpu-prof', '');
const dataset = path.resolve(arg('dataset', path.join(import.meta.dirname, '../../shared/datasets/scifact')));
if (!fs.existsSync(path.join(dataset, 'corpus.jsonl'))) {
  console.log(`no dataset at ${dataset}; skipping`);
  process.exit(0);
}
const { store, cleanup } = boundedRun('quarry-streams-', timeoutS);

// The load generator itself needs a descriptor per connection, as do the server (client + upstream
// sockets) and the stand-in: a soft limit below that would fail connections with EMFILE, not Quarry.
const nofile = Number(execSync('ulimit -n', { shell: '/bin/bash' }).toString().trim());
if (Number.isFinite(nofile) && nofile < connections * 2 + 256) {
  console.error(`ulimit -n is ${nofile}; ${connections} streams need about ${connections * 2 + 256}`);
  process.exit(1);
}

const t0 = performance.now();
const q = Quarry.open({ store });
await q.ingest([path.join(dataset, 'corpus.jsonl')]);
q.close();
console.log(`ingested ${path.basename(dataset)} in ${((performance.now() - t0) / 1000).toFixed(1)} s`);

// Distinct questions: every scifact claim (test and train), then rephrasings of them when N is larger.
const claims = ['queries.jsonl', 'queries.train.jsonl']
  .filter((f) => fs.existsSync(path.join(dataset, f)))
  .flatMap((f) =>
    fs
      .readFileSync(path.join(dataset, f), 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((l) => (JSON.parse(l) as { text: string }).text),
  );
const forms = [
  (c: string) => c,
  (c: string) => `Is it true that ${c}`,
  (c: string) => `What is the evidence that ${c}`,
];
const questions = Array.from({ length: connections }, (_, i) => {
  const form = forms[Math.floor(i / claims.length) % forms.length]!;
  return `${form(claims[i % claims.length]!)}${i >= claims.length * forms.length ? ` (${i})` : ''}`;
});

const standin = await startChild(
  [
    'bench/fixtures/standin-llm.mjs',
    '--ttft-ms',
    String(ttftMs),
    '--tokens',
    String(tokens),
    '--gap-ms',
    String(gapMs),
  ],
  'stdout',
);
const pipelineFile = path.join(store, 'pipeline.json');
fs.writeFileSync(
  pipelineFile,
  JSON.stringify({
    llm: { provider: 'openai', baseURL: `${standin.url}/v1`, model: 'standin', maxRetries: 0 },
  }),
);
const serverLog: string[] = [];
const server = await startChild(
  [
    ...(cpuProf ? ['--cpu-prof', `--cpu-prof-dir=${path.resolve(cpuProf)}`] : []),
    'bin/quarry.js',
    'serve',
    '--store',
    store,
    '--port',
    '0',
    '--config',
    pipelineFile,
    '--rate-limit',
    '100000000',
  ],
  'stderr',
  { QUARRY_LOG_LEVEL: 'error' },
);
server.child.stdout!.on('data', (d: Buffer) => {
  if (serverLog.length < 20) serverLog.push(d.toString().slice(0, 500));
});
let serverExit: string | undefined;
server.child.on('exit', (code, sig) => {
  serverExit = `server exited (${code ?? sig}) during the run`;
});

const peak = { server: 0, standin: 0, serverHwm: 0, standinHwm: 0 };
const sampler = setInterval(() => {
  try {
    const a = memoryOf(server.child.pid!);
    const b = memoryOf(standin.child.pid!);
    peak.server = Math.max(peak.server, a.rss);
    peak.standin = Math.max(peak.standin, b.rss);
    peak.serverHwm = a.hwm;
    peak.standinHwm = b.hwm;
  } catch {
    // a process that just exited: reported below
  }
}, 100);
const idle = memoryOf(server.child.pid!);

// One socket per stream: no per-origin cap, no pipelining, and no client-side timeouts (the hard stop bounds us).
const agent = new Agent({
  connections: connections + 16,
  pipelining: 1,
  headersTimeout: 0,
  bodyTimeout: 0,
  connect: { timeout: 60_000 },
});

interface Outcome {
  ok: boolean;
  why?: string;
  ttftMs?: number;
  totalMs: number;
}

async function oneStream(question: string): Promise<Outcome> {
  const start = performance.now();
  try {
    const res = await request(`${server.url}/v1/ask`, {
      method: 'POST',
      dispatcher: agent,
      headers: { 'content-type': 'application/json', accept: 'text/event-stream' },
      body: JSON.stringify({ question, stream: true, cache: false }),
    });
    if (res.statusCode !== 200) {
      const text = await res.body.text();
      return {
        ok: false,
        why: `HTTP ${res.statusCode}: ${text.slice(0, 200)}`,
        totalMs: performance.now() - start,
      };
    }
    let buf = '';
    let ttft: number | undefined;
    const seen = new Set<string>();
    let error: string | undefined;
    res.body.setEncoding('utf8');
    for await (const chunk of res.body as AsyncIterable<string>) {
      buf += chunk;
      let i = buf.indexOf('\n\n');
      while (i >= 0) {
        const frame = buf.slice(0, i);
        buf = buf.slice(i + 2);
        const event = /^event: (.+)$/m.exec(frame)?.[1];
        if (event !== undefined) {
          seen.add(event);
          if (event === 'delta' && ttft === undefined) ttft = performance.now() - start;
          if (event === 'error') error ??= /^data: (.*)$/m.exec(frame)?.[1]?.slice(0, 300);
        }
        i = buf.indexOf('\n\n');
      }
    }
    const totalMs = performance.now() - start;
    if (error !== undefined) return { ok: false, why: `error event: ${error}`, totalMs };
    if (!seen.has('answer') || !seen.has('done'))
      return { ok: false, why: `stream ended without answer+done (saw ${[...seen].join(',')})`, totalMs };
    if (ttft === undefined) return { ok: false, why: 'no delta event', totalMs };
    return { ok: true, ttftMs: ttft, totalMs };
  } catch (e) {
    const cause = (e as { cause?: { code?: string } }).cause?.code ?? (e as { code?: string }).code;
    return { ok: false, why: `client: ${cause ?? (e as Error).message}`, totalMs: performance.now() - start };
  }
}

/** The kernel's count of handshakes dropped because an accept queue was full (all listeners on the host). */
function listenOverflows(): number {
  const lines = fs
    .readFileSync('/proc/net/netstat', 'utf8')
    .split('\n')
    .filter((l) => l.startsWith('TcpExt:'));
  const keys = lines[0]?.split(/\s+/) ?? [];
  const values = lines[1]?.split(/\s+/) ?? [];
  return Number(values[keys.indexOf('ListenOverflows')] ?? 0);
}
const overflows0 = listenOverflows();
const load = os.loadavg();
console.log(
  `${connections} streams against ${server.url}, stand-in ${standin.url}: ${ttftMs} ms to first token, ` +
    `${tokens} tokens every ${gapMs} ms (load average ${load.map((l) => l.toFixed(2)).join(' ')})`,
);
const wall0 = performance.now();
const outcomes = await Promise.all(questions.map((qn) => oneStream(qn)));
const wallMs = performance.now() - wall0;
clearInterval(sampler);
const upstream = (await (await fetch(`${standin.url}/stats`)).json()) as {
  requests: number;
  maxInFlight: number;
  completed: number;
  aborted: number;
};
peak.serverHwm = Math.max(peak.serverHwm, memoryOf(server.child.pid!).hwm);
peak.standinHwm = Math.max(peak.standinHwm, memoryOf(standin.child.pid!).hwm);

const good = outcomes.filter((o) => o.ok);
const bad = outcomes.filter((o) => !o.ok);
const ttfts = good.map((o) => o.ttftMs!);
const totals = good.map((o) => o.totalMs);
const mib = (kb: number) => (kb / 1024).toFixed(0);
const sec = (ms: number) => (ms / 1000).toFixed(2);

console.log(
  '\n| streams | completed | errors | TTFT p50 s | TTFT p99 s | total p50 s | total p99 s | max s | server peak RSS MiB | stand-in peak RSS MiB | upstream max in flight | wall s |',
);
console.log('|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|');
console.log(
  `| ${connections} | ${good.length} | ${bad.length} | ${sec(pct(ttfts, 50))} | ${sec(pct(ttfts, 99))} | ${sec(pct(totals, 50))} | ${sec(pct(totals, 99))} | ${sec(Math.max(...totals))} | ${mib(peak.serverHwm)} (idle ${mib(idle.rss)}) | ${mib(peak.standinHwm)} | ${upstream.maxInFlight} | ${sec(wallMs)} |`,
);
console.log(
  `\nsampled VmRSS peaks: server ${mib(peak.server)} MiB, stand-in ${mib(peak.standin)} MiB; ` +
    `upstream requests ${upstream.requests} (completed ${upstream.completed}, aborted ${upstream.aborted}); ` +
    `floor per stream ${sec(ttftMs + (tokens - 1) * gapMs)} s; ` +
    `accept-queue overflows on this host during the run: ${listenOverflows() - overflows0}`,
);
if (bad.length > 0) {
  const why = new Map<string, number>();
  for (const o of bad) why.set(o.why!, (why.get(o.why!) ?? 0) + 1);
  console.log('\nerrors by cause:');
  for (const [w, n] of [...why].sort((a, b) => b[1] - a[1]).slice(0, 10)) console.log(`  ${n} × ${w}`);
}
if (serverExit) console.log(serverExit);
if (serverLog.length > 0) console.log(`server log (first lines):\n${serverLog.join('')}`);
console.log(
  `\nnpx tsx bench/server-streams.ts --connections ${connections} --tokens ${tokens} --gap-ms ${gapMs} --ttft-ms ${ttftMs}`,
);
await agent.close();
await stopChildren();
cleanup();
process.exit(bad.length > 0 || serverExit ? 1 : 0);

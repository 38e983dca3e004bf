/**
 * Soak and overload: `quarry serve` (the built CLI) in its own process over scifact, with an OpenAI-compatible
 * LLM that is a stand-in in a third process (bench/fixtures/standin-llm.mjs). For `--minutes` it receives a
 * steady open-loop mix on loopback — searches, streamed asks, document upserts (new nfcorpus documents,
 * updates of earlier ones) and deletes — then a burst of `--burst` requests at once, far past capacity, while
 * the steady mix goes on, then `--recover-s` more of the steady mix. Every `--window-s` it reports requests,
 * errors, shed requests (503/429) and p50/p99 latency per kind; every second the server's RSS. At the end every
 * acknowledged upsert must be readable (nothing lost) and every acknowledged delete gone. Writes the series to
 * `<out>.json` and a chart to `<out>.svg`.
 *
 *   node scripts/build.mjs && npx tsx bench/soak.ts [--minutes 10] [--search-rate 20] [--ask-rate 4] \
 *     [--ingest-rate 2] [--burst 2000] [--window-s 10] [--recover-s 60] [--max-in-flight 64] \
 *     [--max-event-loop-delay 200] [--out docs/reliability/soak]
 *
 * Bounded: a hard timeout kills the children and exits non-zero. Loopback only.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Agent, request } from 'undici';
import { Quarry } from '../src/pipeline/quarry.js';
import { boundedRun, memoryOf, pct, repo, startChild, stopChildren } from './fixtures/processes.js';

const arg = (name: string, def: string) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1]! : def;
};
const minutes = Number(arg('minutes', '10'));
const searchRate = Number(arg('search-rate', '20'));
const askRate = Number(arg('ask-rate', '4'));
const ingestRate = Number(arg('ingest-rate', '2'));
const burstSize = Number(arg('burst', '2000'));
const windowS = Number(arg('window-s', '10'));
const recoverS = Number(arg('recover-s', '60'));
const maxInFlight = arg('max-in-flight', '64');
const maxLag = arg('max-event-loop-delay', '200');
const out = path.resolve(repo, arg('out', 'docs/reliability/soak'));
const datasets = path.resolve(arg('datasets', path.join(repo, '../shared/datasets')));
const scifact = path.join(datasets, 'scifact');
const nfcorpus = path.join(datasets, 'nfcorpus');
for (const d of [scifact, nfcorpus])
  if (!fs.existsSync(path.join(d, 'corpus.jsonl'))) {
    console.log(`no dataset at ${d}; skipping`);
    process.exit(0);
  }
const totalS = minutes * 60 + recoverS;
const { store, cleanup } = boundedRun('quarry-soak-', totalS + 300);

const readJsonl = (file: string) =>
  fs
    .readFileSync(file, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as { _id: string; title?: string; text: string });

const t0 = performance.now();
const q = Quarry.open({ store });
await q.ingest([path.join(scifact, 'corpus.jsonl')]);
q.close();
console.log(`ingested scifact in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
const queries = readJsonl(path.join(scifact, 'queries.jsonl')).map((r) => r.text);
const newDocs = readJsonl(path.join(nfcorpus, 'corpus.jsonl'));

const standin = await startChild(
  ['bench/fixtures/standin-llm.mjs', '--ttft-ms', '200', '--tokens', '20', '--gap-ms', '20'],
  'stdout',
);
const pipelineFile = path.join(store, 'pipeline.json');
fs.writeFileSync(
  pipelineFile,
  JSON.stringify({
    llm: { provider: 'openai', baseURL: `${standin.url}/v1`, model: 'standin', maxRetries: 0 },
  }),
);
const server = await startChild(
  [
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
    '--max-in-flight',
    maxInFlight,
    '--max-event-loop-delay',
    maxLag,
  ],
  'stderr',
  { QUARRY_LOG_LEVEL: 'error' },
);
let serverExit: string | undefined;
server.child.on('exit', (code, sig) => {
  serverExit = `server exited (${code ?? sig}) during the run`;
});

type Kind = 'search' | 'ask' | 'ingest' | 'delete';
type Outcome = 'ok' | 'shed' | 'error';
interface Sample {
  kind: Kind;
  /** Seconds since the soak started. */
  at: number;
  ms: number;
  outcome: Outcome;
  why?: string;
  burst?: boolean;
}
const samples: Sample[] = [];
const rss: Array<{ at: number; mib: number }> = [];
/** V8 heap in use, read from the server's own /metrics: live data (and garbage not yet collected), not pages. */
const heap: Array<{ at: number; mib: number }> = [];
const agent = new Agent({ connections: burstSize + 512, pipelining: 1, headersTimeout: 0, bodyTimeout: 0 });
const json = { 'content-type': 'application/json' };
let start = 0;
const now = () => (performance.now() - start) / 1000;

async function timed(kind: Kind, burst: boolean, run: () => Promise<{ status: number; why?: string }>) {
  const at = now();
  const t = performance.now();
  let outcome: Outcome;
  let why: string | undefined;
  try {
    const r = await run();
    outcome =
      r.status === 200
        ? r.why === undefined
          ? 'ok'
          : 'error'
        : r.status === 503 || r.status === 429
          ? 'shed'
          : 'error';
    why = r.why ?? (r.status === 200 ? undefined : `HTTP ${r.status}`);
  } catch (e) {
    outcome = 'error';
    why = `client: ${(e as { code?: string }).code ?? (e as Error).message}`;
  }
  samples.push({
    kind,
    at,
    ms: performance.now() - t,
    outcome,
    ...(why ? { why } : {}),
    ...(burst ? { burst } : {}),
  });
  return outcome;
}

let qi = 0;
const search = (burst = false) =>
  timed('search', burst, async () => {
    const res = await request(`${server.url}/v1/search`, {
      method: 'POST',
      dispatcher: agent,
      headers: json,
      body: JSON.stringify({ query: queries[qi++ % queries.length], k: 10, cache: false }),
    });
    const body = (await res.body.json()) as { hits?: unknown[]; error?: { code: string } };
    if (res.statusCode === 200 && !Array.isArray(body.hits)) return { status: 200, why: 'no hits array' };
    return { status: res.statusCode, ...(body.error ? { why: body.error.code } : {}) };
  });

const ask = (burst = false) =>
  timed('ask', burst, async () => {
    const res = await request(`${server.url}/v1/ask`, {
      method: 'POST',
      dispatcher: agent,
      headers: { ...json, accept: 'text/event-stream' },
      body: JSON.stringify({ question: queries[qi++ % queries.length], stream: true, cache: false }),
    });
    if (res.statusCode !== 200) {
      const body = (await res.body.json()) as { error?: { code: string } };
      return { status: res.statusCode, why: body.error?.code ?? `HTTP ${res.statusCode}` };
    }
    const text = await res.body.text();
    if (/^event: error$/m.test(text))
      return {
        status: 200,
        why: `error event ${/^data: (.*)$/m.exec(text.slice(text.indexOf('event: error')))?.[1]?.slice(0, 120)}`,
      };
    if (!/^event: answer$/m.test(text) || !/^event: done$/m.test(text))
      return { status: 200, why: 'stream without answer+done' };
    return { status: 200 };
  });

/** Acknowledged writes, checked at the end: upserted ids must be readable with their last text, deleted ones gone. */
const live = new Map<string, string>();
const deleted = new Set<string>();
let di = 0;
let ingests = 0;
const ingest = () => {
  ingests++;
  // Every 5th write updates an earlier document, every 10th deletes one; the rest add new ones.
  const ids = [...live.keys()];
  if (ingests % 10 === 0 && ids.length > 0) {
    const id = ids[ingests % ids.length]!;
    return timed('delete', false, async () => {
      const res = await request(`${server.url}/v1/documents/${encodeURIComponent(id)}`, {
        method: 'DELETE',
        dispatcher: agent,
      });
      await res.body.dump();
      if (res.statusCode === 200) {
        live.delete(id);
        deleted.add(id);
      }
      return { status: res.statusCode };
    });
  }
  const update = ingests % 5 === 0 && ids.length > 0;
  const doc = update ? { _id: ids[ingests % ids.length]!, text: '' } : newDocs[di++ % newDocs.length]!;
  const id = update ? doc._id : `nf-${doc._id}`;
  const text = update ? `${live.get(id)} Revised at ${ingests}.` : doc.text;
  return timed('ingest', false, async () => {
    const res = await request(`${server.url}/v1/documents`, {
      method: 'POST',
      dispatcher: agent,
      headers: json,
      body: JSON.stringify({ documents: [{ id, text, ...(doc.title ? { title: doc.title } : {}) }] }),
    });
    const body = (await res.body.json()) as { error?: { code: string } };
    if (res.statusCode === 200) {
      live.set(id, text);
      deleted.delete(id);
    }
    return { status: res.statusCode, ...(body.error ? { why: body.error.code } : {}) };
  });
};

const inflight = new Set<Promise<unknown>>();
const fire = (p: Promise<unknown>) => {
  inflight.add(p);
  p.finally(() => inflight.delete(p));
};
const every = (rate: number, fn: () => Promise<unknown>) =>
  rate > 0 ? setInterval(() => fire(fn()), 1000 / rate) : undefined;

console.log(
  `soak: ${minutes} min at ${searchRate} searches/s, ${askRate} streamed asks/s, ${ingestRate} writes/s; then a burst of ${burstSize}; then ${recoverS} s ` +
    `(server --max-in-flight ${maxInFlight} --max-event-loop-delay ${maxLag}; load average ${os
      .loadavg()
      .map((l) => l.toFixed(2))
      .join(' ')})`,
);
start = performance.now();
const timers = [every(searchRate, search), every(askRate, ask), every(ingestRate, ingest)];
const sampler = setInterval(() => {
  try {
    rss.push({ at: now(), mib: memoryOf(server.child.pid!).rss / 1024 });
  } catch {
    // exited: reported below
  }
}, 1000);
const heapSampler = setInterval(async () => {
  try {
    const res = await request(`${server.url}/metrics`, { dispatcher: agent });
    const text = await res.body.text();
    const m = /^nodejs_heap_size_used_bytes(?:\{[^}]*\})? (\S+)$/m.exec(text);
    if (m) heap.push({ at: now(), mib: Number(m[1]) / 2 ** 20 });
  } catch {
    // the server is busy or gone: a gap in the series
  }
}, 5000);
let lastWindow = 0;
const progress = setInterval(() => {
  const w = samples.filter((s) => s.at >= lastWindow && s.at < lastWindow + windowS);
  const errs = w.filter((s) => s.outcome === 'error').length;
  const shed = w.filter((s) => s.outcome === 'shed').length;
  const p99 = pct(
    w.filter((s) => s.kind === 'search' && s.outcome === 'ok').map((s) => s.ms),
    99,
  );
  console.log(
    `  t=${lastWindow.toFixed(0)} s: ${w.length} requests, ${errs} errors, ${shed} shed, search p99 ${p99.toFixed(1)} ms, RSS ${rss.at(-1)?.mib.toFixed(0)} MiB`,
  );
  lastWindow += windowS;
}, windowS * 1000);

await new Promise((r) => setTimeout(r, minutes * 60_000));
const burstAt = now();
console.log(`burst of ${burstSize} at t=${burstAt.toFixed(0)} s`);
const burst = Promise.all(
  Array.from({ length: burstSize }, (_, i) => (i % 2 === 0 ? search(true) : ask(true))),
);
await new Promise((r) => setTimeout(r, recoverS * 1000));
for (const t of timers) clearInterval(t);
await burst;
await Promise.all(inflight);
clearInterval(sampler);
clearInterval(heapSampler);
clearInterval(progress);
const endAt = now();

const norm = (t: string) => t.replace(/\s+/g, ' ').trim();
// Nothing lost: every acknowledged write is there, every acknowledged delete is gone.
let lost = 0;
let stale = 0;
let resurrected = 0;
for (const [id, text] of live) {
  const res = await request(`${server.url}/v1/documents/${encodeURIComponent(id)}`, { dispatcher: agent });
  const body = (await res.body.json()) as { text?: string; document?: { text?: string } };
  if (res.statusCode !== 200) lost++;
  // Compared as ingest normalises text (whitespace), so a difference is a lost update, not formatting.
  else if (norm(body.document?.text ?? body.text ?? '') !== norm(text)) stale++;
}
for (const id of deleted) {
  const res = await request(`${server.url}/v1/documents/${encodeURIComponent(id)}`, { dispatcher: agent });
  await res.body.dump();
  if (res.statusCode !== 404) resurrected++;
}

// Windows: requests, errors, shed and latency per kind; RSS trend over the steady part after a 1-minute warm-up.
const kinds: Kind[] = ['search', 'ask', 'ingest', 'delete'];
const windows: Array<Record<string, number>> = [];
for (let w = 0; w < endAt; w += windowS) {
  const inW = samples.filter((s) => s.at >= w && s.at < w + windowS);
  const row: Record<string, number> = { at: w, requests: inW.length };
  row.errors = inW.filter((s) => s.outcome === 'error').length;
  row.shed = inW.filter((s) => s.outcome === 'shed').length;
  for (const k of kinds) {
    const ok = inW.filter((s) => s.kind === k && s.outcome === 'ok').map((s) => s.ms);
    row[`${k}_ok`] = ok.length;
    row[`${k}_p50_ms`] = Math.round(pct(ok, 50) * 10) / 10;
    row[`${k}_p99_ms`] = Math.round(pct(ok, 99) * 10) / 10;
  }
  row.rss_mib = Math.round(
    Math.max(...rss.filter((r) => r.at >= w && r.at < w + windowS).map((r) => r.mib), 0),
  );
  windows.push(row);
}
/** Least-squares slope in MiB per minute over the steady part, after a 1-minute warm-up. */
const slopeOf = (series: Array<{ at: number; mib: number }>) => {
  const steady = series.filter((r) => r.at >= 60 && r.at < burstAt);
  const n = steady.length;
  if (n < 2) return Number.NaN;
  const mx = steady.reduce((a, r) => a + r.at, 0) / n;
  const my = steady.reduce((a, r) => a + r.mib, 0) / n;
  const num = steady.reduce((a, r) => a + (r.at - mx) * (r.mib - my), 0);
  const den = steady.reduce((a, r) => a + (r.at - mx) ** 2, 0);
  return (num / den) * 60;
};
const slope = slopeOf(rss);
const soakPart = samples.filter((s) => !s.burst && s.at < burstAt);
const burstPart = samples.filter((s) => s.burst);
const afterBurst = samples.filter((s) => !s.burst && s.at >= burstAt);
const rate = (xs: Sample[], o: Outcome) =>
  xs.length === 0 ? 0 : xs.filter((s) => s.outcome === o).length / xs.length;
// Recovered: the first window after the burst whose steady requests all succeeded.
const recoveredAt = windows.find(
  (w) =>
    w.at! >= burstAt &&
    w.errors === 0 &&
    samples
      .filter((s) => !s.burst && s.at >= w.at! && s.at < w.at! + windowS)
      .every((s) => s.outcome === 'ok'),
)?.at;
const why = new Map<string, number>();
for (const s of samples)
  if (s.outcome !== 'ok' && s.why)
    why.set(`${s.kind} ${s.outcome}: ${s.why}`, (why.get(`${s.kind} ${s.outcome}: ${s.why}`) ?? 0) + 1);

const summary = {
  date: new Date().toISOString().slice(0, 10),
  command: `npx tsx bench/soak.ts --minutes ${minutes} --search-rate ${searchRate} --ask-rate ${askRate} --ingest-rate ${ingestRate} --burst ${burstSize} --max-in-flight ${maxInFlight} --max-event-loop-delay ${maxLag}`,
  soak: {
    seconds: Math.round(burstAt),
    requests: soakPart.length,
    errorRate: rate(soakPart, 'error'),
    shedRate: rate(soakPart, 'shed'),
    p99Ms: Object.fromEntries(
      kinds.map((k) => [
        k,
        Math.round(
          pct(
            soakPart.filter((s) => s.kind === k && s.outcome === 'ok').map((s) => s.ms),
            99,
          ) * 10,
        ) / 10,
      ]),
    ),
    rssFirstMinuteMiB: Math.round(Math.max(...rss.filter((r) => r.at >= 60 && r.at < 120).map((r) => r.mib))),
    rssLastMinuteMiB: Math.round(
      Math.max(...rss.filter((r) => r.at >= burstAt - 60 && r.at < burstAt).map((r) => r.mib)),
    ),
    rssSlopeMiBPerMinute: Math.round(slope * 100) / 100,
    heapSlopeMiBPerMinute: Math.round(slopeOf(heap) * 100) / 100,
    heapFirstMinuteMiB: Math.round(
      Math.max(...heap.filter((r) => r.at >= 60 && r.at < 120).map((r) => r.mib)),
    ),
    heapLastMinuteMiB: Math.round(
      Math.max(...heap.filter((r) => r.at >= burstAt - 60 && r.at < burstAt).map((r) => r.mib)),
    ),
    // Documents the soak added and kept: the data the index legitimately grew by.
    documentsAddedAndKept: live.size,
  },
  burst: {
    requests: burstPart.length,
    ok: burstPart.filter((s) => s.outcome === 'ok').length,
    shed: burstPart.filter((s) => s.outcome === 'shed').length,
    errors: burstPart.filter((s) => s.outcome === 'error').length,
    shedP99Ms: Math.round(
      pct(
        burstPart.filter((s) => s.outcome === 'shed').map((s) => s.ms),
        99,
      ),
    ),
    okP99Ms: Math.round(
      pct(
        burstPart.filter((s) => s.outcome === 'ok').map((s) => s.ms),
        99,
      ),
    ),
    peakRssMiB: Math.round(Math.max(...rss.filter((r) => r.at >= burstAt).map((r) => r.mib))),
  },
  recovery: {
    steadyRequestsAfterBurst: afterBurst.length,
    errors: afterBurst.filter((s) => s.outcome === 'error').length,
    shed: afterBurst.filter((s) => s.outcome === 'shed').length,
    firstCleanWindowAfterBurstS: recoveredAt === undefined ? null : Math.round(recoveredAt - burstAt),
  },
  writes: { acknowledgedLive: live.size, acknowledgedDeleted: deleted.size, lost, stale, resurrected },
  failures: Object.fromEntries([...why].sort((a, b) => b[1] - a[1]).slice(0, 12)),
  serverExit: serverExit ?? null,
};
fs.mkdirSync(path.dirname(out), { recursive: true });
const round = (xs: Array<{ at: number; mib: number }>) =>
  xs.map((r) => ({ at: Math.round(r.at), mib: Math.round(r.mib) }));
fs.writeFileSync(
  `${out}.json`,
  `${JSON.stringify({ summary, windows, rss: round(rss), heap: round(heap) }, null, 1)}\n`,
);
fs.writeFileSync(`${out}.svg`, chart(windows, rss, heap, burstAt, endAt, summary.command));
console.log(JSON.stringify(summary, null, 2));
console.log(`wrote ${path.relative(repo, out)}.json and .svg`);

await agent.close();
await stopChildren();
cleanup();
const failed = serverExit !== undefined || lost + stale + resurrected > 0 || summary.soak.errorRate > 0.001;
process.exit(failed ? 1 : 0);

/** Three panels over time: p99 latency per kind, server memory, errors and shed requests per window. */
function chart(
  ws: Array<Record<string, number>>,
  mem: Array<{ at: number; mib: number }>,
  heapUsed: Array<{ at: number; mib: number }>,
  burstS: number,
  endS: number,
  caption: string,
): string {
  const W = 960;
  const left = 70;
  const right = 20;
  const plotW = W - left - right;
  const x = (s: number) => left + (s / endS) * plotW;
  const panels: string[] = [];
  const panel = (
    top: number,
    h: number,
    title: string,
    yMax: number,
    unit: string,
    series: Array<{ name: string; color: string; pts: Array<[number, number]>; bars?: boolean }>,
  ) => {
    const y = (v: number) => top + h - (Math.min(v, yMax) / yMax) * h;
    const parts = [`<text x="${left}" y="${top - 8}" font-size="13" font-weight="bold">${title}</text>`];
    parts.push(`<rect x="${left}" y="${top}" width="${plotW}" height="${h}" fill="none" stroke="#999"/>`);
    for (let i = 0; i <= 4; i++) {
      const v = (yMax * i) / 4;
      parts.push(
        `<text x="${left - 6}" y="${y(v) + 4}" font-size="10" text-anchor="end">${v >= 100 ? v.toFixed(0) : v.toFixed(1)}</text>`,
      );
    }
    parts.push(
      `<text x="14" y="${top + h / 2}" font-size="10" transform="rotate(-90 14 ${top + h / 2})" text-anchor="middle">${unit}</text>`,
    );
    let lx = left + 10;
    for (const s of series) {
      if (s.bars)
        for (const [t, v] of s.pts)
          parts.push(
            `<rect x="${x(t)}" y="${y(v)}" width="${Math.max(1, (windowS / endS) * plotW - 1)}" height="${top + h - y(v)}" fill="${s.color}" opacity="0.7"/>`,
          );
      else
        parts.push(
          `<polyline fill="none" stroke="${s.color}" stroke-width="1.5" points="${s.pts
            .filter(([, v]) => Number.isFinite(v))
            .map(([t, v]) => `${x(t).toFixed(1)},${y(v).toFixed(1)}`)
            .join(' ')}"/>`,
        );
      parts.push(
        `<rect x="${lx}" y="${top + 6}" width="10" height="10" fill="${s.color}"/><text x="${lx + 14}" y="${top + 15}" font-size="11">${s.name}</text>`,
      );
      lx += 14 + s.name.length * 6.5 + 16;
    }
    parts.push(
      `<line x1="${x(burstS)}" y1="${top}" x2="${x(burstS)}" y2="${top + h}" stroke="#c00" stroke-dasharray="4 3"/>`,
    );
    panels.push(parts.join('\n'));
  };
  const lat = (k: Kind) => ws.map((w) => [w.at! + windowS / 2, w[`${k}_p99_ms`]!] as [number, number]);
  const maxLat =
    Math.max(
      50,
      ...ws
        .filter((w) => w.at! < burstS)
        .flatMap((w) => kinds.map((k) => w[`${k}_p99_ms`]!))
        .filter(Number.isFinite),
    ) * 1.3;
  panel(40, 170, 'p99 latency per window (ms; steady requests, burst window clipped)', maxLat, 'ms', [
    { name: 'search', color: '#1f77b4', pts: lat('search') },
    { name: 'ask (streamed, to the end)', color: '#ff7f0e', pts: lat('ask') },
    { name: 'upsert', color: '#2ca02c', pts: lat('ingest') },
    { name: 'delete', color: '#9467bd', pts: lat('delete') },
  ]);
  const maxMem = Math.max(...mem.map((r) => r.mib)) * 1.2;
  panel(250, 130, 'server memory (MiB): RSS every second, V8 heap used every 5 s', maxMem, 'MiB', [
    { name: 'RSS', color: '#444', pts: mem.map((r) => [r.at, r.mib]) },
    { name: 'heap used', color: '#17becf', pts: heapUsed.map((r) => [r.at, r.mib]) },
  ]);
  const maxBad = Math.max(1, ...ws.map((w) => w.shed! + w.errors!));
  panel(420, 130, 'errors and shed requests (503 OVERLOADED) per window', maxBad, 'requests', [
    { name: 'shed', color: '#e0a000', pts: ws.map((w) => [w.at!, w.shed!]), bars: true },
    { name: 'errors', color: '#d62728', pts: ws.map((w) => [w.at!, w.errors!]), bars: true },
  ]);
  const ticks = Array.from({ length: Math.floor(endS / 60) + 1 }, (_, i) => i * 60)
    .map((s) => `<text x="${x(s)}" y="568" font-size="10" text-anchor="middle">${s / 60}</text>`)
    .join('');
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="610" font-family="sans-serif">
<rect width="100%" height="100%" fill="#fff"/>
${panels.join('\n')}
${ticks}
<text x="${left + plotW / 2}" y="584" font-size="11" text-anchor="middle">minutes (red dashed line: the burst)</text>
<text x="${left}" y="602" font-size="10" fill="#555">${caption.replace(/&/g, '&amp;').replace(/</g, '&lt;')}</text>
</svg>
`;
}

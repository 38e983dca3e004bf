/**
 * Load on the HTTP API as users call it: scifact ingested, `quarry serve` (the built CLI) in its own process,
 * autocannon on loopback. Requests/s and p50/p99 of /v1/search and /v1/ask at 1, 16 and 64 connections, with
 * the response cache (queries repeat) and without it (`cache: false`). Bounded: `--seconds` per cell.
 *
 *   npx tsx bench/server-load.ts [--seconds 5] [--dataset ../shared/datasets/scifact]
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import autocannon from 'autocannon';
import { Quarry } from '../src/pipeline/quarry.js';

const arg = (name: string, def: string) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1]! : def;
};
const seconds = Number(arg('seconds', '5'));
const dataset = path.resolve(arg('dataset', path.join(import.meta.dirname, '../../shared/datasets/scifact')));
if (!fs.existsSync(path.join(dataset, 'corpus.jsonl'))) {
  console.log(`no dataset at ${dataset}; skipping`);
  process.exit(0);
}
const store = fs.mkdtempSync(path.join(os.tmpdir(), 'quarry-load-'));
const t0 = performance.now();
const q = Quarry.open({ store });
await q.ingest([path.join(dataset, 'corpus.jsonl')]);
q.close();
console.log(`ingested ${path.basename(dataset)} in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
const queries = fs
  .readFileSync(path.join(dataset, 'queries.jsonl'), 'utf8')
  .split('\n')
  .filter(Boolean)
  .map((l) => (JSON.parse(l) as { text: string }).text)
  .slice(0, 300);

const child = spawn(
  process.execPath,
  ['bin/quarry.js', 'serve', '--store', store, '--port', '0', '--rate-limit', '100000000'],
  {
    cwd: path.join(import.meta.dirname, '..'),
    env: { ...process.env, QUARRY_LOG_LEVEL: 'silent' },
  },
);
const url = await new Promise<string>((resolve, reject) => {
  let err = '';
  child.stderr.on('data', (d: Buffer) => {
    err += d.toString();
    const m = /listening on (http:\/\/[^ ]+)/.exec(err);
    if (m) resolve(m[1]!);
  });
  child.on('close', () => reject(new Error(err)));
});

async function cell(route: string, field: string, cache: boolean, connections: number) {
  let n = 0;
  const r = await autocannon({
    url: `${url}${route}`,
    connections,
    duration: seconds,
    requests: [
      {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        setupRequest: (req) => ({
          ...req,
          body: JSON.stringify({
            [field]: queries[n++ % queries.length],
            ...(cache ? {} : { cache: false }),
          }),
        }),
      },
    ],
  });
  return { rps: r.requests.average, p50: r.latency.p50, p99: r.latency.p99, errors: r.errors + r.non2xx };
}

console.log(`\n${url}, ${seconds} s per cell, ${queries.length} distinct queries rotating`);
console.log('| endpoint | cache | clients | req/s | p50 ms | p99 ms | errors |');
console.log('|---|---|---:|---:|---:|---:|---:|');
for (const [route, field] of [
  ['/v1/search', 'query'],
  ['/v1/ask', 'question'],
] as const)
  for (const cache of [false, true]) {
    // Warm the response cache for the cached cells (every query once).
    if (cache) await cell(route, field, true, 8);
    for (const c of [1, 16, 64]) {
      const r = await cell(route, field, cache, c);
      console.log(
        `| ${route} | ${cache ? 'on' : 'off'} | ${c} | ${r.rps.toFixed(0)} | ${r.p50} | ${r.p99} | ${r.errors} |`,
      );
    }
  }
child.kill('SIGTERM');
await new Promise((r) => child.on('close', r));
fs.rmSync(store, { recursive: true, force: true });

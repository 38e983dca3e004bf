/**
 * What each cache tier costs per repeated search: a miss (the whole pipeline), a hit in the in-process
 * layer, and a hit in Redis alone (in-process layer dropped before each search: another process computed
 * it). Justifies the in-process front of the Redis layer. Needs Redis on 127.0.0.1:6379. Not a test.
 *
 *   npx tsx bench/cache-tiers.ts [--docs 2000] [--k 10] [--repeat 2000]
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Quarry } from '../src/pipeline/quarry.js';

const args = process.argv.slice(2);
const opt = (name: string, dflt: number): number => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? Number(args[i + 1]) : dflt;
};
const docs = opt('docs', 2000);
const k = opt('k', 10);
const repeat = opt('repeat', 2000);
const words = ['comet', 'orbit', 'launch', 'cache', 'index', 'vector', 'token', 'budget', 'answer', 'source'];
const text = (i: number): string =>
  Array.from({ length: 60 }, (_, j) => words[(i * 7 + j * 3) % words.length]).join(' ') + ` doc${i}.`;

const store = fs.mkdtempSync(path.join(os.tmpdir(), 'quarry-cache-bench-'));
const prefix = `quarry-bench:${process.pid}:`;
const q = Quarry.open({
  store,
  config: { cache: { driver: 'redis', redis: { url: 'redis://127.0.0.1:6379', keyPrefix: prefix } } },
});
try {
  await q.addDocuments(Array.from({ length: docs }, (_, i) => ({ id: `d${i}`, text: text(i) })));
  const engine = (q as unknown as { engine: { caches: { dropLocal(): void } } }).engine;
  const time = async (label: string, before: () => void, query: (i: number) => string): Promise<void> => {
    const ms: number[] = [];
    for (let i = 0; i < repeat; i++) {
      before();
      const t0 = performance.now();
      const r = await q.search(query(i), { k });
      ms.push(performance.now() - t0);
      if (r.degraded.length > 0) throw new Error(`degraded: ${JSON.stringify(r.degraded)}`);
    }
    ms.sort((a, b) => a - b);
    const p = (x: number) => ms[Math.min(ms.length - 1, Math.floor(x * ms.length))]!.toFixed(3);
    console.log(`${label.padEnd(22)} p50 ${p(0.5)} ms  p99 ${p(0.99)} ms`);
  };
  console.log(`npx tsx bench/cache-tiers.ts --docs ${docs} --k ${k} --repeat ${repeat}`);
  await time(
    'miss (full pipeline)',
    () => {},
    (i) => `comet orbit ${i}`,
  );
  await q.search('comet launch budget', { k });
  await time(
    'hit, in-process layer',
    () => {},
    () => 'comet launch budget',
  );
  await time(
    'hit, Redis only',
    () => engine.caches.dropLocal(),
    () => 'comet launch budget',
  );
} finally {
  q.close();
  fs.rmSync(store, { recursive: true, force: true });
  const { Redis } = await import('ioredis');
  const r = new Redis('redis://127.0.0.1:6379');
  const keys = await r.keys(`${prefix}*`);
  if (keys.length > 0) await r.del(...keys);
  r.disconnect();
}

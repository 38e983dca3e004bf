/**
 * The Redis-backed cache layers across processes, against the real Redis on 127.0.0.1:6379: a second
 * process on the same store serves what the first computed, a write anywhere reaches every process at
 * once (pub/sub drops their in-process entries and reloads their index), two access scopes never share an
 * entry, embeddings are paid once across stores, and a Redis that is away only degrades requests.
 */
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { userPrincipal } from '../../src/access/principal.js';
import type { QuarryConfigInput } from '../../src/config/config.js';
import { Quarry, type SearchOptions } from '../../src/pipeline/quarry.js';
import { FakeOpenAIServer } from '../embed/providers/fake-openai-server.js';
import { TcpProxy } from '../fixtures/tcp-proxy.js';
import { Peer, REDIS_URL, redisKeys, uniquePrefix } from './peer.js';

const dirs: string[] = [];
const open: Quarry[] = [];
const peers: Peer[] = [];
const prefixes: string[] = [];
const servers: Array<{ close(): Promise<void> }> = [];

afterEach(async () => {
  for (const p of peers.splice(0)) await p.close();
  for (const q of open.splice(0)) q.close();
  for (const s of servers.splice(0)) await s.close();
  for (const prefix of prefixes.splice(0)) await redisKeys(prefix, true);
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

function tempDir(): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'quarry-shared-cache-'));
  dirs.push(d);
  return d;
}

function redisConfig(extra: QuarryConfigInput = {}): { config: QuarryConfigInput; prefix: string } {
  const prefix = uniquePrefix();
  prefixes.push(prefix);
  return {
    prefix,
    config: { ...extra, cache: { driver: 'redis', redis: { url: REDIS_URL, keyPrefix: prefix } } },
  };
}

function openQuarry(store: string, config: QuarryConfigInput): Quarry {
  const q = Quarry.open({ store, config });
  open.push(q);
  return q;
}

function peer(store: string, config: QuarryConfigInput): Peer {
  const p = new Peer(store, config);
  peers.push(p);
  return p;
}

const DOCS = [
  { id: 'comet', text: 'A zorblaxian comet is visible to everyone tonight.' },
  { id: 'launch', text: 'The zorblaxian launch plan moves to the northern site.' },
];

const ids = (r: { hits: Array<{ document: { id: string } }> }): string[] =>
  r.hits.map((h) => h.document.id).sort();

describe('Redis-backed caches across processes', () => {
  it('serves a search and an answer computed by one process to a second process on the same store', async () => {
    const store = tempDir();
    const { config } = redisConfig();
    const a = openQuarry(store, config);
    await a.addDocuments(DOCS);
    expect((await a.search('zorblaxian')).strategy).not.toBe('cache');
    const answer = await a.ask('zorblaxian comet');
    expect(answer.cached).toBeUndefined();

    const b = peer(store, config);
    expect(await b.send('ready')).toMatchObject({ driver: 'redis', ok: true });
    const searched = await b.send('search', { q: 'zorblaxian' });
    expect(searched).toMatchObject({ strategy: 'cache', ids: ['comet', 'launch'], degraded: [] });
    expect(searched.cache).toMatchObject({ layer: 'retrievals', hit: true, tier: 'redis' });
    const asked = await b.send('ask', { q: 'zorblaxian comet' });
    expect(asked).toMatchObject({ cached: true, text: answer.text });
    const { stats } = (await b.send('stats')) as unknown as { stats: Record<string, { hits: number }> };
    expect(stats.retrievals!.hits).toBe(1);
    expect(stats.responses!.hits).toBe(1);
  });

  it('a write in one process reaches the other at once: in-process entries dropped, index reloaded, no stale hit', async () => {
    const store = tempDir();
    const { config } = redisConfig();
    const a = openQuarry(store, config);
    await a.addDocuments(DOCS);
    const b = peer(store, config);
    expect(await b.send('ready')).toMatchObject({ ok: true });
    expect(await b.send('search', { q: 'zorblaxian' })).toMatchObject({ ids: ['comet', 'launch'] });
    // The second identical search is an in-process hit: the entry B must drop when A writes.
    expect((await b.send('search', { q: 'zorblaxian' })).cache).toMatchObject({ hit: true, tier: 'memory' });

    expect(a.deleteDocuments(['comet'])).toEqual(['comet']);
    const version = a.lexical.indexVersion;
    // B hears of it without a request of its own, and its index is already at A's version.
    const event = await b.event();
    expect(event).toMatchObject({ event: 'invalidated', origin: 'remote', indexVersion: version });
    expect(event.lexicalVersion).toBe(version);

    const after = await b.send('search', { q: 'zorblaxian' });
    expect(after.ids).toEqual(['launch']);
    expect(after.strategy).not.toBe('cache');

    await a.addDocuments([{ id: 'probe', text: 'A zorblaxian probe reports from orbit.' }]);
    expect((await b.send('search', { q: 'zorblaxian' })).ids).toEqual(['launch', 'probe']);
  });

  it('two access scopes never share an entry, in memory or in Redis', async () => {
    const store = tempDir();
    const { config, prefix } = redisConfig();
    const a = openQuarry(store, config);
    await a.addDocuments([DOCS[0]!]);
    await a.addDocuments([DOCS[1]!], { accessGroups: ['staff'] });
    const staff = await a.search('zorblaxian', { scope: { groups: ['staff'] } });
    expect(ids(staff)).toEqual(['comet', 'launch']);
    const others = await a.search('zorblaxian', { scope: { groups: ['sales'] } });
    expect(others.strategy).not.toBe('cache');
    expect(ids(others)).toEqual(['comet']);
    // Two principals with the same groups but other identities do not share either.
    const alice = { principal: userPrincipal({ userId: 'alice', groups: ['staff'] }) } as SearchOptions;
    const bob = { principal: userPrincipal({ userId: 'bob', groups: ['staff'] }) } as SearchOptions;
    expect((await a.search('zorblaxian', alice)).strategy).not.toBe('cache');
    expect((await a.search('zorblaxian', bob)).strategy).not.toBe('cache');
    expect((await a.search('zorblaxian', bob)).strategy).toBe('cache');
    expect((await redisKeys(prefix)).filter((k) => k.startsWith(`${prefix}ret:`))).toHaveLength(4);

    // A second process with the sales scope gets the sales entry, never the staff one.
    const b = peer(store, config);
    expect(await b.send('search', { q: 'zorblaxian', groups: ['sales'] })).toMatchObject({
      strategy: 'cache',
      ids: ['comet'],
    });
  });

  it('embeddings made by one process are not paid for again by a second process with another store', async () => {
    const embeddings = await new FakeOpenAIServer({ dim: 8 }).start();
    servers.push(embeddings);
    const dense = {
      retrieval: {
        retriever: 'hybrid' as const,
        dense: {
          models: [
            {
              name: 'remote',
              provider: 'openai' as const,
              baseURL: embeddings.url,
              model: 'fake-embed',
              dimensions: 8,
            },
          ],
        },
      },
    };
    const { config } = redisConfig(dense);
    // Responses and retrievals off: the second process must embed its query, not reuse a search result.
    const noResults = { ...config, cache: { ...config.cache, retrievals: false, responses: false } };
    const a = openQuarry(tempDir(), noResults);
    await a.addDocuments(DOCS);
    const first = await a.search('zorblaxian comet');
    expect(first.degraded).toEqual([]);
    const paid = embeddings.requests.length;
    expect(paid).toBeGreaterThan(0);

    const b = peer(tempDir(), noResults);
    await b.send('add', { docs: DOCS });
    const searched = await b.send('search', { q: 'zorblaxian comet' });
    expect(searched).toMatchObject({ ids: ['comet', 'launch'], degraded: [] });
    expect(embeddings.requests.slice(paid).map((r) => r.body.input)).toEqual([]);
    const { stats } = (await b.send('stats')) as unknown as {
      stats: Record<string, { hits: number; misses: number }>;
    };
    expect(stats.embeddings).toEqual({ hits: DOCS.length + 1, misses: 0 });
  });
});

describe('when Redis is away', () => {
  it('an unreachable Redis degrades search and ask to the uncached pipeline, with no crash', async () => {
    const port = await freePort();
    const store = tempDir();
    const a = openQuarry(store, {
      cache: { driver: 'redis', redis: { url: `redis://127.0.0.1:${port}`, timeoutMs: 200 } },
    });
    await a.addDocuments(DOCS);
    expect(await a.cacheReady()).toMatchObject({ driver: 'redis', ok: false });
    const r = await a.search('zorblaxian');
    expect(ids(r)).toEqual(['comet', 'launch']);
    expect(r.degraded).toEqual([{ stage: 'cache', reason: expect.stringContaining('unreachable') }]);
    const again = await a.search('zorblaxian');
    expect(again.strategy).not.toBe('cache');
    const answer = await a.ask('zorblaxian comet');
    expect(answer.text.length).toBeGreaterThan(0);
    expect(answer.degraded.map((d) => d.stage)).toEqual(['cache']);
    expect(a.cacheStats().retrievals).toEqual({ hits: 0, misses: 3 });
  });

  it('reconnects by itself: cached again once Redis is back, without reopening', async () => {
    const proxy = await TcpProxy.start(6379);
    servers.push(proxy);
    const { config, prefix } = redisConfig();
    const url = `redis://127.0.0.1:${proxy.port}`;
    const a = openQuarry(tempDir(), {
      cache: { ...config.cache, redis: { ...config.cache!.redis, url, timeoutMs: 300 } },
    });
    await a.addDocuments(DOCS);
    expect(await a.cacheReady()).toMatchObject({ ok: true });
    expect((await a.search('zorblaxian')).degraded).toEqual([]);

    await proxy.stop();
    await waitFor(async () => (await a.search('zorblaxian comet', { k: 1 })).degraded.length > 0);

    await proxy.resume();
    await waitFor(async () => (await a.cacheReady()).ok);
    const before = (await redisKeys(prefix)).filter((k) => k.startsWith(`${prefix}ret:`)).length;
    const back = await a.search('zorblaxian launch');
    expect(back.degraded).toEqual([]);
    // Stored in Redis again.
    expect((await redisKeys(prefix)).filter((k) => k.startsWith(`${prefix}ret:`))).toHaveLength(before + 1);
    expect((await a.search('zorblaxian launch')).strategy).toBe('cache');
  });
});

async function freePort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve));
  const port = (s.address() as net.AddressInfo).port;
  await new Promise((resolve) => s.close(resolve));
  return port;
}

async function waitFor(check: () => Promise<boolean>, ms = 10_000): Promise<void> {
  const until = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > until) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 100));
  }
}

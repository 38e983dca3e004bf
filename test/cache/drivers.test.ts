/**
 * The cache drivers on their own: the in-process LRU (eviction order, time-to-live, namespaces) and the
 * Redis driver against the real Redis on 127.0.0.1:6379 (round trip of results and Float32Array vectors,
 * TTL, clear by namespace, publish/subscribe, a fast actionable failure when nothing listens).
 */
import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { createMemoryDriver } from '../../src/cache/memory.js';
import { createRedisDriver } from '../../src/cache/redis.js';
import type { CacheDriver } from '../../src/cache/types.js';
import { resolveConfig } from '../../src/config/config.js';
import { QuarryError } from '../../src/errors.js';
import { REDIS_URL, redisKeys, uniquePrefix } from './peer.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const drivers: CacheDriver[] = [];
const prefixes: string[] = [];

afterEach(async () => {
  for (const d of drivers.splice(0)) d.close();
  for (const p of prefixes.splice(0)) await redisKeys(p, true);
});

function redis(): { driver: CacheDriver; prefix: string } {
  const prefix = uniquePrefix();
  prefixes.push(prefix);
  const driver = createRedisDriver({ url: REDIS_URL, keyPrefix: prefix });
  drivers.push(driver);
  return { driver, prefix };
}

describe('memory driver', () => {
  it('evicts the least recently used entry of a namespace, and namespaces are separate', async () => {
    const m = createMemoryDriver({ maxEntries: 2 });
    await m.set('a', 'k1', 1);
    await m.set('a', 'k2', 2);
    expect(await m.get('a', 'k1')).toBe(1); // k1 is now the most recent
    await m.set('a', 'k3', 3);
    expect(await m.getMany('a', ['k1', 'k2', 'k3'])).toEqual([1, undefined, 3]);
    await m.set('b', 'k1', 'other');
    expect(await m.get('b', 'k1')).toBe('other');
    await m.clear('a');
    expect(await m.get('a', 'k1')).toBeUndefined();
    expect(await m.get('b', 'k1')).toBe('other');
  });

  it('expires entries after their time-to-live (default and per entry)', async () => {
    const m = createMemoryDriver({ maxEntries: 10, ttlMs: 40 });
    await m.set('a', 'short', 1);
    await m.set('a', 'long', 2, 10_000);
    expect(await m.get('a', 'short')).toBe(1);
    await sleep(60);
    expect(await m.get('a', 'short')).toBeUndefined();
    expect(await m.get('a', 'long')).toBe(2);
  });
});

describe('redis driver', () => {
  it('round-trips results and Float32Array vectors, one round trip for many keys', async () => {
    const { driver } = redis();
    const vector = new Float32Array([0.25, -1.5, 3e-8]);
    await driver.set('emb', 'v', { vector, nested: [{ vector }] });
    const got = await driver.get<{ vector: Float32Array; nested: { vector: Float32Array }[] }>('emb', 'v');
    expect(got!.vector).toBeInstanceOf(Float32Array);
    expect(Array.from(got!.vector)).toEqual(Array.from(vector));
    expect(Array.from(got!.nested[0]!.vector)).toEqual(Array.from(vector));
    await driver.set('ret', 'r', { hits: [{ score: 1.5, text: 'ü' }], degraded: [] });
    expect(await driver.getMany('ret', ['r', 'missing'])).toEqual([
      { hits: [{ score: 1.5, text: 'ü' }], degraded: [] },
      undefined,
    ]);
    await driver.delete('ret', 'r');
    expect(await driver.get('ret', 'r')).toBeUndefined();
  });

  it('expires entries after the time-to-live and clears one namespace only', async () => {
    const { driver, prefix } = redis();
    await driver.set('ret', 'short', 1, 50);
    await driver.set('ret', 'kept', 2);
    await driver.set('ans', 'kept', 3);
    expect(await driver.get('ret', 'short')).toBe(1);
    await sleep(120);
    expect(await driver.get('ret', 'short')).toBeUndefined();
    await driver.clear('ret');
    expect(await driver.get('ret', 'kept')).toBeUndefined();
    expect(await driver.get('ans', 'kept')).toBe(3);
    expect(await redisKeys(prefix)).toEqual([`${prefix}ans:kept`]);
  });

  it('publishes to subscribers in other connections', async () => {
    const { driver: a } = redis();
    const b = createRedisDriver({ url: REDIS_URL, keyPrefix: prefixes[0]! });
    drivers.push(b);
    const got: string[] = [];
    await b.subscribe!('invalidate:s', (m) => got.push(m));
    await a.publish!('invalidate:s', 'hello');
    for (let i = 0; i < 50 && got.length === 0; i++) await sleep(20);
    expect(got).toEqual(['hello']);
  });

  it('fails fast with an actionable error when nothing listens, and keeps failing fast', async () => {
    const s = net.createServer();
    await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
    const port = (s.address() as net.AddressInfo).port;
    await new Promise((r) => s.close(r));
    const driver = createRedisDriver({ url: `redis://:secret@127.0.0.1:${port}`, timeoutMs: 500 });
    drivers.push(driver);
    const t0 = performance.now();
    const e = await driver.get('ret', 'k').catch((x: unknown) => x);
    expect(e).toBeInstanceOf(QuarryError);
    expect((e as QuarryError).code).toBe('CACHE_UNAVAILABLE');
    expect((e as QuarryError).message).toContain(`redis://127.0.0.1:${port}`);
    expect((e as QuarryError).message).not.toContain('secret');
    expect((e as QuarryError).message).toContain('QUARRY_REDIS_URL');
    const t1 = performance.now();
    await expect(driver.set('ret', 'k', 1)).rejects.toThrow(/unreachable/);
    expect(performance.now() - t1).toBeLessThan(50);
    expect(t1 - t0).toBeLessThan(600);
  });
});

describe('cache configuration', () => {
  it('accepts the driver and redis settings and rejects unknown keys and bad URLs', () => {
    const c = resolveConfig({ cache: { driver: 'redis', redis: { url: REDIS_URL } } });
    expect(c.cache).toMatchObject({
      driver: 'redis',
      redis: { url: REDIS_URL, keyPrefix: 'quarry:' },
      embeddings: true,
    });
    expect(() => resolveConfig({ cache: { redis: { uri: REDIS_URL } } })).toThrow(/uri/);
    expect(() => resolveConfig({ cache: { redis: { url: 'http://x' } } })).toThrow(/redis:\/\//);
    expect(() => resolveConfig({ cache: { driver: 'memcached' } })).toThrow(/cache.driver/);
  });
});

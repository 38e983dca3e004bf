/**
 * The Redis cache driver: entries shared by every process on one Redis (several `quarry serve` processes on
 * one store), and publish/subscribe for cross-process invalidation. ioredis is loaded only when this driver
 * is chosen. Commands fail fast while Redis is unreachable (no offline queue: a request must not wait for
 * it) and the client reconnects in the background; callers treat a failure as a cache bypass.
 */
import type { Redis, RedisOptions } from 'ioredis';
import { QuarryError } from '../errors.js';
import type { CacheDriver, CacheDriverOptions } from './types.js';

export interface RedisDriverOptions extends CacheDriverOptions {
  /** `redis://[user:password@]host:port[/db]` (or `rediss://` for TLS). */
  url: string;
  /** Prepended to every key and channel (default `quarry:`), so several deployments can share one Redis. */
  keyPrefix?: string;
  /** Milliseconds to wait for a connection or a command before treating Redis as unreachable (default 1000). */
  timeoutMs?: number;
}

const F32 = '__f32';

/** JSON with Float32Array (embeddings) as base64 of its little-endian bytes. */
export function encodeValue(value: unknown): string {
  return JSON.stringify(value, (_k, v: unknown) =>
    v instanceof Float32Array
      ? { [F32]: Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('base64') }
      : v,
  );
}

export function decodeValue<T>(text: string): T {
  return JSON.parse(text, (_k, v: unknown) => {
    if (v !== null && typeof v === 'object' && typeof (v as Record<string, unknown>)[F32] === 'string') {
      const bytes = Buffer.from((v as Record<string, string>)[F32]!, 'base64');
      const out = new Float32Array(bytes.byteLength / 4);
      new Uint8Array(out.buffer).set(bytes); // copied: the Buffer's offset may not be 4-aligned
      return out;
    }
    return v;
  }) as T;
}

/** Where the URL points, without its password, for messages. */
function describeUrl(url: string): string {
  try {
    const u = new URL(url);
    return `${u.protocol}//${u.host}${u.pathname === '/' ? '' : u.pathname}`;
  } catch {
    return '(unparseable url)';
  }
}

const globEscape = (s: string): string => s.replace(/[*?[\]\\]/g, '\\$&');

export function createRedisDriver(opts: RedisDriverOptions): CacheDriver {
  const prefix = opts.keyPrefix ?? 'quarry:';
  const timeoutMs = opts.timeoutMs ?? 1000;
  const where = describeUrl(opts.url);
  let client: Redis | undefined;
  let subscriber: Redis | undefined;
  let loading: Promise<Redis> | undefined;
  let lastError: string | undefined;
  let connecting: Promise<void> | undefined;
  let closed = false;
  const handlers = new Map<string, Set<(m: string) => void>>();

  const unavailable = (why: string, cause?: unknown): QuarryError =>
    new QuarryError(
      'CACHE_UNAVAILABLE',
      `Redis at ${where} is unreachable (${why}); requests bypass the cache until it is back. ` +
        'Check that Redis runs and that cache.redis.url (or QUARRY_REDIS_URL) points to it',
      { driver: 'redis', url: where },
      cause,
    );

  const options = (): RedisOptions => ({
    lazyConnect: true,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    connectTimeout: timeoutMs,
    commandTimeout: timeoutMs,
    // Keep trying in the background, at most every 2 s: the cache comes back by itself.
    retryStrategy: (times: number) => Math.min(100 * times, 2000),
  });

  const watch = (r: Redis): Redis => {
    // Without a listener an 'error' event would crash the process; the message is kept for reports.
    r.on('error', (e: Error) => {
      lastError = e.message;
    });
    r.on('ready', () => {
      lastError = undefined;
    });
    return r;
  };

  const load = (): Promise<Redis> => {
    if (closed) return Promise.reject(unavailable('the cache is closed'));
    loading ??= import('ioredis')
      .catch((e: unknown) => {
        loading = undefined;
        throw new QuarryError(
          'INVALID_CONFIG',
          'cache.driver is "redis" but the ioredis package is not installed: npm install ioredis',
          { driver: 'redis' },
          e,
        );
      })
      .then((m) => {
        const r = watch(new m.Redis(opts.url, options()));
        client = r;
        // The first connection attempt; later ones are the retry strategy's.
        r.connect().catch((e: unknown) => {
          lastError = e instanceof Error ? e.message : String(e);
        });
        return r;
      });
    return loading;
  };

  /**
   * The client when it is connected. The first connection is waited for (up to the timeout); once Redis
   * has failed, commands fail at once until it is back, so no request waits on it.
   */
  const live = async (): Promise<Redis> => {
    const r = await load();
    if (r.status === 'ready') return r;
    if (lastError === undefined && r.status !== 'end') {
      // Every request arriving while the first connection is made waits on the same promise.
      connecting ??= waitReady(r).finally(() => {
        connecting = undefined;
      });
      await connecting;
      return r;
    }
    throw unavailable(lastError ?? `connection ${r.status}`);
  };

  const waitReady = (r: Redis): Promise<void> =>
    new Promise<void>((resolve, reject) => {
      const done = (): void => {
        clearTimeout(timer);
        r.off('ready', onReady);
        r.off('error', onError);
      };
      const onReady = (): void => {
        done();
        resolve();
      };
      const onError = (e: Error): void => {
        done();
        reject(unavailable(e.message, e));
      };
      const timer = setTimeout(() => {
        done();
        reject(unavailable(lastError ?? 'no connection'));
      }, timeoutMs);
      r.once('ready', onReady);
      r.once('error', onError);
    });

  const run = async <T>(fn: (r: Redis) => Promise<T>): Promise<T> => {
    const r = await live();
    try {
      return await fn(r);
    } catch (e) {
      throw unavailable(e instanceof Error ? e.message : String(e), e);
    }
  };

  const k = (ns: string, key: string): string => `${prefix}${ns}:${key}`;

  return {
    name: 'redis',
    flags: { shared: true, pubsub: true },
    get: <T>(ns: string, key: string) =>
      run(async (r) => {
        const v = await r.get(k(ns, key));
        return v === null ? undefined : decodeValue<T>(v);
      }),
    getMany: <T>(ns: string, keys: readonly string[]) =>
      keys.length === 0
        ? Promise.resolve([])
        : run(async (r) => {
            const vs = await r.mget(...keys.map((key) => k(ns, key)));
            return vs.map((v) => (v === null ? undefined : decodeValue<T>(v)));
          }),
    set: (ns, key, value, ttlMs = opts.ttlMs) =>
      run(async (r) => {
        const text = encodeValue(value);
        if (ttlMs === undefined) await r.set(k(ns, key), text);
        else await r.set(k(ns, key), text, 'PX', ttlMs);
      }),
    delete: (ns, key) =>
      run(async (r) => {
        await r.del(k(ns, key));
      }),
    clear: (ns) =>
      run(async (r) => {
        const match = `${globEscape(`${prefix}${ns}:`)}*`;
        let cursor = '0';
        do {
          const [next, found] = await r.scan(cursor, 'MATCH', match, 'COUNT', 500);
          if (found.length > 0) await r.unlink(...found);
          cursor = next;
        } while (cursor !== '0');
      }),
    publish: (channel, message) =>
      run(async (r) => {
        await r.publish(`${prefix}${channel}`, message);
      }),
    async subscribe(channel, onMessage) {
      const full = `${prefix}${channel}`;
      let set = handlers.get(full);
      if (set === undefined) {
        set = new Set();
        handlers.set(full, set);
      }
      set.add(onMessage);
      const base = await load();
      if (subscriber === undefined) {
        // A subscribed connection can run nothing else: a second one. It re-subscribes after reconnecting.
        // Its commands wait for the connection instead of failing: the subscription is made whenever
        // Redis is reachable, and ioredis renews it after every reconnect.
        subscriber = watch(
          base.duplicate({ ...options(), enableOfflineQueue: true, maxRetriesPerRequest: null }),
        );
        subscriber.on('message', (ch: string, message: string) => {
          for (const h of handlers.get(ch) ?? []) h(message);
        });
      }
      try {
        await subscriber.subscribe(full);
      } catch (e) {
        throw unavailable(e instanceof Error ? e.message : String(e), e);
      }
    },
    async ready() {
      const r = await load();
      if (r.status !== 'ready') await live();
    },
    close() {
      closed = true;
      client?.disconnect();
      subscriber?.disconnect();
    },
  };
}

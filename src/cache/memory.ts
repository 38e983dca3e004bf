/**
 * The in-process cache driver: one LRU (Map insertion order) per namespace with an optional time-to-live.
 * The default for every layer; also the fast front of the shared Redis layer (see ./layers.ts). Values are
 * kept as given (no serialization): callers store results they no longer mutate.
 */
import { QuarryError } from '../errors.js';
import type { CacheDriver, CacheDriverOptions } from './types.js';

export interface Lru<T> {
  get(key: string): T | undefined;
  set(key: string, value: T, ttlMs?: number): void;
  delete(key: string): void;
  clear(): void;
  readonly size: number;
}

/** A bounded LRU; `ttlMs` (default and per entry) makes older entries misses. */
export function createLru<T>(opts: { maxEntries: number; ttlMs?: number | undefined }): Lru<T> {
  if (!(opts.maxEntries >= 1))
    throw new QuarryError('INVALID_CONFIG', `cache maxEntries must be at least 1, got ${opts.maxEntries}`);
  const entries = new Map<string, { value: T; expires: number }>();
  return {
    get(key) {
      const e = entries.get(key);
      if (e === undefined) return undefined;
      entries.delete(key);
      if (e.expires <= Date.now()) return undefined;
      entries.set(key, e); // most recently used last
      return e.value;
    },
    set(key, value, ttlMs = opts.ttlMs) {
      entries.delete(key);
      entries.set(key, {
        value,
        expires: ttlMs === undefined ? Number.POSITIVE_INFINITY : Date.now() + ttlMs,
      });
      while (entries.size > opts.maxEntries) {
        const oldest = entries.keys().next();
        if (oldest.done === true) break;
        entries.delete(oldest.value);
      }
    },
    delete(key) {
      entries.delete(key);
    },
    clear() {
      entries.clear();
    },
    get size() {
      return entries.size;
    },
  };
}

export interface MemoryCacheDriver extends CacheDriver {
  /** Entries held in one namespace (expired ones not yet touched included). */
  size(namespace: string): number;
}

/**
 * @example
 * const cache = createMemoryDriver({ maxEntries: 500, ttlMs: 60_000 });
 * await cache.set('retrievals', key, result);
 */
export function createMemoryDriver(opts: CacheDriverOptions = {}): MemoryCacheDriver {
  const spaces = new Map<string, Lru<unknown>>();
  const space = (ns: string): Lru<unknown> => {
    let s = spaces.get(ns);
    if (s === undefined) {
      s = createLru({ maxEntries: opts.maxEntries ?? 1000, ttlMs: opts.ttlMs });
      spaces.set(ns, s);
    }
    return s;
  };
  return {
    name: 'memory',
    flags: { shared: false, pubsub: false },
    async get<T>(ns: string, key: string) {
      return spaces.get(ns)?.get(key) as T | undefined;
    },
    async getMany<T>(ns: string, keys: readonly string[]) {
      const s = spaces.get(ns);
      return keys.map((k) => s?.get(k) as T | undefined);
    },
    async set(ns, key, value, ttlMs) {
      space(ns).set(key, value, ttlMs);
    },
    async delete(ns, key) {
      spaces.get(ns)?.delete(key);
    },
    async clear(ns) {
      spaces.delete(ns);
    },
    async ready() {},
    close() {
      spaces.clear();
    },
    size(ns) {
      return spaces.get(ns)?.size ?? 0;
    },
  };
}

/**
 * The three cache layers a Quarry instance serves from — embeddings, retrieval results, final responses —
 * and how they stay correct. Each result layer is an in-process LRU, backed (when `cache.driver` is redis)
 * by a Redis shared with every other process: a memory hit costs no round trip and no JSON parse, a Redis
 * hit serves what another process computed. Keys carry the store, index version, configuration and
 * access scope (see Engine.cacheKey), so a write anywhere makes older entries unreachable; on top of that a
 * committed write is published on Redis and every other process on the same store drops its in-process
 * entries and reloads its index at once. Without Redis, the index version in the key and the freshness
 * check before every request keep the in-process layers correct on their own.
 * Redis being away never fails a request: the layer is bypassed with a `cache` degradation and the client
 * reconnects in the background.
 */

import { randomUUID } from 'node:crypto';
import type { EmbeddingCache } from '../embed/cache.js';
import { recordCacheLookup } from '../observability/metrics.js';
import type { StageContext } from '../stage.js';
import { type LayerCounters, tieredEmbeddingCache } from './embeddings.js';
import { createLru, type Lru } from './memory.js';
import { createRedisDriver } from './redis.js';
import type { CacheDriver } from './types.js';

export type CacheLayerName = 'embeddings' | 'retrievals' | 'responses';
export type ResultLayerName = Exclude<CacheLayerName, 'embeddings'>;

/** Lookups per layer since the instance opened (the server exports them as hit-rate metrics). */
export type CacheStats = Record<CacheLayerName, LayerCounters>;

/** A committed write that made cached entries of a store unreachable. */
export interface CacheInvalidation {
  /** The store's cache identity (see `storeCacheId`). */
  store: string;
  indexVersion: number;
  /** `local`: this instance wrote; `remote`: another process did (received over Redis). */
  origin: 'local' | 'remote';
}

/** The resolved `cache` configuration section (see src/config/config.ts). */
export interface CacheLayersConfig {
  driver?: 'memory' | 'redis' | undefined;
  redis?: { url?: string | undefined; keyPrefix: string; timeoutMs: number } | undefined;
  ttlMs?: number | undefined;
  maxEntries: number;
  embeddings: boolean;
  retrievals: boolean;
  responses: boolean;
}

/** Shared entries expire after a day unless `cache.ttlMs` says otherwise: old index versions are garbage. */
export const DEFAULT_SHARED_TTL_MS = 24 * 60 * 60 * 1000;

/** Which driver the configuration (and `QUARRY_REDIS_URL`) selects, and the Redis URL when it is Redis. */
export function chooseCacheDriver(
  config: CacheLayersConfig,
  env: Record<string, string | undefined>,
): { driver: 'memory' } | { driver: 'redis'; url: string } {
  const url = config.redis?.url ?? (env.QUARRY_REDIS_URL || undefined);
  const driver = config.driver ?? (url === undefined ? 'memory' : 'redis');
  if (driver === 'memory') return { driver };
  if (url === undefined) return { driver: 'redis', url: 'redis://127.0.0.1:6379' };
  return { driver, url };
}

interface InvalidationMessage {
  store: string;
  indexVersion: number;
  /** The publishing instance, which ignores its own message. */
  from: string;
}

export class CacheLayers {
  /** The shared (Redis) driver; undefined with the in-process driver. */
  readonly shared: CacheDriver | undefined;
  private readonly fronts: Partial<Record<ResultLayerName, Lru<unknown>>> = {};
  private readonly counters: CacheStats = {
    embeddings: { hits: 0, misses: 0 },
    retrievals: { hits: 0, misses: 0 },
    responses: { hits: 0, misses: 0 },
  };
  private readonly listeners = new Set<(e: CacheInvalidation) => void>();
  private readonly instance = randomUUID();
  private subscribed: Promise<void> | undefined;
  private refreshTimer: NodeJS.Timeout | undefined;
  private lastSharedError: string | undefined;

  constructor(
    readonly config: CacheLayersConfig,
    /** The store's cache identity, computed on first use. */
    private readonly storeId: () => string,
    env: Record<string, string | undefined> = process.env,
  ) {
    const lru = { maxEntries: config.maxEntries, ttlMs: config.ttlMs };
    if (config.retrievals) this.fronts.retrievals = createLru(lru);
    if (config.responses) this.fronts.responses = createLru(lru);
    const chosen = chooseCacheDriver(config, env);
    if (chosen.driver === 'redis')
      this.shared = createRedisDriver({
        url: chosen.url,
        keyPrefix: config.redis?.keyPrefix ?? 'quarry:',
        timeoutMs: config.redis?.timeoutMs ?? 1000,
        ttlMs: config.ttlMs ?? DEFAULT_SHARED_TTL_MS,
      });
  }

  enabled(layer: ResultLayerName): boolean {
    return this.fronts[layer] !== undefined;
  }

  /** The cached value, from memory then Redis; a Redis failure is a miss and a `cache` degradation. */
  async get<T>(layer: ResultLayerName, key: string, ctx: StageContext): Promise<T | undefined> {
    const front = this.fronts[layer];
    if (front === undefined) return undefined;
    const t0 = performance.now();
    let value = front.get(key) as T | undefined;
    let tier: 'memory' | 'redis' | undefined = value === undefined ? undefined : 'memory';
    if (value === undefined && this.shared !== undefined) {
      try {
        value = await this.shared.get<T>(this.namespace(layer), key);
        if (value !== undefined) {
          tier = 'redis';
          front.set(key, value);
        }
      } catch (e) {
        this.bypass(e, ctx);
      }
    }
    this.counters[layer][value === undefined ? 'misses' : 'hits']++;
    recordCacheLookup(layer === 'retrievals' ? 'retrieval' : 'response', value !== undefined);
    ctx.trace.recordSince('cache', t0, {
      layer,
      hit: value !== undefined,
      ...(tier === undefined ? {} : { tier }),
      driver: this.shared === undefined ? 'memory' : 'redis',
    });
    return value;
  }

  /** Stores `value` in memory and Redis (a Redis failure is already reported by the read that missed). */
  async set(layer: ResultLayerName, key: string, value: unknown): Promise<void> {
    const front = this.fronts[layer];
    if (front === undefined) return;
    front.set(key, value);
    if (this.shared === undefined) return;
    try {
      await this.shared.set(this.namespace(layer), key, value);
    } catch (e) {
      this.noteSharedError(e);
    }
  }

  /**
   * The embedding layer for the dense indexes: `local` (the store's SQLite file cache) first, then Redis
   * when configured. Undefined when `cache.embeddings` is off.
   */
  embeddingCache(local: EmbeddingCache | undefined): EmbeddingCache | undefined {
    if (!this.config.embeddings) return undefined;
    return tieredEmbeddingCache(local, this.shared, this.counters.embeddings, (e) => this.noteSharedError(e));
  }

  /** Drops the in-process entries of every layer (shared entries are unreachable through their keys). */
  dropLocal(): void {
    for (const f of Object.values(this.fronts)) f.clear();
  }

  /** After a committed write: drop the in-process layers and tell the other processes on this store. */
  committed(indexVersion: number): void {
    this.dropLocal();
    const store = this.storeId();
    this.emit({ store, indexVersion, origin: 'local' });
    if (this.shared?.publish === undefined) return;
    const message: InvalidationMessage = { store, indexVersion, from: this.instance };
    this.shared
      .publish(this.channel(), JSON.stringify(message))
      .catch((e: unknown) => this.noteSharedError(e));
  }

  /**
   * Listen for writes made by other processes on this store: drop the in-process layers at once, then
   * `refresh` (reload the index) shortly after — a burst of batch commits reloads once, not per batch.
   */
  listen(refresh: () => void): void {
    if (this.shared?.subscribe === undefined || this.subscribed !== undefined) return;
    this.subscribed = this.shared
      .subscribe(this.channel(), (text) => this.received(text, refresh))
      .catch((e: unknown) => this.noteSharedError(e));
  }

  private received(text: string, refresh: () => void): void {
    let m: InvalidationMessage;
    try {
      m = JSON.parse(text) as InvalidationMessage;
    } catch {
      return; // not ours
    }
    if (m.from === this.instance || m.store !== this.storeId() || typeof m.indexVersion !== 'number') return;
    this.dropLocal();
    clearTimeout(this.refreshTimer);
    this.refreshTimer = setTimeout(() => {
      this.refreshTimer = undefined;
      refresh();
      this.emit({ store: m.store, indexVersion: m.indexVersion, origin: 'remote' });
    }, 25);
    this.refreshTimer.unref();
  }

  /** Called on every invalidation (local write, or a remote one after the index reloaded); returns an unsubscribe. */
  onInvalidation(listener: (e: CacheInvalidation) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private emit(e: CacheInvalidation): void {
    for (const l of this.listeners) l(e);
  }

  /**
   * Resolves once the shared cache answers and the invalidation subscription is active (at once for the
   * in-process driver); never rejects: an unreachable Redis reports `ok: false` and why.
   */
  async ready(): Promise<{ driver: 'memory' | 'redis'; ok: boolean; reason?: string }> {
    if (this.shared === undefined) return { driver: 'memory', ok: true };
    try {
      await this.shared.ready();
      await this.subscribed;
      return { driver: 'redis', ok: true };
    } catch (e) {
      return { driver: 'redis', ok: false, reason: e instanceof Error ? e.message : String(e) };
    }
  }

  stats(): CacheStats {
    const c = this.counters;
    return {
      embeddings: { ...c.embeddings },
      retrievals: { ...c.retrievals },
      responses: { ...c.responses },
    };
  }

  close(): void {
    clearTimeout(this.refreshTimer);
    this.dropLocal();
    this.shared?.close();
  }

  private namespace(layer: ResultLayerName): string {
    return `${layer === 'retrievals' ? 'ret' : 'ans'}:${this.storeId()}`;
  }

  private channel(): string {
    return `invalidate:${this.storeId()}`;
  }

  private bypass(e: unknown, ctx: StageContext): void {
    this.noteSharedError(e);
    ctx.degrade('cache', `shared cache bypassed: ${this.lastSharedError}`);
  }

  private noteSharedError(e: unknown): void {
    this.lastSharedError = e instanceof Error ? e.message : String(e);
  }
}

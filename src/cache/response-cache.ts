/**
 * The response cache: a repeated question with the same options, access scope, configuration and index
 * version returns the stored answer without retrieval or generation. Keys carry the index version and the
 * caller's groups, so a write makes old entries unreachable and one principal never sees another's answers.
 */
import { createHash } from 'node:crypto';

export interface ResponseCache<T> {
  get(key: string): T | undefined;
  set(key: string, value: T): void;
  clear(): void;
  readonly size: number;
}

/** Stable cache key from the parts that change an answer (objects are key-sorted before hashing). */
export function responseCacheKey(parts: Record<string, unknown>): string {
  return createHash('sha256').update(stableJson(parts)).digest('hex');
}

function stableJson(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(stableJson).join(',')}]`;
  if (v !== null && typeof v === 'object') {
    const entries = Object.entries(v as Record<string, unknown>)
      .filter(([, x]) => x !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, x]) => `${JSON.stringify(k)}:${stableJson(x)}`).join(',')}}`;
  }
  return JSON.stringify(v) ?? 'null';
}

/** In-process LRU (Map insertion order) with an optional time-to-live. */
export function createMemoryResponseCache<T>(opts: { maxEntries: number; ttlMs?: number }): ResponseCache<T> {
  const entries = new Map<string, { value: T; at: number }>();
  return {
    get(key) {
      const e = entries.get(key);
      if (e === undefined) return undefined;
      if (opts.ttlMs !== undefined && Date.now() - e.at > opts.ttlMs) {
        entries.delete(key);
        return undefined;
      }
      entries.delete(key);
      entries.set(key, e);
      return e.value;
    },
    set(key, value) {
      entries.delete(key);
      entries.set(key, { value, at: Date.now() });
      while (entries.size > opts.maxEntries) {
        const oldest = entries.keys().next().value;
        if (oldest === undefined) break;
        entries.delete(oldest);
      }
    },
    clear() {
      entries.clear();
    },
    get size() {
      return entries.size;
    },
  };
}

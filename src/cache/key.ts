/**
 * Cache keys: a stable sha256 of the parts that change a result. Objects are key-sorted before hashing and
 * undefined fields dropped, so `{ a, b }` and `{ b, a }` (or an explicit `undefined`) give the same key.
 */
import { createHash } from 'node:crypto';

/** Stable cache key from the parts that change an answer. */
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

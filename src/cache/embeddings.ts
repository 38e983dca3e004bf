/**
 * The embedding layer over a shared cache driver: vectors keyed by model id, dimension and text hash (not
 * by store or index version: the same text embeds the same way everywhere), so a second process, or a
 * second store on the same Redis, never pays for an embedding the first one made. In front of the store's
 * own SQLite file cache, which stays the first, local tier.
 */

import type { EmbeddingCache, TextHash } from '../embed/cache.js';
import { recordCacheLookup } from '../observability/metrics.js';
import type { CacheDriver } from './types.js';

export const EMBEDDINGS_NAMESPACE = 'emb';

export interface LayerCounters {
  hits: number;
  misses: number;
}

const hex = (h: TextHash): string => Buffer.from(h.buffer, h.byteOffset, h.byteLength).toString('hex');

/**
 * `local` (the store's file cache, may be absent) first, then `shared`; vectors found only in the shared
 * tier are copied into the local one. A shared tier that fails is skipped (`onError`): embedding goes on.
 */
export function tieredEmbeddingCache(
  local: EmbeddingCache | undefined,
  shared: CacheDriver | undefined,
  counters: LayerCounters,
  onError: (e: unknown) => void,
): EmbeddingCache {
  // Keys need the dimension, which a provider may learn only from its first response: remember the
  // dimension each model's vectors were stored with (a differing one is re-embedded by the caller).
  const dims = new Map<string, number>();
  const key = (model: string, dim: number, h: TextHash): string => `${model}\u0000${dim}\u0000${hex(h)}`;
  const dimKey = (model: string): string => `dim\u0000${model}`;

  const sharedDim = async (model: string): Promise<number | undefined> => {
    const known = dims.get(model);
    if (known !== undefined || shared === undefined) return known;
    const d = await shared.get<number>(EMBEDDINGS_NAMESPACE, dimKey(model));
    if (typeof d === 'number') dims.set(model, d);
    return typeof d === 'number' ? d : undefined;
  };

  return {
    async getMany(model, hashes) {
      const out = local === undefined ? hashes.map(() => undefined) : await local.getMany(model, hashes);
      const missing = out.flatMap((v, i) => (v === undefined ? [i] : []));
      if (shared !== undefined && missing.length > 0) {
        try {
          const dim = await sharedDim(model);
          if (dim !== undefined) {
            const found = await shared.getMany<Float32Array>(
              EMBEDDINGS_NAMESPACE,
              missing.map((i) => key(model, dim, hashes[i]!)),
            );
            const copied: { hash: TextHash; vector: Float32Array }[] = [];
            found.forEach((v, j) => {
              if (!(v instanceof Float32Array) || v.length !== dim) return;
              const i = missing[j]!;
              out[i] = v;
              copied.push({ hash: hashes[i]!, vector: v });
            });
            if (copied.length > 0) await local?.putMany(model, copied);
          }
        } catch (e) {
          onError(e);
        }
      }
      for (const v of out) {
        if (v === undefined) counters.misses++;
        else counters.hits++;
        recordCacheLookup('embedding', v !== undefined);
      }
      return out;
    },
    async putMany(model, entries) {
      await local?.putMany(model, entries);
      if (shared === undefined || entries.length === 0) return;
      try {
        const dim = entries[0]!.vector.length;
        if (dims.get(model) !== dim) {
          dims.set(model, dim);
          await shared.set(EMBEDDINGS_NAMESPACE, dimKey(model), dim);
        }
        await Promise.all(
          entries.map((e) => shared.set(EMBEDDINGS_NAMESPACE, key(model, e.vector.length, e.hash), e.vector)),
        );
      } catch (e) {
        onError(e);
      }
    },
    async close() {
      await local?.close?.();
    },
  };
}

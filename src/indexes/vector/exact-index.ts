/**
 * Exact (brute-force) dense retrieval: the vector index for small collections and the ground truth the ANN
 * index is measured against. Flat contiguous storage, tombstones with compaction, filters applied inside
 * top-k selection, and optional int8/binary codes for a faster candidate pass that is rescored exactly.
 */
import { QuarryError } from '../../errors.js';
import { createQuantizer, type Quantization, type Quantizer } from './quantize.js';
import {
  assertCompatible,
  type VectorHit,
  type VectorIndex,
  type VectorIndexInfo,
  type VectorSearchOptions,
  validateInfo,
} from './types.js';
import { VectorStore } from './vector-store.js';

export interface ExactIndexOptions {
  /** Compressed codes for the candidate pass (`none`: score every vector exactly). Default `none`. */
  quantization?: Quantization;
  /**
   * Candidate pool per query = max(rescoreFactor · k, rescoreFraction · size, minPool), rescored with the
   * float vectors. Defaults from `defaultRescore`.
   */
  rescoreFactor?: number;
  rescoreFraction?: number;
  /** Lower bound on the candidate pool. Default 64. */
  minPool?: number;
  /** Initial slot capacity (grows by doubling). */
  capacity?: number;
}

/**
 * Candidate pools that keep recall@10 ≥ 0.95 on the benchmark corpus (bench/vector.ts). int8 ranks almost
 * exactly: 4·k. One sign bit per dimension ranks coarsely, and the number of vectors it confuses with the
 * true top grows with the collection and shrinks with the dimension, so binary's pool is a share of the
 * collection: 2.56/dim of it (1 % at 256-d: recall 0.97 at 100k; 40·k gave 0.945), at least 20·k.
 * Below ~128 dimensions binary needs pools so large that it is not worth using.
 */
export function defaultRescore(
  quantization: Quantization,
  dimension: number,
): { factor: number; fraction: number } {
  if (quantization === 'int8') return { factor: 4, fraction: 0 };
  if (quantization === 'binary') return { factor: 20, fraction: Math.min(1, 2.56 / dimension) };
  return { factor: 1, fraction: 0 };
}

/** Validates k for any vector index: a non-negative integer. */
export function checkK(k: number): number {
  if (!Number.isInteger(k) || k < 0) {
    throw new QuarryError('INVALID_ARGUMENT', `k must be a non-negative integer, got ${k}`, { k });
  }
  return k;
}

export class ExactIndex implements VectorIndex {
  readonly kind = 'exact' as const;
  readonly info: VectorIndexInfo;
  readonly store: VectorStore;
  readonly quantization: Quantization;
  private readonly quantizer: Quantizer | null;
  private readonly rescoreFactor: number;
  private readonly rescoreFraction: number;
  private readonly minPool: number;

  constructor(info: VectorIndexInfo, opts: ExactIndexOptions = {}, store?: VectorStore) {
    this.info = validateInfo(info);
    this.quantization = opts.quantization ?? 'none';
    if (!['none', 'int8', 'binary'].includes(this.quantization)) {
      throw new QuarryError(
        'INVALID_CONFIG',
        `quantization must be none, int8 or binary, got ${this.quantization}`,
      );
    }
    this.quantizer = createQuantizer(this.quantization, this.info.dimension);
    const dflt = defaultRescore(this.quantization, this.info.dimension);
    this.rescoreFactor = opts.rescoreFactor ?? dflt.factor;
    this.rescoreFraction = opts.rescoreFraction ?? dflt.fraction;
    this.minPool = opts.minPool ?? 64;
    if (
      !(this.rescoreFactor >= 1) ||
      !(this.minPool >= 1) ||
      !(this.rescoreFraction >= 0 && this.rescoreFraction <= 1)
    ) {
      throw new QuarryError(
        'INVALID_CONFIG',
        'rescoreFactor and minPool must be ≥ 1, rescoreFraction in [0, 1]',
        {
          rescoreFactor: this.rescoreFactor,
          rescoreFraction: this.rescoreFraction,
          minPool: this.minPool,
        },
      );
    }
    if (store !== undefined) {
      this.store = store;
      if (store.dead > 0) this.compact();
      if (this.quantizer !== null) for (const s of store.liveSlots()) this.quantizer.encode(store, s);
    } else {
      this.store = new VectorStore(this.info, false, opts.capacity);
    }
  }

  get size(): number {
    return this.store.live;
  }

  has(chunkId: number): boolean {
    return this.store.slotOf.has(chunkId);
  }

  add(chunkId: number, group: number, vector: Float32Array): void {
    // Validate before touching an existing entry, so a bad replacement leaves the old vector in place.
    if (this.store.slotOf.has(chunkId)) {
      this.store.validate(chunkId, vector);
      this.remove(chunkId);
    }
    const slot = this.store.insert(chunkId, group, vector);
    this.quantizer?.encode(this.store, slot);
  }

  remove(chunkId: number): boolean {
    if (this.store.delete(chunkId) < 0) return false;
    const { dead, count } = this.store;
    if (dead > 64 && dead * 4 > count) this.compact();
    return true;
  }

  /** Drops tombstoned slots (runs automatically once a quarter of the slots are dead). */
  compact(): void {
    const remap = this.store.compact();
    this.quantizer?.compact(remap, this.store.count);
  }

  search(query: Float32Array, k: number, opts: VectorSearchOptions = {}): VectorHit[] {
    checkK(k);
    const store = this.store;
    const q = store.prepareQuery(query);
    const kk = Math.min(k, store.live);
    if (kk === 0) return [];
    const filtered = opts.allowGroup !== undefined;
    if (filtered) store.filter.begin(opts.allowGroup!);
    const pool = Math.max(
      Math.ceil(this.rescoreFactor * kk),
      Math.ceil(this.rescoreFraction * store.live),
      this.minPool,
    );
    if (this.quantizer === null || pool >= store.live) return store.scanTopK(q, kk, filtered);
    const { slots, n } = this.quantizer.candidates(store, q, pool, filtered ? store.filter : null);
    return store.rescore(q, slots, n, kk);
  }

  memoryBytes(): number {
    return this.store.memoryBytes() + (this.quantizer?.memoryBytes() ?? 0);
  }

  assertCompatible(other: VectorIndexInfo): void {
    assertCompatible(this.info, other);
  }
}

/**
 * Approximate dense retrieval for large collections: an HNSW graph (hnswlib-node, loaded lazily) over the
 * same flat vector store the exact index uses. Graph hits are rescored exactly; selective filters fall back
 * to an exact scan over admissible vectors, so filtered searches still return k results when k exist.
 */
import fs from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import type { HierarchicalNSW } from 'hnswlib-node';
import { QuarryError } from '../../errors.js';
import { checkK } from './exact-index.js';
import {
  assertCompatible,
  type VectorHit,
  type VectorIndex,
  type VectorIndexInfo,
  type VectorSearchOptions,
  validateInfo,
} from './types.js';
import { MAP_ENTRY_BYTES, type PreparedQuery, VectorStore } from './vector-store.js';

export interface HnswOptions {
  /** Graph degree (links per node per layer; 2·M on the base layer). */
  m: number;
  /** Candidate list size while inserting: higher builds a better graph, slower. */
  efConstruction: number;
  /** Default candidate list size while searching (raised to k when k is larger). */
  efSearch: number;
  /** Seed of the level generator, so builds are reproducible. */
  seed: number;
  /**
   * Filtered searches scan the admissible vectors exactly when f² · size < filterScanRatio · ef, f being the
   * admissible fraction estimated on a sample of slots: an exact scan costs ∝ f · size, a filtered graph walk
   * ∝ ef / f (it runs until ef admissible nodes are found). 0 = always walk the graph, Infinity = always scan.
   */
  filterScanRatio: number;
}

/**
 * efSearch 64: recall@10 1.000 against exact search on the benchmark corpus (bench/vector.ts, 100k clustered
 * 256-d vectors), where 32 gives 0.986 and 16 gives 0.911 — 64 keeps a margin for harder data at ~0.25 ms.
 * filterScanRatio 12: the crossover between a filtered graph walk and an exact scan of the admissible vectors
 * measured there at 20k and 100k vectors (about 19 % admissible at 20k, 9 % at 100k, for ef 64).
 */
export const HNSW_DEFAULTS: HnswOptions = {
  m: 16,
  efConstruction: 200,
  efSearch: 64,
  seed: 100,
  filterScanRatio: 12,
};

/** Slots sampled to estimate how selective a group predicate is. */
const SELECTIVITY_SAMPLE = 1024;

type HnswlibModule = typeof import('hnswlib-node');
let hnswlib: HnswlibModule | undefined;

/**
 * Loads the native hnswlib-node module on first use; throws an actionable error when it is unavailable.
 * `requireFn` is for tests (simulating a missing or broken install); the default result is cached.
 */
export function loadHnswlib(requireFn?: (id: string) => unknown): HnswlibModule {
  if (requireFn === undefined && hnswlib !== undefined) return hnswlib;
  try {
    const mod = (requireFn ?? createRequire(import.meta.url))('hnswlib-node') as HnswlibModule;
    if (typeof mod?.HierarchicalNSW !== 'function')
      throw new Error('hnswlib-node has no HierarchicalNSW export');
    if (requireFn === undefined) hnswlib = mod;
    return mod;
  } catch (e) {
    throw new QuarryError(
      'INVALID_CONFIG',
      'the ANN vector index needs the native package hnswlib-node, which could not be loaded ' +
        `(${e instanceof Error ? e.message.split('\n')[0] : String(e)}). Install it with ` +
        '`npm install hnswlib-node@3.0.0` (it compiles with node-gyp: needs python3, make and a C++ compiler), ' +
        'or set annThreshold to Infinity to keep exact vector search',
      { package: 'hnswlib-node' },
      e,
    );
  }
}

/** How the last search was answered (for traces and tests). */
export interface HnswSearchStats {
  strategy: 'graph' | 'graph-filtered' | 'exact-filtered' | 'exact-fallback';
  /** Estimated admissible fraction (filtered searches only). */
  admissibleEstimate?: number;
  /** Distinct groups the predicate was evaluated on. */
  groupsEvaluated?: number;
}

function checkOptions(o: HnswOptions): HnswOptions {
  const ints: Array<keyof HnswOptions> = ['m', 'efConstruction', 'efSearch', 'seed'];
  for (const key of ints) {
    const v = o[key];
    if (!Number.isInteger(v) || v < (key === 'seed' ? 0 : 2)) {
      throw new QuarryError(
        'INVALID_CONFIG',
        `hnsw.${key} must be an integer ≥ ${key === 'seed' ? 0 : 2}, got ${v}`,
      );
    }
  }
  if (!(o.filterScanRatio >= 0)) {
    throw new QuarryError('INVALID_CONFIG', `hnsw.filterScanRatio must be ≥ 0, got ${o.filterScanRatio}`);
  }
  return o;
}

export class HnswIndex implements VectorIndex {
  readonly kind = 'hnsw' as const;
  readonly info: VectorIndexInfo;
  readonly options: HnswOptions;
  readonly store: VectorStore;
  private readonly graph: HierarchicalNSW;
  private currentEf = -1;
  lastSearch: HnswSearchStats = { strategy: 'graph' };

  private constructor(
    info: VectorIndexInfo,
    options: HnswOptions,
    store: VectorStore,
    graph: HierarchicalNSW,
  ) {
    this.info = info;
    this.options = options;
    this.store = store;
    this.graph = graph;
  }

  private static space(info: VectorIndexInfo): 'ip' | 'l2' {
    // Cosine vectors are normalized on the way in, so inner product is cosine similarity.
    return info.metric === 'l2' ? 'l2' : 'ip';
  }

  static create(info: VectorIndexInfo, opts: Partial<HnswOptions> = {}, capacity = 1024): HnswIndex {
    const valid = validateInfo(info);
    const options = checkOptions({ ...HNSW_DEFAULTS, ...opts });
    const lib = loadHnswlib();
    const store = new VectorStore(valid, true, capacity);
    const graph = new lib.HierarchicalNSW(HnswIndex.space(valid), valid.dimension);
    graph.initIndex(store.capacity, options.m, options.efConstruction, options.seed, false);
    return new HnswIndex(valid, options, store, graph);
  }

  /** Builds a graph over the live vectors of another store (the exact → ANN switch). */
  static build(info: VectorIndexInfo, source: VectorStore, opts: Partial<HnswOptions> = {}): HnswIndex {
    const index = HnswIndex.create(info, opts, Math.max(source.live, 1024));
    for (const s of source.liveSlots()) index.add(source.chunkIds[s]!, source.group(s), source.vectorView(s));
    return index;
  }

  /** Restores an index from its persisted store and the bytes of hnswlib's index file. */
  static restore(
    info: VectorIndexInfo,
    opts: Partial<HnswOptions>,
    store: VectorStore,
    graphBytes: Uint8Array,
  ): HnswIndex {
    const valid = validateInfo(info);
    const options = checkOptions({ ...HNSW_DEFAULTS, ...opts });
    const lib = loadHnswlib();
    const graph = new lib.HierarchicalNSW(HnswIndex.space(valid), valid.dimension);
    withTempFile((file) => {
      fs.writeFileSync(file, graphBytes);
      graph.readIndexSync(file, false);
    });
    if (graph.getNumDimensions() !== valid.dimension || graph.getCurrentCount() !== store.count) {
      throw new Error('persisted HNSW graph does not match its vectors');
    }
    if (graph.getMaxElements() < store.capacity) graph.resizeIndex(store.capacity);
    return new HnswIndex(valid, options, store, graph);
  }

  /** hnswlib's index file, as bytes (written through a private temp file). */
  graphBytes(): Uint8Array {
    let bytes: Uint8Array = new Uint8Array(0);
    withTempFile((file) => {
      this.graph.writeIndexSync(file);
      bytes = fs.readFileSync(file);
    });
    return bytes;
  }

  get size(): number {
    return this.store.live;
  }

  has(chunkId: number): boolean {
    return this.store.slotOf.has(chunkId);
  }

  add(chunkId: number, group: number, vector: Float32Array): void {
    const store = this.store;
    if (store.slotOf.has(chunkId)) {
      store.validate(chunkId, vector);
      this.remove(chunkId);
    }
    // Dead slots are reused: hnswlib then updates that (deleted) node in place instead of growing the graph.
    const slot = store.insert(chunkId, group, vector);
    if (store.capacity > this.graph.getMaxElements()) this.graph.resizeIndex(store.capacity);
    try {
      this.graph.addPoint(Array.from(store.vectorView(slot)), slot);
    } catch (e) {
      store.delete(chunkId);
      throw e;
    }
  }

  remove(chunkId: number): boolean {
    const slot = this.store.delete(chunkId);
    if (slot < 0) return false;
    this.graph.markDelete(slot);
    return true;
  }

  search(query: Float32Array, k: number, opts: VectorSearchOptions = {}): VectorHit[] {
    checkK(k);
    const store = this.store;
    const q = store.prepareQuery(query);
    const kk = Math.min(k, store.live);
    if (kk === 0) return [];
    if (opts.ef !== undefined && !(Number.isInteger(opts.ef) && opts.ef >= 1)) {
      throw new QuarryError('INVALID_ARGUMENT', `ef must be a positive integer, got ${opts.ef}`, {
        ef: opts.ef,
      });
    }
    const ef = Math.max(opts.ef ?? this.options.efSearch, kk);
    if (opts.allowGroup === undefined) {
      const hits = this.graphSearch(q, kk, ef, undefined);
      this.lastSearch = { strategy: 'graph' };
      if (hits.length >= kk) return hits;
      this.lastSearch = { strategy: 'exact-fallback' };
      return store.scanTopK(q, kk, false);
    }
    const filter = store.filter;
    filter.begin(opts.allowGroup);
    const fraction = this.estimateAdmissible();
    const stats: HnswSearchStats = { strategy: 'exact-filtered', admissibleEstimate: fraction };
    let hits: VectorHit[] | undefined;
    const admissible = fraction * store.live;
    if (admissible >= 2 * kk && fraction * admissible >= this.options.filterScanRatio * ef) {
      const groupOrd = store.groupOrd;
      hits = this.graphSearch(q, kk, ef, (label) => filter.allowed(groupOrd[label]!));
      stats.strategy = 'graph-filtered';
      if (hits.length < kk) {
        hits = undefined;
        stats.strategy = 'exact-fallback';
      }
    }
    hits ??= store.scanTopK(q, kk, true);
    stats.groupsEvaluated = filter.evaluated;
    this.lastSearch = stats;
    return hits;
  }

  /** Admissible fraction on an evenly strided sample of live slots (the predicate is memoized per group). */
  private estimateAdmissible(): number {
    const store = this.store;
    const step = Math.max(1, store.count / SELECTIVITY_SAMPLE);
    let sampled = 0;
    let admissible = 0;
    for (let x = 0; x < store.count; x += step) {
      const s = Math.floor(x);
      if (store.alive[s] !== 1) continue;
      sampled++;
      if (store.filter.allowed(store.groupOrd[s]!)) admissible++;
    }
    return sampled === 0 ? 0 : admissible / sampled;
  }

  private graphSearch(
    q: PreparedQuery,
    k: number,
    ef: number,
    filter: ((label: number) => boolean) | undefined,
  ): VectorHit[] {
    if (ef !== this.currentEf) {
      this.graph.setEf(ef);
      this.currentEf = ef;
    }
    const res = this.graph.searchKnn(Array.from(q.vector), k, filter);
    // Rescore with the stored floats: scores then agree exactly with the exact index's.
    return this.store.rescore(q, res.neighbors, res.neighbors.length, k);
  }

  /**
   * Estimated bytes: the JS-side store plus hnswlib's allocations — per slot of capacity the level-0 block
   * (2M links + vector + label), link-list pointer, level, mutex and visited-list entry; per element the
   * expected upper-layer links and the label hash map; plus the fixed 65,536 label locks.
   */
  memoryBytes(): number {
    const { m } = this.options;
    const dim = this.info.dimension;
    const cap = this.graph.getMaxElements();
    const n = this.graph.getCurrentCount();
    const perSlot = 2 * m * 4 + 4 + dim * 4 + 8 + 8 + 4 + 40 + 2;
    const upper = (n / (m - 1)) * (m * 4 + 4 + 16);
    return this.store.memoryBytes() + cap * perSlot + upper + n * MAP_ENTRY_BYTES + 65_536 * 40;
  }

  assertCompatible(other: VectorIndexInfo): void {
    assertCompatible(this.info, other);
  }
}

function withTempFile(fn: (file: string) => void): void {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'quarry-hnsw-'));
  try {
    fn(path.join(dir, 'graph.bin'));
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

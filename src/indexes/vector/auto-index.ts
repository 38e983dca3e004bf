/**
 * The vector index the pipeline holds: exact search while the collection is small, switching itself to HNSW
 * when it crosses `annThreshold`, and persisted beside the store as one artifact tagged with the model,
 * dimension, metric and store index version (a stale or foreign artifact is ignored and the caller rebuilds).
 */
import { crc32 } from 'node:zlib';
import { QuarryError } from '../../errors.js';
import { ExactIndex, type ExactIndexOptions } from './exact-index.js';
import { HNSW_DEFAULTS, HnswIndex, type HnswOptions } from './hnsw-index.js';
import type { Quantization } from './quantize.js';
import {
  assertCompatible,
  type VectorHit,
  type VectorIndex,
  type VectorIndexInfo,
  type VectorSearchOptions,
  validateInfo,
} from './types.js';
import { VectorStore } from './vector-store.js';

export interface VectorIndexOptions {
  /** Live vectors at which the index switches from exact search to HNSW. Default 20,000; Infinity = never. */
  annThreshold?: number;
  /** Codes for the exact index's candidate pass (HNSW always searches float vectors). Default `none`. */
  quantization?: Quantization;
  exact?: Omit<ExactIndexOptions, 'quantization'>;
  hnsw?: Partial<HnswOptions>;
}

/**
 * 20,000: an exact scan of 20k 256-d vectors takes ~5 ms (bench/vector.ts: ~25 ms at 100k, linear in
 * n · dim), so below it HNSW's build (~8 s for 20k at 256-d), extra memory and approximation buy little;
 * above it exact latency keeps growing while HNSW stays under a millisecond.
 */
export const DEFAULT_ANN_THRESHOLD = 20_000;

/** Bumped whenever the persisted layout changes; older artifacts are then rebuilt. */
export const VECTOR_FORMAT_VERSION = 1;
const MAGIC = 'QVECIDX\n';

export class AutoVectorIndex implements VectorIndex {
  readonly info: VectorIndexInfo;
  readonly annThreshold: number;
  private readonly opts: VectorIndexOptions;
  private inner: ExactIndex | HnswIndex;

  constructor(info: VectorIndexInfo, opts: VectorIndexOptions = {}, inner?: ExactIndex | HnswIndex) {
    this.info = validateInfo(info);
    this.annThreshold = opts.annThreshold ?? DEFAULT_ANN_THRESHOLD;
    if (!(this.annThreshold >= 1)) {
      throw new QuarryError(
        'INVALID_CONFIG',
        `annThreshold must be ≥ 1 (or Infinity), got ${opts.annThreshold}`,
      );
    }
    this.opts = opts;
    this.inner = inner ?? new ExactIndex(this.info, { ...opts.exact, quantization: opts.quantization });
  }

  get kind(): 'exact' | 'hnsw' {
    return this.inner.kind;
  }

  get size(): number {
    return this.inner.size;
  }

  /** The current backend (for stats, traces and benchmarks). */
  get backend(): ExactIndex | HnswIndex {
    return this.inner;
  }

  has(chunkId: number): boolean {
    return this.inner.has(chunkId);
  }

  add(chunkId: number, group: number, vector: Float32Array): void {
    this.inner.add(chunkId, group, vector);
    if (this.inner.kind === 'exact' && this.inner.size >= this.annThreshold) this.switchToAnn();
  }

  remove(chunkId: number): boolean {
    return this.inner.remove(chunkId);
  }

  search(query: Float32Array, k: number, opts?: VectorSearchOptions): VectorHit[] {
    return this.inner.search(query, k, opts);
  }

  memoryBytes(): number {
    return this.inner.memoryBytes();
  }

  assertCompatible(other: VectorIndexInfo): void {
    assertCompatible(this.info, other);
  }

  /**
   * Builds the HNSW graph from the stored vectors and drops the exact index. Synchronous: it takes roughly
   * the HNSW build time of `size` vectors (see bench/vector.ts). If hnswlib-node cannot be loaded the index
   * stays exact (still correct) and the error is thrown.
   */
  switchToAnn(): void {
    if (this.inner.kind === 'hnsw') return;
    this.inner = HnswIndex.build(this.info, this.inner.store, this.opts.hnsw);
  }

  /**
   * The index as byte chunks for `DocumentStore.writeArtifact` (which writes atomically), tagged with the
   * store's `indexVersion`. HNSW graphs are embedded as hnswlib's own file bytes.
   */
  serialize(indexVersion: number): Uint8Array[] {
    const inner = this.inner;
    if (inner.kind === 'exact') inner.compact();
    const arrays = inner.store.exportArrays();
    const sections: Array<{ name: string; data: Uint8Array }> = [
      { name: 'chunkIds', data: bytesOf(arrays.chunkIds) },
      { name: 'groups', data: bytesOf(arrays.groups) },
      { name: 'alive', data: bytesOf(arrays.alive) },
      { name: 'vectors', data: bytesOf(arrays.vectors) },
    ];
    if (inner.kind === 'hnsw') sections.push({ name: 'graph', data: inner.graphBytes() });
    let crc = 0;
    for (const s of sections) crc = crc32(s.data, crc);
    const header: Header = {
      format: VECTOR_FORMAT_VERSION,
      indexVersion,
      info: this.info,
      kind: inner.kind,
      count: arrays.chunkIds.length,
      hnsw:
        inner.kind === 'hnsw'
          ? { m: inner.options.m, efConstruction: inner.options.efConstruction }
          : undefined,
      sections: sections.map((s) => ({ name: s.name, byteLength: s.data.byteLength })),
      crc32: crc,
    };
    const headerBytes = new TextEncoder().encode(JSON.stringify(header));
    const prefix = new Uint8Array(MAGIC.length + 4);
    prefix.set(new TextEncoder().encode(MAGIC));
    new DataView(prefix.buffer).setUint32(MAGIC.length, headerBytes.byteLength, true);
    const out: Uint8Array[] = [prefix, headerBytes, new Uint8Array(pad8(prefix.length + headerBytes.length))];
    for (const s of sections) out.push(s.data, new Uint8Array(pad8(s.data.byteLength)));
    return out;
  }
}

interface Header {
  format: number;
  indexVersion: number;
  info: VectorIndexInfo;
  kind: 'exact' | 'hnsw';
  count: number;
  hnsw?: { m: number; efConstruction: number } | undefined;
  sections: Array<{ name: string; byteLength: number }>;
  crc32: number;
}

const pad8 = (n: number): number => (8 - (n % 8)) % 8;

function bytesOf(a: Uint8Array | Uint32Array | Float32Array | Float64Array): Uint8Array {
  return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
}

/** What a snapshot's header says, read without restoring its vectors (see `readVectorSnapshotHeader`). */
export interface VectorSnapshotHeader {
  indexVersion: number;
  info: VectorIndexInfo;
  kind: 'exact' | 'hnsw';
  /** Vector slots written (HNSW may count slots of deleted chunks). */
  count: number;
  /** Bytes of the header and its prefix: read this many to parse it. */
  byteLength: number;
}

/** Bytes to read first: the magic and the header length; `readVectorSnapshotHeader` then says how many more. */
export const VECTOR_SNAPSHOT_PREFIX_BYTES = MAGIC.length + 4;

/**
 * Parse a snapshot's header from its first bytes. With fewer bytes than the header needs, returns
 * `{ byteLength }` only, so the caller can read that many and try again; undefined when not a snapshot.
 */
export function readVectorSnapshotHeader(
  head: Uint8Array,
): VectorSnapshotHeader | { byteLength: number } | undefined {
  if (head.byteLength < VECTOR_SNAPSHOT_PREFIX_BYTES) return undefined;
  if (new TextDecoder().decode(head.subarray(0, MAGIC.length)) !== MAGIC) return undefined;
  const len = new DataView(head.buffer, head.byteOffset, head.byteLength).getUint32(MAGIC.length, true);
  const byteLength = VECTOR_SNAPSHOT_PREFIX_BYTES + len;
  if (head.byteLength < byteLength) return { byteLength };
  try {
    const h = JSON.parse(
      new TextDecoder().decode(head.subarray(VECTOR_SNAPSHOT_PREFIX_BYTES, byteLength)),
    ) as Partial<Header>;
    if (
      h.format !== VECTOR_FORMAT_VERSION ||
      typeof h.indexVersion !== 'number' ||
      h.info === undefined ||
      (h.kind !== 'exact' && h.kind !== 'hnsw') ||
      !Number.isInteger(h.count)
    )
      return undefined;
    return { indexVersion: h.indexVersion, info: h.info, kind: h.kind, count: h.count!, byteLength };
  } catch {
    return undefined;
  }
}

/** A vector index for `info`: exact below `annThreshold` live vectors, HNSW from there on. */
export function createVectorIndex(info: VectorIndexInfo, opts: VectorIndexOptions = {}): AutoVectorIndex {
  return new AutoVectorIndex(info, opts);
}

/**
 * Restores a serialized index. Returns undefined — the caller rebuilds from the store — when the bytes are
 * not a vector index, are corrupt, or were written for another model/dimension/metric, index version,
 * format version or HNSW graph settings. Throws only when the artifact is valid but needs hnswlib-node and
 * that cannot be loaded.
 */
export function deserializeVectorIndex(
  buf: Uint8Array,
  expected: { info: VectorIndexInfo; indexVersion: number },
  opts: VectorIndexOptions = {},
): AutoVectorIndex | undefined {
  const info = validateInfo(expected.info);
  let header: Header;
  const sections = new Map<string, Uint8Array>();
  try {
    const magic = new TextDecoder().decode(buf.subarray(0, MAGIC.length));
    if (buf.byteLength < MAGIC.length + 4 || magic !== MAGIC) return undefined;
    const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
    const headerLength = view.getUint32(MAGIC.length, true);
    let offset = MAGIC.length + 4;
    if (offset + headerLength > buf.byteLength) return undefined;
    header = JSON.parse(new TextDecoder().decode(buf.subarray(offset, offset + headerLength))) as Header;
    if (
      header.format !== VECTOR_FORMAT_VERSION ||
      header.indexVersion !== expected.indexVersion ||
      header.info?.modelId !== info.modelId ||
      header.info.dimension !== info.dimension ||
      header.info.metric !== info.metric ||
      (header.kind !== 'exact' && header.kind !== 'hnsw') ||
      !Number.isInteger(header.count) ||
      header.count < 0 ||
      !Array.isArray(header.sections)
    ) {
      return undefined;
    }
    if (header.kind === 'hnsw') {
      const want = { ...HNSW_DEFAULTS, ...opts.hnsw };
      if (header.hnsw?.m !== want.m || header.hnsw.efConstruction !== want.efConstruction) return undefined;
    }
    offset += headerLength;
    offset += pad8(offset);
    let crc = 0;
    for (const sec of header.sections) {
      const end = offset + sec.byteLength;
      if (!Number.isInteger(sec.byteLength) || sec.byteLength < 0 || end > buf.byteLength) return undefined;
      // Copy into a fresh aligned buffer: typed-array views need alignment, Buffers from disk may be pooled.
      const bytes = new Uint8Array(buf.subarray(offset, end));
      crc = crc32(bytes, crc);
      sections.set(sec.name, bytes);
      offset = end + pad8(sec.byteLength);
    }
    if (crc !== header.crc32) return undefined;
  } catch {
    return undefined;
  }
  const n = header.count;
  const dim = info.dimension;
  const section = (name: string, bytesPer: number, count: number): Uint8Array | undefined => {
    const s = sections.get(name);
    return s !== undefined && s.byteLength === bytesPer * count ? s : undefined;
  };
  const ids = section('chunkIds', 4, n);
  const groups = section('groups', 8, n);
  const alive = section('alive', 1, n);
  const vectors = section('vectors', 4, n * dim);
  if (ids === undefined || groups === undefined || alive === undefined || vectors === undefined)
    return undefined;
  let store: VectorStore;
  try {
    store = VectorStore.restore(info, header.kind === 'hnsw', {
      chunkIds: new Uint32Array(ids.buffer, ids.byteOffset, n),
      groups: new Float64Array(groups.buffer, groups.byteOffset, n),
      alive: new Uint8Array(alive.buffer, alive.byteOffset, n),
      vectors: new Float32Array(vectors.buffer, vectors.byteOffset, n * dim),
    });
  } catch {
    return undefined;
  }
  let inner: ExactIndex | HnswIndex;
  if (header.kind === 'exact') {
    inner = new ExactIndex(info, { ...opts.exact, quantization: opts.quantization }, store);
  } else {
    const graph = sections.get('graph');
    if (graph === undefined) return undefined;
    try {
      inner = HnswIndex.restore(info, opts.hnsw ?? {}, store, graph);
    } catch (e) {
      if (e instanceof QuarryError) throw e;
      return undefined;
    }
  }
  const index = new AutoVectorIndex(info, opts, inner);
  if (index.kind === 'exact' && index.size >= index.annThreshold) index.switchToAnn();
  return index;
}

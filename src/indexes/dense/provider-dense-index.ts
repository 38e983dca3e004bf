/**
 * A dense index whose vectors come from an asynchronous embedder (an OpenAI-compatible endpoint, a local ONNX
 * model in worker threads). Such an embedder cannot run inside the store's synchronous write path, so the
 * index reconciles instead: `sync()` compares the vectors it holds with the store's chunks by chunk id,
 * drops vectors of deleted chunks, embeds the missing ones in batches (through the embedding cache, so
 * unchanged text is never paid for twice) and persists. Deletes are mirrored synchronously (no embedding
 * needed), so a deleted document is never retrievable, even before the next sync.
 *
 * The artifact records the embedding model id and dimension: opening it with another model is refused, so
 * vectors of two models are never mixed; switching models means building a new index under a new name.
 */
import { type CachedEmbedder, cachedEmbedder, type EmbeddingCache } from '../../embed/cache.js';
import { type Embedder, type EmbedOptions, wrapEmbedder } from '../../embed/types.js';
import { QuarryError } from '../../errors.js';
import type { DocumentStore, WriteOutcome } from '../../store/types.js';
import {
  type AutoVectorIndex,
  createVectorIndex,
  deserializeVectorIndex,
  type VectorIndexOptions,
} from '../vector/auto-index.js';
import type { VectorHit, VectorIndexInfo } from '../vector/types.js';
import { type DenseIndexSummary, embeddingText, snapshotSummary, storedVectors } from './dense-index.js';

export interface ProviderDenseIndexOptions {
  /** The configured model name; the artifact is `dense-<name>.snapshot`. */
  name: string;
  /** Starts the embedder (once, on first use). */
  load: () => Promise<Embedder>;
  /** The model id when known without loading (remote models): checked against the artifact at `open()`. */
  expectedModelId?: string;
  /** Embeddings of chunk and query texts are looked up here first (keyed by model id and text hash). */
  cache?: () => EmbeddingCache | undefined;
  vectors?: VectorIndexOptions;
  /** Chunks per embedding call during sync (each call is split further into the provider's own batches). */
  syncBatchSize?: number;
}

export interface DenseSyncReport {
  model: string;
  modelId: string;
  /** Chunks sent to the embedder (cache misses). */
  embedded: number;
  /** Chunks whose vectors came from the embedding cache. */
  cached: number;
  /** Vectors dropped because their chunks left the store. */
  removed: number;
  /** Chunks the model gave no usable direction (all-zero vectors): BM25 finds them, dense cannot. */
  skipped: number;
  /** Live vectors afterwards. */
  size: number;
  indexVersion: number;
  ms: number;
}

const MAGIC = 'QVECIDX\n';

/**
 * The model description and store index version in a vector-index artifact's header (the layout is
 * `auto-index.ts`'s: magic, little-endian header length, JSON header). Undefined when unreadable.
 */
export function readSnapshotHeader(
  buf: Uint8Array,
): { info: VectorIndexInfo; indexVersion: number } | undefined {
  try {
    if (buf.byteLength < MAGIC.length + 4) return undefined;
    if (new TextDecoder().decode(buf.subarray(0, MAGIC.length)) !== MAGIC) return undefined;
    const len = new DataView(buf.buffer, buf.byteOffset, buf.byteLength).getUint32(MAGIC.length, true);
    const start = MAGIC.length + 4;
    if (start + len > buf.byteLength) return undefined;
    const h = JSON.parse(new TextDecoder().decode(buf.subarray(start, start + len))) as {
      info?: Partial<VectorIndexInfo>;
      indexVersion?: unknown;
    };
    const info = h.info;
    if (
      typeof info?.modelId !== 'string' ||
      typeof info.dimension !== 'number' ||
      (info.metric !== 'cosine' && info.metric !== 'ip' && info.metric !== 'l2') ||
      typeof h.indexVersion !== 'number'
    )
      return undefined;
    return {
      info: { modelId: info.modelId, dimension: info.dimension, metric: info.metric },
      indexVersion: h.indexVersion,
    };
  } catch {
    return undefined;
  }
}

function isZero(v: Float32Array): boolean {
  for (let i = 0; i < v.length; i++) if (v[i] !== 0) return false;
  return true;
}

export class ProviderDenseIndex {
  readonly name: string;
  readonly artifact: string;
  private index: AutoVectorIndex | undefined;
  /** What the artifact on disk was built with (kept even when its vectors could not be restored). */
  private recorded: VectorIndexInfo | undefined;
  /** The store index version whose chunks the held vectors fully reflect; -1 = unknown. */
  private version = -1;
  private embedderPromise: Promise<CachedEmbedder> | undefined;
  private loaded: CachedEmbedder | undefined;
  private raw: Embedder | undefined;
  private syncing: Promise<DenseSyncReport> | undefined;
  /** Chunks whose vector was all zeros: not indexed, not re-embedded on every sync. */
  private readonly empty = new Set<number>();
  private opened = false;
  /** Vectors or version changed since the artifact was last written (persisting costs a full write). */
  private dirty = false;

  constructor(
    private readonly store: DocumentStore,
    private readonly opts: ProviderDenseIndexOptions,
  ) {
    this.name = opts.name;
    this.artifact = `dense-${opts.name}.snapshot`;
  }

  /** The model the vectors come from: the loaded embedder's id, else the one recorded on disk. */
  get modelId(): string | undefined {
    return this.loaded?.id ?? this.recorded?.modelId ?? this.opts.expectedModelId;
  }

  get dimension(): number {
    return this.index?.info.dimension ?? this.recorded?.dimension ?? this.loaded?.dimension ?? 0;
  }

  get size(): number {
    return this.index?.size ?? 0;
  }

  get kind(): string {
    return this.index?.kind ?? 'none';
  }

  get indexVersion(): number {
    return this.version;
  }

  /** True when the held vectors reflect the store as it is now. */
  get current(): boolean {
    return this.version === this.store.indexVersion();
  }

  memoryBytes(): number {
    return this.index?.memoryBytes() ?? 0;
  }

  /** What is built (as `DenseIndex.summary`): vectors in memory, else the snapshot on disk. */
  summary(): DenseIndexSummary {
    const storeVersion = this.store.indexVersion();
    if (this.index !== undefined)
      return {
        model: this.modelId ?? null,
        index: this.index.kind,
        vectors: this.index.size,
        memoryBytes: this.index.memoryBytes(),
        state: this.version === storeVersion ? 'loaded' : 'stale',
      };
    return snapshotSummary(this.store, this.artifact, storeVersion, this.modelId ?? null);
  }

  /** The embedder (behind the cache), when it has been started. */
  get embedder(): CachedEmbedder | undefined {
    return this.loaded;
  }

  /** The provider's own embedder (its stats: requests, worker threads…), when it has been started. */
  get providerEmbedder(): Embedder | undefined {
    return this.raw;
  }

  /**
   * Reads the artifact (cheap: no embedder is started). Throws `EMBEDDING_MODEL_MISMATCH` when it was built
   * with a model other than the configured one (when that is known without loading).
   */
  open(): void {
    if (this.opened) return;
    this.opened = true;
    const buf = this.store.readArtifact(this.artifact);
    if (buf === undefined) return;
    const bytes = new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength);
    const header = readSnapshotHeader(bytes);
    if (header === undefined) return; // not an index (or corrupt): rebuilt by the next sync
    this.recorded = header.info;
    if (this.opts.expectedModelId !== undefined) this.checkModel(this.opts.expectedModelId, 0);
    const restored = deserializeVectorIndex(bytes, header, this.opts.vectors);
    if (restored === undefined) return;
    this.index = restored;
    this.version = header.indexVersion;
  }

  private checkModel(modelId: string, dimension: number): void {
    const rec = this.recorded ?? this.index?.info;
    if (rec === undefined) return;
    if (rec.modelId === modelId && (dimension === 0 || dimension === rec.dimension)) return;
    const got = dimension === 0 ? '' : ` (dimension ${dimension})`;
    throw new QuarryError(
      'EMBEDDING_MODEL_MISMATCH',
      `dense index "${this.name}" was built with "${rec.modelId}" (dimension ${rec.dimension}) but the model ` +
        `configured under that name is "${modelId}"${got}; vectors of different models cannot be mixed. ` +
        `Give the new model a new name in retrieval.dense.models (it is built beside the old index), or ` +
        `delete ${this.store.dir}/artifacts/${this.artifact} to rebuild this index with the new model`,
      {
        index: this.name,
        indexModel: rec.modelId,
        indexDimension: rec.dimension,
        configuredModel: modelId,
        ...(dimension === 0 ? {} : { configuredDimension: dimension }),
        artifact: this.artifact,
      },
    );
  }

  /** Starts the embedder once (concurrent callers share it); a failed start is retried by the next caller. */
  private embedderReady(): Promise<CachedEmbedder> {
    this.open();
    if (this.embedderPromise === undefined) {
      const started = (async () => {
        const raw = await this.opts.load();
        try {
          this.checkModel(raw.id, raw.dimension);
        } catch (e) {
          await raw.close?.();
          throw e;
        }
        const cache = this.opts.cache?.();
        const e = cache === undefined ? withStats(raw) : cachedEmbedder(raw, cache);
        this.loaded = e;
        this.raw = raw;
        return e;
      })();
      this.embedderPromise = started;
      started.catch(() => {
        if (this.embedderPromise === started) this.embedderPromise = undefined;
      });
    }
    return this.embedderPromise;
  }

  /** Vectors of another model or dimension never enter the index. */
  private accept(embedder: Embedder, v: Float32Array): void {
    const info = this.index?.info;
    if (info === undefined) return;
    if (info.modelId !== embedder.id || v.length !== info.dimension) {
      this.recorded ??= info;
      this.checkModel(embedder.id, v.length);
    }
  }

  /**
   * Brings the index in step with the store: drops vectors of chunks that are gone, embeds chunks that have
   * none, persists. Concurrent calls share one run. Throws `EMBEDDING_FAILED` (the provider's error) when
   * embedding fails; what was embedded before the failure is kept (and persisted), deletions always apply.
   */
  sync(signal?: AbortSignal): Promise<DenseSyncReport> {
    if (this.syncing === undefined) {
      const run = this.runSync(signal);
      this.syncing = run;
      void run.then(
        () => {
          this.syncing = undefined;
        },
        () => {
          this.syncing = undefined;
        },
      );
    }
    return this.syncing;
  }

  private async runSync(signal?: AbortSignal): Promise<DenseSyncReport> {
    const t0 = performance.now();
    const embedder = await this.embedderReady();
    const report: DenseSyncReport = {
      model: this.name,
      modelId: embedder.id,
      embedded: 0,
      cached: 0,
      removed: 0,
      skipped: 0,
      size: 0,
      indexVersion: this.version,
      ms: 0,
    };
    const batchSize = this.opts.syncBatchSize ?? 512;
    const hits0 = embedder.stats.hits;
    const misses0 = embedder.stats.misses;
    try {
      // Writes may land while we await the embedder: go round until the store holds still.
      for (let round = 0; round < 100 && !this.current; round++) {
        const target = this.store.indexVersion();
        const live = new Set<number>();
        const missing: Array<{ id: number; group: number; text: string }> = [];
        for (const c of this.store.iterateChunks()) {
          live.add(c.id);
          if (this.index?.has(c.id) !== true && !this.empty.has(c.id))
            missing.push({ id: c.id, group: c.docKey, text: embeddingText(c) });
        }
        report.removed += this.prune(live);
        for (const id of this.empty) if (!live.has(id)) this.empty.delete(id);
        for (let start = 0; start < missing.length; start += batchSize) {
          const batch = missing.slice(start, start + batchSize);
          const vectors = await embedder.embed(
            batch.map((m) => m.text),
            signal === undefined ? { kind: 'document' } : { kind: 'document', signal },
          );
          this.addAll(embedder, batch, vectors, report);
        }
        // Chunks deleted while we were embedding are pruned by the next round (the version moved on).
        if (this.version !== target) this.dirty = true;
        this.version = target;
      }
    } finally {
      report.embedded = embedder.stats.misses - misses0;
      report.cached = embedder.stats.hits - hits0;
      report.size = this.size;
      report.indexVersion = this.version;
      report.ms = Math.round(performance.now() - t0);
      this.persist();
    }
    return report;
  }

  private addAll(
    embedder: Embedder,
    batch: Array<{ id: number; group: number }>,
    vectors: Float32Array[],
    report: DenseSyncReport,
  ): void {
    batch.forEach((m, i) => {
      const v = vectors[i]!;
      if (isZero(v)) {
        this.empty.add(m.id);
        report.skipped++;
        return;
      }
      if (this.index === undefined) {
        const info: VectorIndexInfo = { modelId: embedder.id, dimension: v.length, metric: 'cosine' };
        if (this.recorded !== undefined) this.checkModel(info.modelId, info.dimension);
        this.index = createVectorIndex(info, this.opts.vectors);
      }
      this.accept(embedder, v);
      this.index.add(m.id, m.group, v);
      this.dirty = true;
    });
  }

  /** Removes vectors whose chunk is not in `live`; returns how many. */
  private prune(live: ReadonlySet<number>): number {
    if (this.index === undefined) return 0;
    const gone: number[] = [];
    for (const id of this.index.backend.store.slotOf.keys()) if (!live.has(id)) gone.push(id);
    for (const id of gone) this.index.remove(id);
    if (gone.length > 0) this.dirty = true;
    return gone.length;
  }

  /**
   * Mirrors a committed write: vectors of removed chunks go at once (no embedding needed, so a deleted
   * document is never retrievable); added chunks wait for the next `sync()`.
   */
  apply(outcome: WriteOutcome): void {
    let added = false;
    for (const r of outcome.results) {
      for (const id of r.removedChunkIds) {
        if (this.index?.remove(id) === true) this.dirty = true;
        this.empty.delete(id);
      }
      if (r.addedChunks.length > 0) added = true;
    }
    // A pure delete on an index that was current leaves it current.
    if (!added && this.version === outcome.indexVersion - 1) {
      this.version = outcome.indexVersion;
      this.dirty = true;
    }
  }

  /** Writes the held vectors, tagged with the store version they fully reflect (-1: reconcile on open). */
  persist(): void {
    if (this.index === undefined || !this.dirty) return;
    this.store.writeArtifact(this.artifact, this.index.serialize(this.version));
    this.recorded = this.index.info;
    this.dirty = false;
  }

  /** Embeds a query with this index's own model (through the cache). */
  async embedQuery(
    text: string,
    signal?: AbortSignal,
    onUsage?: EmbedOptions['onUsage'],
  ): Promise<Float32Array> {
    const [v] = await this.embedQueries([text], signal, onUsage);
    return v!;
  }

  /** Embeds queries in one call with this index's own model (through the cache). */
  async embedQueries(
    texts: string[],
    signal?: AbortSignal,
    onUsage?: EmbedOptions['onUsage'],
  ): Promise<Float32Array[]> {
    const embedder = await this.embedderReady();
    const out = await embedder.embed(texts, {
      kind: 'query',
      ...(signal === undefined ? {} : { signal }),
      ...(onUsage === undefined ? {} : { onUsage }),
    });
    if (out.length !== texts.length)
      throw new QuarryError(
        'EMBEDDING_FAILED',
        `model "${embedder.id}" returned ${out.length} vector(s) for ${texts.length} queries`,
        { model: embedder.id },
      );
    return out;
  }

  /**
   * Top-k chunks for a query vector. `modelId` names the model that embedded the query: another model's
   * vector is refused (`EMBEDDING_MODEL_MISMATCH`), even when the dimensions happen to agree.
   */
  search(query: Float32Array, k: number, allowGroup?: (g: number) => boolean, modelId?: string): VectorHit[] {
    const index = this.index;
    if (index === undefined) return [];
    if (modelId !== undefined && modelId !== index.info.modelId) {
      this.recorded ??= index.info;
      this.checkModel(modelId, query.length);
    }
    if (isZero(query)) return [];
    return index.search(query, k, allowGroup === undefined ? {} : { allowGroup });
  }

  /** Stored (normalized) vectors of the given chunks, as read-only views; chunks without one are absent. */
  vectorsOf(chunkIds: readonly number[]): Map<number, Float32Array> {
    return storedVectors(this.index, chunkIds);
  }

  /** Stops the embedder (workers, sockets). The index stays searchable with the vectors it holds. */
  async close(): Promise<void> {
    const p = this.embedderPromise;
    this.embedderPromise = undefined;
    this.loaded = undefined;
    this.raw = undefined;
    if (p === undefined) return;
    const e = await p.catch(() => undefined);
    await e?.close?.();
  }
}

/** The embedder with the same `stats` a cached one reports (every text is a miss). */
function withStats(embedder: Embedder): CachedEmbedder {
  const stats = { hits: 0, misses: 0 };
  return wrapEmbedder(embedder, {
    stats,
    async embed(texts: string[], opts?: EmbedOptions) {
      const out = await embedder.embed(texts, opts);
      stats.misses += texts.length;
      return out;
    },
  });
}

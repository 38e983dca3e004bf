/**
 * Keeps the dense index in step with the store, like the lexical index does: the built-in embedder is trained
 * on the store's own chunks (no downloaded weights), every chunk is embedded into a vector index that records
 * the embedder's model id and dimension, and both are persisted as artifacts tagged with the store's index
 * version. A stale or missing artifact is rebuilt; a query embedded by another model is refused.
 */
import { LocalEmbedder, type LocalEmbedderOptions } from '../../embed/local/local-embedder.js';
import type { DocumentStore, WriteOutcome } from '../../store/types.js';
import type { StoredChunk } from '../../types.js';
import {
  type AutoVectorIndex,
  createVectorIndex,
  deserializeVectorIndex,
  readVectorSnapshotHeader,
  VECTOR_SNAPSHOT_PREFIX_BYTES,
  type VectorIndexOptions,
  type VectorSnapshotHeader,
} from '../vector/auto-index.js';
import type { VectorHit } from '../vector/types.js';

const MODEL_ARTIFACT = 'local-embedder.model';
export const INDEX_ARTIFACT = 'dense.snapshot';

export interface DenseIndexOptions {
  embedder?: LocalEmbedderOptions;
  vectors?: VectorIndexOptions;
  /** Fewer chunks than this and the embedder is not trained (too little text to learn topics from). */
  minTrainingChunks?: number;
}

/** The text a chunk is embedded from: title and section headings give the body its context. */
export function embeddingText(chunk: Pick<StoredChunk, 'title' | 'sectionPath' | 'text'>): string {
  return [chunk.title, ...chunk.sectionPath, chunk.text].filter((s) => s.length > 0).join('\n');
}

function isZero(v: Float32Array): boolean {
  for (let i = 0; i < v.length; i++) if (v[i] !== 0) return false;
  return true;
}

/** A chunk made only of words the embedder never learned has no direction: BM25 finds it, dense cannot. */
function addVector(index: AutoVectorIndex, chunkId: number, group: number, v: Float32Array): void {
  if (isZero(v)) index.remove(chunkId);
  else index.add(chunkId, group, v);
}

/** Stored (normalized) vectors of the given chunks, as read-only views; chunks without one are absent. */
export function storedVectors(
  index: AutoVectorIndex | undefined,
  chunkIds: readonly number[],
): Map<number, Float32Array> {
  const out = new Map<number, Float32Array>();
  if (index === undefined) return out;
  const store = index.backend.store;
  for (const id of chunkIds) {
    const slot = store.slotOf.get(id);
    if (slot !== undefined) out.set(id, store.vectorView(slot));
  }
  return out;
}

/** A dense index as `stats` reports it: what is in memory, or else what the snapshot on disk holds. */
export interface DenseIndexSummary {
  model: string | null;
  /** `exact`, `hnsw`, or `none` when nothing is built. */
  index: string;
  vectors: number;
  /** Bytes held in memory (0 while the snapshot is only on disk). */
  memoryBytes: number;
  /**
   * `loaded`: in memory and current; `on-disk`: a current snapshot, loaded on the first dense query;
   * `stale`: built for an older version of the store, rebuilt on the first dense query; `none`: not built yet.
   */
  state: 'loaded' | 'on-disk' | 'stale' | 'none';
}

/** A snapshot's header, read from its first bytes only (the vectors can be hundreds of MiB). */
export function peekSnapshot(store: DocumentStore, name: string): VectorSnapshotHeader | undefined {
  const read = (n: number) =>
    store.readArtifactHead !== undefined ? store.readArtifactHead(name, n) : store.readArtifact(name);
  const prefix = read(VECTOR_SNAPSHOT_PREFIX_BYTES);
  if (prefix === undefined) return undefined;
  let h = readVectorSnapshotHeader(new Uint8Array(prefix.buffer, prefix.byteOffset, prefix.byteLength));
  if (h !== undefined && !('kind' in h)) {
    const head = read(h.byteLength);
    h =
      head === undefined
        ? undefined
        : readVectorSnapshotHeader(new Uint8Array(head.buffer, head.byteOffset, head.byteLength));
  }
  return h !== undefined && 'kind' in h ? h : undefined;
}

/** A dense index's summary from its snapshot's header alone: `none` without one, `stale` for an older store. */
export function snapshotSummary(
  store: DocumentStore,
  artifact: string,
  storeVersion: number,
  modelIfNone: string | null,
): DenseIndexSummary {
  const h = peekSnapshot(store, artifact);
  if (h === undefined)
    return { model: modelIfNone, index: 'none', vectors: 0, memoryBytes: 0, state: 'none' };
  const current = h.indexVersion === storeVersion;
  return {
    model: h.info.modelId,
    index: h.kind,
    vectors: current ? h.count : 0,
    memoryBytes: 0,
    state: current ? 'on-disk' : 'stale',
  };
}

export class DenseIndex {
  private embedderModel: LocalEmbedder | undefined;
  private index: AutoVectorIndex | undefined;
  private version = -1;
  loadedFrom: 'snapshot' | 'rebuild' | 'none' = 'none';

  constructor(
    private readonly store: DocumentStore,
    private readonly opts: DenseIndexOptions = {},
  ) {}

  get ready(): boolean {
    return this.index !== undefined && this.embedderModel !== undefined;
  }

  get embedder(): LocalEmbedder | undefined {
    return this.embedderModel;
  }

  get indexVersion(): number {
    return this.version;
  }

  get size(): number {
    return this.index?.size ?? 0;
  }

  get kind(): string {
    return this.index?.kind ?? 'none';
  }

  memoryBytes(): number {
    return this.index?.memoryBytes() ?? 0;
  }

  /** What is built, without loading it: the index in memory, else the header of the snapshot on disk. */
  summary(): DenseIndexSummary {
    const storeVersion = this.store.indexVersion();
    if (this.index !== undefined && this.embedderModel !== undefined && this.version === storeVersion)
      return {
        model: this.embedderModel.id,
        index: this.index.kind,
        vectors: this.index.size,
        memoryBytes: this.index.memoryBytes(),
        state: 'loaded',
      };
    return snapshotSummary(this.store, INDEX_ARTIFACT, storeVersion, null);
  }

  /**
   * Load the embedder and vectors (or train/build them) so the index matches the store. Returns false when the
   * store is too small to train on: dense retrieval then contributes nothing and hybrid falls back to BM25.
   */
  ensure(fromStore = false): boolean {
    const storeVersion = this.store.indexVersion();
    if (!fromStore && this.ready && this.version === storeVersion) return true;
    if (this.embedderModel === undefined) {
      const bytes = this.store.readArtifact(MODEL_ARTIFACT);
      if (bytes !== undefined) {
        try {
          this.embedderModel = LocalEmbedder.deserialize(new Uint8Array(bytes));
        } catch {
          this.embedderModel = undefined; // corrupt: retrain below
        }
      }
    }
    if (this.embedderModel === undefined) {
      const texts: string[] = [];
      for (const c of this.store.iterateChunks()) texts.push(embeddingText(c));
      if (texts.length < (this.opts.minTrainingChunks ?? 20)) return false;
      this.embedderModel = LocalEmbedder.train(texts, this.opts.embedder);
      this.store.writeArtifact(MODEL_ARTIFACT, Buffer.from(this.embedderModel.serialize()));
      this.index = undefined;
    }
    // A corpus with (almost) no term variation yields no latent dimensions: nothing for dense to add.
    if (this.embedderModel.dimension === 0) return false;
    const info = {
      modelId: this.embedderModel.id,
      dimension: this.embedderModel.dimension,
      metric: 'cosine' as const,
    };
    const buf = fromStore ? undefined : this.store.readArtifact(INDEX_ARTIFACT);
    const loaded =
      buf === undefined
        ? undefined
        : deserializeVectorIndex(
            new Uint8Array(buf),
            { info, indexVersion: storeVersion },
            this.opts.vectors,
          );
    if (loaded !== undefined) {
      this.index = loaded;
      this.loadedFrom = 'snapshot';
    } else {
      const index = createVectorIndex(info, this.opts.vectors);
      for (const c of this.store.iterateChunks())
        addVector(index, c.id, c.docKey, this.embedderModel.embedSync(embeddingText(c)));
      this.index = index;
      this.loadedFrom = 'rebuild';
    }
    this.version = storeVersion;
    if (this.loadedFrom === 'rebuild') this.persist();
    return true;
  }

  /** Rebuild the vectors from the store's chunks, ignoring the snapshot (`quarry check --repair`); persists them. */
  rebuild(): boolean {
    return this.ensure(true);
  }

  /** Mirror a committed write (only once built; an unbuilt index is built on first use). */
  apply(outcome: WriteOutcome): void {
    if (!this.ready || this.version !== outcome.indexVersion - 1) {
      this.version = -1; // rebuilt lazily by ensure()
      return;
    }
    const model = this.embedderModel!;
    const index = this.index!;
    for (const r of outcome.results) for (const id of r.removedChunkIds) index.remove(id);
    for (const r of outcome.results)
      for (const c of r.addedChunks) addVector(index, c.id, r.key, model.embedSync(embeddingText(c)));
    this.version = outcome.indexVersion;
  }

  persist(): void {
    if (this.index === undefined || this.version < 0) return;
    this.store.writeArtifact(INDEX_ARTIFACT, this.index.serialize(this.version));
  }

  /** Embed a query with the index's own model (so a model mismatch cannot happen silently). */
  embedQuery(query: string): Float32Array {
    if (this.embedderModel === undefined) throw new Error('dense index is not built');
    return this.embedderModel.embedSync(query);
  }

  /**
   * Stored (L2-normalized) vectors of the given chunks, as read-only views; chunks without a vector are
   * absent. Rerankers score pools the dense retriever did not return with these, without re-embedding.
   */
  vectorsOf(chunkIds: readonly number[]): Map<number, Float32Array> {
    return storedVectors(this.index, chunkIds);
  }

  search(query: Float32Array, k: number, allowGroup?: (g: number) => boolean): VectorHit[] {
    if (this.index === undefined || this.embedderModel === undefined) return [];
    // A query made only of words the embedder never saw has no direction: dense has no opinion on it.
    let norm = 0;
    for (let i = 0; i < query.length; i++) norm += query[i]! * query[i]!;
    if (norm === 0) return [];
    this.index.assertCompatible({
      modelId: this.embedderModel.id,
      dimension: query.length,
      metric: 'cosine',
    });
    return this.index.search(query, k, allowGroup === undefined ? {} : { allowGroup });
  }
}

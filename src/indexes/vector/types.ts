/**
 * The dense-vector index contract: what the pipeline's vector retriever talks to, whichever backend (exact
 * scan or HNSW) is behind it. Vectors are validated and (for cosine) L2-normalized here, once, on the way in.
 */
import { QuarryError } from '../../errors.js';

/** `cosine` scores cosine similarity, `ip` the raw inner product, `l2` the negated squared L2 distance. */
export type VectorMetric = 'cosine' | 'ip' | 'l2';

/** What a vector index holds: vectors of one embedding model, one dimension, one metric. */
export interface VectorIndexInfo {
  modelId: string;
  dimension: number;
  metric: VectorMetric;
}

/** One result. `score`: higher is better (cosine similarity for `cosine`). */
export interface VectorHit {
  chunkId: number;
  group: number;
  score: number;
}

/** Decides per document group whether its chunks may be returned (metadata filter ∧ access scope). */
export type VectorGroupPredicate = (group: number) => boolean;

export interface VectorSearchOptions {
  /** Only chunks whose group passes are returned; evaluated inside top-k selection, at most once per group. */
  allowGroup?: VectorGroupPredicate;
  /** HNSW search breadth (ignored by exact search). Defaults to the index's `efSearch`. */
  ef?: number;
}

export type VectorIndexKind = 'exact' | 'hnsw';

export interface VectorIndex {
  readonly info: VectorIndexInfo;
  readonly kind: VectorIndexKind;
  /** Live (not removed) vectors. */
  readonly size: number;
  has(chunkId: number): boolean;
  /** Add a chunk's vector; a chunk id already present is replaced. */
  add(chunkId: number, group: number, vector: Float32Array): void;
  /** Remove a chunk's vector; false if it was not indexed. */
  remove(chunkId: number): boolean;
  /** Top-k by score, best first; fewer than k only when fewer than k admissible vectors exist (exact). */
  search(query: Float32Array, k: number, opts?: VectorSearchOptions): VectorHit[];
  /** Estimated bytes held by the index (typed arrays, native graph, lookup tables). */
  memoryBytes(): number;
  /** Throws unless vectors described by `other` (e.g. a query embedding) can be searched in this index. */
  assertCompatible(other: VectorIndexInfo): void;
}

const METRICS: readonly VectorMetric[] = ['cosine', 'ip', 'l2'];

/** Rejects an unusable index description (empty model id, non-positive dimension, unknown metric). */
export function validateInfo(info: VectorIndexInfo): VectorIndexInfo {
  if (typeof info.modelId !== 'string' || info.modelId.length === 0) {
    throw new QuarryError('INVALID_CONFIG', 'vector index needs a non-empty embedding model id', { info });
  }
  if (!Number.isInteger(info.dimension) || info.dimension < 1 || info.dimension > 65_536) {
    throw new QuarryError(
      'INVALID_CONFIG',
      `vector dimension must be an integer in 1..65536, got ${info.dimension}`,
      {
        info,
      },
    );
  }
  if (!METRICS.includes(info.metric)) {
    throw new QuarryError(
      'INVALID_CONFIG',
      `vector metric must be one of ${METRICS.join(', ')}, got ${info.metric}`,
      {
        info,
      },
    );
  }
  return { modelId: info.modelId, dimension: info.dimension, metric: info.metric };
}

/**
 * Throws `INVALID_ARGUMENT` unless `other` comes from the same model, dimension and metric as `index`:
 * scores between embeddings of different models are meaningless even when the dimensions agree.
 */
export function assertCompatible(index: VectorIndexInfo, other: VectorIndexInfo): void {
  if (index.modelId === other.modelId && index.dimension === other.dimension && index.metric === other.metric)
    return;
  throw new QuarryError(
    'INVALID_ARGUMENT',
    `vectors from model "${other.modelId}" (dimension ${other.dimension}, ${other.metric}) cannot be searched in ` +
      `an index of model "${index.modelId}" (dimension ${index.dimension}, ${index.metric}); ` +
      'embed the query with the index model, or re-index with the new model',
    { expected: index, actual: other },
  );
}

/** Checks a chunk id fits the index's Uint32 id arrays. */
export function assertChunkId(chunkId: number): void {
  if (!Number.isInteger(chunkId) || chunkId < 0 || chunkId > 0xffff_ffff) {
    throw new QuarryError('INVALID_ARGUMENT', `chunk id must be an integer in 0..2^32-1, got ${chunkId}`, {
      chunkId,
    });
  }
}

/**
 * Validates `vector` (dimension, finite, not all zeros) and writes it into `out` — L2-normalized for
 * cosine, as is otherwise. `what` names the vector in errors ("chunk 12", "query"). Returns the squared
 * norm of what was written.
 */
export function prepareVector(
  info: VectorIndexInfo,
  vector: Float32Array,
  what: string,
  out: Float32Array,
  outOffset = 0,
): number {
  if (!(vector instanceof Float32Array)) {
    throw new QuarryError('INVALID_ARGUMENT', `${what}: vector must be a Float32Array`, { what });
  }
  const dim = info.dimension;
  if (vector.length !== dim) {
    throw new QuarryError(
      'INVALID_ARGUMENT',
      `${what}: vector has dimension ${vector.length}, expected ${dim} (model "${info.modelId}")`,
      { what, expected: dim, actual: vector.length, modelId: info.modelId },
    );
  }
  let sq = 0;
  for (let i = 0; i < dim; i++) {
    const x = vector[i]!;
    if (!Number.isFinite(x)) {
      throw new QuarryError(
        'INVALID_ARGUMENT',
        `${what}: vector component ${i} is ${x}; vectors must be finite`,
        {
          what,
          component: i,
        },
      );
    }
    sq += x * x;
  }
  if (sq === 0) {
    throw new QuarryError('INVALID_ARGUMENT', `${what}: vector is all zeros and has no direction`, { what });
  }
  if (info.metric === 'cosine') {
    const inv = 1 / Math.sqrt(sq);
    for (let i = 0; i < dim; i++) out[outOffset + i] = vector[i]! * inv;
    return 1;
  }
  out.set(vector, outOffset);
  return sq;
}

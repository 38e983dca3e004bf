/**
 * The store's dense models side by side: one index per configured model (the built-in corpus-trained one
 * kept in step synchronously, remote/ONNX ones reconciled asynchronously), the per-query router, and the
 * bookkeeping every write and query goes through (mirror deletes, sync, persist, close).
 */
import path from 'node:path';
import { type EmbeddingCache, SqliteEmbeddingCache } from '../../embed/cache.js';
import { configuredModelId, createEmbedderFromConfig } from '../../embed/from-config.js';
import { type Embedder, type EmbedOptions, wrapEmbedder } from '../../embed/types.js';
import { QuarryError } from '../../errors.js';
import type { DocumentStore, WriteOutcome } from '../../store/types.js';
import type { VectorIndexOptions } from '../vector/auto-index.js';
import type { VectorHit } from '../vector/types.js';
import {
  type DenseModelConfig,
  type DenseRoute,
  type DenseRouteDecision,
  routeQuery,
} from './dense-config.js';
import type { DenseIndex } from './dense-index.js';
import { type DenseSyncReport, ProviderDenseIndex } from './provider-dense-index.js';

export type DenseModel =
  | { name: string; provider: 'builtin'; index: DenseIndex }
  | { name: string; provider: 'openai' | 'onnx' | 'custom'; index: ProviderDenseIndex };

/** The dense model a library-supplied embedder gets (`components.embedder`): first, so the default. */
export const CUSTOM_DENSE_MODEL = 'custom';

export interface DenseModelsOptions {
  models: DenseModelConfig[];
  router?: DenseRoute[] | undefined;
  syncBatchSize?: number;
  vectors?: VectorIndexOptions;
  /** The built-in index (shared with the rest of the pipeline, which reads it directly). */
  builtin: DenseIndex;
  /** Where remote/ONNX embeddings are cached (default `<store>/embedding-cache.sqlite`); false = no cache. */
  cacheFile?: string | false;
  env?: Record<string, string | undefined>;
  /** Wraps the store's file cache (undefined without one) in the configured embedding layer. */
  embeddingCache?: (local: EmbeddingCache | undefined) => EmbeddingCache | undefined;
  /**
   * An embedder object the caller owns (library use): indexed as the model `custom`, ahead of the configured
   * ones. Quarry never closes it.
   */
  embedder?: Embedder;
}

/** File name of the embedding cache inside the store directory. */
export const EMBEDDING_CACHE_FILE = 'embedding-cache.sqlite';

/** Query vectors remember the model that made them, so a vector from another model is refused, not searched. */
const vectorModels = new WeakMap<Float32Array, string>();

export function tagQueryVector(v: Float32Array, modelId: string): Float32Array {
  vectorModels.set(v, modelId);
  return v;
}

/** The model id a query vector was embedded with, when it came from Quarry. */
export function queryVectorModel(v: Float32Array): string | undefined {
  return vectorModels.get(v);
}

/**
 * A query embedding started before the synchronous retrieval steps, so the remote call (or worker) is in
 * flight while BM25 runs; the index catches up with the store (if it is behind) at the same time.
 */
export interface PendingQueryVector {
  model: DenseModel & { provider: 'openai' | 'onnx' | 'custom' };
  decision: DenseRouteDecision;
  normalized: string;
  /** Settles (never rejects) once the query vector and the index sync are done. */
  done: Promise<void>;
  settled: boolean;
  /** performance.now() marks: embedding start/end, synchronous steps start, when they needed the vector. */
  startedAt: number;
  settledAt?: number;
  stepsAt?: number;
  neededAt?: number;
  vector?: Float32Array;
  /** The embedding failed transiently (service down, timeout): dense is skipped, BM25 answers. */
  failure?: string;
  /** A configuration problem (model mismatch, missing model files): thrown, never hidden by a fallback. */
  fatal?: unknown;
  sync?: DenseSyncReport;
  syncFailure?: string;
}

/** What the prepare step decided for one query: the model, whether dense runs, and the vector if known. */
export interface DenseUse {
  ready: boolean;
  model: DenseModel;
  decision: DenseRouteDecision;
  vector?: Float32Array;
  pending?: PendingQueryVector;
  detail: Record<string, unknown>;
}

const round = (ms: number): number => Math.round(ms * 1000) / 1000;

/** Only a transient provider failure falls back to BM25; anything else is a problem the caller must see. */
function isTransient(e: unknown): boolean {
  return e instanceof QuarryError && e.code === 'EMBEDDING_FAILED';
}

function describe(reason: unknown): string {
  return reason instanceof Error ? reason.message : String(reason);
}

function assertVectorModel(v: Float32Array, modelId: string | undefined, name: string): void {
  const from = queryVectorModel(v);
  if (from === undefined || modelId === undefined || from === modelId) return;
  throw new QuarryError(
    'EMBEDDING_MODEL_MISMATCH',
    `the query vector was embedded with "${from}" but dense model "${name}" is "${modelId}"; embed the ` +
      'query with the model the router picks (embedQueries does)',
    { queryModel: from, indexModel: modelId, model: name },
  );
}

export class DenseModels {
  readonly models: readonly DenseModel[];
  private readonly byName = new Map<string, DenseModel>();
  private readonly router: DenseRoute[] | undefined;
  private cache: EmbeddingCache | undefined;
  private readonly cacheFile: string | undefined;
  private readonly wrapCache: ((local: EmbeddingCache | undefined) => EmbeddingCache | undefined) | undefined;
  private cacheMade = false;

  constructor(store: DocumentStore, opts: DenseModelsOptions) {
    this.router = opts.router;
    this.wrapCache = opts.embeddingCache;
    this.cacheFile =
      opts.cacheFile === false ? undefined : (opts.cacheFile ?? path.join(store.dir, EMBEDDING_CACHE_FILE));
    const env = opts.env ?? process.env;
    this.models = opts.models.map((m): DenseModel => {
      if (m.provider === 'builtin') return { name: m.name, provider: 'builtin', index: opts.builtin };
      const { name, ...config } = m;
      const expected = configuredModelId(config);
      const index = new ProviderDenseIndex(store, {
        name,
        load: () => createEmbedderFromConfig(config, env),
        ...(expected === undefined ? {} : { expectedModelId: expected }),
        cache: () => this.embeddingCache(),
        ...(opts.vectors === undefined ? {} : { vectors: opts.vectors }),
        ...(opts.syncBatchSize === undefined ? {} : { syncBatchSize: opts.syncBatchSize }),
      });
      return { name, provider: m.provider, index };
    });
    if (opts.embedder !== undefined) this.models = [this.customModel(store, opts), ...this.models];
    for (const m of this.models) this.byName.set(m.name, m);
    // Refuse a store whose index was built with another model now, not on the first query.
    for (const m of this.models) if (m.provider !== 'builtin') m.index.open();
  }

  private customModel(store: DocumentStore, opts: DenseModelsOptions): DenseModel {
    const embedder = opts.embedder!;
    if (opts.models.some((m) => m.name === CUSTOM_DENSE_MODEL))
      throw new QuarryError(
        'INVALID_CONFIG',
        `retrieval.dense.models has a model named "${CUSTOM_DENSE_MODEL}", the name a components.embedder takes; rename it`,
      );
    // The caller owns the object: closing the index must not close it.
    const borrowed = wrapEmbedder(
      embedder,
      {
        // Its failures are the embedder's, as a provider's would be: dense degrades and BM25 answers.
        embed: async (texts: string[], o?: EmbedOptions) => {
          try {
            return await embedder.embed(texts, o);
          } catch (e) {
            if (e instanceof QuarryError || o?.signal?.aborted) throw e;
            throw new QuarryError(
              'EMBEDDING_FAILED',
              `embedder "${embedder.id}" failed: ${e instanceof Error ? e.message : String(e)}`,
              { model: embedder.id },
              e,
            );
          }
        },
      },
      { forwardClose: false },
    );
    const index = new ProviderDenseIndex(store, {
      name: CUSTOM_DENSE_MODEL,
      load: async () => borrowed,
      expectedModelId: embedder.id,
      cache: () => this.embeddingCache(),
      ...(opts.vectors === undefined ? {} : { vectors: opts.vectors }),
      ...(opts.syncBatchSize === undefined ? {} : { syncBatchSize: opts.syncBatchSize }),
    });
    return { name: CUSTOM_DENSE_MODEL, provider: 'custom', index };
  }

  private embeddingCache(): EmbeddingCache | undefined {
    if (this.cacheMade) return this.cache;
    this.cacheMade = true;
    const local = this.cacheFile === undefined ? undefined : new SqliteEmbeddingCache(this.cacheFile);
    this.cache = this.wrapCache === undefined ? local : this.wrapCache(local);
    return this.cache;
  }

  get(name: string): DenseModel | undefined {
    return this.byName.get(name);
  }

  /** Remote/ONNX indexes (the ones that need `sync`). */
  get providers(): ProviderDenseIndex[] {
    const out: ProviderDenseIndex[] = [];
    for (const m of this.models) if (m.provider !== 'builtin') out.push(m.index);
    return out;
  }

  /** The model that answers `query` (normalized text) and why. */
  route(query: string): { model: DenseModel; decision: DenseRouteDecision } {
    const decision = routeQuery(query, this.models[0]!.name, this.router);
    const model = this.byName.get(decision.model);
    if (model === undefined)
      throw new QuarryError('INVALID_CONFIG', `the dense router names an unknown model "${decision.model}"`);
    return { model, decision };
  }

  /**
   * Starts embedding `normalized` with the model the router picks, when that is a remote/ONNX model (the
   * built-in one embeds synchronously in microseconds). Undefined when there is nothing to wait for.
   */
  startQuery(
    normalized: string,
    opts: {
      /** Bounds the embedding (e.g. the retrieval budget): when it fires, dense is skipped, BM25 answers. */
      signal?: AbortSignal | undefined;
      /** The caller's own cancellation: when it fires, the search fails with its reason. */
      cancel?: AbortSignal | undefined;
      queryVectors?: ReadonlyMap<string, Float32Array> | undefined;
      /** Receives the usage of the remote embedding request (the request's usage meter). */
      onUsage?: EmbedOptions['onUsage'];
    },
  ): PendingQueryVector | undefined {
    const { model, decision } = this.route(normalized);
    if (model.provider === 'builtin') return undefined;
    const index = model.index;
    const given = opts.queryVectors?.get(normalized);
    if (given !== undefined && index.current) return undefined;
    const p: PendingQueryVector = {
      model,
      decision,
      normalized,
      done: Promise.resolve(),
      settled: false,
      startedAt: performance.now(),
    };
    const fail = (e: unknown, transient: (msg: string) => void): void => {
      if (isTransient(e)) transient(e instanceof Error ? e.message : String(e));
      else if (opts.signal?.aborted && opts.cancel?.aborted !== true)
        transient(`no vector within the retrieval budget (${describe(opts.signal.reason)})`);
      else p.fatal ??= e;
    };
    const syncing = index.current
      ? undefined
      : index.sync(opts.signal).then(
          (r) => {
            p.sync = r;
          },
          (e: unknown) =>
            fail(e, (m) => {
              p.syncFailure = m;
            }),
        );
    const embedding =
      given !== undefined
        ? Promise.resolve().then(() => {
            p.vector = given;
          })
        : index.embedQuery(normalized, opts.signal, opts.onUsage).then(
            (v) => {
              p.vector = tagQueryVector(v, index.modelId ?? '');
            },
            (e: unknown) =>
              fail(e, (m) => {
                p.failure = m;
              }),
          );
    p.done = Promise.all([syncing, embedding]).then(() => {
      p.settled = true;
      p.settledAt = performance.now();
    });
    return p;
  }

  /**
   * Decides whether dense retrieval runs for this query. The built-in model is ready once trained; a
   * remote/ONNX model needs a query vector: precomputed (`queryVectors`) or pending (started by `startQuery`).
   */
  prepare(
    normalized: string,
    queryVectors: ReadonlyMap<string, Float32Array> | undefined,
    pending: PendingQueryVector | undefined,
  ): DenseUse {
    const { model, decision } =
      pending !== undefined ? { model: pending.model, decision: pending.decision } : this.route(normalized);
    const given = queryVectors?.get(normalized);
    const base = { model: model.name, provider: model.provider, router: decision };
    if (model.provider === 'builtin') {
      const ready = model.index.ensure();
      if (given !== undefined && ready) assertVectorModel(given, model.index.embedder?.id, model.name);
      return {
        ready,
        model,
        decision,
        ...(given === undefined ? {} : { vector: given }),
        detail: {
          ...base,
          dense: ready ? model.index.kind : 'unavailable (corpus too small to train the built-in embedder)',
        },
      };
    }
    const index = model.index;
    if (pending !== undefined) {
      if (pending.fatal !== undefined) throw pending.fatal;
      // Still in flight: assume it arrives (the steps wait for it after BM25); settled: it did or did not.
      const ready = !pending.settled || (pending.vector !== undefined && index.size > 0);
      return {
        ready,
        model,
        decision,
        pending,
        detail: {
          ...base,
          dense: pending.settled ? (ready ? index.kind : 'unavailable') : 'query embedding in flight',
          ...(pending.failure === undefined ? {} : { failure: pending.failure, fallback: 'bm25' }),
        },
      };
    }
    if (given !== undefined) {
      assertVectorModel(given, index.modelId, model.name);
      const ready = index.size > 0;
      return {
        ready,
        model,
        decision,
        vector: given,
        detail: {
          ...base,
          dense: ready ? index.kind : 'unavailable (index empty: run sync)',
          current: index.current,
        },
      };
    }
    return {
      ready: false,
      model,
      decision,
      detail: {
        ...base,
        dense:
          `skipped: model "${model.name}" embeds asynchronously and no query vector was given ` +
          '(searchSync needs options.queryVectors; search() embeds the query itself)',
      },
    };
  }

  /** Dense top-k for a prepared query; `hits` is undefined when dense could not run (the detail says why). */
  retrieve(
    use: DenseUse,
    normalized: string,
    depth: number,
    allowGroup: ((g: number) => boolean) | undefined,
  ): { hits: VectorHit[] | undefined; detail: Record<string, unknown> } {
    const { model, decision } = use;
    if (model.provider === 'builtin') {
      const vector = use.vector ?? model.index.embedQuery(normalized);
      return {
        hits: model.index.search(vector, depth, allowGroup),
        detail: {
          model: model.index.embedder?.id,
          name: model.name,
          provider: 'builtin',
          router: decision,
          index: model.index.kind,
        },
      };
    }
    const index = model.index;
    const p = use.pending;
    const detail: Record<string, unknown> = {
      model: index.modelId,
      name: model.name,
      provider: model.provider,
      router: decision,
      index: index.kind,
      size: index.size,
      current: index.current,
    };
    if (p !== undefined) {
      if (p.fatal !== undefined) throw p.fatal;
      const end = p.settledAt ?? performance.now();
      const needed = p.neededAt ?? end;
      detail.embed = {
        ms: round(end - p.startedAt),
        // Synchronous retrieval (analysis, BM25…) that ran while the embedding was in flight.
        concurrentMs: round(Math.max(0, Math.min(needed, end) - Math.max(p.startedAt, p.stepsAt ?? end))),
        waitedMs: round(Math.max(0, end - needed)),
      };
      if (p.sync !== undefined) detail.sync = p.sync;
      if (p.syncFailure !== undefined) detail.syncFailure = p.syncFailure;
      if (p.failure !== undefined)
        return {
          hits: undefined,
          detail: { ...detail, skipped: `query embedding failed: ${p.failure}`, fallback: 'bm25' },
        };
    }
    const vector = use.vector ?? p?.vector;
    if (vector === undefined || index.size === 0)
      return { hits: undefined, detail: { ...detail, skipped: 'no vectors to search', fallback: 'bm25' } };
    return { hits: index.search(vector, depth, allowGroup, queryVectorModel(vector)), detail };
  }

  /**
   * Embeds many queries at once (one batched call per model) for batch mode, keyed by normalized text and
   * tagged with their model. A model that fails is left out: its queries embed one by one at search time.
   */
  async embedQueries(normalized: string[], signal?: AbortSignal): Promise<Map<string, Float32Array>> {
    const out = new Map<string, Float32Array>();
    const byModel = new Map<DenseModel, string[]>();
    for (const q of new Set(normalized)) {
      const { model } = this.route(q);
      const list = byModel.get(model);
      if (list === undefined) byModel.set(model, [q]);
      else list.push(q);
    }
    for (const [model, texts] of byModel) {
      if (model.provider === 'builtin') {
        if (!model.index.ensure()) continue;
        const id = model.index.embedder!.id;
        for (const q of texts) out.set(q, tagQueryVector(model.index.embedQuery(q), id));
        continue;
      }
      try {
        const vectors = await model.index.embedQueries(texts, signal);
        for (const [i, q] of texts.entries())
          out.set(q, tagQueryVector(vectors[i]!, model.index.modelId ?? ''));
      } catch (e) {
        if (!isTransient(e)) throw e;
      }
    }
    return out;
  }

  /**
   * Mirrors a committed write into the remote/ONNX indexes: deletes at once, additions at the next sync.
   * (The built-in index mirrors writes itself, synchronously.)
   */
  apply(outcome: WriteOutcome): void {
    for (const p of this.providers) p.apply(outcome);
  }

  persist(): void {
    for (const p of this.providers) p.persist();
  }

  /**
   * Brings every remote/ONNX index in step with the store (concurrently). Rejects with the first failure
   * after every index has finished, so one failing provider does not leave the others behind.
   */
  async sync(signal?: AbortSignal): Promise<DenseSyncReport[]> {
    const results = await Promise.allSettled(this.providers.map((p) => p.sync(signal)));
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed !== undefined) throw failed.reason;
    return results.map((r) => (r as PromiseFulfilledResult<DenseSyncReport>).value);
  }

  /** Stops embedders; the embedding cache is closed before the first await (callers close the store next). */
  async close(): Promise<void> {
    const cache = this.cache;
    this.cache = undefined;
    const closing = cache?.close?.();
    await Promise.allSettled([...this.providers.map((p) => p.close()), closing]);
  }
}

/**
 * The embedding contract: every embedding model Quarry can use — a remote OpenAI-compatible endpoint, a local
 * ONNX model in a worker pool, the built-in corpus-learned embedder — is an `Embedder`. Around it: batching
 * with bounded concurrency (`withBatching`), a length-based router choosing among several models per query
 * (`lengthRouter`), and the guard that refuses to mix vectors of different models (`assertSameModel`).
 */
import { setMaxListeners } from 'node:events';
import { QuarryError } from '../errors.js';

/** Queries and documents are embedded differently by some models (instruction prefixes such as e5's `query: `). */
export type EmbedKind = 'query' | 'document';

export interface EmbedOptions {
  signal?: AbortSignal;
  /** Defaults to `document`. */
  kind?: EmbedKind;
  /**
   * Called once per billed request a remote provider made, with the tokens the server reported (undefined
   * when it reported none); cached texts cost nothing and are not reported. For per-request accounting.
   */
  onUsage?: (usage: EmbeddingUsage) => void;
}

/** One billed embedding request. */
export interface EmbeddingUsage {
  /** The model the server reported, else the configured one. */
  model: string;
  /** Input tokens the server reported; undefined when it reported none. */
  inputTokens: number | undefined;
  /** The texts sent (to estimate tokens when the server reported none). */
  texts: readonly string[];
}

export interface Embedder {
  /**
   * Stable model id, recorded in every dense index built with this embedder, e.g.
   * `openai:text-embedding-3-small` or `onnx:3f2a9c01b7de` (hash of the model file). Two embedders with the
   * same id must produce the same vectors for the same text.
   */
  readonly id: string;
  /** Vector length; 0 while unknown (a remote provider learns it from its first response). */
  readonly dimension: number;
  /**
   * True when the vectors depend on `kind` (the model is given different prefixes for queries and
   * documents); caches then key on the kind as well as the text.
   */
  readonly distinguishesKind?: boolean;
  /** One vector per text, in input order. */
  embed(texts: string[], opts?: EmbedOptions): Promise<Float32Array[]>;
  /** Releases workers, sockets, sessions. The embedder is unusable afterwards. */
  close?(): Promise<void>;
}

/**
 * A wrapper around `embedder` (batching, caching, error mapping…): `members` plus the embedder's identity
 * (`id`, `dimension`, `distinguishesKind`, read live: a remote model learns its dimension late). `close`
 * is forwarded unless `forwardClose` is false (a wrapper over an object the caller still owns).
 */
export function wrapEmbedder<M extends Pick<Embedder, 'embed'>>(
  embedder: Embedder,
  members: M,
  { forwardClose = true }: { forwardClose?: boolean } = {},
): Embedder & M {
  const wrapper = Object.defineProperties(members, {
    id: { get: () => embedder.id, enumerable: true },
    dimension: { get: () => embedder.dimension, enumerable: true },
    distinguishesKind: { get: () => embedder.distinguishesKind, enumerable: true },
  }) as Embedder & M;
  if (forwardClose && embedder.close) {
    const close = embedder.close.bind(embedder);
    wrapper.close = () => close();
  }
  return wrapper;
}

/** What a dense index records about the model that produced its vectors. */
export interface EmbeddingModelInfo {
  modelId: string;
  dimension: number;
}

/**
 * Throws `EMBEDDING_MODEL_MISMATCH` unless `embedder` is the model `index` was built with (same id, same
 * dimension). An embedder whose dimension is not known yet (0) is checked by id only; its vectors are checked
 * again when they arrive (the index rejects a vector of the wrong length).
 */
export function assertSameModel(
  index: EmbeddingModelInfo,
  embedder: Pick<Embedder, 'id' | 'dimension'>,
): void {
  const sameId = index.modelId === embedder.id;
  const sameDim = embedder.dimension === 0 || embedder.dimension === index.dimension;
  if (sameId && sameDim) return;
  const got = embedder.dimension === 0 ? 'dimension not yet known' : `dimension ${embedder.dimension}`;
  throw new QuarryError(
    'EMBEDDING_MODEL_MISMATCH',
    `the index was built with "${index.modelId}" (dimension ${index.dimension}) but the embedder is ` +
      `"${embedder.id}" (${got}); embed with the index's model, or re-embed the index with the new one`,
    {
      indexModel: index.modelId,
      indexDimension: index.dimension,
      embedderModel: embedder.id,
      embedderDimension: embedder.dimension,
    },
  );
}

/**
 * Learns an embedder's dimension when it is not known yet by embedding one short probe text (one request to
 * a remote provider). Returns the dimension.
 */
export async function resolveDimension(embedder: Embedder, signal?: AbortSignal): Promise<number> {
  if (embedder.dimension > 0) return embedder.dimension;
  const [v] = await embedder.embed(['dimension probe'], signal ? { signal } : {});
  if (embedder.dimension > 0) return embedder.dimension;
  if (!v || v.length === 0) {
    throw new QuarryError(
      'EMBEDDING_FAILED',
      `embedder "${embedder.id}" returned no vector for a probe text`,
      {
        model: embedder.id,
      },
    );
  }
  return v.length;
}

// ---------------------------------------------------------------------------------------------------------
// Bounded concurrency and batching

/** Runs at most `concurrency` tasks at once, FIFO; shared by every caller of the limiter. */
export interface Limiter {
  readonly concurrency: number;
  /** Tasks running now. */
  readonly active: number;
  run<T>(task: () => Promise<T>, signal?: AbortSignal): Promise<T>;
}

export function createLimiter(concurrency: number): Limiter {
  assertPositiveInt('concurrency', concurrency);
  let active = 0;
  const queue: Array<() => void> = [];
  const next = (): void => {
    active--;
    const start = queue.shift();
    if (start) start();
  };
  return {
    concurrency,
    get active() {
      return active;
    },
    run<T>(task: () => Promise<T>, signal?: AbortSignal): Promise<T> {
      return new Promise<T>((resolve, reject) => {
        if (signal?.aborted) {
          reject(signal.reason);
          return;
        }
        const start = (): void => {
          signal?.removeEventListener('abort', onAbort);
          active++;
          let p: Promise<T>;
          try {
            p = task();
          } catch (e) {
            p = Promise.reject(e);
          }
          p.then(resolve, reject).finally(next);
        };
        const onAbort = (): void => {
          const i = queue.indexOf(start);
          if (i >= 0) queue.splice(i, 1);
          reject(signal?.reason);
        };
        if (active < concurrency) {
          start();
        } else {
          queue.push(start);
          signal?.addEventListener('abort', onAbort, { once: true });
        }
      });
    },
  };
}

/**
 * Splits `texts` into batches of `batchSize`, embeds them through `limiter` (so at most its concurrency run
 * at once, across all callers) and returns the vectors in input order. The first failing batch rejects the
 * whole call; batches not started yet are then skipped.
 */
export async function embedInBatches(
  texts: string[],
  batchSize: number,
  limiter: Limiter,
  embedBatch: (batch: string[], signal: AbortSignal) => Promise<Float32Array[]>,
  signal?: AbortSignal,
): Promise<Float32Array[]> {
  if (texts.length === 0) return [];
  const failed = new AbortController();
  const combined = signal ? AbortSignal.any([signal, failed.signal]) : failed.signal;
  // Every queued batch listens on this (private) signal: not a leak.
  setMaxListeners(Math.ceil(texts.length / batchSize) + 16, combined);
  const jobs: Promise<Float32Array[]>[] = [];
  for (let start = 0; start < texts.length; start += batchSize) {
    const batch = texts.slice(start, start + batchSize);
    jobs.push(
      limiter.run(async () => {
        try {
          const vectors = await embedBatch(batch, combined);
          if (vectors.length !== batch.length) {
            throw new QuarryError(
              'EMBEDDING_FAILED',
              `the provider returned ${vectors.length} vector(s) for a batch of ${batch.length} text(s)`,
              { expected: batch.length, actual: vectors.length },
            );
          }
          return vectors;
        } catch (e) {
          // Cancel the siblings before the limiter hands this slot to the next queued batch.
          if (!failed.signal.aborted) failed.abort(e);
          throw e;
        }
      }, combined),
    );
  }
  try {
    const results = await Promise.all(jobs);
    return results.flat();
  } catch (e) {
    if (!failed.signal.aborted) failed.abort(e);
    // Queued batches reject with the abort reason; swallow those so nothing is left unhandled.
    for (const j of jobs) j.catch(() => {});
    throw signal?.aborted ? signal.reason : e;
  }
}

export interface BatchingOptions {
  /** Texts per call to the wrapped embedder. */
  batchSize: number;
  /** Calls in flight at once, across all concurrent `embed` calls on the wrapper. */
  concurrency: number;
}

/**
 * Wraps an embedder so large inputs are split into batches of `batchSize`, at most `concurrency` of them in
 * flight at once (shared across concurrent callers), with the vectors returned in input order.
 */
export function withBatching(embedder: Embedder, opts: BatchingOptions): Embedder {
  assertPositiveInt('batchSize', opts.batchSize);
  const limiter = createLimiter(opts.concurrency);
  const batchSize = opts.batchSize;
  return wrapEmbedder(embedder, {
    embed(texts: string[], eopts: EmbedOptions = {}) {
      return embedInBatches(
        texts,
        batchSize,
        limiter,
        (batch, signal) => embedder.embed(batch, { ...eopts, signal }),
        eopts.signal,
      );
    },
  });
}

// ---------------------------------------------------------------------------------------------------------
// Routing among several models

/** Picks the embedder (and so the dense index) for a query. */
export interface EmbeddingRouter {
  /** Every embedder the router may pick, in route order (one dense index each). */
  readonly embedders: readonly Embedder[];
  route(query: string): Embedder;
  /** The route taken and why, for traces. */
  explain(query: string): { embedder: string; route: number; chars: number; tokens: number };
}

export interface LengthRoute {
  embedder: Embedder;
  /** Taken when the query has at most this many characters (code points)... */
  maxQueryChars?: number;
  /** ...and at most this many tokens (see `countTokens`). A route with neither limit takes every query. */
  maxQueryTokens?: number;
}

export interface LengthRouterOptions {
  /** Token counter for `maxQueryTokens`; defaults to counting whitespace-separated words. */
  countTokens?: (text: string) => number;
}

const countWords = (text: string): number => {
  const t = text.trim();
  return t.length === 0 ? 0 : t.split(/\s+/u).length;
};

/**
 * Routes by query length: the first route whose limits the query fits is taken; the last route is the
 * fallback whatever its limits. E.g. `[{ embedder: small, maxQueryChars: 64 }, { embedder: large }]` sends
 * short keyword queries to the small model and everything else to the large one.
 */
export function lengthRouter(routes: LengthRoute[], opts: LengthRouterOptions = {}): EmbeddingRouter {
  if (routes.length === 0) {
    throw new QuarryError('INVALID_CONFIG', 'an embedding router needs at least one route', {});
  }
  const seen = new Set<string>();
  routes.forEach((r, i) => {
    if (seen.has(r.embedder.id)) {
      throw new QuarryError(
        'INVALID_CONFIG',
        `embedding routes ${i} and an earlier one use the same model "${r.embedder.id}"; one route per model`,
        { model: r.embedder.id },
      );
    }
    seen.add(r.embedder.id);
    if (r.maxQueryChars !== undefined) assertPositiveInt(`routes[${i}].maxQueryChars`, r.maxQueryChars);
    if (r.maxQueryTokens !== undefined) assertPositiveInt(`routes[${i}].maxQueryTokens`, r.maxQueryTokens);
  });
  const countTokens = opts.countTokens ?? countWords;
  const pick = (query: string): { route: number; chars: number; tokens: number } => {
    let chars = 0;
    for (const _ of query) chars++;
    const needTokens = routes.some((r) => r.maxQueryTokens !== undefined);
    const tokens = needTokens ? countTokens(query) : countWords(query);
    for (let i = 0; i < routes.length - 1; i++) {
      const r = routes[i]!;
      if (r.maxQueryChars !== undefined && chars > r.maxQueryChars) continue;
      if (r.maxQueryTokens !== undefined && tokens > r.maxQueryTokens) continue;
      return { route: i, chars, tokens };
    }
    return { route: routes.length - 1, chars, tokens };
  };
  const embedders = routes.map((r) => r.embedder);
  return {
    embedders,
    route: (query) => embedders[pick(query).route]!,
    explain(query) {
      const p = pick(query);
      return { embedder: embedders[p.route]!.id, ...p };
    },
  };
}

function assertPositiveInt(name: string, value: number): void {
  if (!Number.isInteger(value) || value < 1) {
    throw new QuarryError('INVALID_CONFIG', `${name} must be a positive integer, got ${value}`, {
      [name]: value,
    });
  }
}

/**
 * The library core: wires store, index, retriever, answerer and validation into one pipeline
 * (ingest → index → retrieve → answer → validate). The CLI and, later, the HTTP server are thin shells on it.
 */
import path from 'node:path';
import { createMemoryResponseCache, type ResponseCache, responseCacheKey } from '../cache/response-cache.js';
import { type QuarryConfig, type QuarryConfigInput, resolveConfig } from '../config/config.js';
import { QuarryError } from '../errors.js';
import { applyFreshness, type FreshnessOptions } from '../fuse/freshness.js';
import { collapseDuplicates, fuse } from '../fuse/fusion.js';
import { answerExtractively } from '../generate/extractive.js';
import { type ConfiguredLlmProvider, createLlmProvider } from '../generate/llm/create.js';
import { DenseIndex, type DenseIndexSummary } from '../indexes/dense/dense-index.js';
import { DenseModels, type PendingQueryVector } from '../indexes/dense/dense-models.js';
import type { DenseSyncReport } from '../indexes/dense/provider-dense-index.js';
import { LexicalIndex } from '../indexes/lexical/lexical-index.js';
import { type IngestOptions, type IngestReport, ingestPaths, writeDrafts } from '../ingest/ingest.js';
import { countTokens } from '../ingest/tokens.js';
import { Trace } from '../observability/trace.js';
import { createRedactor, type Redactor, redactsAt } from '../privacy/redact.js';
import { AnswerRedaction } from '../privacy/redact-answer.js';
import { expandQuery } from '../query/prf.js';
import { rewriteQuery } from '../query/rewrite.js';
import { chooseStrategy, type RetrievalStrategy } from '../query/strategy.js';
import { normalizeQuery, understandQuery } from '../query/understand.js';
import { createReranker, type RerankerDeps, type RerankerName } from '../rerank/create.js';
import type { LtrDeps } from '../rerank/ltr/features.js';
import { type RerankStatus, rerankHits } from '../rerank/run-rerank.js';
import type { Reranker } from '../rerank/types.js';
import { createBm25Retriever, type Retriever } from '../retrieve/bm25-retriever.js';
import { DocumentCatalog } from '../retrieve/catalog.js';
import { retrieveExactMatches } from '../retrieve/exact-retriever.js';
import { type CompiledFilter, compileFilter } from '../retrieve/filter.js';
import { SqliteStore } from '../store/sqlite/sqlite-store.js';
import type { DocumentStore, FeedbackEntry, ParentSection, StoreStats } from '../store/types.js';
import type { AccessScope, Answer, DocumentDraft, SearchHit, StoredDocument, TraceReport } from '../types.js';
import { checkCitations } from '../validate/citations.js';
import { Deadline } from './deadline.js';
import { type AskEvent, answerWithLlm, type LlmAnswerDeps, LlmAnswerFailed } from './llm-answer.js';
import { ltrDepsFor } from './rerank-deps.js';

export interface QuarryOptions {
  /** Store directory. Default: `$QUARRY_STORE`, else `.quarry` in the working directory. */
  store?: string;
  config?: QuarryConfigInput;
  /** `false`: open an existing store only; a path without one throws STORE_NOT_FOUND. Default true (create). */
  create?: boolean;
}

export interface SearchOptions {
  /** `false`: neither read nor write the retrieval/response caches for this request. */
  cache?: boolean;
  /** Results to return (default 10). */
  k?: number;
  /** Metadata filter (MongoDB-style JSON, or its string form). Invalid filters throw INVALID_FILTER. */
  filter?: unknown;
  /** Caller's access groups; undefined = trusted local caller. */
  scope?: AccessScope;
  /** Collect a per-stage trace. */
  trace?: boolean;
  /** One hit per document (its best chunk). */
  collapseDocuments?: boolean;
  /** Override the configured retriever for this request. */
  retriever?: 'bm25' | 'dense' | 'hybrid';
  /** Time decay and newest-version-only for this request (default: from config). */
  freshness?: FreshnessOptions;
  /** Override the configured reranker for this request (`none` = keep the fused order). */
  reranker?: RerankerName;
  /** Request deadline in ms (default: `budget.totalMs`), split across stages. */
  budgetMs?: number;
  /** Cancels the request. */
  signal?: AbortSignal;
  /** Query vectors embedded ahead (batch mode embeds every question in one pass), keyed by normalized text. */
  queryVectors?: ReadonlyMap<string, Float32Array>;
}

export interface SearchResult {
  query: string;
  hits: SearchHit[];
  indexVersion: number;
  /** Set when part of the pipeline was skipped (dense embedding failed, reranker timed out…); not cached. */
  degraded?: string;
  /** Strategy the router chose: `cache` (served from the retrieval cache), `standard`, or `multi-stage`. */
  strategy?: RetrievalStrategy | 'cache';
  /** What the rerank stage did (absent when no reranker is configured). */
  rerank?: { reranker: string; status: RerankStatus; reason?: string };
  trace?: TraceReport;
}

export interface AskOptions extends SearchOptions {
  /**
   * Structured output: the LLM answers with JSON valid against this JSON Schema (retried once with the
   * validation errors); the value is in `answer.data`. Needs an LLM.
   */
  jsonSchema?: Record<string, unknown>;
}

export interface QuarryStats extends StoreStats {
  storeDir: string;
  index: { chunks: number; memoryBytes: number; loadedFrom: string; version: number };
  /** Each configured dense model's index, as built so far (the built-in one is trained on first use). */
  dense: Array<{
    name: string;
    provider: string;
    model: string | null;
    index: string;
    vectors: number;
    memoryBytes: number;
    state: DenseIndexSummary['state'];
  }>;
  config: QuarryConfig;
}

/** Resolve the store directory the same way everywhere (CLI, library, tests). */
export function resolveStoreDir(store?: string): string {
  return path.resolve(store ?? process.env.QUARRY_STORE ?? '.quarry');
}

export class Quarry {
  private readonly retriever: Retriever;
  readonly dense: DenseIndex;
  /** Every configured dense model (the built-in one is `dense`), its index and the per-query router. */
  readonly denseModels: DenseModels;
  private catalog: DocumentCatalog;
  private readonly rerankers = new Map<string, Promise<Reranker>>();
  private llmProvider: ConfiguredLlmProvider | undefined;
  private ltrDeps: LtrDeps | undefined;
  private readonly responses: ResponseCache<Answer> | undefined;
  private readonly retrievals: ResponseCache<SearchResult> | undefined;
  /** Hash of the whole configuration, part of every response-cache key. */
  private readonly configKey: string;

  private constructor(
    readonly config: QuarryConfig,
    readonly store: DocumentStore,
    readonly lexical: LexicalIndex,
    private readonly redactor?: Redactor,
  ) {
    this.catalog = new DocumentCatalog(store.catalog());
    this.retriever = createBm25Retriever(lexical);
    this.configKey = responseCacheKey({ config });
    const cacheOptions = {
      maxEntries: config.cache.maxEntries,
      ...(config.cache.ttlMs === undefined ? {} : { ttlMs: config.cache.ttlMs }),
    };
    this.responses = config.cache.responses ? createMemoryResponseCache<Answer>(cacheOptions) : undefined;
    this.retrievals = config.cache.retrievals
      ? createMemoryResponseCache<SearchResult>(cacheOptions)
      : undefined;
    const d = config.retrieval.dense;
    this.dense = new DenseIndex(store, {
      embedder: { lsa: { dimensions: d.dimensions }, ngramWeight: d.ngramWeight },
      vectors: { annThreshold: d.annThreshold, quantization: d.quantization },
    });
    this.denseModels = new DenseModels(store, {
      models: d.models,
      router: d.router,
      syncBatchSize: d.syncBatchSize,
      vectors: { annThreshold: d.annThreshold, quantization: d.quantization },
      builtin: this.dense,
    });
  }

  /** Open or create a store and load its index (from snapshot, or rebuilt from the store if stale). */
  static open(options: QuarryOptions = {}): Quarry {
    const config = resolveConfig(options.config ?? {});
    const dir = resolveStoreDir(options.store);
    const store = SqliteStore.open(dir, {
      create: options.create !== false,
      settings: { analyzer: { ...config.analyzer }, fields: config.bm25.fields },
    });
    try {
      const lexical = new LexicalIndex(
        store,
        config.analyzer,
        config.bm25.fields,
        { k1: config.bm25.k1, b: config.bm25.b, lengthNorm: config.bm25.lengthNorm },
        { title: config.bm25.titleWeight, body: config.bm25.bodyWeight },
      );
      lexical.open();
      // Opened now so a missing or wrong vault key fails here, not halfway through an ingest.
      const redactor = config.privacy.enabled ? createRedactor(config.privacy, { storeDir: dir }) : undefined;
      return new Quarry(config, store, lexical, redactor);
    } catch (e) {
      store.close();
      throw e;
    }
  }

  /** Ingest files and folders (see `IngestOptions`); returns added/updated/unchanged/removed and errors. */
  async ingest(paths: string[], options: IngestOptions = {}): Promise<IngestReport> {
    this.ensureFresh();
    return this.afterWrite(await ingestPaths(this.ingestContext(), paths, options));
  }

  /** Write already-prepared documents (library use): same transactional path as file ingestion. */
  async addDocuments(drafts: DocumentDraft[]): Promise<IngestReport> {
    this.ensureFresh();
    return this.afterWrite(await writeDrafts(this.ingestContext(), drafts));
  }

  /**
   * Remote/ONNX dense indexes catch up after a write (the store's write path is synchronous, embedding is
   * not). A failure is an error naming the model; the documents are stored and BM25 finds them already.
   */
  private async afterWrite(report: IngestReport): Promise<IngestReport> {
    if (this.denseModels.providers.length === 0) return report;
    try {
      await this.denseModels.sync();
    } catch (e) {
      if (!(e instanceof QuarryError) || e.code !== 'EMBEDDING_FAILED') throw e;
      throw new QuarryError(
        'EMBEDDING_FAILED',
        `the documents were written (${report.added} added, ${report.updated} updated, ${report.removed} ` +
          'removed) and BM25 finds them, but a dense index could not embed them; it catches up on the next ' +
          `syncDense(), ingest or search. ${e.message}`,
        { ...e.details, written: { added: report.added, updated: report.updated, removed: report.removed } },
        e,
      );
    }
    return report;
  }

  /** Delete documents by id; returns the ids that existed. Nothing of them stays retrievable. */
  deleteDocuments(ids: string[]): string[] {
    this.ensureFresh();
    // Deleting nothing must not bump the index version (that would make every other instance reload).
    const states = this.store.documentStates(ids);
    if (states.size === 0) return [];
    const outcome = this.store.write({ upserts: [], deletes: ids });
    this.applyOutcome(outcome);
    this.lexical.persist();
    this.dense.persist();
    this.denseModels.persist();
    return outcome.results.map((r) => r.id);
  }

  /** Delete every document whose source is `source` or lies under it. */
  deleteBySource(source: string): string[] {
    const normalized = normalizeSource(source);
    const ids = this.store.documentsUnderSource(normalized).map((d) => d.id);
    return ids.length === 0 ? [] : this.deleteDocuments(ids);
  }

  listDocuments(opts: { limit?: number; offset?: number } = {}): StoredDocument[] {
    return this.store.listDocuments(opts);
  }

  getDocument(id: string): (StoredDocument & { text: string }) | undefined {
    return this.store.getDocument(id);
  }

  /**
   * Record whether a source helped answer a query (e.g. a thumbs up/down on a citation). Stored with the
   * store; `quarry train-ranker --from-feedback` learns reranker weights from it.
   */
  recordFeedback(entry: { query: string; docId: string; chunkId?: number; helpful: boolean }): FeedbackEntry {
    if (typeof entry.query !== 'string' || entry.query.trim() === '')
      throw new QuarryError('INVALID_ARGUMENT', 'feedback query must be a non-empty string');
    if (typeof entry.helpful !== 'boolean')
      throw new QuarryError('INVALID_ARGUMENT', 'feedback helpful must be true or false');
    if (this.store.documentStates([entry.docId]).size === 0)
      throw new QuarryError('NOT_FOUND', `no document with id "${entry.docId}"`, { docId: entry.docId });
    if (entry.chunkId !== undefined) {
      const chunk = this.store.getChunks([entry.chunkId]).get(entry.chunkId);
      if (chunk === undefined || chunk.docId !== entry.docId)
        throw new QuarryError('NOT_FOUND', `chunk ${entry.chunkId} is not part of document "${entry.docId}"`);
    }
    return this.store.addFeedback({ ...entry, query: entry.query.trim() });
  }

  /** The heading-delimited section a chunk belongs to, with its text: context beyond the retrieved chunk. */
  getParentSection(chunkId: number): ParentSection | undefined {
    return this.store.getParentSection(chunkId);
  }

  /**
   * Retrieve the top-k chunks for `query`: retrieval and fusion (with metadata filters applied inside
   * retrieval), then the configured reranker over a wide pool under its latency budget.
   */
  async search(
    query: string,
    options: SearchOptions = {},
    trace = new Trace(query, options.trace === true),
    deadline = new Deadline(options.budgetMs ?? this.config.budget.totalMs, undefined, options.signal),
  ): Promise<SearchResult> {
    // Cache-first: a repeated query (same options, scope, configuration and index version) skips every stage.
    const cacheKey = this.responseCacheKey(query, options, 'search');
    if (cacheKey !== undefined) {
      const hit = trace.stage(
        'cache',
        () => this.retrievals?.get(cacheKey),
        (r) => ({ layer: 'retrieval', hit: r !== undefined, indexVersion: this.lexical.indexVersion }),
      );
      if (hit !== undefined)
        return { ...hit, strategy: 'cache', trace: trace.enabled ? trace.report() : undefined };
    }
    const result = await this.searchUncached(query, options, trace, deadline);
    // Degraded results are not kept: the next asker may get the full pipeline.
    if (cacheKey !== undefined && result.degraded === undefined)
      this.retrievals?.set(cacheKey, { ...result, trace: undefined });
    return result;
  }

  private async searchUncached(
    query: string,
    options: SearchOptions,
    trace: Trace,
    deadline: Deadline,
  ): Promise<SearchResult> {
    const reranker = await this.reranker(options.reranker);
    const k = options.k ?? 10;
    const rewrite = this.config.query.rewrite;
    const decision = chooseStrategy(query, {
      mode: rewrite.mode,
      llm: this.config.llm !== undefined,
      minWords: rewrite.minWords,
    });
    // `want` undefined keeps the caller's k unset, so intent routing can choose how many results to return.
    const retrieve = (want: number | undefined): Promise<SearchResult> =>
      decision.strategy === 'multi-stage'
        ? this.searchMultiStage(query, { ...options, k: want }, trace, deadline, decision.reason)
        : this.searchAsync(query, { ...options, k: want }, trace, deadline);
    if (reranker === undefined) return { ...(await retrieve(options.k)), strategy: decision.strategy };
    const pool = this.config.rerank.pool;
    const first = await retrieve(Math.max(k, pool));
    const slice = deadline.slice('rerank');
    const budgetMs = Math.min(slice.ms, this.config.rerank.budgetMs);
    const stageSignal = AbortSignal.any([
      slice.signal,
      AbortSignal.timeout(Math.max(1, Math.floor(budgetMs))),
    ]);
    try {
      const outcome = await trace.stageAsync(
        'rerank',
        () =>
          rerankHits(reranker, query, first.hits, {
            pool,
            signal: stageSignal,
            earlyExitGap: this.config.rerank.earlyExitGap,
          }),
        (o) => ({
          reranker: o.reranker,
          status: o.status,
          ...(o.reason === undefined ? {} : { reason: o.reason }),
          pool: o.pool,
          budgetMs: Math.round(budgetMs),
          moves: o.moves.slice(0, Math.max(k, 20)),
        }),
      );
      return {
        ...first,
        strategy: decision.strategy,
        hits: outcome.hits.slice(0, k).map((h, i) => ({ ...h, rank: i + 1 })),
        rerank: {
          reranker: outcome.reranker,
          status: outcome.status,
          ...(outcome.reason === undefined ? {} : { reason: outcome.reason }),
        },
        ...(outcome.status === 'timeout' || outcome.status === 'error'
          ? {
              degraded: [first.degraded, `rerank ${outcome.status}: ${outcome.reason ?? ''}`]
                .filter(Boolean)
                .join('; '),
            }
          : {}),
        trace: trace.enabled ? trace.report() : undefined,
      };
    } finally {
      slice.release();
    }
  }

  /**
   * Multi-stage retrieval: the LLM rewrites the query, adds variants and splits a multi-hop question into
   * sub-questions; each is retrieved and the lists are fused with RRF (a chunk many phrasings agree on rises).
   * Any rewriting failure leaves the original query alone, so this never does worse than standard retrieval
   * by failing.
   */
  private async searchMultiStage(
    query: string,
    options: SearchOptions,
    trace: Trace,
    deadline: Deadline,
    reason: string,
  ): Promise<SearchResult> {
    const provider = this.llm()!;
    const slice = deadline.slice('retrieve');
    const cfg = this.config.query.rewrite;
    const rewritten = await trace
      .stageAsync(
        'query.rewrite',
        () =>
          rewriteQuery(provider, query, {
            variants: cfg.variants,
            maxSubQueries: cfg.maxSubQueries,
            maxTokens: cfg.maxTokens,
            signal: slice.signal,
          }),
        (r) => ({ strategy: 'multi-stage', reason, ...r }),
      )
      .finally(() => slice.release());
    const queries = [
      ...new Set([query, rewritten.rewritten, ...rewritten.variants, ...rewritten.subQueries]),
    ];
    const k = options.k ?? 10;
    if (queries.length === 1) return this.searchSync(query, options, trace);
    const depth = Math.max(k, this.config.retrieval.depth);
    const results: SearchResult[] = [];
    // One after the other: each waits only for its own query embedding, and the trace stays in query order.
    for (const q of queries)
      results.push(await this.searchAsync(q, { ...options, k: depth }, trace, deadline));
    const byChunk = new Map<number, SearchHit>();
    for (const r of results) for (const h of r.hits) if (!byChunk.has(h.chunk.id)) byChunk.set(h.chunk.id, h);
    const fused = trace.stage(
      'fuse',
      () =>
        fuse(
          results.map((r, i) => ({
            retriever: `q${i}`,
            candidates: r.hits.map((h) => ({
              chunkId: h.chunk.id,
              group: 0,
              score: h.score,
              rank: h.rank,
              retriever: `q${i}`,
            })),
          })),
          { method: 'rrf', rrfK: this.config.retrieval.fusion.rrfK },
        ),
      (f) => ({
        method: 'rrf',
        queries,
        candidates: f
          .slice(0, Math.max(k, 20))
          .map((c) => ({ chunkId: c.chunkId, rank: c.rank, score: round(c.score), sources: c.sources })),
      }),
    );
    let ranked = fused;
    if (options.collapseDocuments) {
      const seen = new Set<string>();
      ranked = fused.filter((f) => {
        const doc = byChunk.get(f.chunkId)!.chunk.docId;
        return !seen.has(doc) && seen.add(doc) !== undefined;
      });
    }
    const hits = ranked.slice(0, k).map((f, i) => {
      const h = byChunk.get(f.chunkId)!;
      return { ...h, rank: i + 1, score: f.score, scores: { ...h.scores, ...f.sources } };
    });
    return {
      query,
      hits,
      indexVersion: this.lexical.indexVersion,
      trace: trace.enabled ? trace.report() : undefined,
    };
  }

  /** The reranker for a request: the override, else the configured one; undefined for `none`. */
  private async reranker(name: RerankerName | undefined): Promise<Reranker | undefined> {
    const chosen = name ?? this.config.rerank.reranker;
    if (chosen === 'none') return undefined;
    let r = this.rerankers.get(chosen);
    if (r === undefined) {
      r = createReranker(chosen, this.config, this.rerankDeps());
      this.rerankers.set(chosen, r);
      // A reranker that failed to load (bad model path…) is retried on the next request, not cached.
      r.catch(() => this.rerankers.delete(chosen));
    }
    return r;
  }

  /**
   * Synchronous search (the embedded path has no I/O wait). A remote/ONNX dense model needs its query vector
   * in `options.queryVectors` here (see `embedQueries`); without one dense is skipped and the trace says so.
   */
  searchSync(
    query: string,
    options: SearchOptions = {},
    trace = new Trace(query, options.trace === true),
  ): SearchResult {
    const step = this.searchSteps(query, options, trace).next();
    if (!step.done) throw new Error('search steps waited without a pending query embedding');
    return step.value;
  }

  /**
   * Search with the query embedding of a remote/ONNX dense model in flight while the synchronous steps
   * (analysis, BM25) run; the steps pause for the vector only at the dense stage. If the embedding fails the
   * result is BM25's and the trace says why.
   */
  private async searchAsync(
    query: string,
    options: SearchOptions,
    trace: Trace,
    deadline?: Deadline,
  ): Promise<SearchResult> {
    this.ensureFresh();
    const retriever = options.retriever ?? this.config.retrieval.retriever;
    if (retriever === 'bm25') return this.searchSync(query, options, trace);
    // The query embedding (and a lagging index's catch-up) gets the retrieval share of the request budget.
    const slice = deadline?.slice('retrieve');
    try {
      const pending = this.denseModels.startQuery(
        this.config.query.normalize ? normalizeQuery(query) : query,
        { ...options, signal: slice?.signal ?? options.signal, cancel: options.signal },
      );
      if (pending === undefined) return this.searchSync(query, options, trace);
      const vector = async (): Promise<void> => {
        pending.neededAt = performance.now();
        await pending.done;
        trace.recordSince('retrieve.prepare', pending.startedAt, {
          queryEmbedding: pending.model.name,
          model: pending.model.index.modelId,
          ok: pending.vector !== undefined,
          ...(pending.failure === undefined ? {} : { failure: pending.failure }),
        });
      };
      // Dense alone: whether BM25 must stand in depends on the embedding, so there is nothing to overlap.
      if (retriever === 'dense') await vector();
      pending.stepsAt = performance.now();
      const steps = this.searchSteps(query, options, trace, pending);
      let step = steps.next();
      while (!step.done) {
        await vector();
        step = steps.next();
      }
      return pending.failure === undefined
        ? step.value
        : { ...step.value, degraded: `dense skipped: ${pending.failure}` };
    } finally {
      slice?.release();
    }
  }

  /** The search itself; pauses (yields) only to wait for a pending query embedding. */
  private *searchSteps(
    query: string,
    options: SearchOptions,
    trace: Trace,
    pending?: PendingQueryVector,
  ): Generator<'dense', SearchResult, void> {
    this.ensureFresh();
    if (options.k !== undefined && (!Number.isInteger(options.k) || options.k < 1 || options.k > 10_000)) {
      throw new QuarryError(
        'INVALID_ARGUMENT',
        `k must be an integer from 1 to 10000, got ${String(options.k)}`,
      );
    }
    const filter: CompiledFilter | undefined = trace.stage(
      'filter.compile',
      () => (options.filter === undefined ? undefined : compileFilter(options.filter)),
      (f) => ({ filter: f?.source ?? null, scope: options.scope ?? null }),
    );
    const allowGroup = this.catalog.predicate(filter, options.scope);
    const plan = trace.stage(
      'query.analyze',
      () =>
        understandQuery(
          query,
          { analyze: (t) => this.lexical.analyzer.analyze(t), vocabulary: this.lexical.vocabulary() },
          this.config.query,
        ),
      (p) => ({ ...p }),
    );
    // With intent routing on, the intent picks how many results a query wants when the caller did not say.
    const intentRouting = this.config.retrieval.intentWeights && plan.intent !== null;
    const k = options.k ?? (intentRouting ? plan.intent!.k : 10);
    const retriever = options.retriever ?? this.config.retrieval.retriever;
    const denseUse =
      retriever === 'bm25'
        ? undefined
        : trace.stage(
            'retrieve.prepare',
            () => this.denseModels.prepare(plan.normalized, options.queryVectors, pending),
            (u) => u.detail,
          );
    const denseReady = denseUse?.ready === true;
    const freshness = options.freshness ?? this.config.retrieval.freshness;
    const freshnessOn = freshness.halfLifeDays !== undefined || freshness.latestBy !== undefined;
    // Fusion and freshness re-order candidates: fetch a deeper list so the final top-k can come from it.
    const depth =
      retriever === 'hybrid' || freshnessOn || plan.entities.some((e) => e.exact)
        ? Math.max(k, this.config.retrieval.depth)
        : k;
    const expanded =
      this.config.query.prf && !(retriever === 'dense' && denseReady)
        ? trace.stage(
            'query.expand',
            () => {
              const cfg = this.config.query;
              const first = this.retriever.retrieve({ query, terms: plan.terms, k: cfg.prfDocs, allowGroup });
              const chunks = this.store.getChunks(first.candidates.map((c) => c.chunkId));
              const feedback = first.candidates.map((c) => {
                const chunk = chunks.get(c.chunkId);
                return {
                  terms:
                    chunk === undefined ? [] : this.lexical.analyzer.analyze(`${chunk.title} ${chunk.text}`),
                  score: c.score,
                };
              });
              return expandQuery(plan.terms, feedback, {
                fbDocs: cfg.prfDocs,
                fbTerms: cfg.prfTerms,
                originalWeight: cfg.prfOriginalWeight,
              });
            },
            (x) => ({ expansion: x.expansion }),
          )
        : undefined;
    const lexical =
      retriever === 'dense' && denseReady
        ? undefined
        : trace.stage(
            'retrieve.bm25',
            () =>
              this.retriever.retrieve({
                query,
                terms: expanded?.terms ?? plan.terms,
                ...(expanded === undefined ? {} : { weights: expanded.weights }),
                k: depth,
                allowGroup,
                collapseDocuments: options.collapseDocuments,
              }),
            (r) => ({
              k: depth,
              params: this.lexical.bm25.params,
              queryTerms: r.queryTerms,
              termStats: r.stats.terms,
              matchedChunks: r.stats.matched,
              filteredOut: r.stats.filteredOut,
              candidates: r.candidates.map((c) => ({
                chunkId: c.chunkId,
                rank: c.rank,
                score: round(c.score),
              })),
            }),
          );
    if (denseReady && denseUse.pending?.settled === false) yield 'dense';
    const dense = denseReady
      ? trace.stage(
          'retrieve.dense',
          () => {
            const r = this.denseModels.retrieve(denseUse, plan.normalized, depth, allowGroup);
            return { ...r, hits: r.hits?.map((h, i) => ({ ...h, rank: i + 1, retriever: 'dense' })) };
          },
          (r) => ({
            k: depth,
            ...r.detail,
            candidates: (r.hits ?? []).map((x) => ({
              chunkId: x.chunkId,
              rank: x.rank,
              score: round(x.score),
            })),
          }),
        ).hits
      : undefined;
    // Entities (error codes, ids, versions, quoted phrases) must match exactly: chunks that contain one
    // verbatim form their own list, promoted (BM25 alone) or fused (hybrid).
    const routed = plan.entities.filter((e) => e.exact);
    const exact =
      routed.length > 0 && lexical !== undefined
        ? trace.stage(
            'retrieve.exact',
            () =>
              retrieveExactMatches(
                {
                  bm25: this.retriever,
                  analyze: (t) => this.lexical.analyzer.analyze(t),
                  loadChunks: (ids) => this.store.getChunks(ids),
                },
                routed.map((e) => e.text),
                depth,
                allowGroup,
              ),
            (x) => ({
              entities: routed,
              candidates: x.map((c) => ({ chunkId: c.chunkId, rank: c.rank, score: round(c.score) })),
            }),
          )
        : undefined;
    let ranked: Array<{ chunkId: number; group: number; score: number; scores: SearchHit['scores'] }>;
    const fusedLists = lexical !== undefined && dense !== undefined;
    if (lexical !== undefined && dense !== undefined) {
      const fusion = this.config.retrieval.fusion;
      const weights = intentRouting ? plan.intent!.weights : fusion.weights;
      const fused = trace.stage(
        'fuse',
        () =>
          fuse(
            [
              { retriever: 'bm25', candidates: lexical.candidates },
              { retriever: 'dense', candidates: dense.map((d) => ({ ...d })) },
              ...(exact !== undefined && exact.length > 0 ? [{ retriever: 'exact', candidates: exact }] : []),
            ],
            {
              method: fusion.method,
              rrfK: fusion.rrfK,
              weights: { ...weights, exact: 1 },
              weightsFor: (g) => {
                const t = this.catalog.get(g)?.doc_type;
                return t === undefined ? undefined : fusion.byDocType[t];
              },
            },
          ),
        (f) => ({
          method: fusion.method,
          weights,
          byDocType: fusion.byDocType,
          candidates: f
            .slice(0, Math.max(k, 20))
            .map((c) => ({ chunkId: c.chunkId, rank: c.rank, score: round(c.score), sources: c.sources })),
        }),
      );
      ranked = fused.map((f) => ({ chunkId: f.chunkId, group: f.group, score: f.score, scores: f.sources }));
      if (options.collapseDocuments) {
        const seen = new Set<number>();
        ranked = ranked.filter((r) => !seen.has(r.group) && seen.add(r.group));
      }
    } else {
      let only = lexical?.candidates ?? dense ?? [];
      const name = lexical !== undefined ? 'bm25' : 'dense';
      if (exact !== undefined && exact.length > 0) {
        const verbatim = new Set(exact.map((c) => c.chunkId));
        const byId = new Map(only.map((c) => [c.chunkId, c]));
        // Exact matches first (in BM25 order), then the rest; an exact match BM25 ranked below depth joins too.
        only = [
          ...exact.map((c) => byId.get(c.chunkId) ?? { ...c, retriever: 'bm25' }),
          ...only.filter((c) => !verbatim.has(c.chunkId)),
        ];
      }
      ranked = only.map((c) => ({
        chunkId: c.chunkId,
        group: c.group,
        score: c.score,
        scores: { [name]: { score: c.score, rank: c.rank } },
      }));
    }
    if (freshnessOn) {
      ranked = trace.stage(
        'freshness',
        () => applyFreshness(ranked, (g) => this.catalog.get(g), freshness),
        (f) => ({
          options: freshness,
          superseded: f.superseded,
          adjusted: f.adjusted.slice(0, Math.max(k, 20)),
        }),
      ).ranked;
    }
    const hits = trace.stage(
      'hits.load',
      () => {
        const window = ranked.slice(0, fusedLists ? k * 2 : k);
        const chunks = this.store.getChunks(window.map((c) => c.chunkId));
        const loaded: Array<
          SearchHit & { docId: string; start: number; end: number; text: string; chunkId: number }
        > = [];
        for (const c of window) {
          const chunk = chunks.get(c.chunkId);
          const doc = this.catalog.get(c.group);
          // A candidate without its chunk would mean index/store drift: never return it.
          if (chunk === undefined || doc === undefined) continue;
          loaded.push({
            rank: 0,
            score: c.score,
            chunk,
            document: doc,
            scores: c.scores,
            docId: chunk.docId,
            start: chunk.start,
            end: chunk.end,
            text: chunk.text,
            chunkId: chunk.id,
          });
        }
        // Fused lists bring the same passage in twice (overlapping neighbours, copies found by different
        // retrievers): keep the better-ranked one. A single retriever's list is returned as ranked.
        const { kept } = fusedLists ? collapseDuplicates(loaded) : { kept: loaded };
        return kept.slice(0, k).map(({ docId: _d, start: _s, end: _e, text: _t, chunkId: _c, ...h }, i) => ({
          ...h,
          rank: i + 1,
        }));
      },
      (h) => ({ loaded: h.length, tokens: h.reduce((a, x) => a + x.chunk.tokenCount, 0) }),
    );
    return {
      query,
      hits,
      indexVersion: this.lexical.indexVersion,
      trace: trace.enabled ? trace.report() : undefined,
    };
  }

  /** Answer `question` from the indexed documents, with citations; abstains when the sources do not support it. */
  async ask(question: string, options: AskOptions = {}): Promise<Answer> {
    let final: Answer | undefined;
    for await (const e of this.askStream(question, options)) if (e.type === 'answer') final = e.answer;
    return final!;
  }

  /**
   * Streaming ask: retrieval, context and generation events as they happen, ending with the validated
   * `answer`. With an LLM configured, deltas arrive token by token and citations as soon as they are complete;
   * if the LLM fails or runs out of budget, the extractive answerer answers instead (marked `fallback`).
   */
  async *askStream(question: string, options: AskOptions = {}): AsyncGenerator<AskEvent> {
    if (typeof question !== 'string' || question.trim() === '')
      throw new QuarryError('INVALID_ARGUMENT', 'question must be a non-empty string');
    this.ensureFresh();
    const trace = new Trace(question, options.trace === true);
    const deadline = new Deadline(options.budgetMs ?? this.config.budget.totalMs, undefined, options.signal);
    const cacheKey = this.responseCacheKey(question, options);
    const cached =
      cacheKey === undefined
        ? undefined
        : trace.stage(
            'cache',
            () => this.responses?.get(cacheKey),
            (a) => ({ hit: a !== undefined, indexVersion: this.lexical.indexVersion }),
          );
    if (cached !== undefined) {
      yield { type: 'retrieved', hits: cached.hits, strategy: 'cache' };
      yield {
        type: 'answer',
        answer: { ...cached, cached: true, trace: trace.enabled ? trace.report() : undefined },
      };
      return;
    }
    const cfg = this.config.answer;
    const provider = this.llm();
    if (options.jsonSchema !== undefined && provider === undefined)
      throw new QuarryError(
        'INVALID_ARGUMENT',
        'structured output (jsonSchema) needs an LLM: configure the llm section',
      );
    const { hits, strategy } = await this.search(
      question,
      { ...options, k: Math.max(options.k ?? 10, provider === undefined ? cfg.topChunks : 0) },
      trace,
      deadline,
    );
    // Redacting answers means no raw text may leave before redaction: hits are redacted before they are
    // reported, and the answer text is sent once, redacted, instead of token by token.
    const redaction =
      this.redactor !== undefined && redactsAt(this.config.privacy, 'answers')
        ? new AnswerRedaction(this.redactor)
        : undefined;
    const redactAnswers = redaction !== undefined;
    const shownHits = redaction === undefined ? hits : redaction.hits(hits);
    yield { type: 'retrieved', hits: shownHits, strategy: strategy ?? 'standard' };
    let answer: Omit<Answer, 'question' | 'hits' | 'trace'> | undefined;
    let fallback: Answer['fallback'];
    if (provider !== undefined) {
      try {
        const generation = answerWithLlm(
          question,
          hits,
          provider,
          this.config,
          this.llmDeps(),
          trace,
          deadline,
          options.jsonSchema === undefined ? {} : { jsonSchema: options.jsonSchema },
        );
        for (let step = await generation.next(); ; step = await generation.next()) {
          if (step.done === true) {
            answer = step.value;
            break;
          }
          if (!(redactAnswers && step.value.type === 'delta')) yield step.value;
        }
      } catch (e) {
        if (!(e instanceof LlmAnswerFailed)) throw e;
        fallback = { from: provider.id, reason: e.message };
        if (e.partial && !redactAnswers) yield { type: 'reset', reason: e.message };
      }
    }
    const streamed = answer !== undefined && !redactAnswers;
    if (answer === undefined) {
      const extractive = this.answerExtractively(question, hits, trace);
      answer = fallback === undefined ? extractive : { ...extractive, fallback };
    }
    if (redaction !== undefined) {
      const redacted = answer;
      answer = trace.stage(
        'privacy.redact',
        () => redaction.answer(redacted),
        () => ({ findings: redaction.findings }),
      );
    }
    if (!streamed) yield { type: 'delta', text: answer.text };
    const final: Answer = { question, ...answer, hits: shownHits, trace: undefined };
    // A fallback answer is not cached: the LLM may be back for the next asker.
    if (cacheKey !== undefined && fallback === undefined) this.responses?.set(cacheKey, final);
    yield { type: 'answer', answer: { ...final, trace: trace.enabled ? trace.report() : undefined } };
  }

  /** The embedded default answerer: quotes the best-covering sentences, every citation checked verbatim. */
  private answerExtractively(
    question: string,
    hits: SearchHit[],
    trace: Trace,
  ): Pick<Answer, 'text' | 'citations' | 'abstained' | 'confidence' | 'answerer'> {
    const cfg = this.config.answer;
    const result = trace.stage(
      'answer.extractive',
      () =>
        answerExtractively(question, hits, cfg, {
          analyze: (t) => this.lexical.analyzer.analyze(t),
          idf: (t) => this.lexical.idf(t),
          countTokens,
        }),
      (r) => ({
        abstained: r.abstained,
        support: round(r.support),
        minSupport: cfg.minSupport,
        answerTokens: r.tokens,
        tokenBudget: cfg.maxTokens,
        sentences: r.considered.map((s) => ({
          chunkId: s.hit.chunk.id,
          score: round(s.score),
          coverage: round(s.coverage),
          matched: s.matched,
          text: s.text.length > 160 ? `${s.text.slice(0, 157)}...` : s.text,
        })),
      }),
    );
    const context = new Map(hits.slice(0, cfg.topChunks).map((h) => [h.chunk.id, h.chunk]));
    const check = trace.stage(
      'answer.validate',
      () => checkCitations(result.citations, context),
      (c) => ({ ...c }),
    );
    if (!check.ok) {
      // The extractive answerer quotes spans it just read; a failure here is a bug, never shown as an answer.
      throw new QuarryError('INVALID_ARGUMENT', `citation check failed: ${JSON.stringify(check.problems)}`);
    }
    return {
      text: result.text,
      citations: result.citations,
      abstained: result.abstained,
      confidence: result.confidence,
      answerer: 'extractive',
    };
  }

  /** The configured LLM provider (built once), or undefined for the extractive answerer. */
  private llm(): ConfiguredLlmProvider | undefined {
    if (this.config.llm === undefined) return undefined;
    this.llmProvider ??= createLlmProvider(this.config.llm);
    return this.llmProvider;
  }

  private llmDeps(): LlmAnswerDeps {
    return {
      analyze: (t) => this.lexical.analyzer.analyze(t),
      idf: (t) => this.lexical.idf(t),
      getParentSection: (id) => this.store.getParentSection(id),
      sectionChunks: (doc, section) => this.store.sectionChunks(doc, section),
    };
  }

  /**
   * Everything that changes an answer: the question, the request options, the caller's groups, the
   * configuration and the index version (so any write makes older answers unreachable).
   */
  private responseCacheKey(
    question: string,
    o: AskOptions,
    kind: 'ask' | 'search' = 'ask',
  ): string | undefined {
    const cache = kind === 'ask' ? this.responses : this.retrievals;
    if (cache === undefined || o.cache === false || o.signal !== undefined) return undefined;
    return responseCacheKey({
      kind,
      question: question.trim(),
      k: o.k,
      filter: o.filter,
      groups: o.scope?.groups === undefined ? null : [...o.scope.groups].sort(),
      collapse: o.collapseDocuments,
      retriever: o.retriever,
      reranker: o.reranker,
      freshness: o.freshness,
      budgetMs: o.budgetMs,
      jsonSchema: o.jsonSchema,
      config: this.configKey,
      indexVersion: this.lexical.indexVersion,
      // A remote index catching up with the store changes results without a store write.
      dense: this.denseModels.models.map((m) => m.index.size),
    });
  }

  /**
   * Embed many queries in one pass for the dense retriever (batch mode), keyed the way search looks them up,
   * each with the model the router picks for it (one batched call per remote/ONNX model). Empty when the
   * retrieval does not use dense vectors; queries whose model is not ready or failed are left out.
   */
  async embedQueries(
    queries: string[],
    retriever = this.config.retrieval.retriever,
  ): Promise<Map<string, Float32Array>> {
    if (retriever === 'bm25') return new Map();
    this.ensureFresh();
    return this.denseModels.embedQueries(
      queries.map((q) => (this.config.query.normalize ? normalizeQuery(q) : q)),
    );
  }

  /**
   * Bring every remote/ONNX dense index in step with the store (ingest and search do this themselves; call
   * it to retry after an embedding failure, or after another process wrote). Throws `EMBEDDING_FAILED`.
   */
  async syncDense(signal?: AbortSignal): Promise<DenseSyncReport[]> {
    this.ensureFresh();
    return this.denseModels.sync(signal);
  }

  /** What rerankers may use: LTR feature sources (built once, so their caches live across queries) and the LLM. */
  private rerankDeps(): RerankerDeps {
    return {
      features: () => {
        this.ltrDeps ??= ltrDepsFor(this);
        return this.ltrDeps;
      },
      llm: () => this.llm(),
    };
  }

  stats(): QuarryStats {
    // Report the index this instance would search with, not one another process has since made stale.
    this.ensureFresh();
    return {
      ...this.store.stats(),
      storeDir: this.store.dir,
      index: {
        chunks: this.lexical.bm25.size,
        memoryBytes: this.lexical.bm25.memoryBytes(),
        loadedFrom: this.lexical.loadedFrom,
        version: this.lexical.indexVersion,
      },
      // From the snapshot's header when the vectors are not loaded yet (they load on the first dense query).
      dense: this.denseModels.models.map((m) => ({
        name: m.name,
        provider: m.provider,
        ...m.index.summary(),
      })),
      config: this.config,
    };
  }

  close(): void {
    for (const r of this.rerankers.values())
      r.then(
        (x) => x.close?.(),
        () => undefined,
      );
    this.rerankers.clear();
    // Stops embedding workers; the embedding cache's database closes synchronously inside.
    void this.denseModels.close();
    this.redactor?.close();
    this.store.close();
  }

  private ingestContext() {
    return {
      store: this.store,
      config: this.config,
      apply: (outcome: Parameters<Quarry['applyOutcome']>[0]) => this.applyOutcome(outcome),
      ...(this.redactor !== undefined && redactsAt(this.config.privacy, 'ingest')
        ? { redact: this.redactor }
        : {}),
      persist: () => {
        this.lexical.persist();
        this.dense.persist();
        this.denseModels.persist();
      },
    };
  }

  private applyOutcome(outcome: import('../store/types.js').WriteOutcome): void {
    if (outcome.indexVersion !== this.lexical.indexVersion + 1) {
      // Another instance committed between our last refresh and this write. Mirroring only our own outcome
      // would miss its changes, and tag (and later persist) the index with a version it does not reflect.
      this.lexical.rebuild();
      this.catalog = new DocumentCatalog(this.store.catalog());
      // Our own deletes still leave the remote/ONNX indexes at once; the rest is reconciled at their sync.
      this.denseModels.apply(outcome);
      return;
    }
    this.lexical.apply(outcome);
    this.dense.apply(outcome);
    this.denseModels.apply(outcome);
    this.catalog.apply(outcome);
    // Keys carry the index version, so old entries are unreachable already; free them too.
    this.responses?.clear();
    this.retrievals?.clear();
  }

  /** Another process may have written to the store since we loaded: catch up before serving. */
  private ensureFresh(): void {
    if (this.lexical.refreshIfStale()) this.catalog = new DocumentCatalog(this.store.catalog());
  }
}

/** Open a Quarry instance (library entry point). */
export async function createQuarry(options: QuarryOptions = {}): Promise<Quarry> {
  return Quarry.open(options);
}

/** Sources are stored as posix paths relative to the working directory when inside it. */
export function normalizeSource(p: string): string {
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(p)) return p;
  const abs = path.resolve(p);
  const rel = path.relative(process.cwd(), abs);
  const chosen = rel !== '' && !rel.startsWith('..') && !path.isAbsolute(rel) ? rel : abs;
  return chosen.split(path.sep).join('/');
}

function round(x: number): number {
  return Math.round(x * 10000) / 10000;
}

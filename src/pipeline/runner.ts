/**
 * The query runner: owns the order of the query-path stages, the request deadline and its per-stage
 * slices, the trace, the retrieval cache and what a degraded stage means for the request.
 *
 *   understand → retrieve (bm25 | dense | exact) → fuse → freshness → assemble hits → rerank
 *
 * Each stage is a function in its folder's `stage.ts` (src/query, src/retrieve, src/fuse, src/assemble,
 * src/rerank); the runner passes each one its input, the small slice of the engine it needs, and the
 * request context it traces and reports degradations into. `ask` (./ask.ts) continues from search with
 * assemble context → generate → validate.
 */
import type { Principal } from '../access/principal.js';
import { requestPrincipal } from '../access/visibility.js';
import { loadHits } from '../assemble/hits.js';
import type { EmbeddingUsage } from '../embed/types.js';
import { QuarryError } from '../errors.js';
import { applyFreshnessStage, freshnessOn, fuseLists, fuseQueries } from '../fuse/stage.js';
import { meteredLlm } from '../generate/llm/metered.js';
import { costUsd } from '../generate/llm/pricing.js';
import type { PendingQueryVector } from '../indexes/dense/dense-models.js';
import type { VisibleStatistics } from '../indexes/lexical/bm25-index.js';
import { countTokens } from '../ingest/tokens.js';
import { Trace } from '../observability/trace.js';
import { cachedUsage } from '../observability/usage.js';
import { fusionWeights } from '../query/fusion-weights.js';
import { expand, rewrite, type Understood, understand } from '../query/stage.js';
import { chooseStrategy } from '../query/strategy.js';
import { normalizeQuery } from '../query/understand.js';
import { rerank } from '../rerank/stage.js';
import { prepareDense, retrieveBm25, retrieveDense, retrieveExact } from '../retrieve/stage.js';
import { RequestContext } from '../stage.js';
import { Deadline } from './deadline.js';
import type { Engine } from './engine.js';
import type { SearchOptions, SearchResult } from './options.js';

export class QueryRunner {
  constructor(private readonly engine: Engine) {}

  private get config() {
    return this.engine.config;
  }

  /** A new request: its trace (and telemetry), degradations and deadline. */
  request(
    query: string,
    options: SearchOptions,
    trace?: Trace,
    deadline?: Deadline,
    operation: 'search' | 'ask' = 'search',
  ) {
    return {
      ctx: new RequestContext(trace ?? new Trace(query, options.trace === true, operation), options.usage),
      deadline:
        deadline ?? new Deadline(options.budgetMs ?? this.config.budget.totalMs, undefined, options.signal),
    };
  }

  /** A whole search request (the facade's `search`): the search, with its end or failure told to telemetry. */
  async searchRequest(
    query: string,
    options: SearchOptions,
    trace?: Trace,
    deadline?: Deadline,
  ): Promise<SearchResult> {
    const { ctx, deadline: d } = this.request(query, options, trace, deadline);
    try {
      const result = await this.search(query, options, ctx, d);
      ctx.trace.finish(result);
      return result;
    } catch (e) {
      ctx.trace.fail(e);
      throw e;
    }
  }

  /** `searchRequest` on the synchronous path. */
  searchSyncRequest(query: string, options: SearchOptions, trace?: Trace): SearchResult {
    const { ctx } = this.request(query, options, trace);
    try {
      const result = this.run(query, options, ctx);
      ctx.trace.retrieved(result);
      ctx.trace.finish(result);
      return result;
    } catch (e) {
      ctx.trace.fail(e);
      throw e;
    }
  }

  /** Cache-first search; a degraded result is returned but not kept (the next asker may get the full pipeline). */
  async search(
    query: string,
    options: SearchOptions,
    ctx: RequestContext,
    deadline: Deadline,
  ): Promise<SearchResult> {
    const { engine } = this;
    // Catch up with writes made elsewhere first: the cache key carries the index version, so a key built
    // before the refresh would serve a result that still holds a deleted or re-permissioned document.
    engine.ensureFresh();
    const key = engine.cacheKey(query, options, 'search');
    if (key !== undefined) {
      const hit = await engine.caches.get<SearchResult>('retrievals', key, ctx);
      if (hit !== undefined) return { ...hit, strategy: 'cache', usage: cachedUsage(), trace: report(ctx) };
    }
    const result = await this.searchUncached(query, options, ctx, deadline);
    ctx.trace.retrieved(result);
    if (key !== undefined && result.degraded.length === 0)
      await engine.caches.set('retrievals', key, { ...result, trace: undefined });
    return result;
  }

  /** Strategy (standard or multi-stage retrieval), then the reranker over a wide pool. */
  private async searchUncached(
    query: string,
    options: SearchOptions,
    ctx: RequestContext,
    deadline: Deadline,
  ): Promise<SearchResult> {
    const reranker = await this.engine.reranker(options.reranker);
    const k = options.k ?? 10;
    const rw = this.config.query.rewrite;
    const decision = chooseStrategy(query, {
      mode: rw.mode,
      llm: this.engine.hasLlm,
      minWords: rw.minWords,
    });
    // `want` undefined keeps the caller's k unset, so intent routing can choose how many results to return.
    const retrieve = (want: number | undefined): Promise<SearchResult> =>
      decision.strategy === 'multi-stage'
        ? this.searchMultiStage(query, { ...options, k: want }, ctx, deadline, decision.reason)
        : this.retrieve(query, { ...options, k: want }, ctx, deadline);
    if (reranker === undefined) return { ...(await retrieve(options.k)), strategy: decision.strategy };
    const { pool, budgetMs, earlyExitGap } = this.config.rerank;
    const first = await retrieve(Math.max(k, pool));
    const statistics = this.engine.statistics(requestPrincipal(options));
    const reranked = await rerank(
      { query, hits: first.hits, k },
      reranker,
      {
        pool,
        budgetMs,
        earlyExitGap,
        statistics,
        onUsage: (u) => ctx.usage.add({ component: 'rerank', ...u }),
      },
      deadline.slice('rerank'),
      ctx,
    );
    return { ...first, ...reranked, strategy: decision.strategy, ...finish(ctx) };
  }

  /**
   * Multi-stage retrieval: the LLM rewrites the query into variants and sub-questions; each is retrieved
   * and the lists are fused with RRF. A failed rewrite leaves the original query alone.
   */
  private async searchMultiStage(
    query: string,
    options: SearchOptions,
    ctx: RequestContext,
    deadline: Deadline,
    reason: string,
  ): Promise<SearchResult> {
    const provider = meteredLlm(this.engine.llm()!, ctx.usage, 'rewrite');
    const queries = await rewrite(
      query,
      reason,
      { provider, config: this.config.query.rewrite },
      deadline.slice('retrieve'),
      ctx,
    );
    const k = options.k ?? 10;
    if (queries.length === 1) return this.run(query, options, ctx);
    const depth = Math.max(k, this.config.retrieval.depth);
    const results: SearchResult[] = [];
    // One after the other: each waits only for its own query embedding, and the trace stays in query order.
    for (const q of queries) results.push(await this.retrieve(q, { ...options, k: depth }, ctx, deadline));
    const lists = results.map((r) => r.hits);
    const hits = fuseQueries(
      queries,
      lists,
      { rrfK: this.config.retrieval.fusion.rrfK, k, collapseDocuments: options.collapseDocuments },
      ctx,
    );
    const rewritten = results[0]?.rewrite === undefined ? {} : { rewrite: results[0].rewrite };
    return { query, hits, indexVersion: this.engine.lexical.indexVersion, ...rewritten, ...finish(ctx) };
  }

  /**
   * Standard retrieval with the query embedding of a remote/ONNX dense model in flight while the
   * synchronous steps (analysis, BM25) run; the steps pause for the vector only at the dense stage.
   */
  private async retrieve(
    query: string,
    options: SearchOptions,
    ctx: RequestContext,
    deadline?: Deadline,
  ): Promise<SearchResult> {
    this.engine.ensureFresh();
    const retriever = options.retriever ?? this.config.retrieval.retriever;
    if (retriever === 'bm25') return this.run(query, options, ctx);
    // The query embedding (and a lagging index's catch-up) gets the retrieval share of the request budget.
    const slice = deadline?.slice('retrieve');
    try {
      const pending = this.engine.denseModels.startQuery(
        this.config.query.normalize ? normalizeQuery(query) : query,
        {
          ...options,
          signal: slice?.signal ?? options.signal,
          cancel: options.signal,
          onUsage: (u) => this.recordEmbedding(ctx, u),
        },
      );
      if (pending === undefined) return this.run(query, options, ctx);
      const vector = async (): Promise<void> => {
        pending.neededAt = performance.now();
        await pending.done;
        ctx.trace.recordSince('retrieve.prepare', pending.startedAt, {
          queryEmbedding: pending.model.name,
          model: pending.model.index.modelId,
          ok: pending.vector !== undefined,
          ...(pending.failure === undefined ? {} : { failure: pending.failure }),
        });
      };
      // Dense alone: whether BM25 must stand in depends on the embedding, so there is nothing to overlap.
      if (retriever === 'dense') await vector();
      pending.stepsAt = performance.now();
      const steps = this.steps(query, options, ctx, pending);
      let step = steps.next();
      while (!step.done) {
        await vector();
        step = steps.next();
      }
      return step.value;
    } finally {
      slice?.release();
    }
  }

  /** The synchronous path (no query embedding to wait for). */
  run(query: string, options: SearchOptions, ctx: RequestContext): SearchResult {
    const step = this.steps(query, options, ctx).next();
    if (!step.done) throw new Error('search steps waited without a pending query embedding');
    return step.value;
  }

  /** Understand → retrieve → fuse → freshness → hits; pauses (yields) only to wait for a query embedding. */
  private *steps(
    query: string,
    options: SearchOptions,
    ctx: RequestContext,
    pending?: PendingQueryVector,
  ): Generator<'dense', SearchResult, void> {
    const { engine, config } = this;
    engine.ensureFresh();
    validateK(options.k);
    const lookup = { document: (g: number) => engine.catalog.get(g) };
    const understood = understand(
      { query, filter: options.filter, principal: requestPrincipal(options), typos: options.typos },
      this.understandDeps(),
      ctx,
    );
    const { plan } = understood;
    // With intent routing on, the intent picks how many results a query wants when the caller did not say.
    const intentRouting = config.retrieval.intentWeights && plan.intent !== null;
    const k = options.k ?? (intentRouting ? plan.intent!.k : 10);
    const retriever = options.retriever ?? config.retrieval.retriever;
    const freshness = options.freshness ?? config.retrieval.freshness;
    // Fusion and freshness re-order candidates: fetch a deeper list so the final top-k can come from it.
    const deep = retriever === 'hybrid' || freshnessOn(freshness) || plan.entities.some((e) => e.exact);
    const depth = deep ? Math.max(k, config.retrieval.depth) : k;
    const lists = yield* this.retrieveLists(query, understood, { retriever, depth, options, pending }, ctx);
    const show = Math.max(k, 20);
    const weights = fusionWeights(
      plan.intent,
      config.retrieval.intentWeights,
      config.retrieval.fusion.weights,
    );
    const fused = fuseLists(
      { ...lists, weights, show, collapseDocuments: options.collapseDocuments },
      { config: config.retrieval.fusion, ...lookup },
      ctx,
    );
    const ranked = applyFreshnessStage(fused.ranked, freshness, show, lookup, ctx);
    const getChunks = (ids: number[]) => engine.store.getChunks(ids);
    const hits = loadHits(ranked, { k, dedupe: fused.fused }, { getChunks, ...lookup }, ctx);
    const rewritten = plan.rewrite === undefined ? {} : { rewrite: plan.rewrite };
    return { query, hits, indexVersion: engine.lexical.indexVersion, ...rewritten, ...finish(ctx) };
  }

  /** Every retriever the request uses, each its own stage; dense waits (yields) for a pending embedding. */
  private *retrieveLists(
    query: string,
    understood: Understood,
    r: { retriever: string; depth: number; options: SearchOptions; pending?: PendingQueryVector | undefined },
    ctx: RequestContext,
  ): Generator<'dense', { lexical?: LexicalList; dense?: LexicalList; exact?: LexicalList }, void> {
    const { engine, config } = this;
    const { plan, allowGroup, statistics } = understood;
    const dense = engine.denseModels;
    const use =
      r.retriever === 'bm25'
        ? undefined
        : prepareDense(
            plan.normalized,
            { dense, queryVectors: r.options.queryVectors, pending: r.pending },
            ctx,
          );
    const denseOnly = r.retriever === 'dense' && use?.ready === true;
    const deps = this.lexicalDeps();
    const expanded = config.query.prf && !denseOnly ? expand(query, understood, deps, ctx) : undefined;
    const lexical = denseOnly
      ? undefined
      : retrieveBm25(
          {
            query,
            terms: expanded?.terms ?? plan.terms,
            weights: expanded?.weights ?? plan.weights,
            depth: r.depth,
            allowGroup,
            collapseDocuments: r.options.collapseDocuments,
            statistics,
            // Visible statistics are the caller's own to see; store-wide ones only the owner's.
            storeStats:
              config.bm25.statistics === 'visible' || requestPrincipal(r.options).kind === 'trusted',
          },
          { bm25: engine.bm25, params: engine.lexical.bm25.params },
          ctx,
        ).candidates;
    if (use?.ready === true && use.pending?.settled === false) yield 'dense';
    const denseHits =
      use?.ready === true
        ? retrieveDense(use, { normalized: plan.normalized, depth: r.depth, allowGroup }, { dense }, ctx)
        : undefined;
    // Entities (error codes, ids, versions, quoted phrases) must match exactly: chunks that contain one
    // verbatim form their own list, promoted (BM25 alone) or fused (hybrid).
    const routed = plan.entities.filter((e) => e.exact);
    const exact =
      routed.length > 0 && lexical !== undefined
        ? retrieveExact(routed, { depth: r.depth, allowGroup, statistics }, deps, ctx)
        : undefined;
    return { lexical, dense: denseHits, exact };
  }

  /** A remote query embedding into the request's usage, priced with the engine's table (input tokens only). */
  private recordEmbedding(ctx: RequestContext, u: EmbeddingUsage): void {
    const estimated = u.inputTokens === undefined;
    const inputTokens = u.inputTokens ?? u.texts.reduce((n, t) => n + countTokens(t), 0);
    ctx.usage.add({
      component: 'embed',
      model: u.model,
      inputTokens,
      outputTokens: 0,
      costUsd: costUsd([u.model], inputTokens, 0, this.engine.prices),
      estimated,
    });
  }

  private understandDeps() {
    const { engine } = this;
    return {
      config: engine.config.query,
      intentWeights: engine.config.retrieval.intentWeights,
      analyze: (t: string) => engine.lexical.analyzer.analyze(t),
      vocabulary: (allowGroup?: (group: number) => boolean, statistics?: VisibleStatistics) =>
        engine.lexical.vocabulary(allowGroup, statistics),
      predicate: engine.catalog.predicate.bind(engine.catalog),
      statistics: (principal: Principal) => engine.statistics(principal),
    };
  }

  private lexicalDeps() {
    const { engine } = this;
    return {
      config: engine.config.query,
      bm25: engine.bm25,
      analyze: (t: string) => engine.lexical.analyzer.analyze(t),
      getChunks: (ids: number[]) => engine.store.getChunks(ids),
    };
  }
}

type LexicalList = import('../retrieve/stage.js').RetrievedList;

function validateK(k: number | undefined): void {
  if (k !== undefined && (!Number.isInteger(k) || k < 1 || k > 10_000))
    throw new QuarryError('INVALID_ARGUMENT', `k must be an integer from 1 to 10000, got ${String(k)}`);
}

/** The request's degradations, usage so far and its trace, for a result. */
function finish(ctx: RequestContext): Pick<SearchResult, 'degraded' | 'usage' | 'trace'> {
  return { degraded: [...ctx.degraded], usage: ctx.usage.report(), trace: report(ctx) };
}

function report(ctx: RequestContext) {
  return ctx.trace.enabled ? ctx.trace.report() : undefined;
}

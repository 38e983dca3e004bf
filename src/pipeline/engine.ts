/**
 * The open resources a Quarry instance serves from — store, lexical and dense indexes, the document
 * catalog, caches and lazily built components (rerankers, the LLM) — and the one rule that keeps them
 * honest: before serving, catch up with writes made by other instances or processes. The facade
 * (./quarry.ts) and the runner (./runner.ts) share one engine.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import { type Principal, visibilityKey } from '../access/principal.js';
import { requestPrincipal } from '../access/visibility.js';
import { responseCacheKey } from '../cache/key.js';
import { CacheLayers } from '../cache/layers.js';
import type { QuarryConfig } from '../config/config.js';
import { type ConfiguredLlmProvider, createLlmProvider, type LlmConfig } from '../generate/llm/create.js';
import { type PriceTable, priceTable } from '../generate/llm/pricing.js';
import { DenseIndex } from '../indexes/dense/dense-index.js';
import { DenseModels } from '../indexes/dense/dense-models.js';
import type { VisibleStatistics } from '../indexes/lexical/bm25-index.js';
import type { LexicalIndex } from '../indexes/lexical/lexical-index.js';
import type { Redactor } from '../privacy/redact.js';
import { createReranker, type RerankerDeps, type RerankerName } from '../rerank/create.js';
import type { LtrDeps } from '../rerank/ltr/features.js';
import type { Reranker } from '../rerank/types.js';
import { createBm25Retriever, type Retriever } from '../retrieve/bm25-retriever.js';
import { DocumentCatalog } from '../retrieve/catalog.js';
import { assertFilterDepth } from '../retrieve/filter.js';
import type { DocumentStore, WriteOutcome } from '../store/types.js';
import { configuredLlm, type QuarryComponents } from './components.js';
import type { LlmAnswerDeps } from './llm-answer.js';
import type { AskOptions } from './options.js';
import { ltrDepsFor } from './rerank-deps.js';

export class Engine {
  readonly bm25: Retriever;
  readonly dense: DenseIndex;
  readonly denseModels: DenseModels;
  catalog: DocumentCatalog;
  /** Embedding, retrieval and response caches (in process, or backed by Redis). */
  readonly caches: CacheLayers;
  /** Hash of the configuration (but its cache section), part of every response-cache key. */
  private readonly configKey: string;
  private storeKey: string | undefined;
  private readonly rerankers = new Map<string, Promise<Reranker>>();
  private llmProvider: ConfiguredLlmProvider | undefined;
  private readonly tierProviders = new Map<'small' | 'large', ConfiguredLlmProvider>();
  /** Built-in prices with `prices` on top: what embedding calls (and unconfigured models) cost. */
  readonly prices: PriceTable;
  private ltrDeps: LtrDeps | undefined;

  constructor(
    readonly config: QuarryConfig,
    readonly store: DocumentStore,
    readonly lexical: LexicalIndex,
    readonly redactor?: Redactor,
    /** Library-supplied objects that replace the configured built-ins (see ./components.ts). */
    readonly components: QuarryComponents = {},
  ) {
    this.catalog = new DocumentCatalog(store.catalog());
    this.bm25 = createBm25Retriever(lexical);
    // Where results are cached does not change them: processes with other cache settings share entries.
    this.configKey = responseCacheKey({ config: { ...config, cache: undefined } });
    this.caches = new CacheLayers(config.cache, () => this.storeId());
    this.prices = priceTable(config.prices);
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
      embeddingCache: (local) => this.caches.embeddingCache(local),
      ...(components.embedder === undefined ? {} : { embedder: components.embedder }),
    });
    // A write committed by another process on this store (announced over Redis) reloads the index now,
    // not at this instance's next request.
    this.caches.listen(() => this.ensureFresh());
  }

  /**
   * The store's identity in shared cache keys and invalidation messages: its real path and creation time
   * (a store deleted and created again at the same path restarts its index versions).
   */
  storeId(): string {
    if (this.storeKey === undefined) {
      let dir = this.store.dir;
      try {
        dir = fs.realpathSync(dir);
      } catch {
        // keep the resolved path
      }
      const created = this.store.stats().createdAt;
      this.storeKey = createHash('sha256').update(`${dir}\u0000${created}`).digest('hex').slice(0, 24);
    }
    return this.storeKey;
  }

  /** Another process may have written to the store since we loaded: catch up before serving. */
  ensureFresh(): void {
    if (this.lexical.refreshIfStale()) this.catalog = new DocumentCatalog(this.store.catalog());
  }

  /** Mirror a committed write into every in-memory index and drop the caches. */
  applyOutcome(outcome: WriteOutcome): void {
    if (outcome.indexVersion !== this.lexical.indexVersion + 1) {
      // Another instance committed between our last refresh and this write. Mirroring only our own outcome
      // would miss its changes, and tag (and later persist) the index with a version it does not reflect.
      this.lexical.rebuild();
      this.catalog = new DocumentCatalog(this.store.catalog());
      // Our own deletes still leave the remote/ONNX indexes at once; the rest is reconciled at their sync.
      this.denseModels.apply(outcome);
      this.caches.committed(outcome.indexVersion);
      return;
    }
    this.lexical.apply(outcome);
    this.dense.apply(outcome);
    this.denseModels.apply(outcome);
    this.catalog.apply(outcome);
    // Keys carry the index version, so old entries are unreachable already; free them too, here and in
    // every other process on this store.
    this.caches.committed(outcome.indexVersion);
  }

  persist(): void {
    this.lexical.persist();
    this.dense.persist();
    this.denseModels.persist();
  }

  /**
   * Everything that changes an answer: the question, the request options, what the principal may read, the
   * configuration and the index version (so any write makes older answers unreachable). Call `ensureFresh`
   * first, or the key carries a version another process has already replaced.
   */
  cacheKey(question: string, o: AskOptions, kind: 'ask' | 'search'): string | undefined {
    if (!this.caches.enabled(kind === 'ask' ? 'responses' : 'retrievals')) return undefined;
    if (o.cache === false || o.signal !== undefined) return undefined;
    // The key hashes the filter recursively before retrieval validates it: refuse an absurdly deep one here.
    if (o.filter !== undefined && typeof o.filter !== 'string') assertFilterDepth(o.filter);
    return responseCacheKey({
      kind,
      store: this.storeId(),
      question: question.trim(),
      k: o.k,
      filter: o.filter,
      visibility: visibilityKey(requestPrincipal(o)),
      collapse: o.collapseDocuments,
      retriever: o.retriever,
      typos: o.typos,
      reranker: o.reranker,
      freshness: o.freshness,
      budgetMs: o.budgetMs,
      jsonSchema: o.jsonSchema,
      config: this.configKey,
      indexVersion: this.lexical.indexVersion,
      // A remote index catching up with the store changes results without a store write. (The built-in
      // index follows the store synchronously; its in-memory size only says whether this process loaded it.)
      dense: this.denseModels.models.flatMap((m) =>
        m.provider === 'builtin' ? [] : [m.index.summary().vectors],
      ),
    });
  }

  /**
   * The reranker for a request: the override, else a supplied `components.reranker`, else the configured
   * one; undefined for `none`.
   */
  async reranker(name: RerankerName | undefined): Promise<Reranker | undefined> {
    if (name === undefined && this.components.reranker !== undefined) return this.components.reranker;
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

  /** Whether answers come from an LLM (configured or supplied) rather than the extractive answerer. */
  get hasLlm(): boolean {
    return this.components.llm !== undefined || this.config.llm !== undefined;
  }

  /** The supplied or configured LLM provider (built once), or undefined for the extractive answerer. */
  llm(): ConfiguredLlmProvider | undefined {
    if (this.components.llm !== undefined)
      this.llmProvider ??= configuredLlm(this.components.llm, this.config.llm);
    else if (this.config.llm !== undefined) this.llmProvider ??= this.createLlm(this.config.llm);
    return this.llmProvider;
  }

  /**
   * The LLM that answers a question of `tier` when `routing` is configured: that tier's own model (built
   * once), else the default `llm()`.
   */
  answerLlm(tier: 'small' | 'large'): ConfiguredLlmProvider | undefined {
    const cfg = this.config.routing?.[tier];
    if (cfg === undefined) return this.llm();
    let p = this.tierProviders.get(tier);
    if (p === undefined) {
      p = this.createLlm(cfg);
      this.tierProviders.set(tier, p);
    }
    return p;
  }

  /** An LLM from its section, priced with the top-level `prices` under its own. */
  private createLlm(cfg: LlmConfig): ConfiguredLlmProvider {
    return createLlmProvider({ ...cfg, prices: { ...this.config.prices, ...cfg.prices } });
  }

  /**
   * What BM25 statistics leave out for `principal` (`bm25.statistics: 'visible'`): the documents it may not
   * read, so they shift neither its scores nor the term weights its answer is built with. Undefined =
   * store-wide statistics (nothing hidden from it, or `'store'`). Call `ensureFresh` first.
   */
  statistics(principal: Principal): VisibleStatistics | undefined {
    return this.config.bm25.statistics === 'visible' ? this.catalog.visibility(principal) : undefined;
  }

  /**
   * Whether `principal` may read the document with this id; an absent document is unreadable. Call
   * `ensureFresh` first: the catalog is what decides.
   */
  readableDocument(id: string, principal: Principal): boolean {
    if (principal.kind === 'trusted') return this.store.documentStates([id]).has(id);
    const state = this.store.documentStates([id]).get(id);
    return state !== undefined && this.catalog.readable(state.key, principal);
  }

  /**
   * What the answer stages read of the indexes and the store, for one principal: a parent section or a
   * section's chunks of a document it may not read are not there, so no such text reaches the context.
   */
  llmDeps(principal: Principal): LlmAnswerDeps {
    const statistics = this.statistics(principal);
    return {
      analyze: (t) => this.lexical.analyzer.analyze(t),
      idf: (t) => this.lexical.idf(t, statistics),
      getParentSection: (id) => {
        const section = this.store.getParentSection(id);
        return section !== undefined && this.readableDocument(section.docId, principal) ? section : undefined;
      },
      sectionChunks: (doc, section) =>
        this.readableDocument(doc, principal) ? this.store.sectionChunks(doc, section) : [],
      ...(this.components.tokenizer === undefined ? {} : { tokenizer: this.components.tokenizer }),
    };
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
    this.caches.close();
    // A store passed as components.store belongs to the caller, like every supplied component.
    if (this.components.store === undefined) this.store.close();
  }
}

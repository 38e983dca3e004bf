/**
 * The request and result shapes of the library API (search, ask, stats), shared by the facade
 * (./quarry.ts) and the runner (./runner.ts).
 */

import type { Principal } from '../access/principal.js';
import type { QuarryConfig, QuarryConfigInput } from '../config/config.js';
import type { FreshnessOptions } from '../fuse/freshness.js';
import type { DenseIndexSummary } from '../indexes/dense/dense-index.js';
import type { UsageMeter } from '../observability/usage.js';
import type { QueryRewrite } from '../query/spelling.js';
import type { RetrievalStrategy } from '../query/strategy.js';
import type { RerankerName } from '../rerank/create.js';
import type { RerankStatus } from '../rerank/run-rerank.js';
import type { StoreStats } from '../store/types.js';
import type { AccessScope, Degradation, RequestUsage, SearchHit, TraceReport } from '../types.js';
import type { QuarryComponents } from './components.js';

export interface QuarryOptions {
  /**
   * Store directory. Default: `$QUARRY_STORE`, else `.quarry` in the working directory. Not given with
   * `components.store` (your own DocumentStore object).
   */
  store?: string;
  config?: QuarryConfigInput;
  /** `false`: open an existing store only; a path without one throws STORE_NOT_FOUND. Default true (create). */
  create?: boolean;
  /** Your own embedder, reranker, LLM, tokenizer or store objects, used instead of the configured built-ins. */
  components?: QuarryComponents;
}

export interface SearchOptions {
  /** `false`: neither read nor write the retrieval/response caches for this request. */
  cache?: boolean;
  /** Results to return (default 10). */
  k?: number;
  /** Metadata filter (MongoDB-style JSON, or its string form). Invalid filters throw INVALID_FILTER. */
  filter?: unknown;
  /**
   * Who is asking: only documents it may read are retrieved, cited or used as context (see `canRead`).
   * Missing = ANONYMOUS (unrestricted documents only), never trusted: pass `TRUSTED_LOCAL` to see everything.
   */
  principal?: Principal;
  /**
   * @deprecated Use `principal: userPrincipal({ groups })`, which is what `scope: { groups }` now means (a
   * user in those groups, clearance 0). Giving both `scope` and `principal` is INVALID_ARGUMENT.
   */
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
  /** Typo correction for this request (default: `query.typos`); `false` searches the words as written. */
  typos?: boolean;
  /**
   * The meter this request's calls are counted into (default: a new one). Pass your own to read the usage
   * of a request that failed or was cancelled part-way (budgets), since then no result carries it.
   */
  usage?: UsageMeter;
  /** Query vectors embedded ahead (batch mode embeds every question in one pass), keyed by normalized text. */
  queryVectors?: ReadonlyMap<string, Float32Array>;
}

export interface SearchResult {
  query: string;
  hits: SearchHit[];
  indexVersion: number;
  /**
   * Stages that ran in a reduced form (dense asked for but unavailable, an embedder or reranker that failed
   * or timed out…), empty when the whole pipeline ran. Degraded results are not cached.
   */
  degraded: Degradation[];
  /** Strategy the router chose: `cache` (served from the retrieval cache), `standard`, or `multi-stage`. */
  strategy?: RetrievalStrategy | 'cache';
  /** How query understanding rewrote the query (typo corrections); absent when it was searched as written. */
  rewrite?: QueryRewrite;
  /** What the rerank stage did (absent when no reranker is configured). */
  rerank?: { reranker: string; status: RerankStatus; reason?: string };
  /**
   * Tokens and cost of the calls this search made: query rewriting, LLM reranking, remote query embeddings
   * (zero with `cached: true` when the retrieval cache answered). Always set by search.
   */
  usage?: RequestUsage;
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

/**
 * The reranker contract: reorder a wide pool of fused candidates (top 50–100) with a more expensive
 * relevance model. Implementations: learning-to-rank over cheap features, a local ONNX cross-encoder, HTTP
 * `/rerank` APIs and LLM relevance scoring. The pipeline owns the pool size, the latency budget and the
 * fallback to the fused order.
 */
import type { VisibleStatistics } from '../indexes/lexical/bm25-index.js';
import type { SearchHit } from '../types.js';

export interface RerankRequest {
  query: string;
  /** Candidates in fused order (hit.rank is the fused rank, hit.scores the per-retriever scores). */
  hits: SearchHit[];
  /** Aborted when the stage's latency budget runs out; implementations must stop and reject promptly. */
  signal?: AbortSignal;
  /** Called once per billed call (an LLM grading batch…) with its usage, for the request's accounting. */
  onUsage?: (usage: RerankUsage) => void;
  /**
   * The documents hidden from the caller, for rerankers that read corpus statistics (learning-to-rank: idf,
   * average lengths): statistics over what the caller may read, so hidden documents do not shift its scores.
   * Rerankers that read no corpus statistics ignore it.
   */
  statistics?: VisibleStatistics | undefined;
}

/** One billed call a reranker made. */
export interface RerankUsage {
  model: string;
  inputTokens: number;
  outputTokens: number;
  /** USD; undefined when the model has no price. */
  costUsd?: number | undefined;
  estimated?: boolean | undefined;
}

export interface RerankScore {
  /** Index into `request.hits`. */
  index: number;
  /** Higher is more relevant; only the order within one request is meaningful. */
  score: number;
}

export interface Reranker {
  /** e.g. `ltr:default`, `onnx:<model dir name>`, `http:cohere/rerank-v3.5`, `llm:openai:gpt-4o-mini`. */
  readonly id: string;
  /** Scores for every hit (any order); the pipeline sorts. */
  rerank(request: RerankRequest): Promise<RerankScore[]>;
  /** Release workers/connections (ONNX worker pool). */
  close?(): Promise<void> | void;
}

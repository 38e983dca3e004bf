/**
 * Quarry's public library API. Everything a program needs to ingest, search, answer and evaluate.
 *
 * @example
 * const quarry = await createQuarry({ store: '.quarry' });
 * await quarry.ingest(['docs/']);
 * const answer = await quarry.ask('How do I rotate keys?');
 */

/**
 * Who is asking. Every read (search, ask, documents, parent sections, feedback) takes `principal`; a missing
 * one is ANONYMOUS (unrestricted documents only). `TRUSTED_LOCAL` reads everything and must be passed on purpose.
 */
export {
  ANONYMOUS,
  type AnonymousPrincipal,
  hasScope,
  type Principal,
  SCOPES,
  type Scope,
  TRUSTED_LOCAL,
  type TrustedPrincipal,
  type UserPrincipal,
  userPrincipal,
  visibilityKey,
} from './access/principal.js';
export {
  canRead,
  type DocumentAccess,
  narrowToGroups,
  type ReadGrant,
  readerFor,
  readGrant,
  requestPrincipal,
} from './access/visibility.js';
export { type ModelTokenizer, tokenizerFor } from './assemble/tokenizer.js';
export { type QuarryConfig, type QuarryConfigInput, resolveConfig } from './config/config.js';
/**
 * The component interfaces: implement one and pass the object as `createQuarry({ components: { … } })` to
 * replace the built-in of that family. `test/conformance/` holds the suite each implementation must pass.
 */
export type { Embedder, EmbeddingUsage, EmbedKind, EmbedOptions } from './embed/types.js';
export { ERRORS, type ErrorCode, QuarryError } from './errors.js';
export { type EvalOptions, type EvalReport, runEval } from './eval/run-eval.js';
export { NOT_ENOUGH_INFORMATION } from './generate/extractive.js';
export type { ConfiguredLlmProvider } from './generate/llm/create.js';
export { createLlmProvider } from './generate/llm/create.js';
export { meteredLlm } from './generate/llm/metered.js';
export { DEFAULT_PRICES, type ModelPrice, type PriceTable, priceFor } from './generate/llm/pricing.js';
export type {
  ChatMessage,
  Completion,
  GenerateRequest,
  LlmEvent,
  LlmProvider,
  TokenUsage,
} from './generate/llm/types.js';
export type { AddDocumentsOptions, DocumentAccessInput, DocumentInput } from './ingest/add-documents.js';
export { type ChunkedDocument, type ChunkOptions, chunkDocument } from './ingest/chunker.js';
export type { IngestFileError, IngestOptions, IngestReport } from './ingest/ingest.js';
export { countTokens, type TokenCounter } from './ingest/tokens.js';
export { createLogger, type LoggerOptions } from './observability/log.js';
export {
  type CacheLayer,
  enableMetrics,
  type GuardEvent,
  indexFreshness,
  metricsRegistry,
  metricsText,
  type RequestLabels,
  recordCacheLookup,
  recordGuardEvent,
  recordTokens,
  registerIndexProbe,
  startHttpRequest,
  type TokenComponent,
  withRequestLabels,
} from './observability/metrics.js';
export {
  configureTelemetry,
  SPAN_NAMES,
  type SpanName,
  shutdownTelemetry,
  type TelemetryOptions,
} from './observability/tracing.js';
export { cachedUsage, UsageMeter, type UsageRecord } from './observability/usage.js';
export {
  type CheckCode,
  type CheckFinding,
  type CheckReport,
  checkStoreDir,
} from './pipeline/check.js';
export type { LanguageModel, QuarryComponents } from './pipeline/components.js';
export {
  type AskOptions,
  createQuarry,
  Quarry,
  type QuarryOptions,
  type QuarryStats,
  resolveStoreDir,
  type SearchOptions,
  type SearchResult,
} from './pipeline/quarry.js';
export type { PiiAuditEntry, RestoreOutcome } from './privacy/audit.js';
export {
  type OutputRedactor,
  redactAnswer,
  redactHits,
  redactParentSection,
  redactSearchResult,
  redactStoredDocument,
  redactTrace,
} from './privacy/redact-output.js';
export type { RestoreOptions, RestoreResult } from './privacy/restore.js';
export {
  type ComplexityRule,
  ComplexityRuleSchema,
  classifyComplexity,
  queryComplexity,
} from './query/complexity.js';
export type { FusionWeightsDecision } from './query/fusion-weights.js';
export type { Reranker, RerankRequest, RerankScore, RerankUsage } from './rerank/types.js';
export { compileFilter, type Filter } from './retrieve/filter.js';
/**
 * The store contract: implement `DocumentStore` and pass the object as `components.store` to keep documents,
 * sections and chunks somewhere other than the embedded SQLite store (`test/conformance/store.ts` is its suite).
 */
export type {
  CatalogEntry,
  DocumentListOptions,
  DocumentState,
  DocumentStore,
  DocumentWriteResult,
  FeedbackEntry,
  ParentSection,
  StoreIndexSettings,
  StoreStats,
  WriteBatch,
  WriteOutcome,
  WriteStatus,
} from './store/types.js';
export type * from './types.js';

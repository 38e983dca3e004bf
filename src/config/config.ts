/**
 * Quarry's configuration: one validated object with defaults for every stage. External input (files, CLI
 * flags, API options) is parsed here once; stages receive typed, trusted values.
 */
import { z } from 'zod';
import { ContextConfigSchema } from '../assemble/context.js';
import { QuarryError } from '../errors.js';
import { GuardConfigSchema } from '../generate/guard.js';
import { LlmConfigSchema, PriceSchema } from '../generate/llm/create.js';
import { PromptTemplateSchema, parsePromptTemplate } from '../generate/prompt.js';
import {
  checkDenseModels,
  DEFAULT_DENSE_MODELS,
  DenseModelsConfigShape,
} from '../indexes/dense/dense-config.js';
import { AnalyzerConfigSchema } from '../indexes/lexical/analyzer.js';
import { SemanticChunkingConfigSchema } from '../ingest/semantic.js';
import { PrivacyConfigSchema } from '../privacy/redact.js';
import { ComplexityRuleSchema } from '../query/complexity.js';
import { QueryRewriteConfigSchema } from '../query/rewrite.js';
import { HttpRerankerConfigSchema } from '../rerank/http-reranker.js';
import { LlmRerankerConfigSchema } from '../rerank/llm-reranker.js';
import { OnnxRerankerConfigSchema } from '../rerank/onnx-cross-encoder.js';
import { ValidationConfigSchema } from '../validate/answer.js';
import { describeUnknownKey, findUnknownKeys } from './unknown-keys.js';

export const ChunkingConfigSchema = z.object({
  /** Maximum tokens per retrieval chunk (counted with a BPE tokenizer). */
  maxTokens: z.number().int().min(16).max(8192).default(256),
  /** Tokens of trailing sentences repeated at the start of the next chunk of a section. */
  overlapTokens: z.number().int().min(0).max(1024).default(32),
  /** Upper bound of a parent section handed to context assembly. */
  parentMaxTokens: z.number().int().min(64).max(32768).default(1024),
  /**
   * Cuts at topic shifts inside sections over the budget. Optional rather than defaulted: absent, the
   * chunking settings (and so every stored document's change fingerprint) stay exactly as before.
   */
  semantic: SemanticChunkingConfigSchema.optional(),
});

export const Bm25ConfigSchema = z.object({
  k1: z.number().min(0).max(10).default(0.9),
  b: z.number().min(0).max(1).default(0.4),
  lengthNorm: z.enum(['lucene', 'exact']).default('lucene'),
  /** `flat`: title + body in one field (Anserini flat); `multifield`: separate fields, weighted sum. */
  fields: z.enum(['flat', 'multifield']).default('flat'),
  titleWeight: z.number().min(0).max(10).default(1),
  bodyWeight: z.number().min(0).max(10).default(1),
  /**
   * `visible`: N, document frequencies and avgdl are taken over the documents the caller may read, so a
   * hidden document cannot shift the scores (or typo corrections) anyone else sees. `store`: over the
   * whole store, for everyone (the scores before this option; faster for callers with hidden documents).
   */
  statistics: z.enum(['visible', 'store']).default('visible'),
});

export const IngestConfigSchema = z.object({
  /** Files larger than this are rejected with FILE_TOO_LARGE (and the rest of the batch continues). */
  maxFileBytes: z
    .number()
    .int()
    .min(1)
    .default(50 * 1024 * 1024),
  /**
   * Zip-based files (DOCX) whose entries inflate to more than this in total are refused with ARCHIVE_BOMB
   * before the parser inflates them (the size limit above counts only compressed bytes).
   */
  maxInflatedBytes: z
    .number()
    .int()
    .min(1)
    .default(200 * 1024 * 1024),
  /** A zip entry over 1 MiB that inflates more than this many times its compressed size is ARCHIVE_BOMB. */
  maxCompressionRatio: z.number().min(1).default(100),
  /** Documents written per transaction. */
  batchSize: z.number().int().min(1).max(10_000).default(64),
  /** A batch is also written once its documents hold this many characters (bounds memory for big files). */
  batchMaxChars: z.number().int().min(1).default(16_000_000),
  /** Files parsed concurrently. */
  concurrency: z.number().int().min(1).max(64).default(4),
  /**
   * Bytes of files being parsed and chunked at once: a file waits while others of this total are in flight
   * (one larger than this runs alone), so peak memory follows the largest file, not `concurrency` of them.
   */
  maxInFlightBytes: z
    .number()
    .int()
    .min(1)
    .default(64 * 1024 * 1024),
  /**
   * `worker`: PDF, DOCX, HTML and Markdown parse in worker threads with the memory and time limits below, so
   * one hostile file fails alone (PARSE_MEMORY_LIMIT, PARSE_TIMEOUT) instead of taking the process down;
   * `inline`: in-process (no limits; slightly faster for many small files).
   */
  parseIsolation: z.enum(['worker', 'inline']).default('worker'),
  /** Heap per parse worker (MiB). */
  parseMemoryMb: z.number().int().min(16).max(16_384).default(1024),
  /** Longest one file may parse (ms). */
  parseTimeoutMs: z.number().int().min(100).max(3_600_000).default(60_000),
});

export const AnswerConfigSchema = z.object({
  /** Chunks the extractive answerer reads. */
  topChunks: z.number().int().min(1).max(50).default(5),
  /** Token budget of the extractive answer. */
  maxTokens: z.number().int().min(16).max(4096).default(160),
  /** Below this share of (idf-weighted) question terms found in the best sentences, abstain. */
  minSupport: z.number().min(0).max(1).default(0.5),
  /**
   * Below this share of (idf-weighted) question terms found in the passage the answer quotes first (its
   * chunk text, title and section path), abstain: the passage is about the topic, not the question (a near
   * miss). 0.55 abstains on 58% of SQuAD near misses (--unanswerable 0.1) with answer_hit@1 on the answerable
   * questions as before (docs/benchmarks.md, "Answer quality").
   */
  minPassageCoverage: z.number().min(0).max(1).default(0.55),
});

export const QueryConfigSchema = z.object({
  /** Unicode NFKC, control characters, whitespace. */
  normalize: z.boolean().default(true),
  /** Extract error codes, ids, versions, quoted phrases for exact matching. */
  entities: z.boolean().default(true),
  /** Rule-based intent: sets retriever weights and candidate depth. */
  intent: z.boolean().default(true),
  /** Replace terms the index has never seen with a close indexed term. */
  typos: z.boolean().default(true),
  /** RM3 pseudo-relevance feedback: expand the query with terms of the first-pass top documents. */
  prf: z.boolean().default(false),
  prfDocs: z.number().int().min(1).max(100).default(10),
  prfTerms: z.number().int().min(1).max(100).default(10),
  prfOriginalWeight: z.number().min(0).max(1).default(0.5),
  /**
   * LLM query rewriting (needs the llm section): `auto` rewrites complex queries (multi-hop wording or at
   * least `minWords` words) into a clearer query, variants and sub-questions, retrieved and fused with RRF.
   */
  rewrite: QueryRewriteConfigSchema.extend({
    mode: z.enum(['off', 'auto', 'always']).default('off'),
    minWords: z.number().int().min(1).max(200).default(12),
  }).default({ mode: 'off', minWords: 12, variants: 3, maxSubQueries: 3, maxTokens: 400 }),
});

/** Fusion weights are shares of the fused score, each in [0, 1]. */
const RetrieverWeightsSchema = z.object({
  bm25: z.number().min(0).max(1),
  dense: z.number().min(0).max(1),
});

export const RetrievalConfigSchema = z.object({
  /** Default retriever for search, ask and eval. */
  retriever: z.enum(['bm25', 'dense', 'hybrid']).default('bm25'),
  /** Candidates each retriever contributes before fusion. */
  depth: z.number().int().min(1).max(10_000).default(100),
  /** Let the query's intent (see query understanding) set the fusion weights and, when the caller gives no k, how many results to return. */
  intentWeights: z.boolean().default(false),
  fusion: z
    .object({
      method: z.enum(['rrf', 'minmax', 'zscore']).default('minmax'),
      rrfK: z.number().min(0).default(60),
      /** Chosen on scifact train + nfcorpus dev (docs/benchmarks.md), never on test sets. */
      weights: RetrieverWeightsSchema.default({ bm25: 0.6, dense: 0.4 }),
      /** Per doc_type weights, e.g. `{ "api-reference": { "bm25": 0.9, "dense": 0.1 } }`. */
      byDocType: z.record(z.string(), RetrieverWeightsSchema).default({}),
    })
    .default({ method: 'minmax', rrfK: 60, weights: { bm25: 0.6, dense: 0.4 }, byDocType: {} }),
  freshness: z
    .object({
      /** Half-life in days of the time decay (unset = no decay). */
      halfLifeDays: z.number().positive().optional(),
      /** Share of the score subject to decay. */
      decayWeight: z.number().min(0).max(1).default(0.3),
      timestampField: z.enum(['updated_at', 'created_at']).default('updated_at'),
      /** Field whose equal values mark versions of one document; only the newest is returned. */
      latestBy: z.string().min(1).optional(),
    })
    .default({ decayWeight: 0.3, timestampField: 'updated_at' }),
  dense: z
    .object({
      /** LSA dimensions of the built-in embedder. */
      dimensions: z.number().int().min(8).max(1024).default(256),
      /** Share of hashed character n-grams in the built-in embedder's cosine (0 = LSA only). */
      ngramWeight: z.number().min(0).max(1).default(0.7),
      /** Vectors above which the exact index switches to HNSW. */
      annThreshold: z.number().int().min(1).default(20_000),
      quantization: z.enum(['none', 'int8', 'binary']).default('none'),
      ...DenseModelsConfigShape,
    })
    .superRefine(checkDenseModels)
    .default({
      dimensions: 256,
      ngramWeight: 0.7,
      annThreshold: 20_000,
      quantization: 'none',
      models: DEFAULT_DENSE_MODELS,
      syncBatchSize: 512,
    }),
});

export const RerankConfigSchema = z.object({
  /** `none` keeps the fused order; `ltr` is the built-in learning-to-rank model (no downloads). */
  reranker: z.enum(['none', 'ltr', 'onnx', 'http', 'llm']).default('none'),
  /** Fused candidates handed to the reranker (rerank a wide pool, not the truncated top 5). */
  pool: z.number().int().min(2).max(1000).default(100),
  /** Latency budget of the stage; on timeout the fused order is kept and the trace says so. */
  budgetMs: z.number().int().min(1).max(600_000).default(2000),
  /** Skip reranking when (top1 − top2) / top1 of the fused scores is at least this. Unset = always rerank. */
  earlyExitGap: z.number().min(0).max(1).optional(),
  /** LTR model file (`quarry train-ranker` output); default: the shipped model. */
  ltrModel: z.string().min(1).optional(),
  /** Local ONNX cross-encoder (required when reranker is `onnx`). */
  onnx: OnnxRerankerConfigSchema.optional(),
  /** LLM relevance grading (reranker `llm`, uses the `llm` section's model). */
  llm: LlmRerankerConfigSchema.optional(),
  /** Cohere / Jina / TEI `/rerank` API (required when reranker is `http`); the key may come from QUARRY_RERANK_API_KEY. */
  http: HttpRerankerConfigSchema.optional(),
});

export const BudgetConfigSchema = z.object({
  /** Per-request deadline for ask (ms), split across stages; unset = no deadline. */
  totalMs: z.number().int().min(1).max(3_600_000).optional(),
});

export const CacheConfigSchema = z.object({
  /**
   * `memory`: in-process LRU layers (one process). `redis`: the same layers backed by a Redis every process
   * on the store shares, with cross-process invalidation. Unset: redis when QUARRY_REDIS_URL is set.
   */
  driver: z.enum(['memory', 'redis']).optional(),
  redis: z
    .object({
      /** `redis://host:port[/db]` or `rediss://…`; default QUARRY_REDIS_URL, else redis://127.0.0.1:6379. */
      url: z
        .string()
        .regex(/^rediss?:\/\/\S+$/, 'must be a redis:// or rediss:// URL')
        .optional(),
      /** Prepended to every key and channel, so deployments can share one Redis. */
      keyPrefix: z.string().max(200).default('quarry:'),
      /** Connection and command timeout; past it the request bypasses the cache. */
      timeoutMs: z.number().int().min(1).max(60_000).default(1000),
    })
    .optional(),
  /** Cache answers keyed by question, options, access scope, configuration and index version. */
  responses: z.boolean().default(true),
  /** Cache search results the same way (cache-first retrieval for repeated queries). */
  retrievals: z.boolean().default(true),
  /** Cache remote/ONNX embeddings by model, dimension and text (a store file, plus Redis when configured). */
  embeddings: z.boolean().default(true),
  /** Entries per in-process layer. */
  maxEntries: z.number().int().min(1).max(1_000_000).default(1000),
  /** Time-to-live of every entry (default: none in process, one day in Redis). */
  ttlMs: z.number().int().min(1).optional(),
});

/**
 * Model routing by question complexity: simple questions are answered by `small`, multi-hop, long or
 * comparative ones by `large` (see src/query/complexity.ts for the rule). A tier left out is the `llm`
 * model. Routing picks the answer's model (generation, structured-output retries, self-critique); query
 * rewriting and LLM reranking keep using `llm`.
 */
export const RoutingConfigSchema = z
  .object({
    small: LlmConfigSchema.optional(),
    large: LlmConfigSchema.optional(),
    rule: ComplexityRuleSchema.prefault({}),
  })
  .refine((r) => r.small !== undefined || r.large !== undefined, {
    message: 'routing needs a small or a large model (the other one is the llm section)',
  });

export const QuarryConfigSchema = z.object({
  retrieval: RetrievalConfigSchema.default(RetrievalConfigSchema.parse({})),
  query: QueryConfigSchema.default(QueryConfigSchema.parse({})),
  chunking: ChunkingConfigSchema.default(ChunkingConfigSchema.parse({})),
  analyzer: AnalyzerConfigSchema.default(AnalyzerConfigSchema.parse({})),
  bm25: Bm25ConfigSchema.default(Bm25ConfigSchema.parse({})),
  ingest: IngestConfigSchema.default(IngestConfigSchema.parse({})),
  answer: AnswerConfigSchema.default(AnswerConfigSchema.parse({})),
  rerank: RerankConfigSchema.default(RerankConfigSchema.parse({})),
  budget: BudgetConfigSchema.default(BudgetConfigSchema.parse({})),
  cache: CacheConfigSchema.default(CacheConfigSchema.parse({})),
  /** The LLM that writes answers; unset = the extractive answerer (embedded default, no network). */
  llm: LlmConfigSchema.optional(),
  /** A small and/or large LLM beside `llm`, chosen per question by its complexity (needs `llm`). */
  routing: RoutingConfigSchema.optional(),
  /**
   * USD per 1M input/output tokens by model name, for every model Quarry calls: remote embedding models
   * (e.g. `text-embedding-3-small`) as well as LLMs (`llm.prices` wins for its own model). A model with no
   * price, here or built in, makes a request's cost unknown rather than 0.
   */
  prices: z.record(z.string().min(1), PriceSchema).default({}),
  /** Context assembly for LLM answers (the window and reserved output come from `llm`). */
  context: ContextConfigSchema.default(ContextConfigSchema.parse({})),
  /** Prompt template override (`{ system, user, source }`); validated, missing placeholders are errors. */
  prompt: PromptTemplateSchema.optional(),
  /** Checks of LLM answers: citations, support per sentence, confidence, abstention. */
  validation: ValidationConfigSchema.extend({
    /** A second LLM pass checks the answer against the sources (costs one more call per answer). */
    critique: z.boolean().default(false),
  }).default({ ...ValidationConfigSchema.parse({}), critique: false }),
  /** PII detection and redaction at ingest (before anything is stored) and/or on answers. Off by default. */
  privacy: PrivacyConfigSchema.default(PrivacyConfigSchema.parse({})),
  /** Prompt-injection guard of LLM answers: sources that look like instructions, exfiltration links. */
  guard: GuardConfigSchema.default(GuardConfigSchema.parse({})),
});

export type QuarryConfig = z.infer<typeof QuarryConfigSchema>;
export type ChunkingConfig = z.infer<typeof ChunkingConfigSchema>;

/** User input for `QuarryConfig`: every field with a default may be left out (the schema fills it in). */
export type QuarryConfigInput = z.input<typeof QuarryConfigSchema>;

/**
 * Validate and complete a configuration. Unknown keys are errors naming the nearest valid key (a misspelled
 * setting would otherwise be dropped and do nothing); out-of-range values are errors naming the setting.
 */
export function resolveConfig(input: unknown = {}): QuarryConfig {
  const unknown = findUnknownKeys(QuarryConfigSchema, input ?? {});
  const parsed = QuarryConfigSchema.safeParse(input ?? {});
  if (unknown.length > 0 || !parsed.success) {
    const issues = parsed.success ? [] : parsed.error.issues;
    const lines = [
      ...unknown.map(describeUnknownKey),
      ...issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`),
    ];
    throw new QuarryError('INVALID_CONFIG', lines.join('; '), {
      ...(unknown.length > 0 ? { unknownKeys: unknown.map(({ valid: _v, ...u }) => u) } : {}),
      issues,
    });
  }
  // A template missing {{sources}} or {{question}} (or naming an unknown placeholder) fails at open, not at
  // the first question.
  if (parsed.data.prompt !== undefined) parsePromptTemplate(parsed.data.prompt);
  if (parsed.data.routing !== undefined && parsed.data.llm === undefined)
    throw new QuarryError(
      'INVALID_CONFIG',
      'routing: needs the llm section (the default model; routing.small / routing.large replace it per question)',
      { path: 'routing' },
    );
  return parsed.data;
}

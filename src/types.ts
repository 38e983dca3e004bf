/**
 * The pipeline's shared contract. Every stage (ingest → index → retrieve → answer → validate) and every
 * backend (embedded SQLite today, Postgres later) speaks these types; stages never reach into each other.
 */

/** Document metadata that Quarry understands, plus arbitrary user fields in `fields`. */
export interface DocumentMetadata {
  /** Where the document came from: a file path (posix, relative to the working directory) or a URI. */
  source: string;
  title: string;
  /** ISO-8601 timestamps. `created_at` is set on first ingest; `updated_at` on every content change. */
  created_at: string;
  updated_at: string;
  /** Monotonic per-document version, bumped whenever the content hash changes. */
  version: number;
  /** e.g. `markdown`, `html`, `pdf`, `docx`, `text`, `record`. */
  doc_type: string;
  tags: string[];
  /**
   * Groups allowed to read the document. With `access_users` both empty the document is unrestricted;
   * otherwise a reader must be one of the users or in one of the groups (see `canRead`).
   */
  access_groups: string[];
  /** User ids allowed to read the document (in addition to `access_groups`). */
  access_users: string[];
  /** Readers need a clearance of at least this (integer ≥ 0); absent = 0. */
  security_level?: number;
  /** Arbitrary user fields (nested JSON allowed). Addressable in filters by name or `fields.<name>`. */
  fields: Record<string, unknown>;
}

/** A heading-delimited region of a document; the "parent" that small retrieval chunks belong to. */
export interface Section {
  /** Ordinal of the section within its document (0-based). */
  ordinal: number;
  /** Heading hierarchy, outermost first; empty for text before the first heading. */
  path: string[];
  /** Character offsets into the document text, end exclusive. */
  start: number;
  end: number;
}

/** A retrieval unit: an exact slice `documentText.slice(start, end)` of its document. */
export interface ChunkDraft {
  ordinal: number;
  /** Index into the document's `sections`. */
  section: number;
  start: number;
  end: number;
  text: string;
  tokenCount: number;
}

/** What a parser hands the chunker: the document's canonical text and its structure. */
export interface ParsedDocument {
  /** Canonical text; every offset in sections and chunks refers to this string. */
  text: string;
  title?: string;
  /** Block structure in text order; headings drive the section tree. */
  blocks: Block[];
  /** Metadata the format itself carries (HTML <meta>, PDF info, front matter). */
  fields?: Record<string, unknown>;
}

export type BlockKind = 'heading' | 'paragraph' | 'list' | 'code' | 'table' | 'quote' | 'page';

export interface Block {
  kind: BlockKind;
  /** Heading level 1–6 (only for headings). */
  level?: number;
  /** Heading text (only for headings), without markup. */
  heading?: string;
  start: number;
  end: number;
}

/** A document ready to be written: metadata, text, sections and chunks, with its content hash. */
export interface DocumentDraft {
  id: string;
  hash: string;
  text: string;
  meta: Omit<DocumentMetadata, 'created_at' | 'updated_at' | 'version'> &
    Partial<Pick<DocumentMetadata, 'created_at' | 'updated_at'>>;
  sections: Section[];
  chunks: ChunkDraft[];
}

/** A document as stored. */
export interface StoredDocument {
  id: string;
  hash: string;
  meta: DocumentMetadata;
  chunkCount: number;
  charCount: number;
}

/** A chunk as stored, with the context a citation needs. */
export interface StoredChunk {
  /** Store-wide numeric id, never reused (a changed document gets new chunk ids). */
  id: number;
  docId: string;
  ordinal: number;
  sectionOrdinal: number;
  sectionPath: string[];
  start: number;
  end: number;
  text: string;
  tokenCount: number;
  /** The document title, indexed with every chunk (title field). */
  title: string;
}

/** One retriever's opinion of a chunk. */
export interface Candidate {
  chunkId: number;
  score: number;
  /** 1-based rank within the retriever's list. */
  rank: number;
  retriever: string;
}

/** A search result: the chunk, its document metadata and the scores that put it there. */
export interface SearchHit {
  rank: number;
  score: number;
  chunk: StoredChunk;
  document: DocumentMetadata & { id: string };
  /** Per-retriever scores/ranks (one entry today; several once fusion lands). */
  scores: Record<string, { score: number; rank: number }>;
}

/** A verifiable pointer from answer text into a source chunk. */
export interface Citation {
  /** 1-based source number as written in the answer, e.g. `[1]`. */
  marker: number;
  docId: string;
  source: string;
  title: string;
  sectionPath: string[];
  chunkId: number;
  /** Span in the document text (end exclusive). `document.text.slice(start, end) === quote`. */
  start: number;
  end: number;
  /** The same span relative to the chunk text. */
  chunkStart: number;
  chunkEnd: number;
  quote: string;
}

/** How query understanding rewrote a query before searching it (typo corrections). */
export interface QueryRewrite {
  /** The query as given. */
  original: string;
  /** The query that was searched (normalized, corrections applied). */
  searched: string;
  corrections: Array<{ from: string; to: string }>;
}

export interface Answer {
  question: string;
  text: string;
  citations: Citation[];
  /** True when the sources did not support an answer and Quarry said so instead of guessing. */
  abstained: boolean;
  /** 0–1: how well the retrieved text covers the question. */
  confidence: number;
  /** Structured-output mode: the answer as the JSON value that validated against the requested schema. */
  data?: unknown;
  /** `extractive`, or the LLM provider id (e.g. `openai:gpt-4o-mini`). */
  answerer: string;
  hits: SearchHit[];
  /** How the question was rewritten before retrieval (typo corrections); absent when searched as written. */
  rewrite?: QueryRewrite;
  /** Set when the configured answerer failed (LLM unavailable, timed out…) and another one answered. */
  fallback?: { from: string; reason: string };
  /** True when the response cache answered (no retrieval or generation ran). */
  cached?: boolean;
  /** Stages that ran in a reduced form for this answer (empty when the whole pipeline ran). */
  degraded: Degradation[];
  /**
   * Tokens and cost of everything this request called: query rewriting, LLM reranking, remote query
   * embeddings, generation (structured-output retries included) and self-critique. Zero calls for an
   * extractive answer without remote models; zero with `cached: true` when the response cache answered.
   */
  usage?: RequestUsage;
  /** Which LLM wrote the answer when `routing` is configured, and why (also the `answer.route` trace stage). */
  route?: AnswerRoute;
  /** Sentences the validator flagged or removed, and citation problems. */
  validation?: AnswerValidationSummary;
  trace?: TraceReport;
}

/** What kind of call a usage record counts. */
export type UsageComponent = 'rewrite' | 'rerank' | 'embed' | 'generate' | 'critique';

/** The usage of the calls of one component with one model within a request. */
export interface ComponentUsage {
  component: UsageComponent;
  /** The model as the provider reported it (e.g. `gpt-4o-mini-2024-07-18`, `text-embedding-3-small`). */
  model: string;
  calls: number;
  inputTokens: number;
  outputTokens: number;
  /** USD; absent when the model has no price (then it is listed in `RequestUsage.unpricedModels`). */
  costUsd?: number;
  /** Some counts were estimated locally because the server reported none. */
  estimated?: boolean;
}

/** Per-request usage: the sums over `byComponent`, which lists every component and model called. */
export interface RequestUsage {
  inputTokens: number;
  outputTokens: number;
  /**
   * USD of the whole request. Absent (unknown, never a silent 0) when any call used a model without a
   * price; `byComponent` still has the cost of the priced ones.
   */
  costUsd?: number;
  /** Models called without a known price (configure `prices` or `llm.prices`); absent when all are priced. */
  unpricedModels?: string[];
  estimated?: boolean;
  /** True when a cache answered: nothing was called, every count is 0. */
  cached?: boolean;
  /** Metered calls made (LLM completions and embedding requests). */
  calls: number;
  byComponent: ComponentUsage[];
}

/** How `routing` chose the answer's LLM. */
export interface AnswerRoute {
  /** `small` for simple questions, `large` for complex ones. */
  tier: 'small' | 'large';
  /** Provider id of the chosen LLM (e.g. `openai:gpt-4o-mini`). */
  provider: string;
  model: string;
  /** The rule that decided, e.g. `multi-hop wording ("compare")`, `simple question`. */
  reason: string;
  features: QueryComplexity;
}

/** Rule-based complexity features of a question (see src/query/complexity.ts). */
export interface QueryComplexity {
  /** o200k tokens of the question. */
  tokens: number;
  /** Clauses: separated by `,` `;` and conjunctions / relative pronouns (and, or, but, which, that…). */
  clauses: number;
  /** Named things: capitalized words inside the sentence, numbers, quoted phrases, code-like terms. */
  entities: number;
  /** Multi-hop cues found ("compare", "both", "and then", "which … that", …). */
  multiHopCues: string[];
  /** The retrieval strategy the router chose for the question (multi-stage = it looked complex). */
  strategy?: string;
}

export interface AnswerValidationSummary {
  /** `flag` keeps unsupported sentences (marked here); `remove` drops them from `text`. */
  policy: 'flag' | 'remove';
  sentences: number;
  supported: number;
  unsupported: Array<{ text: string; support: number; markers: number[] }>;
  removed: number;
  /** Markers that pointed to no source in the context. */
  unknownMarkers: number[];
  /** The self-critique pass's verdict and the sentences it named unsupported (when enabled). */
  critique?: { verdict: string; unsupported: string[] };
}

/** Names of the pipeline stages that report into a trace (a closed list, also used for spans later). */
export type StageName =
  | 'query.analyze'
  | 'query.expand'
  | 'filter.compile'
  | 'retrieve.prepare'
  | 'retrieve.bm25'
  | 'retrieve.dense'
  | 'retrieve.exact'
  | 'fuse'
  | 'freshness'
  | 'hits.load'
  | 'cache'
  | 'query.rewrite'
  | 'rerank'
  | 'context.assemble'
  | 'answer.route'
  | 'answer.generate'
  | 'answer.extractive'
  | 'answer.validate'
  | 'answer.critique'
  | 'guard.passages'
  | 'guard.answer'
  | 'privacy.redact';

export interface StageReport {
  stage: StageName;
  /** Milliseconds from the trace start to the stage start. */
  offsetMs: number;
  durationMs: number;
  /** Stage-specific facts: inputs, candidate lists with scores, token counts, decisions. */
  detail: Record<string, unknown>;
}

export interface TraceReport {
  query: string;
  totalMs: number;
  stages: StageReport[];
  /** Stages that ran in a reduced form, as on the result (absent when none did). */
  degraded?: Degradation[];
}

/**
 * A stage that ran in a reduced form instead of failing the request: dense retrieval asked for but
 * unavailable (BM25 answered), an embedder or reranker that failed or timed out, an LLM that fell back to
 * the extractive answerer. Every `SearchResult` and `Answer` lists them; the CLI prints one warning each.
 */
export interface Degradation {
  /** The trace stage that degraded (e.g. `retrieve.dense`, `rerank`, `answer.generate`). */
  stage: StageName;
  reason: string;
}

/**
 * @deprecated Pass `principal` instead. `scope: { groups }` is read as `userPrincipal({ groups })` (a user in
 * those groups, clearance 0); it never means the trusted caller any more.
 */
export interface AccessScope {
  groups?: string[];
}

/**
 * Counts text in a model's tokens. Quarry measures chunk sizes (`chunking.maxTokens`) and the LLM's context
 * budget with one; the built-ins are o200k for chunks and the generation model's own encoding for the
 * context (see `tokenizerFor`). Pass your own as `components.tokenizer` (e.g. a Hugging Face tokenizer for a
 * local model) to size both with it.
 *
 * @example
 * const words: Tokenizer = { id: 'words', count: (t) => t.split(/\s+/).filter(Boolean).length };
 */
export interface Tokenizer {
  /** What counts, shown in traces and part of the chunking fingerprint (a new id re-chunks on ingest). */
  readonly id: string;
  /** Tokens in `text`: 0 for '', a non-negative integer, the same for the same text. */
  count(text: string): number;
  /** The token ids, when the tokenizer has them; `count(t)` must equal `encode(t).length`. */
  encode?(text: string): number[];
  /** Tokens of a whole chat request, framing included; default: content plus OpenAI's framing per message. */
  countMessages?(messages: ReadonlyArray<{ role: 'system' | 'user' | 'assistant'; content: string }>): number;
}

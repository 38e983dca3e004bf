/**
 * Request and response schemas of the HTTP API. Requests are validated with these (zod) at the boundary and
 * the OpenAPI document (`/openapi.json`) is generated from the same objects, so what is documented is what
 * is enforced. Responses are described for clients; they come from the library's own types.
 */
import { z } from 'zod';

const Collection = z
  .string()
  .min(1)
  .max(64)
  .optional()
  .describe('Collection to use (default: `default`, the store the server was started on)');

const Filter = z
  .union([z.record(z.string(), z.unknown()), z.string()])
  .optional()
  .describe('Metadata filter (MongoDB-style JSON), e.g. {"tags":{"$in":["guide"]}}');

export const RetrievalOptions = z.object({
  collection: Collection,
  k: z.number().int().min(1).max(200).optional().describe('Results to return (default 10)'),
  filter: Filter,
  retriever: z.enum(['bm25', 'dense', 'hybrid']).optional(),
  reranker: z.enum(['none', 'ltr', 'onnx', 'http', 'llm']).optional(),
  collapseDocuments: z.boolean().optional().describe('One hit per document (its best chunk)'),
  typos: z.boolean().optional().describe('Typo correction (default on); false searches the words as written'),
  budgetMs: z.number().int().min(10).max(600_000).optional().describe('Request deadline split across stages'),
  cache: z.boolean().optional().describe('false: neither read nor write the caches for this request'),
  trace: z.boolean().optional().describe('Include the per-stage trace in the response'),
});

export const SearchRequest = RetrievalOptions.extend({
  query: z.string().min(1).max(10_000),
}).strict();

export const AskRequest = RetrievalOptions.extend({
  question: z.string().min(1).max(10_000),
  stream: z.boolean().optional().describe('Server-Sent Events (also chosen by `Accept: text/event-stream`)'),
  jsonSchema: z.record(z.string(), z.unknown()).optional().describe('Structured output (needs an LLM)'),
}).strict();

const ChatContentPart = z.object({ type: z.string(), text: z.string().optional() }).passthrough();

export const ChatMessage = z
  .object({
    role: z.enum(['system', 'user', 'assistant', 'tool', 'developer']),
    content: z.union([z.string(), z.array(ChatContentPart), z.null()]).optional(),
    name: z.string().optional(),
  })
  .passthrough();

export const ChatCompletionRequest = z
  .object({
    model: z.string().min(1).describe('`quarry` (default collection) or `quarry/<collection>`'),
    messages: z.array(ChatMessage).min(1).max(1000),
    stream: z.boolean().optional(),
    stream_options: z.object({ include_usage: z.boolean().optional() }).passthrough().optional(),
    temperature: z.number().optional(),
    top_p: z.number().optional(),
    max_tokens: z.number().int().optional(),
    max_completion_tokens: z.number().int().optional(),
    n: z.literal(1).optional().describe('Only one choice is produced'),
    user: z.string().optional(),
  })
  .passthrough();

export const DocumentInputSchema = z
  .object({
    id: z.string().min(1).max(1024),
    text: z.string().optional(),
    markdown: z.string().optional(),
    html: z.string().optional(),
    title: z.string().optional(),
    source: z.string().optional(),
    metadata: z.record(z.string(), z.unknown()).optional(),
    access: z
      .union([
        z.array(z.string()),
        z
          .object({
            groups: z.array(z.string()).optional(),
            users: z.array(z.string()).optional(),
            level: z.number().int().min(0).optional(),
          })
          .strict(),
      ])
      .optional()
      .describe('Groups (list) or { groups, users, level } allowed to read the document'),
  })
  .strict();

export const UpsertDocumentsRequest = z
  .object({
    collection: Collection,
    documents: z.array(DocumentInputSchema).min(1).max(10_000),
  })
  .strict();

export const ListDocumentsQuery = z
  .object({
    collection: Collection,
    limit: z.coerce.number().int().min(1).max(1000).default(50),
    offset: z.coerce.number().int().min(0).default(0),
    filter: z.string().max(10_000).optional().describe('Metadata filter as JSON'),
    source: z.string().max(4096).optional().describe('Only documents whose source starts with this'),
  })
  .strict();

export const CollectionQuery = z.object({ collection: Collection }).strict();

export const DocumentParams = z.object({ id: z.string().min(1).max(1024) }).strict();

export const CreateCollectionRequest = z.object({ name: z.string().min(1).max(64) }).strict();

export const CollectionParams = z.object({ name: z.string().min(1).max(64) }).strict();

export const FeedbackRequest = z
  .object({
    queryId: z.string().min(1).max(200),
    docId: z.string().min(1).max(1024),
    chunkId: z.number().int().min(0).optional(),
    helpful: z.boolean(),
  })
  .strict();

export const TraceParams = z.object({ id: z.string().min(1).max(400) }).strict();

export const UploadQuery = z
  .object({
    stream: z
      .enum(['true', 'false'])
      .optional()
      .describe(
        'true: answer with Server-Sent Events of the ingest progress (also `Accept: text/event-stream`)',
      ),
  })
  .strict();

export const EvalRunsQuery = z
  .object({
    collection: Collection,
    limit: z.coerce.number().int().min(1).max(1000).default(100),
    dataset: z.string().max(200).optional(),
  })
  .strict();

export const EvalRunParams = z.object({ id: z.string().min(1).max(100) }).strict();

export const EvalRunQuery = z
  .object({
    collection: Collection,
    worst: z.coerce.number().int().min(0).max(1000).default(20).describe('How many worst queries to list'),
  })
  .strict();

export const RestorePiiRequest = z
  .object({
    collection: Collection,
    text: z.string().min(1).max(1_000_000),
    reason: z.string().min(1).max(1000),
  })
  .strict();

// ---- responses (documentation) ----

export const ErrorBody = z
  .object({
    error: z.object({
      code: z.string().describe('Stable error code (the same as the library and CLI use)'),
      message: z.string(),
      requestId: z.string(),
      details: z.record(z.string(), z.unknown()).optional(),
    }),
  })
  .describe('Every error response has this shape');

const Degraded = z.array(z.object({ stage: z.string(), reason: z.string() }));

const Hit = z
  .object({
    rank: z.number(),
    score: z.number(),
    chunk: z.object({
      id: z.number(),
      docId: z.string(),
      sectionPath: z.array(z.string()),
      start: z.number(),
      end: z.number(),
      text: z.string(),
      title: z.string(),
    }),
    document: z.record(z.string(), z.unknown()),
    scores: z.record(z.string(), z.object({ score: z.number(), rank: z.number() })),
  })
  .passthrough();

export const SearchResponse = z
  .object({
    queryId: z.string(),
    query: z.string(),
    hits: z.array(Hit),
    indexVersion: z.number(),
    degraded: Degraded,
    rewrite: z.record(z.string(), z.unknown()).optional(),
    trace: z.record(z.string(), z.unknown()).optional(),
  })
  .passthrough();

export const Citation = z
  .object({
    marker: z.number(),
    docId: z.string(),
    source: z.string(),
    title: z.string(),
    chunkId: z.number(),
    start: z.number(),
    end: z.number(),
    quote: z.string(),
  })
  .passthrough();

/** What validation found in an answer's sentences (the library's `AnswerValidationSummary`). */
export const Validation = z.object({
  policy: z.enum(['flag', 'remove']),
  sentences: z.number(),
  supported: z.number(),
  unsupported: z.array(z.object({ text: z.string(), support: z.number(), markers: z.array(z.number()) })),
  removed: z.number(),
  unknownMarkers: z.array(z.number()),
  critique: z.object({ verdict: z.string(), unsupported: z.array(z.string()) }).optional(),
});

export const AskResponse = z
  .object({
    queryId: z.string(),
    question: z.string(),
    text: z.string(),
    citations: z.array(Citation),
    abstained: z.boolean(),
    confidence: z.number(),
    answerer: z.string(),
    degraded: Degraded,
    validation: Validation.optional(),
    hits: z.array(Hit).describe('The passages the answer was built from'),
    usage: z.record(z.string(), z.unknown()).optional(),
  })
  .passthrough()
  .describe(
    'With `stream: true` or `Accept: text/event-stream`: SSE events `meta` {queryId, requestId}, `retrieved`, `context`, `delta` {text}, `citation`, `reset`, `validation`, `degraded`, `answer` (the object above), `error`, then `done`',
  );

export const IngestResponse = z
  .object({
    added: z.number(),
    updated: z.number(),
    unchanged: z.number(),
    failed: z.number(),
    chunks: z.number(),
    indexVersion: z.number(),
    documents: z.array(
      z.object({
        id: z.string().optional(),
        source: z.string().optional(),
        status: z.enum(['added', 'updated', 'unchanged', 'failed']),
        code: z.string().optional(),
        message: z.string().optional(),
      }),
    ),
  })
  .passthrough();

export const DocumentResponse = z
  .object({
    id: z.string(),
    status: z.literal('indexed'),
    meta: z.record(z.string(), z.unknown()),
    chunkCount: z.number(),
    charCount: z.number(),
    text: z.string().optional(),
  })
  .passthrough();

export const DocumentListResponse = z.object({
  documents: z.array(DocumentResponse),
  total: z.number().optional(),
  limit: z.number(),
  offset: z.number(),
  nextOffset: z.number().nullable(),
});

export const CollectionResponse = z.object({ name: z.string(), tenant: z.string(), createdAt: z.string() });

export const ChatCompletionResponse = z
  .object({
    id: z.string(),
    object: z.literal('chat.completion'),
    created: z.number(),
    model: z.string(),
    choices: z.array(
      z.object({
        index: z.number(),
        message: z.object({ role: z.literal('assistant'), content: z.string() }),
        finish_reason: z.string(),
      }),
    ),
    usage: z.object({ prompt_tokens: z.number(), completion_tokens: z.number(), total_tokens: z.number() }),
    quarry: z
      .object({
        queryId: z.string(),
        citations: z.array(Citation),
        abstained: z.boolean(),
        confidence: z.number(),
        degraded: Degraded,
      })
      .describe('Quarry extension: the citations behind the answer (also on the last chunk when streaming)'),
  })
  .describe(
    'With `stream: true`: `chat.completion.chunk` SSE events, the last one carrying `quarry`, then `[DONE]`',
  );

export const ModelsResponse = z.object({
  object: z.literal('list'),
  data: z.array(
    z.object({ id: z.string(), object: z.literal('model'), created: z.number(), owned_by: z.string() }),
  ),
});

export const Ok = z.object({ ok: z.boolean() }).passthrough();

export const WhoamiResponse = z.object({
  kind: z.enum(['user', 'trusted', 'anonymous']),
  keyId: z.string().optional(),
  tenant: z.string().optional(),
  userId: z.string().optional(),
  groups: z.array(z.string()),
  clearance: z.number().optional(),
  scopes: z.array(z.enum(['query', 'ingest', 'admin'])),
  authRequired: z
    .boolean()
    .describe('The server requires API keys (false: key-less loopback, callers trusted)'),
  version: z.string(),
});

export const TraceResponse = z
  .object({
    queryId: z.string(),
    createdAt: z.string(),
    collection: z.string(),
    kind: z.enum(['search', 'ask', 'chat', 'eval']),
    query: z.string(),
    trace: z
      .object({
        query: z.string(),
        totalMs: z.number(),
        stages: z.array(
          z.object({
            stage: z.string(),
            offsetMs: z.number(),
            durationMs: z.number(),
            detail: z.record(z.string(), z.unknown()),
          }),
        ),
        degraded: Degraded.optional(),
      })
      .optional(),
    hits: z
      .array(z.object({ rank: z.number(), docId: z.string(), chunkId: z.number(), score: z.number() }))
      .optional(),
    answer: z
      .object({ text: z.string(), abstained: z.boolean(), confidence: z.number(), answerer: z.string() })
      .optional(),
    citations: z.array(z.object({ marker: z.number(), docId: z.string(), chunkId: z.number() })).optional(),
    degraded: Degraded.optional(),
    metrics: z.record(z.string(), z.number()).optional().describe("Eval traces: the query's metrics"),
  })
  .passthrough();

const EvalRunSummary = z.object({
  id: z.string(),
  createdAt: z.string(),
  label: z.string().nullable(),
  dataset: z.string(),
  split: z.string(),
  retriever: z.string(),
  queries: z.number(),
  metrics: z.record(z.string(), z.number()),
  latency_ms: z.object({
    p50: z.number(),
    p95: z.number(),
    p99: z.number(),
    mean: z.number(),
    max: z.number(),
  }),
});

export const EvalRunList = z.object({ runs: z.array(EvalRunSummary) });

export const EvalRunResponse = EvalRunSummary.extend({
  report: z.record(z.string(), z.unknown()).describe('The full `quarry eval --json` report'),
  latencies_ms: z.array(z.number()).describe("Every query's latency, in query order"),
  worst: z.array(
    z.object({
      queryId: z.string(),
      query: z.string(),
      metrics: z.record(z.string(), z.number()),
      latencyMs: z.number(),
      top: z.array(z.string()),
      traceId: z.string().nullable().describe('Read with GET /v1/traces/{traceId}'),
    }),
  ),
});

/** Server-Sent Events of `POST /v1/documents/upload?stream=true`. */
export const UploadEvent = z.discriminatedUnion('event', [
  z.object({
    event: z.literal('received'),
    data: z.object({ files: z.array(z.string()), bytes: z.number() }),
  }),
  z.object({
    event: z.literal('progress'),
    data: z.object({
      phase: z.string(),
      done: z.number(),
      total: z.number(),
      unit: z.string(),
      documents: z.number().optional(),
      chunks: z.number().optional(),
    }),
  }),
  z.object({ event: z.literal('result'), data: IngestResponse }),
  z.object({ event: z.literal('error'), data: ErrorBody.shape.error }),
  z.object({ event: z.literal('done'), data: z.object({}).passthrough() }),
]);

export const VariantsQuery = z.object({ collection: z.string().min(1).max(64).optional() }).strict();

const VariantSummary = z.object({
  variant: z.string(),
  requests: z.number(),
  asks: z.number(),
  latency_ms: z.object({ p50: z.number(), p95: z.number() }),
  abstentionRate: z.number().nullable(),
  citationValidity: z.number().nullable(),
  feedback: z.object({ votes: z.number(), helpful: z.number(), helpfulRate: z.number().nullable() }),
});

export const VariantsResponse = z.object({
  collection: z.string(),
  canary: z.object({ name: z.string(), share: z.number() }).nullable(),
  variants: z.array(VariantSummary),
});

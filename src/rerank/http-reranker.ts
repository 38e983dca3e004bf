/**
 * Rerankers behind an HTTP `/rerank` API: Cohere (`/v2/rerank`, `/v1/rerank`), Jina (`/v1/rerank`) and Hugging
 * Face Text Embeddings Inference (`/rerank`). Large pools are split across requests and merged; 429 / 5xx /
 * network errors / timeouts are retried with jittered backoff honouring `Retry-After`; other 4xx never are.
 * Every response is checked (each index present once, in range, with a finite score) before the pipeline sees it.
 */
import { z } from 'zod';
import { createLimiter, type Limiter } from '../embed/types.js';
import { QuarryError } from '../errors.js';
import {
  type AttemptResult,
  excerpt,
  failedAttempt,
  jsonHeaders,
  type PostFailure,
  postOnce,
  type RetryInfo,
  withRetries,
} from '../net/http.js';
import { passageText, scoreInSlices } from './slices.js';
import type { Reranker, RerankRequest, RerankScore } from './types.js';

const DEFAULT_BASE = { cohere: 'https://api.cohere.com', jina: 'https://api.jina.ai' } as const;
/** Per-request document limits: Cohere and Jina take large lists; TEI's default max_client_batch_size is 32. */
const DEFAULT_MAX_DOCUMENTS = { cohere: 1000, jina: 1000, tei: 32 } as const;

export const HttpRerankerConfigSchema = z
  .object({
    /** Which wire format the server speaks. */
    flavor: z.enum(['cohere', 'jina', 'tei']),
    /** Server root without the API path (default https://api.cohere.com, https://api.jina.ai; required for TEI). */
    baseURL: z.url({ protocol: /^https?$/ }).optional(),
    /** Cohere API version (default `v2`). */
    apiVersion: z.enum(['v1', 'v2']).optional(),
    /** Sent as `Authorization: Bearer <apiKey>`. */
    apiKey: z.string().min(1).optional(),
    /** Model name the server knows, e.g. `rerank-v3.5`, `jina-reranker-v2-base-multilingual` (TEI serves one model). */
    model: z.string().min(1).optional(),
    /** Reranker id for traces (default `http:<flavor>/<model or host>`). */
    id: z.string().min(1).optional(),
    /** Documents per request; larger pools are split and merged (default Cohere/Jina 1000, TEI 32). */
    maxDocumentsPerRequest: z.number().int().min(1).max(10_000).optional(),
    /** Requests in flight at once across all callers. */
    concurrency: z.number().int().min(1).max(64).default(4),
    /** Deadline for connecting and receiving the response headers, per attempt. */
    connectTimeoutMs: z.number().int().min(1).max(600_000).default(10_000),
    /** Deadline for reading the response body once the headers arrived, per attempt. */
    readTimeoutMs: z.number().int().min(1).max(600_000).default(30_000),
    /** Retries after the first attempt. */
    maxRetries: z.number().int().min(0).max(20).default(3),
    /** First backoff delay; doubled each retry, with ±50 % jitter. */
    initialBackoffMs: z.number().min(0).max(600_000).default(250),
    /** Backoff cap. */
    maxBackoffMs: z.number().min(0).max(600_000).default(10_000),
    /** A server asking to wait longer than this (Retry-After) fails the call instead. */
    maxRetryAfterMs: z.number().min(0).max(3_600_000).default(30_000),
    /** Extra request headers. */
    headers: z.record(z.string(), z.string()).optional(),
    /** Put the document title in front of the chunk text. */
    includeTitle: z.boolean().default(false),
    /** TEI: ask for raw logits instead of sigmoid scores (same order). */
    rawScores: z.boolean().default(false),
    /** TEI: let the server truncate inputs longer than the model's window instead of refusing them. */
    truncate: z.boolean().optional(),
  })
  .strict()
  .superRefine((c, ctx) => {
    if (c.flavor !== 'tei' && !c.model) {
      ctx.addIssue({
        code: 'custom',
        path: ['model'],
        message: `the ${c.flavor} rerank API needs a model name`,
      });
    }
    if (c.flavor === 'tei' && !c.baseURL) {
      ctx.addIssue({ code: 'custom', path: ['baseURL'], message: 'a TEI reranker needs the server URL' });
    }
    if (c.apiVersion !== undefined && c.flavor !== 'cohere') {
      ctx.addIssue({ code: 'custom', path: ['apiVersion'], message: 'apiVersion applies to Cohere only' });
    }
    for (const k of ['rawScores', 'truncate'] as const) {
      if (c[k] && c.flavor !== 'tei') {
        ctx.addIssue({ code: 'custom', path: [k], message: `${k} applies to TEI only` });
      }
    }
  });

export type HttpRerankerConfig = z.output<typeof HttpRerankerConfigSchema>;

export type RerankRetryInfo = RetryInfo;

export type HttpRerankerOptions = z.input<typeof HttpRerankerConfigSchema> & {
  /** Called before each retry (logging, metrics). */
  onRetry?: (info: RerankRetryInfo) => void;
};

export interface HttpRerankerStats {
  requests: number;
  retries: number;
  documents: number;
  /** Cohere `meta.billed_units.search_units`, summed. */
  searchUnits: number;
  /** Jina `usage.total_tokens`, summed. */
  tokens: number;
}

type Attempt = AttemptResult<number[]>;

export class HttpReranker implements Reranker {
  readonly id: string;
  readonly url: string;
  readonly stats: HttpRerankerStats = { requests: 0, retries: 0, documents: 0, searchUnits: 0, tokens: 0 };
  private readonly maxDocuments: number;
  private readonly limiter: Limiter;

  constructor(
    private readonly config: HttpRerankerConfig,
    private readonly onRetry?: (info: RerankRetryInfo) => void,
  ) {
    const base = (config.baseURL ?? DEFAULT_BASE[config.flavor as 'cohere' | 'jina']).replace(/\/+$/, '');
    const path =
      config.flavor === 'cohere'
        ? `/${config.apiVersion ?? 'v2'}/rerank`
        : config.flavor === 'jina'
          ? '/v1/rerank'
          : '/rerank';
    this.url = new URL(base + path).href;
    this.id = config.id ?? `http:${config.flavor}/${config.model ?? new URL(base).host}`;
    this.maxDocuments = config.maxDocumentsPerRequest ?? DEFAULT_MAX_DOCUMENTS[config.flavor];
    this.limiter = createLimiter(config.concurrency);
  }

  async rerank(request: RerankRequest): Promise<RerankScore[]> {
    const { signal } = request;
    if (signal?.aborted) throw signal.reason;
    const documents = request.hits.map((h) => passageText(h, this.config.includeTitle));
    if (documents.length === 0) return [];
    return scoreInSlices(documents, this.maxDocuments, this.limiter, signal, (slice, sliceSignal) =>
      this.request(request.query, slice, sliceSignal),
    );
  }

  /** One slice, with retries; scores in slice order. */
  private request(query: string, documents: string[], signal: AbortSignal): Promise<number[]> {
    return withRetries(
      () => this.attempt(query, documents, signal),
      this.config,
      signal,
      (info) => {
        this.stats.retries++;
        this.onRetry?.(info);
      },
    );
  }

  private fail(f: PostFailure): Attempt {
    return failedAttempt(
      'RERANK_FAILED',
      `${this.id} (${this.url})`,
      { reranker: this.id, url: this.url },
      f,
    );
  }

  private body(query: string, documents: string[]): Record<string, unknown> {
    const c = this.config;
    if (c.flavor === 'tei') {
      return {
        query,
        texts: documents,
        raw_scores: c.rawScores,
        ...(c.truncate !== undefined ? { truncate: c.truncate } : {}),
      };
    }
    const body: Record<string, unknown> = { model: c.model, query, documents, top_n: documents.length };
    // Jina (and Cohere v1 on older accounts) echo every document back unless told not to.
    if (c.flavor === 'jina' || c.apiVersion === 'v1') body.return_documents = false;
    return body;
  }

  private async attempt(query: string, documents: string[], signal: AbortSignal): Promise<Attempt> {
    this.stats.requests++;
    const res = await postOnce(
      this.url,
      jsonHeaders(this.config.apiKey, this.config.headers),
      JSON.stringify(this.body(query, documents)),
      this.config,
      signal,
    );
    return res.ok ? this.parse(res.text, documents.length) : this.fail(res);
  }

  /** Checks a response and returns one score per document, in request order. Never retried. */
  private parse(text: string, count: number): Attempt {
    const bad = (why: string): Attempt =>
      this.fail({
        detail: `invalid response: ${why}`,
        details: { body: excerpt(text), documents: count },
        retryable: false,
      });
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      return bad('not JSON');
    }
    const tei = this.config.flavor === 'tei';
    const results: unknown = tei ? json : (json as { results?: unknown } | null)?.results;
    const where = tei ? 'the response' : 'results';
    if (!Array.isArray(results))
      return bad(tei ? 'expected a JSON array of {index, score}' : 'no "results" array');
    const scoreField = tei ? 'score' : 'relevance_score';
    const scores: (number | undefined)[] = new Array(count).fill(undefined);
    for (let i = 0; i < results.length; i++) {
      const r = results[i] as Record<string, unknown> | null;
      const index = r?.index;
      if (typeof index !== 'number' || !Number.isInteger(index)) {
        return bad(`${where}[${i}].index is ${JSON.stringify(index)}, not an integer`);
      }
      if (index < 0 || index >= count) {
        return bad(`${where}[${i}].index ${index} is out of range for ${count} document(s)`);
      }
      if (scores[index] !== undefined) return bad(`index ${index} appears more than once`);
      const score = r?.[scoreField];
      if (typeof score !== 'number' || !Number.isFinite(score)) {
        return bad(
          `${where}[${i}].${scoreField} is ${JSON.stringify(score) ?? 'missing'}, not a finite number`,
        );
      }
      scores[index] = score;
    }
    const missing = scores.flatMap((s, i) => (s === undefined ? [i] : []));
    if (missing.length > 0) {
      return bad(
        `${results.length} score(s) for ${count} document(s); no score for document(s) ${missing.slice(0, 10).join(', ')}`,
      );
    }
    this.stats.documents += count;
    const j = json as {
      meta?: { billed_units?: { search_units?: unknown } };
      usage?: { total_tokens?: unknown };
    };
    const units = j?.meta?.billed_units?.search_units;
    if (typeof units === 'number') this.stats.searchUnits += units;
    const tokens = j?.usage?.total_tokens;
    if (typeof tokens === 'number') this.stats.tokens += tokens;
    return { ok: true, value: scores as number[] };
  }
}

/** A reranker for a Cohere, Jina or TEI `/rerank` endpoint; see `HttpRerankerConfigSchema`. */
export function createHttpReranker(opts: HttpRerankerOptions): HttpReranker {
  const { onRetry, ...rest } = opts;
  const parsed = HttpRerankerConfigSchema.safeParse(rest);
  if (!parsed.success) {
    const detail = parsed.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ');
    throw new QuarryError('INVALID_CONFIG', `HTTP reranker: ${detail}`, { issues: parsed.error.issues });
  }
  return new HttpReranker(parsed.data, onRetry);
}

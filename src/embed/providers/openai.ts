/**
 * A client for any OpenAI-compatible `POST {baseURL}/embeddings` endpoint: OpenAI, Azure-style proxies,
 * Ollama, vLLM, Hugging Face TEI, LM Studio, llama.cpp server… It batches inputs, bounds the requests in
 * flight, retries 429 / 5xx / network errors / timeouts with exponential backoff and jitter (honouring
 * `Retry-After` and `retry-after-ms`), and never retries other 4xx. The dimension is taken from the first
 * response (or the `dimensions` option) and enforced afterwards.
 */
import { QuarryError } from '../../errors.js';
import {
  type AttemptResult,
  checkRetryPolicy,
  excerpt,
  failedAttempt,
  jsonHeaders,
  type PostFailure,
  parseRetryAfter,
  postOnce,
  type RetryInfo,
  withRetries,
} from '../../net/http.js';
import { createLimiter, type Embedder, type EmbedOptions, embedInBatches, type Limiter } from '../types.js';

export interface OpenAIEmbedderOptions {
  /** API root including the version, e.g. `https://api.openai.com/v1` (default), `http://127.0.0.1:11434/v1`. */
  baseURL?: string;
  /** Sent as `Authorization: Bearer <apiKey>`; omit for local servers that need none. */
  apiKey?: string;
  /** The model name the server knows, e.g. `text-embedding-3-small`, `nomic-embed-text`. */
  model: string;
  /** Requested output dimension (models that support shortening, e.g. text-embedding-3-*). */
  dimensions?: number;
  /** `float` (default) or `base64` (smaller responses). Responses in either form are accepted. */
  encodingFormat?: 'float' | 'base64';
  /** Stable model id recorded in indexes (default `openai:<model>`; e.g. `ollama:nomic-embed-text`). */
  id?: string;
  /** Texts per request (default 128; OpenAI accepts up to 2048). */
  batchSize?: number;
  /** Requests in flight at once across all callers (default 4). */
  concurrency?: number;
  /** Retries after the first attempt (default 4). */
  maxRetries?: number;
  /** First backoff delay; doubled each retry, with ±50 % jitter (default 500 ms). */
  initialBackoffMs?: number;
  /** Backoff cap (default 20 s). */
  maxBackoffMs?: number;
  /** A server asking to wait longer than this (Retry-After) fails the call instead (default 60 s). */
  maxRetryAfterMs?: number;
  /** Deadline for connecting and receiving the response headers, per attempt (default 30 s). */
  connectTimeoutMs?: number;
  /** Deadline for reading the response body once the headers arrived, per attempt (default 30 s). */
  readTimeoutMs?: number;
  /** Extra request headers (e.g. `OpenAI-Organization`, `api-key` for Azure). */
  headers?: Record<string, string>;
  /** Prepended to queries / documents for models trained with instructions (nomic: `search_query: `…). */
  queryPrefix?: string;
  documentPrefix?: string;
  /** Called before each retry (logging, metrics). */
  onRetry?: (info: RetryInfo) => void;
}

/** Re-exported for existing imports; they live in the shared HTTP module. */
export { parseRetryAfter, type RetryInfo };

export interface OpenAIEmbedderStats {
  requests: number;
  retries: number;
  promptTokens: number;
  /** The `model` the server last reported. */
  serverModel: string | undefined;
}

/** Vectors in input order, or a failure. */
type Attempt = AttemptResult<Float32Array[]>;

function decodeBase64(s: string): Float32Array | undefined {
  const bytes = Buffer.from(s, 'base64');
  if (bytes.byteLength % 4 !== 0) return undefined;
  const out = new Float32Array(bytes.byteLength / 4);
  new Uint8Array(out.buffer).set(bytes);
  return out;
}

export class OpenAIEmbedder implements Embedder {
  readonly id: string;
  readonly distinguishesKind: boolean;
  readonly url: string;
  private detected = 0;
  private readonly limiter: Limiter;
  private readonly o: Required<
    Pick<
      OpenAIEmbedderOptions,
      | 'batchSize'
      | 'maxRetries'
      | 'initialBackoffMs'
      | 'maxBackoffMs'
      | 'maxRetryAfterMs'
      | 'connectTimeoutMs'
      | 'readTimeoutMs'
      | 'encodingFormat'
    >
  > &
    OpenAIEmbedderOptions;
  readonly stats: OpenAIEmbedderStats = { requests: 0, retries: 0, promptTokens: 0, serverModel: undefined };
  // What the response just parsed reported (parse is synchronous, so concurrent batches cannot interleave).
  private lastModel: string | undefined;
  private lastTokens: number | undefined;

  constructor(opts: OpenAIEmbedderOptions) {
    if (typeof opts.model !== 'string' || opts.model.trim() === '') {
      throw new QuarryError('INVALID_CONFIG', 'an OpenAI-compatible embedder needs a model name', {});
    }
    const base = (opts.baseURL ?? 'https://api.openai.com/v1').replace(/\/+$/, '');
    try {
      this.url = new URL(`${base}/embeddings`).href;
    } catch {
      throw new QuarryError('INVALID_CONFIG', `baseURL is not a valid URL: ${opts.baseURL}`, {
        baseURL: opts.baseURL,
      });
    }
    const positive: (keyof OpenAIEmbedderOptions)[] = [
      'dimensions',
      'batchSize',
      'concurrency',
      'connectTimeoutMs',
      'readTimeoutMs',
    ];
    for (const k of positive) {
      const v = opts[k];
      if (v !== undefined && (!Number.isInteger(v) || (v as number) < 1)) {
        throw new QuarryError('INVALID_CONFIG', `${k} must be a positive integer, got ${String(v)}`, {
          [k]: v,
        });
      }
    }
    checkRetryPolicy(opts);
    if (
      opts.encodingFormat !== undefined &&
      opts.encodingFormat !== 'float' &&
      opts.encodingFormat !== 'base64'
    ) {
      throw new QuarryError('INVALID_CONFIG', `encodingFormat must be "float" or "base64"`, {
        encodingFormat: opts.encodingFormat,
      });
    }
    this.o = {
      batchSize: 128,
      maxRetries: 4,
      initialBackoffMs: 500,
      maxBackoffMs: 20_000,
      maxRetryAfterMs: 60_000,
      connectTimeoutMs: 30_000,
      readTimeoutMs: 30_000,
      encodingFormat: 'float',
      ...Object.fromEntries(Object.entries(opts).filter(([, v]) => v !== undefined)),
      model: opts.model,
    };
    this.id = opts.id ?? `openai:${opts.model}`;
    this.distinguishesKind = Boolean(opts.queryPrefix || opts.documentPrefix);
    this.limiter = createLimiter(opts.concurrency ?? 4);
  }

  /** The configured `dimensions`, else the length of the first vector received, else 0. */
  get dimension(): number {
    return this.o.dimensions ?? this.detected;
  }

  async embed(texts: string[], opts: EmbedOptions = {}): Promise<Float32Array[]> {
    const prefix = (opts.kind === 'query' ? this.o.queryPrefix : this.o.documentPrefix) ?? '';
    const inputs = prefix ? texts.map((t) => prefix + t) : texts;
    return embedInBatches(
      inputs,
      this.o.batchSize,
      this.limiter,
      (b, s) => this.request(b, s, opts.onUsage),
      opts.signal,
    );
  }

  async close(): Promise<void> {}

  /** One batch, with retries. */
  private request(
    input: string[],
    signal: AbortSignal,
    onUsage: EmbedOptions['onUsage'],
  ): Promise<Float32Array[]> {
    return withRetries(
      () => this.attempt(input, signal, onUsage),
      this.o,
      signal,
      (info) => {
        this.stats.retries++;
        this.o.onRetry?.(info);
      },
    );
  }

  private fail(f: PostFailure): Attempt {
    return failedAttempt(
      'EMBEDDING_FAILED',
      `${this.id} (${this.url})`,
      { model: this.id, url: this.url },
      f,
    );
  }

  private async attempt(
    input: string[],
    signal: AbortSignal,
    onUsage: EmbedOptions['onUsage'],
  ): Promise<Attempt> {
    const body: Record<string, unknown> = { model: this.o.model, input };
    if (this.o.dimensions !== undefined) body.dimensions = this.o.dimensions;
    if (this.o.encodingFormat === 'base64') body.encoding_format = 'base64';
    this.stats.requests++;
    const res = await postOnce(
      this.url,
      jsonHeaders(this.o.apiKey, this.o.headers),
      JSON.stringify(body),
      this.o,
      signal,
    );
    if (!res.ok) return this.fail(res);
    const parsed = this.parse(res.text, input.length);
    // Only a response that was used is reported; a retried or rejected one is the provider's problem.
    if (parsed.ok && onUsage !== undefined)
      onUsage({ model: this.lastModel ?? this.o.model, inputTokens: this.lastTokens, texts: input });
    return parsed;
  }

  /** Parses `{ data: [{ embedding, index }], model, usage }` into vectors in input order. Never retried. */
  private parse(text: string, count: number): Attempt {
    const bad = (why: string): Attempt =>
      this.fail({ detail: `invalid response: ${why}`, details: { body: excerpt(text) }, retryable: false });
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      return bad('not JSON');
    }
    const data = (json as { data?: unknown }).data;
    if (!Array.isArray(data)) return bad('no "data" array');
    if (data.length !== count) return bad(`${data.length} embedding(s) for ${count} input(s)`);
    const out: (Float32Array | undefined)[] = new Array(count);
    for (let i = 0; i < data.length; i++) {
      const item = data[i] as { embedding?: unknown; index?: unknown } | null;
      const index = item?.index === undefined ? i : item.index;
      if (
        typeof index !== 'number' ||
        !Number.isInteger(index) ||
        index < 0 ||
        index >= count ||
        out[index]
      ) {
        return bad(`data[${i}].index ${JSON.stringify(index)} is out of range or repeated`);
      }
      const e = item?.embedding;
      let v: Float32Array | undefined;
      if (typeof e === 'string') {
        v = decodeBase64(e);
        if (!v) return bad(`data[${i}].embedding is not base64 float32`);
      } else if (Array.isArray(e) && e.every((x) => typeof x === 'number')) {
        v = Float32Array.from(e as number[]);
      } else {
        return bad(`data[${i}].embedding is not an array of numbers`);
      }
      if (v.length === 0) return bad(`data[${i}].embedding is empty`);
      for (let k = 0; k < v.length; k++) {
        if (!Number.isFinite(v[k])) return bad(`data[${i}].embedding has a non-finite value`);
      }
      const expected = this.dimension;
      if (expected !== 0 && v.length !== expected) {
        return this.fail({
          detail:
            `the server returned a vector of dimension ${v.length}, expected ${expected}` +
            (this.o.dimensions !== undefined
              ? ' (the requested dimensions)'
              : ' (learned from its first response)'),
          details: { expected, actual: v.length, index },
          retryable: false,
        });
      }
      if (expected === 0) this.detected = v.length;
      out[index] = v;
    }
    const j = json as { model?: unknown; usage?: { prompt_tokens?: unknown } };
    this.lastModel = typeof j.model === 'string' && j.model !== '' ? j.model : undefined;
    this.lastTokens = typeof j.usage?.prompt_tokens === 'number' ? j.usage.prompt_tokens : undefined;
    if (this.lastModel !== undefined) this.stats.serverModel = this.lastModel;
    if (this.lastTokens !== undefined) this.stats.promptTokens += this.lastTokens;
    return { ok: true, value: out as Float32Array[] };
  }
}

/** An embedder for an OpenAI-compatible `/v1/embeddings` endpoint; see `OpenAIEmbedderOptions`. */
export function createOpenAIEmbedder(opts: OpenAIEmbedderOptions): OpenAIEmbedder {
  return new OpenAIEmbedder(opts);
}

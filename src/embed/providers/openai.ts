/**
 * A client for any OpenAI-compatible `POST {baseURL}/embeddings` endpoint: OpenAI, Azure-style proxies,
 * Ollama, vLLM, Hugging Face TEI, LM Studio, llama.cpp server… It batches inputs, bounds the requests in
 * flight, retries 429 / 5xx / network errors / timeouts with exponential backoff and jitter (honouring
 * `Retry-After` and `retry-after-ms`), and never retries other 4xx. The dimension is taken from the first
 * response (or the `dimensions` option) and enforced afterwards.
 */
import { QuarryError } from '../../errors.js';
import { backoffDelay, describeBody, excerpt, parseRetryAfter, sleep } from '../../net/http.js';
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

/** Re-exported for existing imports; lives in the shared HTTP module. */
export { parseRetryAfter };

export interface RetryInfo {
  /** 1-based retry number. */
  retry: number;
  delayMs: number;
  status?: number;
  reason: string;
}

export interface OpenAIEmbedderStats {
  requests: number;
  retries: number;
  promptTokens: number;
  /** The `model` the server last reported. */
  serverModel: string | undefined;
}

interface Attempt {
  /** Vectors in input order. */
  vectors?: Float32Array[];
  /** Retryable failure: wait (at least) this long, then try again. */
  retryAfterMs?: number;
  error: QuarryError | undefined;
  retryable: boolean;
  status?: number;
}

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
    for (const k of ['maxRetries', 'initialBackoffMs', 'maxBackoffMs', 'maxRetryAfterMs'] as const) {
      const v = opts[k];
      if (v !== undefined && !(Number.isFinite(v) && v >= 0)) {
        throw new QuarryError('INVALID_CONFIG', `${k} must be a non-negative number, got ${String(v)}`, {
          [k]: v,
        });
      }
    }
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
    return embedInBatches(inputs, this.o.batchSize, this.limiter, (b, s) => this.request(b, s), opts.signal);
  }

  async close(): Promise<void> {}

  /** One batch, with retries. */
  private async request(input: string[], signal: AbortSignal): Promise<Float32Array[]> {
    for (let retry = 0; ; retry++) {
      const a = await this.attempt(input, signal);
      if (a.vectors) return a.vectors;
      const error = a.error!;
      if (!a.retryable || retry >= this.o.maxRetries) {
        if (a.retryable) error.details.attempts = retry + 1;
        throw error;
      }
      let delayMs = backoffDelay(retry, this.o);
      if (a.retryAfterMs !== undefined) {
        if (a.retryAfterMs > this.o.maxRetryAfterMs) {
          error.details.retryAfterMs = a.retryAfterMs;
          throw error;
        }
        delayMs = a.retryAfterMs;
      }
      this.stats.retries++;
      this.o.onRetry?.({
        retry: retry + 1,
        delayMs,
        ...(a.status !== undefined ? { status: a.status } : {}),
        reason: error.message,
      });
      await sleep(delayMs, signal);
    }
  }

  private fail(
    detail: string,
    details: Record<string, unknown>,
    retryable: boolean,
    cause?: unknown,
  ): Attempt {
    const status = typeof details.status === 'number' ? details.status : undefined;
    return {
      error: new QuarryError(
        'EMBEDDING_FAILED',
        `${this.id} (${this.url}): ${detail}`,
        { model: this.id, url: this.url, ...details },
        cause,
      ),
      retryable,
      ...(status !== undefined ? { status } : {}),
    };
  }

  private async attempt(input: string[], signal: AbortSignal): Promise<Attempt> {
    const body: Record<string, unknown> = { model: this.o.model, input };
    if (this.o.dimensions !== undefined) body.dimensions = this.o.dimensions;
    if (this.o.encodingFormat === 'base64') body.encoding_format = 'base64';
    const headers: Record<string, string> = {
      'content-type': 'application/json',
      accept: 'application/json',
      ...this.o.headers,
    };
    if (this.o.apiKey) headers.authorization = `Bearer ${this.o.apiKey}`;

    // One controller per attempt, aborted by the caller's signal or by the phase deadline.
    const ctl = new AbortController();
    let phase: 'connect' | 'read' | undefined;
    const onAbort = (): void => ctl.abort(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    const arm = (p: 'connect' | 'read', ms: number): NodeJS.Timeout =>
      setTimeout(() => {
        phase = p;
        ctl.abort(new Error(`${p} timeout`));
      }, ms);
    let timer = arm('connect', this.o.connectTimeoutMs);
    const timedOut = (): Attempt => {
      const ms = phase === 'connect' ? this.o.connectTimeoutMs : this.o.readTimeoutMs;
      const what = phase === 'connect' ? 'no response headers' : 'the response body did not arrive';
      return this.fail(`${what} within ${ms} ms (${phase} timeout)`, { timeout: phase, timeoutMs: ms }, true);
    };
    try {
      this.stats.requests++;
      let res: Response;
      try {
        res = await fetch(this.url, {
          method: 'POST',
          headers,
          body: JSON.stringify(body),
          signal: ctl.signal,
        });
      } catch (e) {
        if (signal.aborted) throw signal.reason;
        if (phase) return timedOut();
        const cause = (e as { cause?: { code?: string; message?: string } }).cause;
        const why = cause?.code ?? cause?.message ?? (e instanceof Error ? e.message : String(e));
        return this.fail(`network error: ${why}`, { network: why }, true, e);
      }
      clearTimeout(timer);
      timer = arm('read', this.o.readTimeoutMs);
      let text: string;
      try {
        text = await res.text();
      } catch (e) {
        if (signal.aborted) throw signal.reason;
        if (phase) return timedOut();
        return this.fail(
          `reading the response failed: ${e instanceof Error ? e.message : String(e)}`,
          {},
          true,
          e,
        );
      }
      if (!res.ok) {
        const retryable = res.status === 429 || res.status >= 500;
        const a = this.fail(
          `HTTP ${res.status}${res.statusText ? ` ${res.statusText}` : ''}: ${describeBody(text)}`,
          { status: res.status, body: excerpt(text) },
          retryable,
        );
        const ms = res.headers.get('retry-after-ms');
        const retryAfterMs =
          ms !== null && /^\d+(\.\d+)?$/.test(ms.trim())
            ? Number(ms)
            : parseRetryAfter(res.headers.get('retry-after'));
        if (retryable && retryAfterMs !== undefined) a.retryAfterMs = retryAfterMs;
        return a;
      }
      return this.parse(text, input.length);
    } finally {
      clearTimeout(timer);
      signal.removeEventListener('abort', onAbort);
    }
  }

  /** Parses `{ data: [{ embedding, index }], model, usage }` into vectors in input order. Never retried. */
  private parse(text: string, count: number): Attempt {
    const bad = (why: string, extra: Record<string, unknown> = {}): Attempt =>
      this.fail(`invalid response: ${why}`, { body: excerpt(text), ...extra }, false);
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
        return this.fail(
          `the server returned a vector of dimension ${v.length}, expected ${expected}` +
            (this.o.dimensions !== undefined
              ? ' (the requested dimensions)'
              : ' (learned from its first response)'),
          { expected, actual: v.length, index },
          false,
        );
      }
      if (expected === 0) this.detected = v.length;
      out[index] = v;
    }
    const j = json as { model?: unknown; usage?: { prompt_tokens?: unknown } };
    if (typeof j.model === 'string') this.stats.serverModel = j.model;
    if (typeof j.usage?.prompt_tokens === 'number') this.stats.promptTokens += j.usage.prompt_tokens;
    return { vectors: out as Float32Array[], error: undefined, retryable: false };
  }
}

/** An embedder for an OpenAI-compatible `/v1/embeddings` endpoint; see `OpenAIEmbedderOptions`. */
export function createOpenAIEmbedder(opts: OpenAIEmbedderOptions): OpenAIEmbedder {
  return new OpenAIEmbedder(opts);
}

/**
 * The HTTP engine under every LLM provider: one request per attempt with a connect deadline (until response
 * headers) and an idle deadline between stream chunks, jittered retries on 429 / 5xx / network failures /
 * timeouts that stop as soon as output has reached the caller, a circuit breaker, token usage and cost.
 * Providers only describe their wire format (`WireProtocol`).
 */
import { QuarryError } from '../../errors.js';
import { countTokens } from '../../ingest/tokens.js';
import {
  checkRetryPolicy,
  describeBody,
  excerpt,
  type RetryInfo,
  type RetryPolicy,
  retryAfterFromHeaders,
  retryDelay,
  retryInfo,
  sleep,
} from '../../net/http.js';
import { type CallOutcome, CircuitBreaker, type CircuitSnapshot } from './circuit-breaker.js';
import { costUsd, type PriceTable, priceTable } from './pricing.js';
import { type EventSourceMessage, readSse, readText, SseFramingError, StreamIdleTimeout } from './sse.js';
import type { ChatMessage, Completion, GenerateRequest, LlmEvent, LlmProvider, TokenUsage } from './types.js';

/** How a response ended, as far as the server said. */
export interface FinishInfo {
  finishReason: string;
  model?: string;
  inputTokens?: number;
  outputTokens?: number;
}

/** What one SSE message meant. */
export type StreamStep =
  | { kind: 'text'; text: string }
  | { kind: 'done'; finish: FinishInfo }
  | { kind: 'error'; message: string; errorType?: string; retryable: boolean }
  | { kind: 'ignore' };

/** Per-attempt interpreter of a provider's event stream. Throws `ProtocolViolation` on malformed events. */
export interface StreamDecoder {
  accept(message: EventSourceMessage): StreamStep;
  /** At the end of the body without a `done` step: the finish info if the response had in fact finished. */
  end(): FinishInfo | undefined;
}

/** A provider's wire format. */
export interface WireProtocol {
  readonly url: string;
  headers(): Record<string, string>;
  body(request: GenerateRequest, stream: boolean): Record<string, unknown>;
  decoder(): StreamDecoder;
  /** A non-streaming JSON response body; throws `ProtocolViolation` when it is not one. */
  parseResponse(json: unknown): { text: string; finish: FinishInfo };
}

/** The server's bytes do not mean what the protocol says they must. */
export class ProtocolViolation extends Error {
  override name = 'ProtocolViolation';
}

export type LlmRetryInfo = RetryInfo;

/** Options every provider takes (defaults in brackets). */
export interface LlmClientOptions extends Partial<RetryPolicy> {
  /** The model name the server knows. */
  model: string;
  /** Stable id for traces and caches [`<provider>:<model>`]. */
  id?: string;
  /** API root; each provider documents its default. */
  baseURL?: string;
  apiKey?: string;
  /** Request defaults, overridden per request. */
  temperature?: number;
  maxTokens?: number;
  stop?: string[];
  /** Use SSE streaming on the wire [true]. With false, `stream()` yields the whole text as one delta. */
  stream?: boolean;
  /** Until response headers, per attempt [30 s]. Without streaming this includes the whole generation. */
  connectTimeoutMs?: number;
  /** Longest silence between two chunks of the body [60 s]. */
  readTimeoutMs?: number;
  /** Extra request headers (proxies, organisations). */
  headers?: Record<string, string>;
  /** Price overrides and additions, USD per 1M tokens. */
  prices?: PriceTable;
  /** A breaker to share, breaker options, or false for none [5 failures, 30 s cooldown]. */
  circuitBreaker?: CircuitBreaker | { failureThreshold: number; cooldownMs: number } | false;
  onRetry?: (info: LlmRetryInfo) => void;
}

/** A failed attempt, classified for the retry loop and the breaker. */
class AttemptFailure extends Error {
  constructor(
    readonly error: QuarryError,
    readonly retryable: boolean,
    /** Counts against the service in the circuit breaker (caller mistakes such as 400/401 do not). */
    readonly serviceFault: boolean,
    readonly retryAfterMs?: number,
  ) {
    super(error.message);
  }
}

/** Appended to the prompt in JSON mode (OpenAI also rejects json_object mode unless the word "JSON" appears). */
export const JSON_INSTRUCTION = 'Respond with a single JSON object and nothing else.';

export class HttpLlmProvider implements LlmProvider {
  readonly id: string;
  readonly model: string;
  readonly breaker: CircuitBreaker | undefined;
  private readonly o: RetryPolicy & {
    connectTimeoutMs: number;
    readTimeoutMs: number;
    stream: boolean;
  };
  private readonly prices: PriceTable;

  constructor(
    private readonly protocol: WireProtocol,
    private readonly opts: LlmClientOptions & { id: string },
  ) {
    if (typeof opts.model !== 'string' || opts.model.trim() === '') {
      throw new QuarryError('INVALID_CONFIG', 'an LLM provider needs a model name', {});
    }
    for (const k of ['connectTimeoutMs', 'readTimeoutMs'] as const) {
      const v = opts[k];
      if (v !== undefined && !(Number.isFinite(v) && v > 0)) {
        throw new QuarryError('INVALID_CONFIG', `${k} must be a positive number, got ${String(v)}`, {
          [k]: v,
        });
      }
    }
    checkRetryPolicy(opts);
    this.id = opts.id;
    this.model = opts.model;
    this.o = {
      maxRetries: opts.maxRetries ?? 3,
      initialBackoffMs: opts.initialBackoffMs ?? 500,
      maxBackoffMs: opts.maxBackoffMs ?? 20_000,
      maxRetryAfterMs: opts.maxRetryAfterMs ?? 60_000,
      connectTimeoutMs: opts.connectTimeoutMs ?? 30_000,
      readTimeoutMs: opts.readTimeoutMs ?? 60_000,
      stream: opts.stream ?? true,
    };
    this.prices = priceTable(opts.prices);
    const cb = opts.circuitBreaker ?? { failureThreshold: 5, cooldownMs: 30_000 };
    this.breaker =
      cb === false
        ? undefined
        : cb instanceof CircuitBreaker
          ? cb
          : new CircuitBreaker({ name: this.id, ...cb });
  }

  /** The breaker's state for traces and metrics (`closed` when there is none). */
  circuit(): CircuitSnapshot {
    return (
      this.breaker?.snapshot() ?? {
        state: 'closed',
        consecutiveFailures: 0,
        probeInFlight: false,
        rejected: 0,
      }
    );
  }

  stream(request: GenerateRequest): AsyncIterable<LlmEvent> {
    return this.run(request, { attempts: 0 });
  }

  async complete(request: GenerateRequest): Promise<Completion> {
    const stats = { attempts: 0 };
    let text = '';
    for await (const e of this.run(request, stats)) {
      if (e.type === 'delta') text += e.text;
      else
        return {
          text,
          finishReason: e.finishReason,
          model: e.model,
          usage: e.usage,
          attempts: stats.attempts,
        };
    }
    throw new QuarryError('LLM_PROTOCOL', `${this.id}: the response ended without completing`, {
      provider: this.id,
    });
  }

  private withDefaults(request: GenerateRequest): GenerateRequest {
    const r: GenerateRequest = { ...request };
    if (r.temperature === undefined && this.opts.temperature !== undefined)
      r.temperature = this.opts.temperature;
    if (r.maxTokens === undefined && this.opts.maxTokens !== undefined) r.maxTokens = this.opts.maxTokens;
    if (r.stop === undefined && this.opts.stop !== undefined) r.stop = this.opts.stop;
    return r;
  }

  private async *run(request: GenerateRequest, stats: { attempts: number }): AsyncGenerator<LlmEvent> {
    const signal = request.signal;
    if (signal?.aborted) throw signal.reason;
    if (!Array.isArray(request.messages) || request.messages.length === 0) {
      throw new QuarryError(
        'INVALID_ARGUMENT',
        `${this.id}: a generate request needs at least one message`,
        {},
      );
    }
    const settle = this.breaker?.acquire();
    let outcome: CallOutcome = 'neutral';
    try {
      const effective = this.withDefaults(request);
      const payload = JSON.stringify(this.protocol.body(effective, this.o.stream));
      // Text already handed to the caller: once non-empty, a retry would repeat it, so failures are final.
      let partial = '';
      for (let retry = 0; ; retry++) {
        stats.attempts = retry + 1;
        const ctl = new AbortController();
        const onAbort = (): void => ctl.abort(signal?.reason);
        signal?.addEventListener('abort', onAbort, { once: true });
        try {
          for await (const e of this.attempt(payload, effective.messages, ctl)) {
            if (e.type === 'delta') partial += e.text;
            else outcome = 'success';
            yield e;
          }
          return;
        } catch (e) {
          if (signal?.aborted) throw signal.reason;
          const f = this.classify(e);
          f.error.details.attempts = retry + 1;
          if (partial !== '') {
            f.error.details.partialText = partial;
            f.error.details.afterOutput = true;
          }
          const delayMs = partial === '' ? retryDelay(retry, f, this.o) : undefined;
          if (delayMs === undefined) {
            // retryDelay records the server's wait when it was longer than allowed; say what the limit was.
            const waitTooLong = f.error.details.retryAfterMs !== undefined;
            if (waitTooLong) f.error.details.maxRetryAfterMs = this.o.maxRetryAfterMs;
            outcome = f.serviceFault || waitTooLong ? 'failure' : 'neutral';
            throw f.error;
          }
          this.opts.onRetry?.(retryInfo(retry, delayMs, f.error));
          await sleep(delayMs, signal);
        } finally {
          signal?.removeEventListener('abort', onAbort);
          ctl.abort();
        }
      }
    } finally {
      settle?.(outcome);
    }
  }

  private failure(
    code: 'LLM_FAILED' | 'LLM_TIMEOUT' | 'LLM_PROTOCOL',
    detail: string,
    details: Record<string, unknown>,
    flags: { retryable: boolean; serviceFault: boolean; retryAfterMs?: number },
    cause?: unknown,
  ): AttemptFailure {
    const error = new QuarryError(
      code,
      `${this.id} (${this.protocol.url}): ${detail}`,
      { provider: this.id, url: this.protocol.url, ...details },
      cause,
    );
    return new AttemptFailure(error, flags.retryable, flags.serviceFault, flags.retryAfterMs);
  }

  private classify(e: unknown): AttemptFailure {
    if (e instanceof AttemptFailure) return e;
    if (e instanceof StreamIdleTimeout) {
      return this.failure(
        'LLM_TIMEOUT',
        `the server sent nothing for ${e.idleMs} ms (read timeout)`,
        { timeout: 'read', timeoutMs: e.idleMs },
        { retryable: true, serviceFault: true },
      );
    }
    if (e instanceof ProtocolViolation || e instanceof SseFramingError) {
      return this.failure('LLM_PROTOCOL', e.message, {}, { retryable: false, serviceFault: true }, e);
    }
    // fetch and body reads fail with TypeError("fetch failed" / "terminated") and the socket error as cause.
    const cause = (e as { cause?: { code?: string; message?: string } }).cause;
    const why = cause?.code ?? cause?.message ?? (e instanceof Error ? e.message : String(e));
    return this.failure(
      'LLM_FAILED',
      `network error: ${why}`,
      { network: why },
      { retryable: true, serviceFault: true },
      e,
    );
  }

  private async *attempt(
    payload: string,
    messages: ChatMessage[],
    ctl: AbortController,
  ): AsyncGenerator<LlmEvent> {
    const res = await this.connect(payload, ctl);
    if (!res.ok) throw await this.httpFailure(res);
    if (!res.body) throw new ProtocolViolation('the response has no body');
    const contentType = res.headers.get('content-type') ?? '';
    if (contentType.includes('text/event-stream')) yield* this.readStream(res.body, messages);
    else yield* this.readJson(res.body, messages);
  }

  /** POST the request; no response headers within the connect timeout is LLM_TIMEOUT (retryable). */
  private async connect(payload: string, ctl: AbortController): Promise<Response> {
    let connectTimedOut = false;
    const timer = setTimeout(() => {
      connectTimedOut = true;
      ctl.abort(new Error('connect timeout'));
    }, this.o.connectTimeoutMs);
    try {
      return await fetch(this.protocol.url, {
        method: 'POST',
        headers: this.protocol.headers(),
        body: payload,
        signal: ctl.signal,
      });
    } catch (e) {
      if (connectTimedOut) {
        throw this.failure(
          'LLM_TIMEOUT',
          `no response headers within ${this.o.connectTimeoutMs} ms (connect timeout)`,
          { timeout: 'connect', timeoutMs: this.o.connectTimeoutMs },
          { retryable: true, serviceFault: true },
        );
      }
      throw e;
    } finally {
      clearTimeout(timer);
    }
  }

  /** A non-2xx response as LLM_FAILED with its status and body excerpt; 429 and 5xx retry (after Retry-After). */
  private async httpFailure(res: Response): Promise<Error> {
    let text = '';
    try {
      text = await readText(res.body, this.o.readTimeoutMs);
    } catch {
      // the status alone is enough to report
    }
    const retryable = res.status === 429 || res.status >= 500;
    const retryAfterMs = retryable ? retryAfterFromHeaders(res.headers) : undefined;
    return this.failure(
      'LLM_FAILED',
      `HTTP ${res.status}${res.statusText ? ` ${res.statusText}` : ''}: ${describeBody(text)}`,
      { status: res.status, body: excerpt(text) },
      { retryable, serviceFault: retryable, ...(retryAfterMs !== undefined ? { retryAfterMs } : {}) },
    );
  }

  /** Non-streaming mode, or a server that ignored `stream: true`: one JSON body. */
  private async *readJson(
    body: NonNullable<Response['body']>,
    messages: ChatMessage[],
  ): AsyncGenerator<LlmEvent> {
    const text = await readText(body, this.o.readTimeoutMs);
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      throw new ProtocolViolation(`the response is not JSON: ${excerpt(text)}`);
    }
    const r = this.protocol.parseResponse(json);
    if (r.text !== '') yield { type: 'delta', text: r.text };
    yield this.done(r.finish, messages, r.text);
  }

  /** Server-Sent Events, decoded by the protocol; a stream that ends before it is complete is a retryable failure. */
  private async *readStream(
    body: NonNullable<Response['body']>,
    messages: ChatMessage[],
  ): AsyncGenerator<LlmEvent> {
    const decoder = this.protocol.decoder();
    let text = '';
    for await (const message of readSse(body, { idleMs: this.o.readTimeoutMs })) {
      const step = decoder.accept(message);
      if (step.kind === 'text') {
        if (step.text === '') continue;
        text += step.text;
        yield { type: 'delta', text: step.text };
      } else if (step.kind === 'done') {
        yield this.done(step.finish, messages, text);
        return;
      } else if (step.kind === 'error') {
        throw this.failure(
          'LLM_FAILED',
          `the server reported an error in the stream${step.errorType ? ` (${step.errorType})` : ''}: ${step.message}`,
          { errorType: step.errorType, streamError: true },
          { retryable: step.retryable, serviceFault: step.retryable },
        );
      }
    }
    const finish = decoder.end();
    if (finish) {
      yield this.done(finish, messages, text);
      return;
    }
    throw this.failure(
      'LLM_FAILED',
      'the stream ended before the response was complete (connection closed)',
      { network: 'stream ended early' },
      { retryable: true, serviceFault: true },
    );
  }

  /** The final event: the server's usage when it sent one, else local token counts marked estimated. */
  private done(finish: FinishInfo, messages: ChatMessage[], text: string): LlmEvent {
    const estimated = finish.inputTokens === undefined || finish.outputTokens === undefined;
    const inputTokens = finish.inputTokens ?? estimatePromptTokens(messages);
    const outputTokens = finish.outputTokens ?? countTokens(text);
    const model = finish.model ?? this.model;
    const cost = costUsd([model, this.model], inputTokens, outputTokens, this.prices);
    const usage: TokenUsage = {
      inputTokens,
      outputTokens,
      ...(cost !== undefined ? { costUsd: cost } : {}),
      ...(estimated ? { estimated: true } : {}),
    };
    return { type: 'done', finishReason: finish.finishReason, model, usage };
  }
}

/** Prompt tokens as chat models count them: each message's content plus ~3 tokens of framing, plus 3 for the reply. */
export function estimatePromptTokens(messages: ChatMessage[]): number {
  let n = 3;
  for (const m of messages) n += countTokens(m.content) + 3;
  return n;
}

/** A non-negative integer token count from a usage field, else undefined. */
export function tokenCount(v: unknown): number | undefined {
  return typeof v === 'number' && Number.isInteger(v) && v >= 0 ? v : undefined;
}

/** `baseURL + path` as a valid absolute URL, or INVALID_CONFIG. */
export function endpoint(baseURL: string, path: string): string {
  try {
    const u = new URL(`${baseURL.replace(/\/+$/, '')}${path}`);
    if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new Error('not http(s)');
    return u.href;
  } catch {
    throw new QuarryError('INVALID_CONFIG', `baseURL is not a valid http(s) URL: ${baseURL}`, { baseURL });
  }
}

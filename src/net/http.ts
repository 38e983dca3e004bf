/**
 * HTTP plumbing shared by every client of a third-party network service (embedding, rerank and LLM APIs):
 * one JSON POST with connect/read deadlines, the retry loop (jittered exponential backoff honouring
 * `Retry-After`), abortable sleeps and short error-body excerpts.
 */
import { type ErrorCode, QuarryError } from '../errors.js';

const BODY_EXCERPT = 500;

/** Backoff and retry limits every HTTP client takes. */
export interface RetryPolicy {
  /** Retries after the first attempt. */
  maxRetries: number;
  /** First backoff delay; doubled each retry, with ±50 % jitter. */
  initialBackoffMs: number;
  /** Backoff cap. */
  maxBackoffMs: number;
  /** A server asking to wait longer than this (Retry-After) fails the call instead. */
  maxRetryAfterMs: number;
}

/** Rejects a retry setting that is not a non-negative number (INVALID_CONFIG naming it); unset ones pass. */
export function checkRetryPolicy(opts: Partial<RetryPolicy>): void {
  for (const k of ['maxRetries', 'initialBackoffMs', 'maxBackoffMs', 'maxRetryAfterMs'] as const) {
    const v = opts[k];
    if (v !== undefined && !(Number.isFinite(v) && v >= 0)) {
      throw new QuarryError('INVALID_CONFIG', `${k} must be a non-negative number, got ${String(v)}`, {
        [k]: v,
      });
    }
  }
}

/** `Retry-After` in milliseconds: delta-seconds or an HTTP date (relative to `now`); undefined when absent/invalid. */
export function parseRetryAfter(value: string | null | undefined, now = Date.now()): number | undefined {
  if (value === null || value === undefined) return undefined;
  const v = value.trim();
  if (v === '') return undefined;
  if (/^\d+(\.\d+)?$/.test(v)) return Math.round(Number(v) * 1000);
  const t = Date.parse(v);
  if (Number.isNaN(t)) return undefined;
  return Math.max(0, t - now);
}

/** The server's requested wait: `retry-after-ms` (OpenAI, Anthropic) wins over `Retry-After`. */
export function retryAfterFromHeaders(headers: Headers, now = Date.now()): number | undefined {
  const ms = headers.get('retry-after-ms');
  if (ms !== null && /^\d+(\.\d+)?$/.test(ms.trim())) return Math.round(Number(ms));
  return parseRetryAfter(headers.get('retry-after'), now);
}

/** Delay before retry number `retry` (0-based): exponential with ±50 % jitter, capped. */
export function backoffDelay(
  retry: number,
  policy: Pick<RetryPolicy, 'initialBackoffMs' | 'maxBackoffMs'>,
): number {
  const backoff = Math.min(policy.maxBackoffMs, policy.initialBackoffMs * 2 ** retry) * (0.5 + Math.random());
  return Math.round(Math.min(backoff, policy.maxBackoffMs));
}

export function excerpt(text: string): string {
  const t = text.replace(/\s+/g, ' ').trim();
  return t.length > BODY_EXCERPT ? `${t.slice(0, BODY_EXCERPT)}…` : t;
}

/** The `error.message` of an OpenAI/Anthropic/Cohere-style error body, else an excerpt of the body. */
export function describeBody(text: string): string {
  try {
    const j = JSON.parse(text) as {
      error?: { message?: unknown } | string;
      message?: unknown;
      detail?: unknown;
    };
    const m =
      typeof j.error === 'string'
        ? j.error
        : typeof j.error?.message === 'string'
          ? j.error.message
          : typeof j.message === 'string'
            ? j.message
            : typeof j.detail === 'string'
              ? j.detail
              : undefined;
    if (m) return excerpt(m);
  } catch {
    // not JSON
  }
  return excerpt(text);
}

/** Resolves after `ms`, or rejects with the signal's reason as soon as it aborts. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(signal.reason);
      return;
    }
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(signal?.reason);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/** What a client's `onRetry` hook hears before each retry (logging, metrics). */
export interface RetryInfo {
  /** 1-based retry number. */
  retry: number;
  delayMs: number;
  status?: number;
  reason: string;
}

/** A failed attempt as the retry loop sees it; `error.details.status` is the HTTP status when there was one. */
export interface AttemptFailure {
  error: QuarryError;
  retryable: boolean;
  /** The server's requested wait (Retry-After) before the next attempt. */
  retryAfterMs?: number;
}

export type AttemptResult<T> = { ok: true; value: T } | ({ ok: false } & AttemptFailure);

/**
 * The wait before the attempt after failed attempt `retry` (0-based): the server's Retry-After when it sent one,
 * else jittered backoff. Undefined when the failure is final — not retryable, retries used up (the error then
 * records `attempts`), or the server asks to wait longer than `maxRetryAfterMs` (the error records `retryAfterMs`).
 */
export function retryDelay(retry: number, failure: AttemptFailure, policy: RetryPolicy): number | undefined {
  const { error } = failure;
  if (!failure.retryable || retry >= policy.maxRetries) {
    if (failure.retryable) error.details.attempts = retry + 1;
    return undefined;
  }
  if (failure.retryAfterMs === undefined) return backoffDelay(retry, policy);
  if (failure.retryAfterMs > policy.maxRetryAfterMs) {
    error.details.retryAfterMs = failure.retryAfterMs;
    return undefined;
  }
  return failure.retryAfterMs;
}

/** The `onRetry` report for the retry that follows failed attempt `retry` (0-based). */
export function retryInfo(retry: number, delayMs: number, error: QuarryError): RetryInfo {
  const status = error.details.status;
  return {
    retry: retry + 1,
    delayMs,
    ...(typeof status === 'number' ? { status } : {}),
    reason: error.message,
  };
}

/**
 * Runs `attempt` until it succeeds or fails for good (see `retryDelay`), reporting each retry to `onRetry` and
 * sleeping in between; an abort of `signal` during a sleep rejects with its reason.
 */
export async function withRetries<T>(
  attempt: (retry: number) => Promise<AttemptResult<T>>,
  policy: RetryPolicy,
  signal: AbortSignal | undefined,
  onRetry?: (info: RetryInfo) => void,
): Promise<T> {
  for (let retry = 0; ; retry++) {
    const a = await attempt(retry);
    if (a.ok) return a.value;
    const delayMs = retryDelay(retry, a, policy);
    if (delayMs === undefined) throw a.error;
    onRetry?.(retryInfo(retry, delayMs, a.error));
    await sleep(delayMs, signal);
  }
}

/** Per-attempt deadlines of a request/response call. */
export interface PhaseTimeouts {
  /** Until the response headers arrive. */
  connectTimeoutMs: number;
  /** For reading the whole body once the headers arrived. */
  readTimeoutMs: number;
}

/** Why one POST failed, for the client to wrap in its own error code; `status` is in `details` when there was one. */
export interface PostFailure {
  detail: string;
  details: Record<string, unknown>;
  /** 429, 5xx, network errors and timeouts; never other 4xx. */
  retryable: boolean;
  retryAfterMs?: number;
  cause?: unknown;
}

/**
 * A failed attempt for the retry loop, raised as the client's own error: `code`, the message led by `where`
 * (client and URL), the client's `context` ahead of the failure's details.
 */
export function failedAttempt(
  code: ErrorCode,
  where: string,
  context: Record<string, unknown>,
  { detail, details, retryable, retryAfterMs, cause }: PostFailure,
): { ok: false } & AttemptFailure {
  return {
    ok: false,
    error: new QuarryError(code, `${where}: ${detail}`, { ...context, ...details }, cause),
    retryable,
    ...(retryAfterMs !== undefined ? { retryAfterMs } : {}),
  };
}

/** JSON request headers with an optional bearer key; `extra` may override the content headers. */
export function jsonHeaders(
  apiKey: string | undefined,
  extra?: Record<string, string>,
): Record<string, string> {
  const headers: Record<string, string> = {
    'content-type': 'application/json',
    accept: 'application/json',
    ...extra,
  };
  if (apiKey) headers.authorization = `Bearer ${apiKey}`;
  return headers;
}

/**
 * One POST attempt: the body text of a 2xx response, or the failure classified for the retry loop. Throws only
 * the reason of `signal` when the caller aborts.
 */
export async function postOnce(
  url: string,
  headers: Record<string, string>,
  body: string,
  timeouts: PhaseTimeouts,
  signal: AbortSignal,
): Promise<{ ok: true; text: string } | ({ ok: false } & PostFailure)> {
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
  let timer = arm('connect', timeouts.connectTimeoutMs);
  const timedOut = (): { ok: false } & PostFailure => {
    const ms = phase === 'connect' ? timeouts.connectTimeoutMs : timeouts.readTimeoutMs;
    const what = phase === 'connect' ? 'no response headers' : 'the response body did not arrive';
    return {
      ok: false,
      detail: `${what} within ${ms} ms (${phase} timeout)`,
      details: { timeout: phase, timeoutMs: ms },
      retryable: true,
    };
  };
  try {
    let res: Response;
    try {
      res = await fetch(url, { method: 'POST', headers, body, signal: ctl.signal });
    } catch (e) {
      if (signal.aborted) throw signal.reason;
      if (phase) return timedOut();
      // fetch fails with TypeError("fetch failed") and the socket error as its cause.
      const cause = (e as { cause?: { code?: string; message?: string } }).cause;
      const why = cause?.code ?? cause?.message ?? (e instanceof Error ? e.message : String(e));
      return {
        ok: false,
        detail: `network error: ${why}`,
        details: { network: why },
        retryable: true,
        cause: e,
      };
    }
    clearTimeout(timer);
    timer = arm('read', timeouts.readTimeoutMs);
    let text: string;
    try {
      text = await res.text();
    } catch (e) {
      if (signal.aborted) throw signal.reason;
      if (phase) return timedOut();
      return {
        ok: false,
        detail: `reading the response failed: ${e instanceof Error ? e.message : String(e)}`,
        details: {},
        retryable: true,
        cause: e,
      };
    }
    if (!res.ok) {
      const retryable = res.status === 429 || res.status >= 500;
      const retryAfterMs = retryable ? retryAfterFromHeaders(res.headers) : undefined;
      return {
        ok: false,
        detail: `HTTP ${res.status}${res.statusText ? ` ${res.statusText}` : ''}: ${describeBody(text)}`,
        details: { status: res.status, body: excerpt(text) },
        retryable,
        ...(retryAfterMs !== undefined ? { retryAfterMs } : {}),
      };
    }
    return { ok: true, text };
  } finally {
    clearTimeout(timer);
    signal.removeEventListener('abort', onAbort);
  }
}

/**
 * HTTP plumbing shared by every client of a third-party network service (embedding, rerank and LLM APIs):
 * `Retry-After` parsing, jittered exponential backoff, abortable sleeps and short error-body excerpts.
 */

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

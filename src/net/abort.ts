/**
 * Cancellation helpers for stages that call work they cannot cancel themselves (a reranker or provider that
 * ignores its signal): the stage still returns on time, and the late result is dropped.
 */

/** Resolves or rejects like `work`, unless `signal` aborts first (then rejects with the signal's reason). */
export function abortable<T>(work: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (signal === undefined) return work;
  if (signal.aborted) return Promise.reject(signal.reason);
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    work.then(
      (v) => {
        signal.removeEventListener('abort', onAbort);
        resolve(v);
      },
      (e: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(e);
      },
    );
  });
}

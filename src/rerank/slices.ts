/**
 * Fan-out shared by rerankers whose model takes a bounded number of passages per call (HTTP `/rerank` APIs,
 * the ONNX cross-encoder): the pool is split into slices scored concurrently, and the scores are merged back
 * onto the pool's indexes.
 */
import { setMaxListeners } from 'node:events';
import type { Limiter } from '../embed/types.js';
import type { SearchHit } from '../types.js';
import type { RerankScore } from './types.js';

/** The text a reranker reads for a hit: the chunk, with its document title in front when asked to. */
export function passageText(hit: SearchHit, includeTitle: boolean): string {
  const title = hit.chunk.title.trim();
  return includeTitle && title ? `${title}\n${hit.chunk.text}` : hit.chunk.text;
}

/**
 * Scores `passages` in slices of `size` through `limiter`; `scoreSlice` returns one score per passage of its
 * slice, in order. The first failing slice cancels the others (one bad slice makes the whole ranking
 * unusable) and its error is thrown; an abort of `signal` throws the signal's reason.
 */
export async function scoreInSlices(
  passages: string[],
  size: number,
  limiter: Limiter,
  signal: AbortSignal | undefined,
  scoreSlice: (slice: string[], signal: AbortSignal) => Promise<ArrayLike<number>>,
): Promise<RerankScore[]> {
  const failed = new AbortController();
  const combined = signal ? AbortSignal.any([signal, failed.signal]) : failed.signal;
  // Every queued slice listens on this (private) signal: not a leak.
  setMaxListeners(2 * Math.ceil(passages.length / size) + 16, combined);
  const jobs: Promise<RerankScore[]>[] = [];
  for (let start = 0; start < passages.length; start += size) {
    const slice = passages.slice(start, start + size);
    jobs.push(
      limiter.run(async () => {
        try {
          const scores = await scoreSlice(slice, combined);
          return Array.from(scores, (score, i) => ({ index: start + i, score }));
        } catch (e) {
          if (!failed.signal.aborted) failed.abort(e);
          throw e;
        }
      }, combined),
    );
  }
  try {
    return (await Promise.all(jobs)).flat();
  } catch (e) {
    // Queued slices reject with the abort reason; swallow those so nothing is left unhandled.
    for (const j of jobs) j.catch(() => {});
    if (signal?.aborted) throw signal.reason;
    throw e;
  }
}

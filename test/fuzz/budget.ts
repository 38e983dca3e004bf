/**
 * Shared bookkeeping for the fuzz tests: a fixed seed and run count per target (so a failure replays exactly
 * and the folder stays fast), the count of inputs tried, crashes seen and the peak RSS sampled while the
 * target ran, printed as one summary line per target.
 */
import { isQuarryError } from '../../src/errors.js';

/** One seed for the whole folder: a failing case prints its path and replays with the same seed. */
export const SEED = 20_261_204;

export interface FuzzTally {
  target: string;
  inputs: number;
  crashes: number;
  peakRss: number;
  /** Call once per input tried; samples RSS. */
  tried(): void;
  /** Samples RSS without counting an input (after the call, when its memory is still held). */
  sample(): void;
  /** Prints `fuzz <target>: N inputs, C crashes, peak RSS X MB`. */
  report(): string;
}

export function tally(target: string): FuzzTally {
  const t: FuzzTally = {
    target,
    inputs: 0,
    crashes: 0,
    peakRss: process.memoryUsage().rss,
    tried() {
      t.inputs++;
      t.sample();
    },
    sample() {
      const rss = process.memoryUsage().rss;
      if (rss > t.peakRss) t.peakRss = rss;
    },
    report() {
      const line = `fuzz ${t.target}: ${t.inputs} inputs, ${t.crashes} crashes, peak RSS ${Math.round(t.peakRss / 2 ** 20)} MB`;
      console.log(line);
      return line;
    },
  };
  return t;
}

/**
 * Runs `fn` and classifies the outcome: a value, or a QuarryError (with one of `codes` when given). Anything
 * else thrown counts as a crash and is rethrown, so fast-check shrinks and reports it.
 */
export async function refusedCleanly<T>(
  t: FuzzTally,
  fn: () => T | Promise<T>,
  codes?: readonly string[],
): Promise<{ ok: true; value: T } | { ok: false; code: string }> {
  t.tried();
  try {
    return { ok: true, value: await fn() };
  } catch (e) {
    if (isQuarryError(e) && (codes === undefined || codes.includes(e.code)))
      return { ok: false, code: e.code };
    t.crashes++;
    throw e;
  } finally {
    t.sample();
  }
}

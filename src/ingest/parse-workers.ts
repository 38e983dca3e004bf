/**
 * Parsing isolated from the process: PDF, DOCX, HTML and Markdown parse in worker threads, each with a heap
 * limit (`resourceLimits`) and a deadline per file. A file whose parser runs out of memory fails with
 * PARSE_MEMORY_LIMIT, one that runs past the deadline with PARSE_TIMEOUT (its thread is terminated); the
 * thread is replaced and the other files of the run go on. Without this, one hostile file (a parser bug, a
 * pathological structure) could exhaust the heap and take the whole ingest — or the server — down.
 *
 * Workers start on first use, are shared by every store in the process with the same limits, run one file at
 * a time each, and are unref'd while idle so they never keep a process alive.
 */
import os from 'node:os';
import { WorkerPool } from '../embed/pool.js';
import { isQuarryError, QuarryError } from '../errors.js';
import type { ParsedDocument } from '../types.js';
import type { ParseTask } from './parse-worker.js';

export interface IsolationLimits {
  /** V8 old-generation heap per worker (MiB). */
  memoryMb: number;
  /** Longest a single file may parse (ms). */
  timeoutMs: number;
  /** Worker threads at most. */
  workers: number;
}

const BOOT = new URL('./parse-worker-boot.mjs', import.meta.url);
// From the TypeScript sources (tests, tsx) the task module is .ts and the worker must register tsx itself.
const FROM_SOURCE = import.meta.url.endsWith('.ts');
const TASK = new URL(FROM_SOURCE ? './parse-worker.ts' : './parse-worker.js', import.meta.url);

/** The process-wide parse workers for one set of limits, over the shared `WorkerPool`. */
export class ParseWorkers {
  private static readonly pools = new Map<string, ParseWorkers>();
  private pool: Promise<WorkerPool<ParseTask, ParsedDocument>> | undefined;
  /** Threads replaced after a memory limit, a deadline or a crash (for tests and diagnostics). */
  replaced = 0;

  private constructor(private readonly limits: IsolationLimits) {}

  /** The process-wide workers for these limits (started on first use). */
  static shared(limits: IsolationLimits): ParseWorkers {
    const workers = Math.max(1, Math.min(limits.workers, os.availableParallelism()));
    const key = `${limits.memoryMb}/${limits.timeoutMs}/${workers}`;
    let pool = ParseWorkers.pools.get(key);
    if (pool === undefined) {
      pool = new ParseWorkers({ ...limits, workers });
      ParseWorkers.pools.set(key, pool);
    }
    return pool;
  }

  /** Parses one document in a worker; rejects with the parser's QuarryError, PARSE_MEMORY_LIMIT or PARSE_TIMEOUT. */
  async run(task: ParseTask): Promise<ParsedDocument> {
    const { memoryMb, timeoutMs } = this.limits;
    this.pool ??= WorkerPool.start<ParseTask, ParsedDocument>({
      script: BOOT,
      size: this.limits.workers,
      workerData: { module: TASK.href, tsx: FROM_SOURCE },
      name: 'quarry-parse',
      resourceLimits: { maxOldGenerationSizeMb: memoryMb },
      failureCode: 'PARSE_FAILED',
    }).catch((e: unknown) => {
      this.pool = undefined; // could not start: the next file tries again
      throw e;
    });
    const file = task.path;
    try {
      return await (await this.pool).run(task, {
        timeoutMs,
        timeoutError: () =>
          new QuarryError(
            'PARSE_TIMEOUT',
            `${file}: parsing took longer than ${timeoutMs} ms and was stopped (ingest.parseTimeoutMs)`,
            { file, format: task.format, timeoutMs },
          ),
      });
    } catch (e) {
      // A deadline, or a thread that died (past its heap limit, or a crash): the pool replaced it.
      if (!isQuarryError(e)) throw e;
      const died = e.details.workerDied === true;
      if (died || e.code === 'PARSE_TIMEOUT') this.replaced++;
      if (!died) throw e;
      if (e.details.workerError === 'ERR_WORKER_OUT_OF_MEMORY')
        throw new QuarryError(
          'PARSE_MEMORY_LIMIT',
          `${file}: the parser needed more than ${memoryMb} MiB of heap and was stopped (ingest.parseMemoryMb)`,
          { file, memoryMb },
        );
      throw new QuarryError('PARSE_FAILED', `${file}: the parser thread failed: ${e.message}`, { file });
    }
  }
}

/** The isolation limits an ingest configuration asks for (none with `parseIsolation: 'inline'`). */
export function isolationOf(ingest: {
  parseIsolation: 'worker' | 'inline';
  parseMemoryMb: number;
  parseTimeoutMs: number;
  concurrency: number;
}): { isolation?: IsolationLimits } {
  if (ingest.parseIsolation === 'inline') return {};
  return {
    isolation: {
      memoryMb: ingest.parseMemoryMb,
      timeoutMs: ingest.parseTimeoutMs,
      workers: ingest.concurrency,
    },
  };
}

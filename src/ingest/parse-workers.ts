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
import { Worker } from 'node:worker_threads';
import { ERRORS, type ErrorCode, QuarryError } from '../errors.js';
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

interface Job {
  task: ParseTask;
  resolve: (d: ParsedDocument) => void;
  reject: (e: Error) => void;
}

interface Slot {
  worker: Worker;
  ready: boolean;
  job: Job | undefined;
  timer: NodeJS.Timeout | undefined;
}

interface WireError {
  code?: string;
  message: string;
  details?: Record<string, unknown>;
}

const BOOT = new URL('./parse-worker-boot.mjs', import.meta.url);
// From the TypeScript sources (tests, tsx) the task module is .ts and the worker must register tsx itself.
const FROM_SOURCE = import.meta.url.endsWith('.ts');
const TASK = new URL(FROM_SOURCE ? './parse-worker.ts' : './parse-worker.js', import.meta.url);

function fromWire(e: WireError): QuarryError {
  if (e.code !== undefined && Object.hasOwn(ERRORS, e.code)) {
    const code = e.code as ErrorCode;
    const prefix = `${ERRORS[code].message}: `;
    return new QuarryError(
      code,
      e.message.startsWith(prefix) ? e.message.slice(prefix.length) : e.message,
      e.details,
    );
  }
  return new QuarryError('PARSE_FAILED', e.message);
}

export class ParseWorkers {
  private static readonly pools = new Map<string, ParseWorkers>();
  private readonly slots: Slot[] = [];
  private readonly queue: Job[] = [];
  /** Threads replaced after a memory limit, a deadline or a crash (for tests and diagnostics). */
  replaced = 0;

  private constructor(private readonly limits: IsolationLimits) {}

  /** The process-wide pool for these limits. */
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
  run(task: ParseTask): Promise<ParsedDocument> {
    return new Promise((resolve, reject) => {
      this.queue.push({ task, resolve, reject });
      this.dispatch();
    });
  }

  private dispatch(): void {
    while (this.queue.length > 0) {
      const slot = this.slots.find((s) => s.ready && s.job === undefined);
      if (slot === undefined) {
        if (this.slots.length < this.limits.workers) this.spawn();
        return; // a worker posts `ready` (or finishes its file) and dispatches again
      }
      const job = this.queue.shift()!;
      slot.job = job;
      slot.worker.ref();
      slot.timer = setTimeout(() => {
        this.fail(
          slot,
          new QuarryError(
            'PARSE_TIMEOUT',
            `${job.task.path}: parsing took longer than ${this.limits.timeoutMs} ms and was stopped (ingest.parseTimeoutMs)`,
            { file: job.task.path, format: job.task.format, timeoutMs: this.limits.timeoutMs },
          ),
        );
      }, this.limits.timeoutMs);
      slot.worker.postMessage({ id: 0, task: job.task });
    }
  }

  private spawn(): void {
    const worker = new Worker(BOOT, {
      workerData: { module: TASK.href, tsx: FROM_SOURCE },
      name: 'quarry-parse',
      resourceLimits: { maxOldGenerationSizeMb: this.limits.memoryMb },
    });
    const slot: Slot = { worker, ready: false, job: undefined, timer: undefined };
    this.slots.push(slot);
    worker.unref();
    worker.on(
      'message',
      (m: { type?: 'ready'; ok?: boolean; result?: ParsedDocument; error?: WireError }) => {
        if (m.type === 'ready') {
          slot.ready = true;
          this.dispatch();
          return;
        }
        const job = slot.job;
        if (job === undefined) return;
        this.release(slot);
        if (m.ok) job.resolve(m.result!);
        else job.reject(fromWire(m.error!));
        this.dispatch();
      },
    );
    worker.on('error', (e: Error & { code?: string }) => {
      const file = slot.job?.task.path ?? '(no file)';
      this.fail(
        slot,
        e.code === 'ERR_WORKER_OUT_OF_MEMORY'
          ? new QuarryError(
              'PARSE_MEMORY_LIMIT',
              `${file}: the parser needed more than ${this.limits.memoryMb} MiB of heap and was stopped (ingest.parseMemoryMb)`,
              { file, memoryMb: this.limits.memoryMb },
            )
          : new QuarryError('PARSE_FAILED', `${file}: the parser thread failed: ${e.message}`, { file }),
      );
    });
    worker.on('exit', (code) => {
      this.fail(slot, new QuarryError('PARSE_FAILED', `the parser thread exited (code ${code})`, { code }));
    });
  }

  private release(slot: Slot): void {
    clearTimeout(slot.timer);
    slot.timer = undefined;
    slot.job = undefined;
    slot.worker.unref();
  }

  /** A thread hit a limit or died: fail its file (or, at start-up, the next waiting one), drop the thread. */
  private fail(slot: Slot, error: QuarryError): void {
    const i = this.slots.indexOf(slot);
    if (i < 0) return;
    this.slots.splice(i, 1);
    this.replaced++;
    const job = slot.job ?? (slot.ready ? undefined : this.queue.shift());
    this.release(slot);
    void slot.worker.terminate();
    job?.reject(error);
    this.dispatch();
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

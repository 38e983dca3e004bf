/**
 * A pool of `worker_threads` for CPU-bound work off the event loop: local model inference (embedders, the
 * cross-encoder) and isolated parsing (`src/ingest/parse-workers.ts`, with a heap limit and a per-task deadline).
 *
 * The worker script is a plain ES module (`.mjs`: Node 20 workers do not reliably inherit a TypeScript
 * loader) that speaks this protocol over `parentPort`:
 *   - on start it reads `workerData`, loads what it needs and posts `{ type: 'ready', info }`, or
 *     `{ type: 'error', error }` when it cannot (the pool then fails to start);
 *   - for each `{ id, task }` it receives it posts `{ id, ok: true, result }` or `{ id, ok: false, error }`.
 * `error` is `{ message, code?, details? }`; a `code` from the ERRORS table becomes a `QuarryError`.
 * Each worker runs one task at a time; tasks queue FIFO. A worker that dies fails its task and is replaced.
 * Idle workers are unref'd: a pool nobody closed does not keep the process alive.
 */
import { type ResourceLimits, Worker } from 'node:worker_threads';
import { ERRORS, type ErrorCode, QuarryError } from '../errors.js';

export interface WorkerPoolOptions {
  /** The worker module (a `.mjs` file URL or path). */
  script: URL | string;
  /** Number of workers (default 1). */
  size?: number;
  /** Passed to every worker as `workerData` (structured-cloned). */
  workerData?: unknown;
  /** Thread name prefix, for diagnostics. */
  name?: string;
  resourceLimits?: ResourceLimits;
  /**
   * Node flags for the workers (default none: the worker scripts are plain JavaScript, and not inheriting the
   * parent's loaders, e.g. tsx's, halves start-up time).
   */
  execArgv?: string[];
  /** The error code for a worker that crashes, exits or cannot start (default EMBEDDING_FAILED). */
  failureCode?: ErrorCode;
}

export interface RunOptions {
  signal?: AbortSignal;
  transfer?: readonly ArrayBuffer[];
  /**
   * Longest the task may run once a worker has it: past it the worker is terminated (and replaced) and the
   * task rejects with `timeoutError()`. Unlike `signal`, this stops the work itself.
   */
  timeoutMs?: number;
  timeoutError?: () => Error;
}

interface WireError {
  message: string;
  code?: string;
  details?: Record<string, unknown>;
}

type Reply = { type: 'ready'; info: unknown } | { type: 'error'; error: WireError } | WireResult;
type WireResult = { id: number; ok: true; result: unknown } | { id: number; ok: false; error: WireError };

interface Job {
  id: number;
  task: unknown;
  transfer: readonly ArrayBuffer[];
  resolve: (v: unknown) => void;
  reject: (e: unknown) => void;
  signal: AbortSignal | undefined;
  onAbort: (() => void) | undefined;
  timeoutMs: number | undefined;
  timeoutError: (() => Error) | undefined;
  timer?: NodeJS.Timeout;
}

interface Slot {
  worker: Worker;
  job: Job | undefined;
}

export function errorFromWire(e: WireError, what: string, fallback: ErrorCode = 'EMBEDDING_FAILED'): Error {
  if (e.code && Object.hasOwn(ERRORS, e.code)) {
    const code = e.code as ErrorCode;
    const prefix = `${ERRORS[code].message}: `;
    const detail = e.message.startsWith(prefix) ? e.message.slice(prefix.length) : e.message;
    return new QuarryError(code, detail, e.details ?? {});
  }
  return new QuarryError(fallback, `${what}: ${e.message}`, e.details ?? {});
}

export class WorkerPool<TTask, TResult, TInfo = unknown> {
  private readonly slots: Slot[] = [];
  private readonly queue: Job[] = [];
  private nextId = 1;
  private closed = false;
  private respawning = 0;
  /** What the first worker reported when ready. */
  info!: TInfo;

  private constructor(private readonly opts: WorkerPoolOptions & { size: number }) {}

  /** Starts `size` workers and waits until every one is ready; rejects (and stops them) if one cannot start. */
  static async start<TTask, TResult, TInfo = unknown>(
    opts: WorkerPoolOptions,
  ): Promise<WorkerPool<TTask, TResult, TInfo>> {
    const size = opts.size ?? 1;
    if (!Number.isInteger(size) || size < 1 || size > 256) {
      throw new QuarryError('INVALID_CONFIG', `worker pool size must be an integer in 1..256, got ${size}`, {
        size,
      });
    }
    const pool = new WorkerPool<TTask, TResult, TInfo>({ ...opts, size });
    const started = await Promise.allSettled(Array.from({ length: size }, (_, i) => pool.spawn(i)));
    for (const s of started) if (s.status === 'fulfilled') pool.slots.push(s.value.slot);
    const failed = started.find((s): s is PromiseRejectedResult => s.status === 'rejected');
    if (failed) {
      await pool.close();
      throw failed.reason;
    }
    const first = started[0] as PromiseFulfilledResult<{ slot: Slot; info: unknown }>;
    pool.info = first.value.info as TInfo;
    return pool;
  }

  get size(): number {
    return this.opts.size;
  }

  /** Thread ids of the live workers. */
  get threadIds(): number[] {
    return this.slots.map((s) => s.worker.threadId);
  }

  /** Tasks waiting for a worker. */
  get queued(): number {
    return this.queue.length;
  }

  private spawn(index: number): Promise<{ slot: Slot; info: unknown }> {
    return new Promise((resolve, reject) => {
      const worker = new Worker(this.opts.script, {
        workerData: this.opts.workerData,
        name: `${this.opts.name ?? 'quarry-pool'}-${index}`,
        execArgv: this.opts.execArgv ?? [],
        ...(this.opts.resourceLimits ? { resourceLimits: this.opts.resourceLimits } : {}),
      });
      const slot: Slot = { worker, job: undefined };
      let ready = false;
      worker.on('message', (m: Reply) => {
        if (!ready) {
          if ('type' in m && m.type === 'ready') {
            ready = true;
            worker.unref();
            resolve({ slot, info: m.info });
          } else if ('type' in m && m.type === 'error') {
            ready = true;
            void worker.terminate();
            reject(errorFromWire(m.error, 'worker failed to start', this.code));
          }
          return;
        }
        if ('id' in m) this.settle(slot, m);
      });
      worker.on('error', (e: Error & { code?: string }) => {
        // `workerError` carries Node's code, e.g. ERR_WORKER_OUT_OF_MEMORY past `resourceLimits`.
        const details = e.code === undefined ? {} : { workerError: e.code };
        if (!ready) {
          ready = true;
          reject(
            new QuarryError(
              this.code,
              `worker failed to start: ${e.message}`,
              { script: String(this.opts.script), ...details },
              e,
            ),
          );
          return;
        }
        this.fail(
          slot,
          new QuarryError(this.code, `worker crashed: ${e.message}`, { ...details, workerDied: true }, e),
        );
      });
      worker.on('exit', (code) => {
        if (!ready) {
          ready = true;
          reject(new QuarryError(this.code, `worker exited during start-up (code ${code})`, { code }));
          return;
        }
        this.fail(
          slot,
          new QuarryError(this.code, `worker exited (code ${code})`, { code, workerDied: true }),
        );
      });
    });
  }

  /** A worker died: fail its task, replace it (unless closing) and keep the queue moving. */
  private fail(slot: Slot, error: Error): void {
    const i = this.slots.indexOf(slot);
    if (i < 0) return;
    this.slots.splice(i, 1);
    const job = slot.job;
    slot.job = undefined;
    if (job) this.finish(job, () => job.reject(error));
    if (this.closed) return;
    this.respawning++;
    this.spawn(i).then(
      ({ slot: fresh }) => {
        this.respawning--;
        if (this.closed) {
          void fresh.worker.terminate();
          return;
        }
        this.slots.push(fresh);
        this.dispatch();
      },
      (e) => {
        this.respawning--;
        // No worker could be started again: fail what is waiting rather than hang.
        if (this.slots.length === 0 && this.respawning === 0) {
          for (const j of this.queue.splice(0)) this.finish(j, () => j.reject(e));
        }
      },
    );
  }

  private settle(slot: Slot, m: WireResult): void {
    const job = slot.job;
    if (!job || job.id !== m.id) return;
    slot.job = undefined;
    slot.worker.unref();
    if (m.ok) this.finish(job, () => job.resolve(m.result));
    else this.finish(job, () => job.reject(errorFromWire(m.error, 'task failed', this.code)));
    this.dispatch();
  }

  private finish(job: Job, settle: () => void): void {
    if (job.onAbort) job.signal?.removeEventListener('abort', job.onAbort);
    clearTimeout(job.timer);
    settle();
  }

  private get code(): ErrorCode {
    return this.opts.failureCode ?? 'EMBEDDING_FAILED';
  }

  private dispatch(): void {
    for (const slot of this.slots) {
      if (slot.job) continue;
      const job = this.queue.shift();
      if (!job) return;
      slot.job = job;
      slot.worker.ref();
      if (job.timeoutMs !== undefined) {
        job.timer = setTimeout(() => {
          if (slot.job !== job) return;
          const error =
            job.timeoutError?.() ?? new QuarryError(this.code, `task ran past ${job.timeoutMs} ms`, {});
          this.fail(slot, error);
          void slot.worker.terminate();
        }, job.timeoutMs);
      }
      slot.worker.postMessage({ id: job.id, task: job.task }, job.transfer as ArrayBuffer[]);
    }
  }

  /** Runs one task on the next free worker. Aborting rejects at once; a running task's result is dropped. */
  run(task: TTask, opts: RunOptions = {}): Promise<TResult> {
    if (this.closed) {
      return Promise.reject(new QuarryError(this.code, 'the worker pool is closed', {}));
    }
    const { signal } = opts;
    if (signal?.aborted) return Promise.reject(signal.reason);
    return new Promise<TResult>((resolve, reject) => {
      const job: Job = {
        id: this.nextId++,
        task,
        transfer: opts.transfer ?? [],
        resolve: resolve as (v: unknown) => void,
        reject,
        signal,
        onAbort: undefined,
        timeoutMs: opts.timeoutMs,
        timeoutError: opts.timeoutError,
      };
      if (signal) {
        job.onAbort = () => {
          const q = this.queue.indexOf(job);
          if (q >= 0) this.queue.splice(q, 1);
          // A running task cannot be interrupted: its result will be dropped.
          for (const s of this.slots) {
            if (s.job === job) s.job = { ...job, resolve: () => {}, reject: () => {} };
          }
          reject(signal.reason);
        };
        signal.addEventListener('abort', job.onAbort, { once: true });
      }
      this.queue.push(job);
      this.dispatch();
    });
  }

  /** Fails queued tasks and stops every worker. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const err = new QuarryError(this.code, 'the worker pool was closed', {});
    for (const j of this.queue.splice(0)) this.finish(j, () => j.reject(err));
    const slots = this.slots.splice(0);
    for (const s of slots) {
      const j = s.job;
      s.job = undefined;
      if (j) this.finish(j, () => j.reject(err));
    }
    await Promise.all(slots.map((s) => s.worker.terminate()));
  }
}

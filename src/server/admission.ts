/**
 * Load shedding. A server past its capacity must say so at once rather than let every request slow down
 * together until all of them time out: work beyond a bound is refused with 503 `OVERLOADED` and a
 * `Retry-After`, so clients back off and the requests already admitted keep their latency.
 *
 * Two signals, each cheap to check before any work runs:
 * - **In flight, per kind of work** (`query`: search, ask, chat, MCP; `ingest`: document writes and uploads).
 *   Up to `queryInFlight` / `ingestInFlight` run at once; the next `queryQueue` / `ingestQueue` wait (first
 *   come, first served) up to `queueTimeoutMs` for a slot; the rest are refused. A stream holds its slot until it ends.
 * - **Process pressure** (event-loop delay, heap used), sampled by `@fastify/under-pressure`: while the event
 *   loop lags past `maxEventLoopDelayMs` or the heap nears its limit, new work is refused outright; health,
 *   readiness and metrics still answer, so an operator can see why.
 */
import { getHeapStatistics } from 'node:v8';
import underPressure from '@fastify/under-pressure';
import type { FastifyInstance } from 'fastify';
import { QuarryError } from '../errors.js';
import type { ServerConfig } from './config.js';
import type { ServerMetrics } from './metrics.js';

export type WorkKind = 'query' | 'ingest';

export type ShedReason = 'in_flight' | 'queue_timeout' | 'event_loop_delay' | 'heap';

interface Waiter {
  grant: () => void;
  timer: NodeJS.Timeout;
}

/** A counting gate with a bounded FIFO queue; `enter` resolves to the release function of the slot. */
class Gate {
  private running = 0;
  private readonly waiting: Waiter[] = [];

  constructor(
    readonly kind: WorkKind,
    private readonly limits: { maxInFlight: number; maxQueued: number; queueTimeoutMs: number },
    private readonly shed: (kind: WorkKind, reason: ShedReason, message: string) => QuarryError,
    private readonly observe: (kind: WorkKind, running: number, queued: number) => void,
  ) {}

  async enter(): Promise<() => void> {
    if (this.running < this.limits.maxInFlight && this.waiting.length === 0) {
      this.running++;
      this.observe(this.kind, this.running, this.waiting.length);
      return this.releaser();
    }
    if (this.waiting.length >= this.limits.maxQueued)
      throw this.shed(
        this.kind,
        'in_flight',
        `${this.running} ${this.kind} requests are running and ${this.waiting.length} waiting (limits ${this.limits.maxInFlight} and ${this.limits.maxQueued})`,
      );
    return new Promise((resolve, reject) => {
      const waiter: Waiter = {
        grant: () => {
          clearTimeout(waiter.timer);
          this.running++;
          this.observe(this.kind, this.running, this.waiting.length);
          resolve(this.releaser());
        },
        timer: setTimeout(() => {
          const i = this.waiting.indexOf(waiter);
          if (i >= 0) this.waiting.splice(i, 1);
          this.observe(this.kind, this.running, this.waiting.length);
          reject(
            this.shed(
              this.kind,
              'queue_timeout',
              `no ${this.kind} slot became free within ${this.limits.queueTimeoutMs} ms (${this.limits.maxInFlight} running)`,
            ),
          );
        }, this.limits.queueTimeoutMs),
      };
      this.waiting.push(waiter);
      this.observe(this.kind, this.running, this.waiting.length);
    });
  }

  private releaser(): () => void {
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.running--;
      const next = this.waiting.shift();
      if (next !== undefined) next.grant();
      else this.observe(this.kind, this.running, this.waiting.length);
    };
  }
}

export class Admission {
  private readonly gates: Record<WorkKind, Gate>;

  constructor(
    private readonly config: ServerConfig['admission'],
    private readonly metrics: ServerMetrics,
  ) {
    const make = (kind: WorkKind) =>
      new Gate(
        kind,
        {
          maxInFlight: kind === 'query' ? config.queryInFlight : config.ingestInFlight,
          maxQueued: kind === 'query' ? config.queryQueue : config.ingestQueue,
          queueTimeoutMs: config.queueTimeoutMs,
        },
        (k, reason, message) => this.refusal(k, reason, message),
        (k, running, queued) => {
          metrics.inFlight.set({ kind: k }, running);
          metrics.queued.set({ kind: k }, queued);
        },
      );
    this.gates = { query: make('query'), ingest: make('ingest') };
  }

  /** Waits for a slot of this kind of work (or refuses with OVERLOADED); call the result when done. */
  enter(kind: WorkKind): Promise<() => void> {
    return this.gates[kind].enter();
  }

  refusal(kind: WorkKind | 'any', reason: ShedReason, message: string): QuarryError {
    this.metrics.shed.inc({ kind, reason });
    return new QuarryError('OVERLOADED', `the server is over capacity: ${message}; retry later`, {
      reason,
      retryAfterSeconds: this.config.retryAfterSeconds,
    });
  }

  /** Process-pressure shedding for the routes that do work (`config.work` set by `defineRoute`). */
  async registerPressure(app: FastifyInstance): Promise<void> {
    const { maxEventLoopDelayMs, maxHeapFraction, sampleIntervalMs } = this.config;
    if (maxEventLoopDelayMs === 0 && maxHeapFraction === 0) return;
    await app.register(underPressure, {
      sampleInterval: sampleIntervalMs,
      maxEventLoopDelay: maxEventLoopDelayMs,
      maxHeapUsedBytes:
        maxHeapFraction === 0 ? 0 : Math.floor(getHeapStatistics().heap_size_limit * maxHeapFraction),
      pressureHandler: (request, _reply, type, value) => {
        const work = (request.routeOptions.config as { work?: WorkKind } | undefined)?.work;
        if (work === undefined) return undefined; // health, metrics, reads: always answered
        const reason: ShedReason = type === 'eventLoopDelay' ? 'event_loop_delay' : 'heap';
        const what =
          reason === 'event_loop_delay'
            ? // No sample at all in an interval (the loop blocked throughout) reads as an infinite delay.
              `event-loop delay ${Number.isFinite(Number(value)) ? `${Math.round(Number(value))} ms` : `longer than the ${sampleIntervalMs} ms sample`} over ${maxEventLoopDelayMs} ms`
            : `heap used ${Math.round(Number(value) / 2 ** 20)} MiB over ${Math.round(maxHeapFraction * 100)}% of the heap limit`;
        return Promise.reject(this.refusal(work, reason, what));
      },
    });
  }
}

/**
 * One trace per request: every stage reports its inputs, candidates with scores, token counts and timing
 * here, so "worse answers" can be pinned on retrieval, ranking or answering. The same stage boundaries
 * emit the OpenTelemetry spans and stage metrics (./telemetry.ts) when those are on; with the trace
 * disabled and telemetry off, a stage costs one branch.
 */
import type { Answer, Degradation, StageName, StageReport, TraceReport } from '../types.js';
import {
  type RequestOperation,
  type RequestTelemetry,
  type RetrievalOutcome,
  startRequestTelemetry,
} from './telemetry.js';

export class Trace {
  private readonly started = performance.now();
  private readonly stages: StageReport[] = [];
  private readonly degradations: Degradation[] = [];
  /** Spans and metrics of this request; undefined when telemetry is off. */
  private readonly telemetry: RequestTelemetry | undefined;
  /** Whether stages do anything beyond running (the trace is on, or telemetry is). */
  private readonly live: boolean;

  constructor(
    readonly query: string,
    readonly enabled: boolean,
    operation: RequestOperation = 'search',
  ) {
    this.telemetry = startRequestTelemetry(operation, query);
    this.live = enabled || this.telemetry !== undefined;
  }

  /** Run `fn` as stage `name`; `detail` is called only when tracing is on, after the stage finished. */
  stage<T>(name: StageName, fn: () => T, detail?: (result: T) => Record<string, unknown>): T {
    if (!this.live) return fn();
    const t0 = performance.now();
    const tel = this.telemetry;
    if (tel === undefined) {
      const result = fn();
      this.record(name, t0, result, detail);
      return result;
    }
    const span = tel.startStage(name, t0);
    let result: T;
    try {
      result = tel.within(span, fn);
    } catch (e) {
      tel.failStage(name, span, t0, e);
      throw e;
    }
    this.record(name, t0, result, detail, span);
    return result;
  }

  /** Async variant of `stage`. */
  async stageAsync<T>(
    name: StageName,
    fn: () => Promise<T>,
    detail?: (result: T) => Record<string, unknown>,
  ): Promise<T> {
    if (!this.live) return fn();
    const t0 = performance.now();
    const tel = this.telemetry;
    if (tel === undefined) {
      const result = await fn();
      this.record(name, t0, result, detail);
      return result;
    }
    const span = tel.startStage(name, t0);
    let result: T;
    try {
      result = await tel.within(span, fn);
    } catch (e) {
      tel.failStage(name, span, t0, e);
      throw e;
    }
    this.record(name, t0, result, detail, span);
    return result;
  }

  /** Record a stage that ran since `t0` (a stream consumed by the caller cannot be wrapped in `stage`). */
  recordSince(name: StageName, t0: number, detail: Record<string, unknown>): void {
    if (this.live) this.record(name, t0, detail, (d) => d);
  }

  private record<T>(
    name: StageName,
    t0: number,
    result: T,
    detail?: (result: T) => Record<string, unknown>,
    span?: Parameters<RequestTelemetry['endStage']>[1],
  ): void {
    const t1 = performance.now();
    const tel = this.telemetry;
    // Metrics alone need the detail of a few cheap stages only (token usage, redaction counts).
    const facts =
      detail !== undefined && (this.enabled || tel?.spans === true || METRIC_DETAIL.has(name))
        ? detail(result)
        : undefined;
    if (this.enabled)
      this.stages.push({
        stage: name,
        offsetMs: round(t0 - this.started),
        durationMs: round(t1 - t0),
        detail: facts ?? {},
      });
    tel?.endStage(name, span, t0, t1, facts, result);
  }

  /** A stage that ran in a reduced form (also on the result; kept here so the trace tells the whole story). */
  degraded(d: Degradation): void {
    if (this.enabled) this.degradations.push(d);
    this.telemetry?.degraded(d);
  }

  /** The end of a search (also the retrieval half of an ask): hit count and top-1 scores for telemetry. */
  retrieved(result: RetrievalOutcome): void {
    this.telemetry?.retrieved(result);
  }

  /** Tokens of the context the answer was written from, when no `context.assemble` stage measured it. */
  contextUsed(tokens: () => number): void {
    this.telemetry?.contextUsed(tokens());
  }

  /** The request answered (ends its span, observes its latency). */
  finish(result: RetrievalOutcome, answer?: Answer): void {
    this.telemetry?.finish(result, answer);
  }

  /** An ingest request finished. */
  finishIngest(counts: Record<string, number>, failed: number): void {
    this.telemetry?.finishIngest(counts, failed);
  }

  /** The request failed; `error` undefined when its consumer stopped reading a stream. */
  fail(error: unknown): void {
    this.telemetry?.fail(error);
  }

  report(): TraceReport {
    return {
      query: this.query,
      totalMs: round(performance.now() - this.started),
      stages: this.stages,
      ...(this.degradations.length === 0 ? {} : { degraded: [...this.degradations] }),
    };
  }
}

const METRIC_DETAIL: ReadonlySet<StageName> = new Set([
  'query.rewrite',
  'privacy.redact',
  'context.assemble',
]);

function round(ms: number): number {
  return Math.round(ms * 1000) / 1000;
}

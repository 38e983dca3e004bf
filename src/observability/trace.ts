/**
 * One trace per request: every stage reports its inputs, candidates with scores, token counts and timing
 * here, so "worse answers" can be pinned on retrieval, ranking or answering. A disabled trace costs one
 * branch per stage; OpenTelemetry spans will be emitted from the same stage boundaries later.
 */
import type { Degradation, StageName, StageReport, TraceReport } from '../types.js';

export class Trace {
  private readonly started = performance.now();
  private readonly stages: StageReport[] = [];
  private readonly degradations: Degradation[] = [];

  constructor(
    readonly query: string,
    readonly enabled: boolean,
  ) {}

  /** Run `fn` as stage `name`; `detail` is called only when tracing is on, after the stage finished. */
  stage<T>(name: StageName, fn: () => T, detail?: (result: T) => Record<string, unknown>): T {
    if (!this.enabled) return fn();
    const t0 = performance.now();
    const result = fn();
    this.record(name, t0, result, detail);
    return result;
  }

  /** Async variant of `stage`. */
  async stageAsync<T>(
    name: StageName,
    fn: () => Promise<T>,
    detail?: (result: T) => Record<string, unknown>,
  ): Promise<T> {
    if (!this.enabled) return fn();
    const t0 = performance.now();
    const result = await fn();
    this.record(name, t0, result, detail);
    return result;
  }

  /** Record a stage that ran since `t0` (a stream consumed by the caller cannot be wrapped in `stage`). */
  recordSince(name: StageName, t0: number, detail: Record<string, unknown>): void {
    if (this.enabled) this.record(name, t0, detail, (d) => d);
  }

  private record<T>(
    name: StageName,
    t0: number,
    result: T,
    detail?: (result: T) => Record<string, unknown>,
  ): void {
    const t1 = performance.now();
    this.stages.push({
      stage: name,
      offsetMs: round(t0 - this.started),
      durationMs: round(t1 - t0),
      detail: detail ? detail(result) : {},
    });
  }

  /** A stage that ran in a reduced form (also on the result; kept here so the trace tells the whole story). */
  degraded(d: Degradation): void {
    if (this.enabled) this.degradations.push(d);
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

function round(ms: number): number {
  return Math.round(ms * 1000) / 1000;
}

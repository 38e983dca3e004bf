/**
 * The contract every query-path stage shares (understand, retrieve, fuse, rerank, assemble, generate,
 * validate). A stage is a plain function `(input, deps, ctx) → output`: it reads what it needs from `deps`
 * (small interfaces, never the Quarry class), writes its trace entry through `ctx.trace`, and when it runs
 * in a reduced form (a retriever unavailable, a component that failed or ran out of time) it says so with
 * `ctx.degrade` instead of failing silently. The runner (src/pipeline/runner.ts) owns order, deadlines,
 * caching and what a degradation means for the request.
 */
import type { Trace } from './observability/trace.js';
import { UsageMeter } from './observability/usage.js';
import type { Degradation, StageName } from './types.js';

export type { Degradation } from './types.js';

/** Stages that get a share of the request's latency budget. */
export type BudgetedStage = 'retrieve' | 'rerank' | 'assemble' | 'generate' | 'validate';

/** One stage's slice of the request budget. */
export interface StageBudget {
  stage: BudgetedStage;
  /** Milliseconds this stage may use (Infinity without a deadline). */
  ms: number;
  /** Aborts when the slice runs out or the whole request is cancelled. */
  signal: AbortSignal;
  /** Call when the stage is done, to clear its timer. */
  release(): void;
}

/** Where a stage gets its budget slice (the runner's `Deadline`). */
export interface Budget {
  slice(stage: BudgetedStage): StageBudget;
}

/** What the runner hands every stage besides its input. */
export interface StageContext {
  readonly trace: Trace;
  /** Record that `stage` ran in a reduced form and why; the runner puts it on the result and the trace. */
  degrade(stage: StageName, reason: string): void;
}

/** A `StageContext` that collects degradations in order and the usage of every metered call (one per request). */
export class RequestContext implements StageContext {
  readonly degraded: Degradation[] = [];

  constructor(
    readonly trace: Trace,
    /** Tokens and cost of the request's LLM and remote embedding calls (see src/observability/usage.ts). */
    readonly usage: UsageMeter = new UsageMeter(),
  ) {}

  degrade(stage: StageName, reason: string): void {
    // The same stage failing the same way twice (multi-stage retrieval runs it per query) is one entry.
    if (this.degraded.some((d) => d.stage === stage && d.reason === reason)) return;
    this.degraded.push({ stage, reason });
    this.trace.degraded({ stage, reason });
  }
}

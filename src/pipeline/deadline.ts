/**
 * A per-request latency budget split across the answer stages. Each stage asks for its slice: its share of the
 * total, never more than what is left. A stage that runs out yields its best result so far (the fused order
 * instead of a reranked one, fewer sources, the extractive answer) and says so in the trace.
 */

import type { Budget, BudgetedStage, StageBudget } from '../stage.js';

export type { BudgetedStage, StageBudget } from '../stage.js';

/** Default shares of the total budget (they need not sum to 1: unused time rolls over to later stages). */
export const DEFAULT_STAGE_SHARES: Record<BudgetedStage, number> = {
  retrieve: 0.15,
  rerank: 0.2,
  assemble: 0.05,
  generate: 0.85,
  validate: 0.1,
};

export class Deadline implements Budget {
  private readonly start = performance.now();

  constructor(
    /** Total milliseconds for the request; undefined = no deadline. */
    readonly totalMs: number | undefined,
    private readonly shares: Record<BudgetedStage, number> = DEFAULT_STAGE_SHARES,
    private readonly parent?: AbortSignal,
  ) {}

  elapsedMs(): number {
    return performance.now() - this.start;
  }

  remainingMs(): number {
    return this.totalMs === undefined
      ? Number.POSITIVE_INFINITY
      : Math.max(0, this.totalMs - this.elapsedMs());
  }

  expired(): boolean {
    return this.remainingMs() <= 0;
  }

  /** The slice for `stage`: `share × total`, capped by what is left of the whole request. */
  slice(stage: BudgetedStage): StageBudget {
    const ms =
      this.totalMs === undefined
        ? Number.POSITIVE_INFINITY
        : Math.min(this.remainingMs(), this.shares[stage] * this.totalMs);
    const controller = new AbortController();
    const onParent = (): void => controller.abort(this.parent?.reason);
    if (this.parent?.aborted) controller.abort(this.parent.reason);
    else this.parent?.addEventListener('abort', onParent, { once: true });
    let timer: NodeJS.Timeout | undefined;
    if (Number.isFinite(ms)) {
      timer = setTimeout(
        () => controller.abort(new DeadlineExceeded(stage, ms)),
        Math.max(0, Math.floor(ms)),
      );
      timer.unref?.();
    }
    return {
      stage,
      ms,
      signal: controller.signal,
      release: () => {
        if (timer !== undefined) clearTimeout(timer);
        this.parent?.removeEventListener('abort', onParent);
      },
    };
  }
}

/** The abort reason of a stage whose slice ran out. */
export class DeadlineExceeded extends Error {
  constructor(
    readonly stage: BudgetedStage,
    readonly budgetMs: number,
  ) {
    super(`${stage} exceeded its ${Math.round(budgetMs)} ms budget`);
    this.name = 'DeadlineExceeded';
  }
}

/**
 * Per-request usage accounting: every metered call a request makes (query rewriting, LLM reranking,
 * remote query embeddings, generation and its structured-output retries, self-critique) adds its tokens
 * and cost here, so the result can say what the whole request cost and budgets can be enforced on it.
 * A model without a price makes the request's cost unknown, never a silent 0.
 */
import type { ComponentUsage, RequestUsage, UsageComponent } from '../types.js';

export type { ComponentUsage, RequestUsage, UsageComponent } from '../types.js';

/** One metered call. */
export interface UsageRecord {
  component: UsageComponent;
  model: string;
  inputTokens: number;
  outputTokens: number;
  /** USD; undefined when the model has no price. */
  costUsd?: number | undefined;
  estimated?: boolean | undefined;
}

/** Collects a request's calls; `report()` sums them by component and model. */
export class UsageMeter {
  private readonly entries = new Map<string, ComponentUsage & { priced: boolean }>();
  private count = 0;

  /** Calls recorded so far. */
  get calls(): number {
    return this.count;
  }

  add(r: UsageRecord): void {
    this.count++;
    const key = `${r.component}\u0000${r.model}`;
    let e = this.entries.get(key);
    if (e === undefined) {
      e = {
        component: r.component,
        model: r.model,
        calls: 0,
        inputTokens: 0,
        outputTokens: 0,
        priced: true,
      };
      this.entries.set(key, e);
    }
    e.calls++;
    e.inputTokens += r.inputTokens;
    e.outputTokens += r.outputTokens;
    if (r.costUsd === undefined) e.priced = false;
    else e.costUsd = (e.costUsd ?? 0) + r.costUsd;
    if (r.estimated) e.estimated = true;
  }

  report(): RequestUsage {
    let inputTokens = 0;
    let outputTokens = 0;
    let cost = 0;
    let estimated = false;
    const unpriced = new Set<string>();
    const byComponent: ComponentUsage[] = [];
    for (const { priced, ...e } of this.entries.values()) {
      inputTokens += e.inputTokens;
      outputTokens += e.outputTokens;
      if (e.estimated) estimated = true;
      if (priced) cost += e.costUsd ?? 0;
      else unpriced.add(e.model);
      // Cost of a partly unpriced entry is unknown too: keep only a fully priced sum.
      const { costUsd, ...rest } = e;
      byComponent.push(priced && costUsd !== undefined ? { ...rest, costUsd } : rest);
    }
    return {
      inputTokens,
      outputTokens,
      ...(unpriced.size === 0 ? { costUsd: cost } : { unpricedModels: [...unpriced].sort() }),
      ...(estimated ? { estimated: true } : {}),
      calls: this.count,
      byComponent,
    };
  }
}

/** What a request served from a cache used: nothing. */
export function cachedUsage(): RequestUsage {
  return { inputTokens: 0, outputTokens: 0, costUsd: 0, cached: true, calls: 0, byComponent: [] };
}

/**
 * Per-key token and cost budgets. Each request's usage (generation, query rewriting, LLM reranking, remote
 * embeddings) is added to the key's counter for the current period in the server database, shared by every
 * server process; a key over its budget gets 429 BUDGET_EXCEEDED naming the budget, before any work runs.
 */
import { QuarryError } from '../errors.js';
import type { ServerDb } from './db.js';
import type { ApiKeyRecord, Budget } from './keys.js';

export interface RequestUsage {
  inputTokens: number;
  outputTokens: number;
  costUsd?: number | null;
}

function periodOf(budget: Budget | undefined, now = new Date()): string {
  const iso = now.toISOString();
  return budget?.period === 'day' ? iso.slice(0, 10) : iso.slice(0, 7);
}

export class Budgets {
  constructor(private readonly db: ServerDb) {}

  used(key: ApiKeyRecord): { tokens: number; costUsd: number; requests: number; period: string } {
    const period = periodOf(key.budget);
    const row = this.db
      .prepare(
        'SELECT input_tokens, output_tokens, cost_usd, requests FROM key_usage WHERE key_id = ? AND period = ?',
      )
      .get(key.id, period) as
      | { input_tokens: number; output_tokens: number; cost_usd: number; requests: number }
      | undefined;
    return {
      tokens: (row?.input_tokens ?? 0) + (row?.output_tokens ?? 0),
      costUsd: row?.cost_usd ?? 0,
      requests: row?.requests ?? 0,
      period,
    };
  }

  /** Throws BUDGET_EXCEEDED when the key has used up a budget for this period. */
  check(key: ApiKeyRecord): void {
    const b = key.budget;
    if (b === undefined) return;
    const u = this.used(key);
    if (b.tokens !== undefined && u.tokens >= b.tokens)
      throw new QuarryError(
        'BUDGET_EXCEEDED',
        `key "${key.name}" used ${u.tokens} of its ${b.tokens}-token ${b.period === 'day' ? 'daily' : 'monthly'} budget (period ${u.period})`,
        { budget: 'tokens', limit: b.tokens, used: u.tokens, period: u.period },
      );
    if (b.costUsd !== undefined && u.costUsd >= b.costUsd)
      throw new QuarryError(
        'BUDGET_EXCEEDED',
        `key "${key.name}" spent $${u.costUsd.toFixed(4)} of its $${b.costUsd} ${b.period === 'day' ? 'daily' : 'monthly'} cost budget (period ${u.period})`,
        { budget: 'costUsd', limit: b.costUsd, used: u.costUsd, period: u.period },
      );
  }

  record(key: ApiKeyRecord, usage: RequestUsage): void {
    this.db
      .prepare(
        `INSERT INTO key_usage (key_id, period, input_tokens, output_tokens, cost_usd, requests) VALUES (?, ?, ?, ?, ?, 1)
         ON CONFLICT (key_id, period) DO UPDATE SET input_tokens = input_tokens + excluded.input_tokens,
           output_tokens = output_tokens + excluded.output_tokens, cost_usd = cost_usd + excluded.cost_usd,
           requests = requests + 1`,
      )
      .run(key.id, periodOf(key.budget), usage.inputTokens, usage.outputTokens, usage.costUsd ?? 0);
  }
}

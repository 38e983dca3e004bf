/**
 * A request's model usage, counted against its key's budget and exported per key and tenant.
 */
import type { FastifyRequest } from 'fastify';
import type { ServerState } from '../state.js';

export interface UsageLike {
  inputTokens: number;
  outputTokens: number;
  costUsd?: number | null;
}

export function recordUsage(s: ServerState, request: FastifyRequest, usage: UsageLike | undefined): void {
  if (usage === undefined) return;
  const key = request.apiKey;
  const labels = { key: key?.id ?? 'local', tenant: key?.tenant ?? 'default' };
  s.metrics.tokens.inc({ ...labels, direction: 'input' }, usage.inputTokens);
  s.metrics.tokens.inc({ ...labels, direction: 'output' }, usage.outputTokens);
  if (typeof usage.costUsd === 'number') s.metrics.cost.inc(labels, usage.costUsd);
  if (key !== undefined) s.budgets.record(key, usage);
}

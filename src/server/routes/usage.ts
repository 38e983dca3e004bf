/**
 * A request's model usage, counted against its key's budget (the per-key and per-tenant token and cost
 * series come from the pipeline's metrics, labelled by the route wrapper).
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
  if (key !== undefined && usage.inputTokens + usage.outputTokens > 0) s.budgets.record(key, usage);
}

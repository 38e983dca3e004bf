/**
 * Which retriever weights fusion applies, and why: the configured ones (`retrieval.fusion.weights`), or the
 * ones the query's intent suggests when `retrieval.intentWeights` is on. The trace reports the decision, so
 * a suggestion is never mistaken for what was applied.
 */
import type { IntentDecision, QueryPlan } from './understand.js';

export interface RetrieverWeights {
  bm25: number;
  dense: number;
}

export interface FusionWeightsDecision {
  /** The weights fusion uses (before any per doc_type override, which the fuse trace lists beside it). */
  applied: RetrieverWeights;
  source: 'config' | 'intent';
  /** The classified intent; null when intent classification is off. */
  intent: IntentDecision['intent'] | null;
  /** What the intent suggested; null when intent classification is off. */
  suggested: RetrieverWeights | null;
  why: string;
}

/** Whether the intent sets fusion weights and the result count for this query. */
export function intentRouting(intent: IntentDecision | null, intentWeights: boolean): boolean {
  return intentWeights && intent !== null;
}

function why(intent: IntentDecision | null, intentWeights: boolean): string {
  if (intent === null) return 'query.intent is off: the configured retrieval.fusion.weights';
  if (intentWeights) return `retrieval.intentWeights is on: the weights of intent ${intent.intent}`;
  return 'retrieval.intentWeights is off: the configured retrieval.fusion.weights';
}

export function fusionWeights(
  intent: IntentDecision | null,
  intentWeights: boolean,
  configured: RetrieverWeights,
): FusionWeightsDecision {
  const routed = intentRouting(intent, intentWeights);
  return {
    applied: routed ? { ...intent!.weights } : { ...configured },
    source: routed ? 'intent' : 'config',
    intent: intent?.intent ?? null,
    suggested: intent === null ? null : { ...intent.weights },
    why: why(intent, intentWeights),
  };
}

/**
 * The query plan as the trace shows it: the intent's weights and result count appear as `suggested`, with
 * `applied` saying whether the pipeline used them.
 */
export function queryPlanDetail(plan: QueryPlan, intentWeights: boolean): Record<string, unknown> {
  const { intent, ...rest } = plan;
  if (intent === null) return { ...rest, intent: null };
  const { weights, k, ...decision } = intent;
  return {
    ...rest,
    intent: {
      ...decision,
      suggested: { weights, k },
      applied: intentWeights,
      why: why(intent, intentWeights),
    },
  };
}

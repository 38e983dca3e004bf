/**
 * Answer-stage evaluation for `quarry eval --answers`: every judged query is answered by the configured
 * answerer; where a query carries gold answers (`metadata.answers`, e.g. SQuAD) `answer_hit@1` is the share of
 * questions whose first cited sentence contains one of them (case- and whitespace-insensitive). Per-stage
 * latencies come from each answer's trace.
 */
import { TRUSTED_LOCAL } from '../access/principal.js';
import type { Quarry } from '../pipeline/quarry.js';
import type { Answer, StageName } from '../types.js';
import type { BeirQuery } from './beir.js';
import { latencySummary } from './metrics.js';

/** Pipeline stages grouped the way the answer stage is reported. */
export const STAGE_GROUPS: Record<string, StageName[]> = {
  retrieve: [
    'query.analyze',
    'query.expand',
    'query.rewrite',
    'filter.compile',
    'retrieve.prepare',
    'retrieve.bm25',
    'retrieve.dense',
    'retrieve.exact',
    'fuse',
    'freshness',
    'hits.load',
  ],
  rerank: ['rerank'],
  assemble: ['context.assemble'],
  generate: ['answer.generate', 'answer.extractive'],
  validate: ['answer.validate', 'answer.critique'],
};

export interface AnswerEvalSummary {
  answerer: string;
  questions: number;
  /** Questions with gold answers (the denominator of answer_hit@1). */
  withGold: number;
  abstained: number;
  /** Answers produced by a fallback (e.g. the LLM was unavailable). */
  fallbacks: number;
  meanConfidence: number;
  latency_ms: { p50: number; p95: number; p99: number };
  /** p50/p95 per stage group, from the traces. */
  stages_ms: Record<string, { p50: number; p95: number }>;
}

/** Lower-cased with whitespace runs collapsed: the comparison SQuAD-style answer matching needs. */
export function normalizeAnswerText(s: string): string {
  return s.toLowerCase().replace(/\s+/g, ' ').trim();
}

/** Does the answer's first cited sentence contain one of the gold answers? Abstentions never do. */
export function firstCitationHits(answer: Pick<Answer, 'citations' | 'abstained'>, gold: string[]): boolean {
  const first = answer.citations[0];
  if (answer.abstained || first === undefined) return false;
  const quote = normalizeAnswerText(first.quote);
  return gold.some((g) => {
    const n = normalizeAnswerText(g);
    return n.length > 0 && quote.includes(n);
  });
}

export function goldAnswers(q: BeirQuery): string[] | undefined {
  const answers = q.metadata?.answers;
  if (!Array.isArray(answers)) return undefined;
  const strings = answers.filter((a): a is string => typeof a === 'string' && a.trim().length > 0);
  return strings.length > 0 ? strings : undefined;
}

export async function evaluateAnswers(
  quarry: Quarry,
  queries: BeirQuery[],
  retriever: 'bm25' | 'dense' | 'hybrid',
  onQueries?: (done: number, total: number) => void,
): Promise<{ metrics: Record<string, number>; summary: AnswerEvalSummary }> {
  let withGold = 0;
  let hits = 0;
  let abstained = 0;
  let fallbacks = 0;
  let confidence = 0;
  let answerer = 'none';
  const latencies: number[] = [];
  const stageTimes = new Map<string, number[]>(Object.keys(STAGE_GROUPS).map((g) => [g, []]));
  for (const [i, q] of queries.entries()) {
    const t0 = performance.now();
    const answer = await quarry.ask(q.text, { retriever, trace: true, principal: TRUSTED_LOCAL });
    latencies.push(performance.now() - t0);
    answerer = answer.answerer;
    if (answer.abstained) abstained++;
    if (answer.fallback !== undefined) fallbacks++;
    confidence += answer.confidence;
    const gold = goldAnswers(q);
    if (gold !== undefined) {
      withGold++;
      if (firstCitationHits(answer, gold)) hits++;
    }
    for (const [group, names] of Object.entries(STAGE_GROUPS)) {
      const ms = (answer.trace?.stages ?? [])
        .filter((s) => (names as string[]).includes(s.stage))
        .reduce((a, s) => a + s.durationMs, 0);
      stageTimes.get(group)!.push(ms);
    }
    if (i % 50 === 0) onQueries?.(i, queries.length);
  }
  const lat = latencySummary(latencies);
  const stages_ms: AnswerEvalSummary['stages_ms'] = {};
  for (const [group, times] of stageTimes) {
    const s = latencySummary(times);
    stages_ms[group] = { p50: s.p50, p95: s.p95 };
  }
  return {
    metrics: withGold > 0 ? { 'answer_hit@1': hits / withGold } : {},
    summary: {
      answerer,
      questions: queries.length,
      withGold,
      abstained,
      fallbacks,
      meanConfidence: queries.length > 0 ? confidence / queries.length : 0,
      latency_ms: { p50: lat.p50, p95: lat.p95, p99: lat.p99 },
      stages_ms,
    },
  };
}

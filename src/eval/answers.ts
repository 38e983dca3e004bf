/**
 * Answer-stage evaluation for `quarry eval --answers` and golden sets: every question is answered by the
 * configured answerer and scored against what the set expects. Per question (and, averaged, in the report's
 * `metrics`; a metric is averaged over the questions it applies to):
 *
 * - `answer_hit@1`: the first cited sentence contains a gold answer (case/whitespace-insensitive);
 *   answerable questions with gold answers; an abstention is a miss.
 * - `exact_match`, `token_f1`: the answer's prose (citation markers removed) against the gold answers with
 *   SQuAD normalisation, maximum over gold answers (answer-metrics.ts); answerable questions with gold.
 * - `citation_precision`: share of the distinct cited documents that are expected sources (answers that
 *   cite something, on questions with expected sources); `citation_recall`: share of the expected sources
 *   cited (answerable questions with expected sources; an abstention cites nothing).
 * - `faithfulness`: share of the answer's sentences supported by the chunks they cite (faithfulness.ts);
 *   answered questions.
 * - `answer_relevance`: question-term coverage × answer-type match × new content (src/validate/relevance.ts);
 *   answered questions.
 * - `abstention_rate`: share abstained; `abstention_correct`: share where abstaining was right (answered
 *   an answerable question, abstained on an unanswerable one), also split as
 *   `abstention_correct_answerable` and `abstention_correct_unanswerable`.
 * - `confidence`: the answer's confidence; `tokens_per_query`, `cost_usd_per_query` from the answer's
 *   usage (cost only when every model called has a price).
 *
 * The summary adds per-stage latency percentiles (from each answer's trace), breakdowns per tag and per
 * query intent, the faithfulness judge's agreement with the default scorer, and the worst questions.
 */
import { TRUSTED_LOCAL } from '../access/principal.js';
import type { LlmProvider } from '../generate/llm/types.js';
import type { Quarry } from '../pipeline/quarry.js';
import { classifyIntent, extractEntities } from '../query/understand.js';
import type { Answer, Citation, StageName } from '../types.js';
import { answerRelevance } from '../validate/relevance.js';
import { answerProse, citationScore, exactMatch, tokenF1 } from './answer-metrics.js';
import type { BeirQuery } from './beir.js';
import {
  FAITHFULNESS_JUDGE_PROMPT,
  faithfulnessInput,
  judgeVerdicts,
  shareSupported,
  supportVerdicts,
} from './faithfulness.js';
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

/** Answer metric names, as they appear in the report's `metrics` (see the module comment). */
export const ANSWER_METRICS = [
  'answer_hit@1',
  'exact_match',
  'token_f1',
  'citation_precision',
  'citation_recall',
  'faithfulness',
  'answer_relevance',
  'abstention_rate',
  'abstention_correct',
  'abstention_correct_answerable',
  'abstention_correct_unanswerable',
  'confidence',
  'tokens_per_query',
  'cost_usd_per_query',
] as const;

/** What a question expects of its answer. */
export interface AnswerExpectation {
  /** Gold answer strings (empty: none given). */
  answers: string[];
  /** Document ids the answer should cite (empty: none given). */
  sources: string[];
  answerable: boolean;
  tags: string[];
}

/** Per-question summary entries. */
export interface MetricGroup {
  questions: number;
  metrics: Record<string, number>;
}

export interface WorstAnswer {
  id: string;
  question: string;
  answerable: boolean;
  metrics: Record<string, number>;
  answer: string;
  expected: string[];
  expectedSources: string[];
  cited: string[];
}

export interface AnswerEvalSummary {
  answerer: string;
  questions: number;
  /** Answerable questions with gold answers (the denominator of answer_hit@1, exact_match, token_f1). */
  withGold: number;
  abstained: number;
  /** Answers produced by a fallback (e.g. the LLM was unavailable). */
  fallbacks: number;
  meanConfidence: number;
  latency_ms: { p50: number; p95: number; p99: number };
  /** p50/p95 per stage group, from the traces. */
  stages_ms: Record<string, { p50: number; p95: number }>;
  /** Abstentions split by what the set says about the question. */
  abstention?: {
    answerable: { questions: number; abstained: number };
    unanswerable: { questions: number; abstained: number };
  };
  faithfulness?: {
    /** `support`: Quarry's support scorer; `llm-judge`: the LLM judge (support scorer where it failed). */
    scorer: 'support' | 'llm-judge';
    /** Support a sentence needs to count as supported (validation.minSupport). */
    minSupport: number;
    judge?: {
      promptVersion: string;
      model: string;
      /** Answers the judge scored. */
      judged: number;
      /** Judge calls that failed (the support scorer scored those answers). */
      errors: number;
      firstError?: string;
      /** Share of sentences on which the judge and the support scorer agree. */
      agreement: number | null;
      sentences: number;
      inputTokens: number;
      outputTokens: number;
      /** The support scorer's faithfulness over the same answers, for comparison. */
      supportFaithfulness: number | null;
    };
  };
  relevance?: { scorer: string };
  usage?: { inputTokens: number; outputTokens: number; costUsd?: number; unpricedModels?: string[] };
  breakdown?: { tag: Record<string, MetricGroup>; intent: Record<string, MetricGroup> };
  /** The worst answers (lowest answer score: token F1, else abstention correctness, else relevance). */
  worst?: WorstAnswer[];
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

function stringList(v: unknown): string[] {
  return Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string' && x !== '') : [];
}

/**
 * The expectation a query carries: gold answers in `metadata.answers`, expected sources in
 * `metadata.sources` (else the relevant documents of its qrels), `metadata.answerable` (default true),
 * `metadata.tags`.
 */
export function expectationOf(q: BeirQuery, relevant?: Iterable<string>): AnswerExpectation {
  const m = q.metadata ?? {};
  const sources = stringList(m.sources);
  return {
    answers: goldAnswers(q) ?? [],
    sources: sources.length > 0 ? sources : [...(relevant ?? [])],
    answerable: m.answerable !== false,
    tags: stringList(m.tags),
  };
}

export interface AnswerEvalOptions {
  retriever: 'bm25' | 'dense' | 'hybrid';
  /** Each question's expectation (default: {@link expectationOf} without qrels). */
  expectation?: (q: BeirQuery) => AnswerExpectation;
  /** The id a citation's document has in the set's `sources` (default: its doc id). */
  docKey?: (c: Citation) => string;
  /** An LLM to judge faithfulness with (default: none, the support scorer). */
  judge?: LlmProvider;
  /** Worst answers listed in the summary (default 10). */
  worst?: number;
  onQueries?: (done: number, total: number) => void;
}

export interface AnswerEvaluation {
  metrics: Record<string, number>;
  summary: AnswerEvalSummary;
  /** Each question's answer metrics, by query id (kept with `--record`). */
  perQuery: Map<string, Record<string, number>>;
}

class Means {
  private readonly sums = new Map<string, { sum: number; n: number }>();
  add(metrics: Record<string, number>): void {
    for (const [k, v] of Object.entries(metrics)) {
      const s = this.sums.get(k) ?? { sum: 0, n: 0 };
      s.sum += v;
      s.n++;
      this.sums.set(k, s);
    }
  }
  means(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const name of ANSWER_METRICS) {
      const s = this.sums.get(name);
      if (s !== undefined && s.n > 0) out[name] = s.sum / s.n;
    }
    return out;
  }
  get count(): number {
    return this.sums.get('abstention_rate')?.n ?? 0;
  }
}

/** The score the worst list orders by. */
function answerScore(m: Record<string, number>): number {
  return m.token_f1 ?? m.abstention_correct_unanswerable ?? m.answer_relevance ?? m.abstention_correct ?? 0;
}

export async function evaluateAnswers(
  quarry: Quarry,
  queries: BeirQuery[],
  opts: AnswerEvalOptions,
): Promise<AnswerEvaluation> {
  const expectation = opts.expectation ?? ((q: BeirQuery) => expectationOf(q));
  const docKey = opts.docKey ?? ((c: Citation) => c.docId);
  const lexical = quarry.lexical;
  const deps = { analyze: (t: string) => lexical.analyzer.analyze(t), idf: (t: string) => lexical.idf(t) };
  const validation = quarry.config.validation;
  const chunkText = (ids: number[]) => quarry.store.getChunks(ids);
  let withGold = 0;
  let abstained = 0;
  let fallbacks = 0;
  let confidence = 0;
  let answerer = 'none';
  const latencies: number[] = [];
  const stageTimes = new Map<string, number[]>(Object.keys(STAGE_GROUPS).map((g) => [g, []]));
  const all = new Means();
  const byTag = new Map<string, Means>();
  const byIntent = new Map<string, Means>();
  const perQuery = new Map<string, Record<string, number>>();
  const records: WorstAnswer[] = [];
  const split = {
    answerable: { questions: 0, abstained: 0 },
    unanswerable: { questions: 0, abstained: 0 },
  };
  const usage = { inputTokens: 0, outputTokens: 0, costUsd: 0, costKnown: true, unpriced: new Set<string>() };
  const judge = {
    judged: 0,
    errors: 0,
    firstError: undefined as string | undefined,
    sentences: 0,
    agree: 0,
    inputTokens: 0,
    outputTokens: 0,
    support: [] as number[],
  };
  for (const [i, q] of queries.entries()) {
    const t0 = performance.now();
    const answer = await quarry.ask(q.text, {
      retriever: opts.retriever,
      trace: true,
      principal: TRUSTED_LOCAL,
    });
    latencies.push(performance.now() - t0);
    answerer = answer.answerer;
    const exp = expectation(q);
    const m: Record<string, number> = {};
    if (answer.abstained) abstained++;
    if (answer.fallback !== undefined) fallbacks++;
    confidence += answer.confidence;
    m.confidence = answer.confidence;
    m.abstention_rate = answer.abstained ? 1 : 0;
    const correct = answer.abstained !== exp.answerable ? 1 : 0;
    m.abstention_correct = correct;
    const group = exp.answerable ? split.answerable : split.unanswerable;
    group.questions++;
    if (answer.abstained) group.abstained++;
    if (exp.answerable) m.abstention_correct_answerable = correct;
    else m.abstention_correct_unanswerable = correct;
    if (exp.answerable && exp.answers.length > 0) {
      withGold++;
      m['answer_hit@1'] = firstCitationHits(answer, exp.answers) ? 1 : 0;
      const prose = answer.abstained ? '' : answerProse(answer.text);
      m.exact_match = answer.abstained ? 0 : exactMatch(prose, exp.answers);
      m.token_f1 = answer.abstained ? 0 : tokenF1(prose, exp.answers);
    }
    const cited = [...new Set(answer.abstained ? [] : answer.citations.map(docKey))];
    if (exp.sources.length > 0) {
      const c = citationScore(cited, exp.sources);
      if (c.precision !== undefined) m.citation_precision = c.precision;
      if (exp.answerable && c.recall !== undefined) m.citation_recall = c.recall;
    }
    if (!answer.abstained) {
      m.answer_relevance = answerRelevance(q.text, answerProse(answer.text), deps).score;
      const input = faithfulnessInput(answer, chunkText, deps);
      const support = supportVerdicts(input, deps, validation);
      let verdicts = support;
      if (opts.judge !== undefined && input.sentences.length > 0) {
        try {
          const judged = await judgeVerdicts(opts.judge, q.text, input);
          judge.judged++;
          judge.sentences += judged.verdicts.length;
          judge.agree += judged.verdicts.filter((v, k) => v === support[k]).length;
          judge.inputTokens += judged.usage?.inputTokens ?? 0;
          judge.outputTokens += judged.usage?.outputTokens ?? 0;
          const s = shareSupported(support);
          if (s !== undefined) judge.support.push(s);
          verdicts = judged.verdicts;
        } catch (e) {
          judge.errors++;
          judge.firstError ??= e instanceof Error ? e.message : String(e);
        }
      }
      const f = shareSupported(verdicts);
      m.faithfulness = f ?? 0;
    }
    const u = answer.usage;
    if (u !== undefined) {
      usage.inputTokens += u.inputTokens;
      usage.outputTokens += u.outputTokens;
      m.tokens_per_query = u.inputTokens + u.outputTokens;
      if (u.costUsd === undefined) usage.costKnown = false;
      else {
        usage.costUsd += u.costUsd;
        m.cost_usd_per_query = u.costUsd;
      }
      for (const model of u.unpricedModels ?? []) usage.unpriced.add(model);
    }
    all.add(m);
    perQuery.set(q.id, m);
    for (const tag of exp.tags) {
      if (!byTag.has(tag)) byTag.set(tag, new Means());
      byTag.get(tag)!.add(m);
    }
    const intent = classifyIntent(q.text, extractEntities(q.text)).intent;
    if (!byIntent.has(intent)) byIntent.set(intent, new Means());
    byIntent.get(intent)!.add(m);
    records.push({
      id: q.id,
      question: q.text,
      answerable: exp.answerable,
      metrics: m,
      answer: answer.abstained ? '(abstained)' : answerProse(answer.text),
      expected: exp.answers,
      expectedSources: exp.sources,
      cited,
    });
    for (const [group, names] of Object.entries(STAGE_GROUPS)) {
      const ms = (answer.trace?.stages ?? [])
        .filter((s) => (names as string[]).includes(s.stage))
        .reduce((a, s) => a + s.durationMs, 0);
      stageTimes.get(group)!.push(ms);
    }
    if (i % 50 === 0) opts.onQueries?.(i, queries.length);
  }
  const lat = latencySummary(latencies);
  const stages_ms: AnswerEvalSummary['stages_ms'] = {};
  for (const [group, times] of stageTimes) {
    const s = latencySummary(times);
    stages_ms[group] = { p50: s.p50, p95: s.p95 };
  }
  const metrics = all.means();
  // Without usage (no answer reported any) there is nothing to say about tokens or cost.
  if (!usage.costKnown) delete metrics.cost_usd_per_query;
  const groups = (map: Map<string, Means>): Record<string, MetricGroup> =>
    Object.fromEntries(
      [...map]
        .sort(([a], [b]) => a.localeCompare(b))
        .map(([k, v]) => [k, { questions: v.count, metrics: v.means() }]),
    );
  const worst = [...records]
    .sort(
      (a, b) =>
        answerScore(a.metrics) - answerScore(b.metrics) ||
        (b.metrics.confidence ?? 0) - (a.metrics.confidence ?? 0),
    )
    .slice(0, opts.worst ?? 10);
  const supportMean =
    judge.support.length === 0 ? null : judge.support.reduce((a, b) => a + b, 0) / judge.support.length;
  return {
    metrics,
    perQuery,
    summary: {
      answerer,
      questions: queries.length,
      withGold,
      abstained,
      fallbacks,
      meanConfidence: queries.length > 0 ? confidence / queries.length : 0,
      latency_ms: { p50: lat.p50, p95: lat.p95, p99: lat.p99 },
      stages_ms,
      abstention: split,
      faithfulness: {
        scorer: opts.judge === undefined ? 'support' : 'llm-judge',
        minSupport: validation.minSupport,
        ...(opts.judge === undefined
          ? {}
          : {
              judge: {
                promptVersion: FAITHFULNESS_JUDGE_PROMPT.version,
                model: opts.judge.id,
                judged: judge.judged,
                errors: judge.errors,
                ...(judge.firstError === undefined ? {} : { firstError: judge.firstError }),
                agreement: judge.sentences === 0 ? null : judge.agree / judge.sentences,
                sentences: judge.sentences,
                inputTokens: judge.inputTokens,
                outputTokens: judge.outputTokens,
                supportFaithfulness: supportMean,
              },
            }),
      },
      relevance: { scorer: 'question-term coverage × answer-type match × new content (relevance/1)' },
      usage: {
        inputTokens: usage.inputTokens,
        outputTokens: usage.outputTokens,
        ...(usage.costKnown ? { costUsd: usage.costUsd } : {}),
        ...(usage.unpriced.size > 0 ? { unpricedModels: [...usage.unpriced] } : {}),
      },
      breakdown: { tag: groups(byTag), intent: groups(byIntent) },
      worst,
    },
  };
}

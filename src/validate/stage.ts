/**
 * Stage "validate": checks an answer against the sources it cites before anyone sees it as final. LLM
 * answers: every citation must name a source of the context and its sentence must be supported by it
 * (unsupported sentences flagged or removed), confidence computed, abstention when too low; optionally a
 * self-critique pass. Extractive answers: every quoted span must be verbatim in its chunk. Trace:
 * `answer.validate`, `answer.critique`. Degrades: a self-critique call that fails keeps the validated
 * answer, with an `answer.critique` degradation.
 */
import type { ContextWindow } from '../assemble/types.js';
import type { QuarryConfig } from '../config/config.js';
import { QuarryError } from '../errors.js';
import type { ConfiguredLlmProvider } from '../generate/llm/create.js';
import type { Budget, StageContext } from '../stage.js';
import type { Answer, AnswerValidationSummary, Citation, StoredChunk } from '../types.js';
import { type AnswerValidation, validateAnswer } from './answer.js';
import { checkCitations } from './citations.js';
import { critiqueAnswer } from './critique.js';

/** An LLM's checked answer. Its tokens and cost are counted by the request's usage meter, not here. */
export type LlmAnswer = Pick<
  Answer,
  'text' | 'data' | 'citations' | 'abstained' | 'confidence' | 'answerer' | 'validation'
>;

export interface ValidateDeps {
  analyze(text: string): string[];
  idf(term: string): number;
}

/** Validate streamed prose: citations, support per sentence, confidence, abstention. */
export function validateProse(
  text: string,
  context: ContextWindow,
  streamedUnknown: Set<number>,
  config: QuarryConfig['validation'],
  deps: ValidateDeps,
  ctx: StageContext,
): Pick<LlmAnswer, 'text' | 'citations' | 'abstained' | 'confidence' | 'validation'> {
  const validation = ctx.trace.stage(
    'answer.validate',
    () => validateAnswer(text, context.sources, config, deps),
    (v) => ({
      policy: config.unsupportedPolicy,
      confidence: v.confidence,
      confidenceParts: v.confidenceParts,
      abstained: v.abstained,
      abstainReason: v.abstainReason ?? null,
      problems: v.problems,
      citations: v.citations.length,
      removedSentences: v.removedSentences,
      sentences: v.sentences.map((s) => ({
        status: s.status,
        support: Math.round(s.support * 1000) / 1000,
        cited: s.cited,
        ...(s.unknownSources.length > 0 ? { unknown: s.unknownSources } : {}),
        ...(s.mismatches.length > 0 ? { mismatches: s.mismatches } : {}),
      })),
    }),
  );
  return {
    text: validation.text,
    citations: validation.citations,
    abstained: validation.abstained,
    confidence: validation.confidence,
    validation: summarize(validation, config.unsupportedPolicy, streamedUnknown),
  };
}

/** Validate a structured answer: the citations in its string fields are checked like prose, flagged only. */
export function validateStructured(
  value: unknown,
  attempts: number,
  context: ContextWindow,
  config: QuarryConfig['validation'],
  deps: ValidateDeps,
  ctx: StageContext,
): Pick<LlmAnswer, 'citations' | 'confidence' | 'validation'> {
  const prose = stringLeaves(value).join('\n');
  const validation = ctx.trace.stage(
    'answer.validate',
    () => validateAnswer(prose, context.sources, { ...config, unsupportedPolicy: 'flag' }, deps),
    (v) => ({ structured: true, attempts, confidence: v.confidence, problems: v.problems }),
  );
  return {
    citations: validation.citations,
    confidence: validation.confidence,
    validation: summarize(validation, 'flag', new Set()),
  };
}

/**
 * The optional self-critique pass: the LLM checks its own answer against the sources. Sentences it names
 * are flagged; an answer it calls unsupported loses half its confidence (and abstains if that falls below
 * the threshold), a partially supported one a fifth. A failed critique keeps the answer as validated.
 */
export async function critique(
  question: string,
  answer: LlmAnswer,
  context: ContextWindow,
  provider: ConfiguredLlmProvider,
  config: QuarryConfig['validation'],
  budget: Budget,
  ctx: StageContext,
): Promise<LlmAnswer> {
  const slice = budget.slice('validate');
  try {
    const c = await ctx.trace.stageAsync(
      'answer.critique',
      () => critiqueAnswer(provider, question, answer.text, context.sources, { signal: slice.signal }),
      (r) => ({
        verdict: r.verdict,
        modelVerdict: r.modelVerdict,
        unsupported: r.unsupported,
        unmatched: r.unmatched,
      }),
    );
    const factor = c.verdict === 'unsupported' ? 0.5 : c.verdict === 'partially_supported' ? 0.8 : 1;
    const confidence = Math.round(answer.confidence * factor * 1000) / 1000;
    const flagged = c.unsupported.map((i) => c.sentences[i]!.text);
    const validation = { ...answer.validation!, critique: { verdict: c.verdict, unsupported: flagged } };
    if (confidence < config.minConfidence) {
      return {
        ...answer,
        text: config.abstainText,
        citations: [],
        abstained: true,
        confidence,
        validation,
      };
    }
    return { ...answer, confidence, validation };
  } catch (e) {
    const reason = e instanceof Error ? e.message : String(e);
    ctx.trace.recordSince('answer.critique', performance.now(), { error: reason });
    ctx.degrade('answer.critique', `self-critique failed (${reason}); the validated answer was kept`);
    return answer;
  } finally {
    slice.release();
  }
}

/** Extractive answers quote spans they just read: a citation that is not verbatim is a bug, never shown. */
export function checkExtractive(
  citations: Citation[],
  context: ReadonlyMap<number, StoredChunk>,
  ctx: StageContext,
): void {
  const check = ctx.trace.stage(
    'answer.validate',
    () => checkCitations(citations, context),
    (c) => ({ ...c }),
  );
  if (!check.ok)
    throw new QuarryError('INVALID_ARGUMENT', `citation check failed: ${JSON.stringify(check.problems)}`);
}

function stringLeaves(v: unknown): string[] {
  if (typeof v === 'string') return [v];
  if (Array.isArray(v)) return v.flatMap(stringLeaves);
  if (v !== null && typeof v === 'object') return Object.values(v).flatMap(stringLeaves);
  return [];
}

function summarize(
  v: AnswerValidation,
  policy: 'flag' | 'remove',
  streamedUnknown: Set<number>,
): AnswerValidationSummary {
  const checked = v.sentences.filter((s) => s.status !== 'not-checked' && s.status !== 'abstention');
  const unknown = new Set([
    ...streamedUnknown,
    ...v.problems.filter((p) => p.kind === 'unknown-source').map((p) => p.source!),
  ]);
  return {
    policy,
    sentences: checked.length,
    supported: checked.filter((s) => s.status === 'supported').length,
    unsupported: checked
      .filter((s) => s.status === 'unsupported' || s.status === 'uncited')
      .map((s) => ({
        text: s.sentence.text,
        support: Math.round(s.support * 1000) / 1000,
        markers: s.cited,
      })),
    removed: v.removedSentences,
    unknownMarkers: [...unknown].sort((a, b) => a - b),
  };
}

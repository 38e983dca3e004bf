/**
 * The LLM answer path: assemble the retrieved passages into a context that fits the model's window, build the
 * prompt, stream the generation (flagging citations of unknown sources as they arrive) and validate the
 * result (citations, support per sentence, confidence, abstention). Any failure before a usable answer is
 * raised as `LlmAnswerFailed`, and the caller falls back to the extractive answerer.
 */
import { assembleContext } from '../assemble/context.js';
import { tokenizerFor } from '../assemble/tokenizer.js';
import type { ContextWindow } from '../assemble/types.js';
import type { QuarryConfig } from '../config/config.js';
import { QuarryError } from '../errors.js';
import type { ConfiguredLlmProvider } from '../generate/llm/create.js';
import type { ChatMessage, TokenUsage } from '../generate/llm/types.js';
import { buildPrompt, DEFAULT_PROMPT_TEMPLATE, parsePromptTemplate } from '../generate/prompt.js';
import type { Trace } from '../observability/trace.js';
import type { ParentSection } from '../store/types.js';
import type { Answer, AnswerValidationSummary, SearchHit } from '../types.js';
import { type AnswerValidation, validateAnswer } from '../validate/answer.js';
import { CitationStreamParser } from '../validate/answer-citations.js';
import { critiqueAnswer } from '../validate/critique.js';
import { generateStructured, type JsonSchema } from '../validate/structured.js';
import type { Deadline, StageBudget } from './deadline.js';

/** What a streaming ask reports while it works; the last event is always `answer`. */
export type AskEvent =
  | { type: 'retrieved'; hits: SearchHit[]; strategy: string }
  | { type: 'context'; sources: number; tokens: number; available: number }
  | { type: 'delta'; text: string }
  /** A citation marker as soon as it is complete; `unknown` lists cited numbers that were not in the context. */
  | { type: 'citation'; sources: number[]; unknown: number[] }
  /** Generation failed after output started: the streamed text is void, the final answer replaces it. */
  | { type: 'reset'; reason: string }
  | { type: 'answer'; answer: Answer };

export interface LlmAnswerDeps {
  analyze(text: string): string[];
  idf(term: string): number;
  getParentSection(chunkId: number): ParentSection | undefined;
  sectionChunks(docId: string, section: number): Array<{ id: number; start: number; end: number }>;
}

export type LlmAnswer = Pick<
  Answer,
  'text' | 'data' | 'citations' | 'abstained' | 'confidence' | 'answerer' | 'usage' | 'validation'
>;

/** Generation did not produce an answer; `partial` is true when deltas were already streamed. */
export class LlmAnswerFailed extends Error {
  constructor(
    message: string,
    readonly partial: boolean,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'LlmAnswerFailed';
  }
}

export async function* answerWithLlm(
  question: string,
  hits: SearchHit[],
  provider: ConfiguredLlmProvider,
  config: QuarryConfig,
  deps: LlmAnswerDeps,
  trace: Trace,
  deadline: Deadline,
  opts: { jsonSchema?: JsonSchema } = {},
): AsyncGenerator<AskEvent, LlmAnswer> {
  const template = config.prompt === undefined ? DEFAULT_PROMPT_TEMPLATE : parsePromptTemplate(config.prompt);
  const tokenizer = tokenizerFor(provider.model);
  const llm = config.llm!;
  const today = new Date();
  const context: ContextWindow = trace.stage(
    'context.assemble',
    () =>
      assembleContext(
        question,
        hits,
        {
          ...config.context,
          // The model decides the window and the output it needs; the context section tunes the rest.
          window: provider.contextWindow,
          reservedOutput: llm.maxTokens,
          template,
          today,
        },
        {
          analyze: deps.analyze,
          idf: deps.idf,
          countTokens: (t) => tokenizer.count(t),
          countMessages: (m) => tokenizer.countMessages(m),
          getParentSection: deps.getParentSection,
          sectionChunks: deps.sectionChunks,
        },
      ),
    (c) => ({
      model: provider.model,
      tokenizer: tokenizer.exact ? tokenizer.encoding : `${tokenizer.encoding} ×${tokenizer.safetyFactor}`,
      budget: c.budget,
      tokens: c.tokens,
      ordering: c.ordering,
      compressedSentences: c.compressedSentences,
      sources: c.sources.map((s) => ({
        n: s.n,
        kind: s.kind,
        chunkIds: s.chunkIds,
        tokens: s.tokens,
        score: Math.round(s.score * 10000) / 10000,
      })),
      dropped: c.dropped,
    }),
  );
  yield {
    type: 'context',
    sources: context.sources.length,
    tokens: context.tokens,
    available: context.budget.available,
  };
  const messages = buildPrompt(template, question, context, { today });
  if (opts.jsonSchema !== undefined) {
    return yield* answerStructured(
      messages,
      opts.jsonSchema,
      context,
      provider,
      config,
      deps,
      trace,
      deadline,
    );
  }

  const slice = deadline.slice('generate');
  const parser = new CitationStreamParser({ knownSources: context.sources.map((s) => s.n) });
  let text = '';
  let usage: TokenUsage | undefined;
  let finishReason = '';
  const t0 = performance.now();
  let firstTokenMs: number | undefined;
  const unknownMarkers = new Set<number>();
  try {
    for await (const event of provider.stream({
      messages,
      maxTokens: llm.maxTokens,
      ...(llm.temperature === undefined ? {} : { temperature: llm.temperature }),
      ...(llm.stop === undefined ? {} : { stop: llm.stop }),
      signal: slice.signal,
    })) {
      if (event.type === 'delta') {
        firstTokenMs ??= performance.now() - t0;
        text += event.text;
        yield { type: 'delta', text: event.text };
        for (const e of parser.push(event.text)) {
          if (e.type !== 'marker') continue;
          for (const n of e.unknown) unknownMarkers.add(n);
          yield { type: 'citation', sources: e.marker.sources, unknown: e.unknown };
        }
      } else {
        usage = event.usage;
        finishReason = event.finishReason;
      }
    }
    for (const e of parser.end()) {
      if (e.type !== 'marker') continue;
      for (const n of e.unknown) unknownMarkers.add(n);
      yield { type: 'citation', sources: e.marker.sources, unknown: e.unknown };
    }
  } catch (e) {
    const reason = generationFailure(slice, e);
    recordGeneration(trace, provider, messages.length, text, usage, finishReason, firstTokenMs, t0, reason);
    throw new LlmAnswerFailed(reason, text.length > 0, { cause: e });
  } finally {
    slice.release();
  }
  recordGeneration(trace, provider, messages.length, text, usage, finishReason, firstTokenMs, t0);

  const validation = trace.stage(
    'answer.validate',
    () => validateAnswer(text, context.sources, config.validation, { analyze: deps.analyze, idf: deps.idf }),
    (v) => ({
      policy: config.validation.unsupportedPolicy,
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
  const summary = summarize(validation, config.validation.unsupportedPolicy, unknownMarkers);
  const answer: LlmAnswer = {
    text: validation.text,
    citations: validation.citations,
    abstained: validation.abstained,
    confidence: validation.confidence,
    answerer: provider.id,
    ...(usage === undefined ? {} : { usage }),
    validation: summary,
  };
  return config.validation.critique && !answer.abstained
    ? selfCritique(question, answer, context, provider, config, trace, deadline)
    : answer;
}

/**
 * The optional self-critique pass: the LLM checks its own answer against the sources. Sentences it names
 * are flagged; an answer it calls unsupported loses half its confidence (and abstains if that falls below
 * the threshold), a partially supported one a fifth. A failed critique keeps the answer as validated.
 */
async function selfCritique(
  question: string,
  answer: LlmAnswer,
  context: ContextWindow,
  provider: ConfiguredLlmProvider,
  config: QuarryConfig,
  trace: Trace,
  deadline: Deadline,
): Promise<LlmAnswer> {
  const slice = deadline.slice('validate');
  try {
    const critique = await trace.stageAsync(
      'answer.critique',
      () => critiqueAnswer(provider, question, answer.text, context.sources, { signal: slice.signal }),
      (c) => ({
        verdict: c.verdict,
        modelVerdict: c.modelVerdict,
        unsupported: c.unsupported,
        unmatched: c.unmatched,
      }),
    );
    const factor =
      critique.verdict === 'unsupported' ? 0.5 : critique.verdict === 'partially_supported' ? 0.8 : 1;
    const confidence = Math.round(answer.confidence * factor * 1000) / 1000;
    const flagged = critique.unsupported.map((i) => critique.sentences[i]!.text);
    const validation = {
      ...answer.validation!,
      critique: { verdict: critique.verdict, unsupported: flagged },
    };
    const usage = addUsage(answer.usage, critique.usage);
    if (confidence < config.validation.minConfidence) {
      return {
        ...answer,
        text: config.validation.abstainText,
        citations: [],
        abstained: true,
        confidence,
        validation,
        ...(usage ? { usage } : {}),
      };
    }
    return { ...answer, confidence, validation, ...(usage ? { usage } : {}) };
  } catch (e) {
    trace.recordSince('answer.critique', performance.now(), {
      error: e instanceof Error ? e.message : String(e),
    });
    return answer;
  } finally {
    slice.release();
  }
}

/**
 * Structured-output mode: the answer is a JSON value validated against the caller's JSON Schema (one retry
 * with the validation errors); the citations in its string fields are checked like prose.
 */
async function* answerStructured(
  messages: ChatMessage[],
  jsonSchema: JsonSchema,
  context: ContextWindow,
  provider: ConfiguredLlmProvider,
  config: QuarryConfig,
  deps: LlmAnswerDeps,
  trace: Trace,
  deadline: Deadline,
): AsyncGenerator<AskEvent, LlmAnswer> {
  const slice = deadline.slice('generate');
  const t0 = performance.now();
  let result: Awaited<ReturnType<typeof generateStructured>>;
  try {
    result = await generateStructured(provider, messages, jsonSchema, {
      maxTokens: config.llm!.maxTokens,
      signal: slice.signal,
    });
  } catch (e) {
    const reason = generationFailure(slice, e);
    recordGeneration(trace, provider, messages.length, '', undefined, '', undefined, t0, reason);
    // A reply that never matched the schema is the caller's contract failing, not an outage: no fallback.
    if (e instanceof QuarryError && e.code === 'LLM_OUTPUT_INVALID') throw e;
    throw new LlmAnswerFailed(reason, false, { cause: e });
  } finally {
    slice.release();
  }
  recordGeneration(
    trace,
    provider,
    messages.length,
    result.text,
    result.usage,
    'stop',
    undefined,
    t0,
    undefined,
    result.attempts,
  );
  const text = JSON.stringify(result.value, null, 2);
  yield { type: 'delta', text };
  const prose = stringLeaves(result.value).join('\n');
  const validation = trace.stage(
    'answer.validate',
    () => validateAnswer(prose, context.sources, { ...config.validation, unsupportedPolicy: 'flag' }, deps),
    (v) => ({ structured: true, attempts: result.attempts, confidence: v.confidence, problems: v.problems }),
  );
  return {
    text,
    data: result.value,
    citations: validation.citations,
    abstained: false,
    confidence: validation.confidence,
    answerer: provider.id,
    usage: result.usage,
    validation: summarize(validation, 'flag', new Set()),
  };
}

/** Why generation stopped: its budget ran out, or the provider's error. */
function generationFailure(slice: StageBudget, e: unknown): string {
  if (slice.signal.aborted) return `generation exceeded its ${Math.round(slice.ms)} ms budget`;
  return e instanceof Error ? e.message : String(e);
}

function stringLeaves(v: unknown): string[] {
  if (typeof v === 'string') return [v];
  if (Array.isArray(v)) return v.flatMap(stringLeaves);
  if (v !== null && typeof v === 'object') return Object.values(v).flatMap(stringLeaves);
  return [];
}

function addUsage(a: TokenUsage | undefined, b: TokenUsage | undefined): TokenUsage | undefined {
  if (a === undefined) return b;
  if (b === undefined) return a;
  return {
    inputTokens: a.inputTokens + b.inputTokens,
    outputTokens: a.outputTokens + b.outputTokens,
    ...(a.costUsd !== undefined && b.costUsd !== undefined ? { costUsd: a.costUsd + b.costUsd } : {}),
    ...(a.estimated || b.estimated ? { estimated: true } : {}),
  };
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

function recordGeneration(
  trace: Trace,
  provider: ConfiguredLlmProvider,
  messages: number,
  text: string,
  usage: TokenUsage | undefined,
  finishReason: string,
  firstTokenMs: number | undefined,
  t0: number,
  error?: string,
  attempts?: number,
): void {
  // Generation is streamed by the caller's loop, so it is recorded after the fact rather than wrapped.
  trace.recordSince('answer.generate', t0, {
    provider: provider.id,
    messages,
    outputChars: text.length,
    finishReason: finishReason || null,
    firstTokenMs: firstTokenMs === undefined ? null : Math.round(firstTokenMs * 1000) / 1000,
    usage: usage ?? null,
    circuit: provider.circuit(),
    ...(attempts === undefined ? {} : { attempts }),
    ...(error === undefined ? {} : { error }),
  });
}

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
import type { ConfiguredLlmProvider } from '../generate/llm/create.js';
import type { TokenUsage } from '../generate/llm/types.js';
import { buildPrompt, DEFAULT_PROMPT_TEMPLATE, parsePromptTemplate } from '../generate/prompt.js';
import type { Trace } from '../observability/trace.js';
import type { ParentSection } from '../store/types.js';
import type { Answer, AnswerValidationSummary, SearchHit } from '../types.js';
import { type AnswerValidation, validateAnswer } from '../validate/answer.js';
import { CitationStreamParser } from '../validate/answer-citations.js';
import type { Deadline } from './deadline.js';

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
  'text' | 'citations' | 'abstained' | 'confidence' | 'answerer' | 'usage' | 'validation'
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
    const reason = slice.signal.aborted
      ? `generation exceeded its ${Math.round(slice.ms)} ms budget`
      : e instanceof Error
        ? e.message
        : String(e);
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
  return {
    text: validation.text,
    citations: validation.citations,
    abstained: validation.abstained,
    confidence: validation.confidence,
    answerer: provider.id,
    ...(usage === undefined ? {} : { usage }),
    validation: summarize(validation, config.validation.unsupportedPolicy, unknownMarkers),
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
    ...(error === undefined ? {} : { error }),
  });
}

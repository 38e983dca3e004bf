/**
 * Stage "generate": writes the answer. With an LLM, streams it token by token from the assembled prompt
 * (citation markers reported as soon as they are complete, unknown sources flagged), or asks for JSON
 * valid against the caller's schema (structured output). Without one, the extractive answerer quotes the
 * best-covering sentences of the hits. Trace: `answer.generate` (provider, first-token time, usage,
 * circuit state) or `answer.extractive`. Degrades: an LLM that fails or runs out of budget raises
 * `LlmAnswerFailed`; the runner falls back to the extractive answerer and records an `answer.generate`
 * degradation.
 */
import type { QuarryConfig } from '../config/config.js';
import { QuarryError } from '../errors.js';
import type { StageBudget, StageContext } from '../stage.js';
import type { Answer, SearchHit } from '../types.js';
import { CitationStreamParser } from '../validate/answer-citations.js';
import { generateStructured as generateJson, type JsonSchema } from '../validate/structured.js';
import { answerExtractively, type ExtractiveDeps, type ExtractiveResult } from './extractive.js';
import type { ConfiguredLlmProvider } from './llm/create.js';
import type { ChatMessage, TokenUsage } from './llm/types.js';

/** What generation streams while it works. */

/** The request settings generation reads: the `llm` section, or a library-supplied LLM's defaults. */
export type LlmSettings = Pick<NonNullable<QuarryConfig['llm']>, 'maxTokens'> &
  Partial<Pick<NonNullable<QuarryConfig['llm']>, 'temperature' | 'stop'>>;

export type GenerateEvent =
  | { type: 'delta'; text: string }
  /** A citation marker as soon as it is complete; `unknown` lists cited numbers that were not in the context. */
  | { type: 'citation'; sources: number[]; unknown: number[] };

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

export interface Generated {
  text: string;
  usage?: TokenUsage | undefined;
  /** Citation markers that named no source of the context, seen while streaming. */
  unknownMarkers: Set<number>;
}

interface StreamState {
  text: string;
  usage: TokenUsage | undefined;
  finishReason: string;
  firstTokenMs: number | undefined;
  unknownMarkers: Set<number>;
}

/** Stream the LLM's answer to `messages`; throws `LlmAnswerFailed` when it fails or runs out of budget. */
export async function* generate(
  messages: ChatMessage[],
  knownSources: number[],
  provider: ConfiguredLlmProvider,
  llm: LlmSettings,
  slice: StageBudget,
  ctx: StageContext,
): AsyncGenerator<GenerateEvent, Generated> {
  const parser = new CitationStreamParser({ knownSources });
  const s: StreamState = {
    text: '',
    usage: undefined,
    finishReason: '',
    firstTokenMs: undefined,
    unknownMarkers: new Set(),
  };
  const t0 = performance.now();
  const markers = function* (events: ReturnType<CitationStreamParser['end']>): Generator<GenerateEvent> {
    for (const e of events) {
      if (e.type !== 'marker') continue;
      for (const n of e.unknown) s.unknownMarkers.add(n);
      yield { type: 'citation', sources: e.marker.sources, unknown: e.unknown };
    }
  };
  try {
    for await (const event of provider.stream({
      messages,
      maxTokens: llm.maxTokens,
      ...(llm.temperature === undefined ? {} : { temperature: llm.temperature }),
      ...(llm.stop === undefined ? {} : { stop: llm.stop }),
      signal: slice.signal,
    })) {
      if (event.type === 'delta') {
        s.firstTokenMs ??= performance.now() - t0;
        s.text += event.text;
        yield { type: 'delta', text: event.text };
        yield* markers(parser.push(event.text));
      } else {
        s.usage = event.usage;
        s.finishReason = event.finishReason;
      }
    }
    yield* markers(parser.end());
  } catch (e) {
    const reason = generationFailure(slice, e);
    recordGeneration(ctx, provider, messages.length, s, t0, reason);
    throw new LlmAnswerFailed(reason, s.text.length > 0, { cause: e });
  } finally {
    slice.release();
  }
  recordGeneration(ctx, provider, messages.length, s, t0);
  return { text: s.text, usage: s.usage, unknownMarkers: s.unknownMarkers };
}

export interface GeneratedJson {
  text: string;
  value: unknown;
  usage: TokenUsage | undefined;
  attempts: number;
}

/**
 * Structured output: a JSON value valid against `jsonSchema` (one retry with the validation errors). A
 * reply that never matches the schema is the caller's contract failing, not an outage: it is thrown as
 * `LLM_OUTPUT_INVALID`, with no fallback.
 */
export async function generateStructured(
  messages: ChatMessage[],
  jsonSchema: JsonSchema,
  provider: ConfiguredLlmProvider,
  llm: LlmSettings,
  slice: StageBudget,
  ctx: StageContext,
): Promise<GeneratedJson> {
  const t0 = performance.now();
  const empty = (): StreamState => ({
    text: '',
    usage: undefined,
    finishReason: '',
    firstTokenMs: undefined,
    unknownMarkers: new Set(),
  });
  try {
    const result = await generateJson(provider, messages, jsonSchema, {
      maxTokens: llm.maxTokens,
      signal: slice.signal,
    });
    const done = { ...empty(), text: result.text, usage: result.usage, finishReason: 'stop' };
    recordGeneration(ctx, provider, messages.length, done, t0, undefined, result.attempts);
    return {
      text: JSON.stringify(result.value, null, 2),
      value: result.value,
      usage: result.usage,
      attempts: result.attempts,
    };
  } catch (e) {
    const reason = generationFailure(slice, e);
    recordGeneration(ctx, provider, messages.length, empty(), t0, reason);
    if (e instanceof QuarryError && e.code === 'LLM_OUTPUT_INVALID') throw e;
    throw new LlmAnswerFailed(reason, false, { cause: e });
  } finally {
    slice.release();
  }
}

/** The embedded default answerer: quotes the best-covering sentences of the top hits. */
export function generateExtractive(
  question: string,
  hits: SearchHit[],
  cfg: QuarryConfig['answer'],
  deps: ExtractiveDeps,
  ctx: StageContext,
): ExtractiveResult {
  return ctx.trace.stage(
    'answer.extractive',
    () => answerExtractively(question, hits, cfg, deps),
    (r) => ({
      abstained: r.abstained,
      ...(r.abstainReason === undefined ? {} : { abstainReason: r.abstainReason }),
      support: round(r.support),
      minSupport: cfg.minSupport,
      passageCoverage: round(r.passageCoverage),
      minPassageCoverage: cfg.minPassageCoverage,
      ...(r.relevance === undefined ? {} : { relevance: r.relevance }),
      answerTokens: r.tokens,
      tokenBudget: cfg.maxTokens,
      sentences: r.considered.map((x) => ({
        chunkId: x.hit.chunk.id,
        score: round(x.score),
        coverage: round(x.coverage),
        matched: x.matched,
        text: x.text.length > 160 ? `${x.text.slice(0, 157)}...` : x.text,
      })),
    }),
  );
}

export type ExtractiveAnswer = Pick<Answer, 'text' | 'citations' | 'abstained' | 'confidence' | 'answerer'>;

/** Why generation stopped: its budget ran out, or the provider's error. */
function generationFailure(slice: StageBudget, e: unknown): string {
  if (slice.signal.aborted) return `generation exceeded its ${Math.round(slice.ms)} ms budget`;
  return e instanceof Error ? e.message : String(e);
}

function recordGeneration(
  ctx: StageContext,
  provider: ConfiguredLlmProvider,
  messages: number,
  s: StreamState,
  t0: number,
  error?: string,
  attempts?: number,
): void {
  // Generation is streamed by the caller's loop, so it is recorded after the fact rather than wrapped.
  ctx.trace.recordSince('answer.generate', t0, {
    provider: provider.id,
    messages,
    outputChars: s.text.length,
    finishReason: s.finishReason || null,
    firstTokenMs: s.firstTokenMs === undefined ? null : Math.round(s.firstTokenMs * 1000) / 1000,
    usage: s.usage ?? null,
    circuit: provider.circuit?.() ?? null,
    ...(attempts === undefined ? {} : { attempts }),
    ...(error === undefined ? {} : { error }),
  });
}

function round(x: number): number {
  return Math.round(x * 10000) / 10000;
}

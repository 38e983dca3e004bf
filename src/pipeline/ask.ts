/**
 * The answer half of the runner: search, then assemble context → generate → validate with the LLM (see
 * ./llm-answer.ts), or the extractive answerer; redaction of what leaves when privacy asks for it; the
 * response cache. An LLM that fails falls back to the extractive answerer, with an `answer.generate`
 * degradation on the answer.
 */
import { QuarryError } from '../errors.js';
import { generateExtractive } from '../generate/stage.js';
import { countTokens } from '../ingest/tokens.js';
import { redactsAt } from '../privacy/redact.js';
import { AnswerRedaction } from '../privacy/redact-answer.js';
import type { RequestContext } from '../stage.js';
import type { Answer, SearchHit } from '../types.js';
import { checkExtractive } from '../validate/stage.js';
import type { Deadline } from './deadline.js';
import type { Engine } from './engine.js';
import { type AskEvent, answerWithLlm, type LlmAnswer, LlmAnswerFailed } from './llm-answer.js';
import type { AskOptions } from './options.js';
import type { QueryRunner } from './runner.js';

type Answered = Omit<Answer, 'question' | 'hits' | 'trace' | 'degraded'>;

export class AskRunner {
  constructor(
    private readonly engine: Engine,
    private readonly search: QueryRunner,
  ) {}

  async *askStream(question: string, options: AskOptions): AsyncGenerator<AskEvent> {
    if (typeof question !== 'string' || question.trim() === '')
      throw new QuarryError('INVALID_ARGUMENT', 'question must be a non-empty string');
    this.engine.ensureFresh();
    const { ctx, deadline } = this.search.request(question, options, undefined, undefined, 'ask');
    // The request's telemetry ends with the answer; a failure, or a consumer that stops reading, ends it too.
    let error: unknown;
    try {
      yield* this.answer(question, options, ctx, deadline);
    } catch (e) {
      error = e;
      throw e;
    } finally {
      ctx.trace.fail(error);
    }
  }

  private async *answer(
    question: string,
    options: AskOptions,
    ctx: RequestContext,
    deadline: Deadline,
  ): AsyncGenerator<AskEvent> {
    const { engine } = this;
    const key = engine.cacheKey(question, options, 'ask');
    const cached =
      key === undefined
        ? undefined
        : ctx.trace.stage(
            'cache',
            () => engine.responses?.get(key),
            (a) => ({ hit: a !== undefined, indexVersion: engine.lexical.indexVersion }),
          );
    if (cached !== undefined) {
      ctx.trace.finish({ ...cached, strategy: 'cache' }, cached);
      yield { type: 'retrieved', hits: cached.hits, strategy: 'cache' };
      yield { type: 'answer', answer: { ...cached, cached: true, trace: traceOf(ctx) } };
      return;
    }
    const provider = engine.llm();
    if (options.jsonSchema !== undefined && provider === undefined)
      throw new QuarryError(
        'INVALID_ARGUMENT',
        'structured output (jsonSchema) needs an LLM: configure the llm section',
      );
    const k = Math.max(options.k ?? 10, provider === undefined ? engine.config.answer.topChunks : 0);
    const { hits, strategy, rewrite } = await this.search.search(question, { ...options, k }, ctx, deadline);
    // Redacting answers means no raw text may leave before redaction: hits are redacted before they are
    // reported, and the answer text is sent once, redacted, instead of token by token.
    const redaction =
      engine.redactor !== undefined && redactsAt(engine.config.privacy, 'answers')
        ? new AnswerRedaction(engine.redactor)
        : undefined;
    const shownHits = redaction === undefined ? hits : redaction.hits(hits);
    yield { type: 'retrieved', hits: shownHits, strategy: strategy ?? 'standard' };
    const generated = yield* this.generate(question, hits, options, ctx, deadline, redaction !== undefined);
    let answer: Answered = generated.answer ?? this.answerExtractively(question, hits, ctx);
    if (generated.fallback !== undefined) answer = { ...answer, fallback: generated.fallback };
    if (redaction !== undefined) {
      const raw = answer;
      answer = ctx.trace.stage(
        'privacy.redact',
        () => redaction.answer(raw),
        () => ({ findings: redaction.findings }),
      );
    }
    if (generated.answer === undefined || redaction !== undefined) yield { type: 'delta', text: answer.text };
    const final: Answer = {
      question,
      ...answer,
      hits: shownHits,
      ...(rewrite === undefined ? {} : { rewrite }),
      degraded: [...ctx.degraded],
      trace: undefined,
    };
    // A degraded answer (an LLM fallback…) is not cached: the LLM may be back for the next asker.
    if (key !== undefined && final.degraded.length === 0) engine.responses?.set(key, final);
    ctx.trace.finish({ hits, degraded: final.degraded, strategy }, final);
    yield { type: 'answer', answer: { ...final, trace: traceOf(ctx) } };
  }

  /** The LLM's answer, streamed (deltas withheld when answers are redacted); undefined with a fallback reason. */
  private async *generate(
    question: string,
    hits: SearchHit[],
    options: AskOptions,
    ctx: RequestContext,
    deadline: Deadline,
    redact: boolean,
  ): AsyncGenerator<AskEvent, { answer?: LlmAnswer; fallback?: Answer['fallback'] }> {
    const provider = this.engine.llm();
    if (provider === undefined) return {};
    try {
      const generation = answerWithLlm(
        question,
        hits,
        provider,
        this.engine.config,
        this.engine.llmDeps(),
        ctx,
        deadline,
        options.jsonSchema === undefined ? {} : { jsonSchema: options.jsonSchema },
      );
      for (let step = await generation.next(); ; step = await generation.next()) {
        if (step.done === true) return { answer: step.value };
        if (!(redact && step.value.type === 'delta')) yield step.value;
      }
    } catch (e) {
      if (!(e instanceof LlmAnswerFailed)) throw e;
      ctx.degrade(
        'answer.generate',
        `LLM ${provider.id} failed (${e.message}); the extractive answerer answered`,
      );
      if (e.partial && !redact) yield { type: 'reset', reason: e.message };
      return { fallback: { from: provider.id, reason: e.message } };
    }
  }

  /** The embedded default answerer: quotes the best-covering sentences, every citation checked verbatim. */
  private answerExtractively(question: string, hits: SearchHit[], ctx: RequestContext): Answered {
    const cfg = this.engine.config.answer;
    const lexical = this.engine.lexical;
    ctx.trace.contextUsed(() => hits.slice(0, cfg.topChunks).reduce((n, h) => n + h.chunk.tokenCount, 0));
    const result = generateExtractive(
      question,
      hits,
      cfg,
      { analyze: (t) => lexical.analyzer.analyze(t), idf: (t) => lexical.idf(t), countTokens },
      ctx,
    );
    checkExtractive(
      result.citations,
      new Map(hits.slice(0, cfg.topChunks).map((h) => [h.chunk.id, h.chunk])),
      ctx,
    );
    return {
      text: result.text,
      citations: result.citations,
      abstained: result.abstained,
      confidence: result.confidence,
      answerer: 'extractive',
    };
  }
}

function traceOf(ctx: RequestContext) {
  return ctx.trace.enabled ? ctx.trace.report() : undefined;
}

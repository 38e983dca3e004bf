/**
 * The answer half of the runner: search, then assemble context → generate → validate with the LLM (see
 * ./llm-answer.ts), or the extractive answerer; redaction of what leaves when privacy asks for it; the
 * response cache. An LLM that fails falls back to the extractive answerer, with an `answer.generate`
 * degradation on the answer.
 */
import type { Principal } from '../access/principal.js';
import { requestPrincipal } from '../access/visibility.js';
import { QuarryError } from '../errors.js';
import type { ConfiguredLlmProvider } from '../generate/llm/create.js';
import { generateExtractive } from '../generate/stage.js';
import { countTokens } from '../ingest/tokens.js';
import { cachedUsage } from '../observability/usage.js';
import { AnswerRedaction } from '../privacy/redact-answer.js';
import { outputRedactor } from '../privacy/redact-output.js';
import { classifyComplexity, queryComplexity } from '../query/complexity.js';
import type { RequestContext } from '../stage.js';
import type { Answer, AnswerRoute, SearchHit } from '../types.js';
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
    const cached = key === undefined ? undefined : await engine.caches.get<Answer>('responses', key, ctx);
    const redactor = outputRedactor(engine.config.privacy, engine.redactor);
    const redaction = redactor === undefined ? undefined : new AnswerRedaction(redactor);
    if (cached !== undefined) {
      // Cached answers were redacted before they were stored; only this request's trace is new.
      const served: Answer = { ...cached, cached: true, usage: cachedUsage() };
      ctx.trace.finish({ ...served, strategy: 'cache' }, served);
      yield { type: 'retrieved', hits: cached.hits, strategy: 'cache' };
      yield { type: 'answer', answer: { ...served, trace: traceOf(ctx, redaction) } };
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
    const shownHits = redaction === undefined ? hits : redaction.hits(hits);
    yield { type: 'retrieved', hits: shownHits, strategy: strategy ?? 'standard' };
    const routed = provider === undefined ? undefined : this.route(question, strategy, ctx);
    const answerLlm = routed?.provider ?? provider;
    const generated =
      answerLlm === undefined
        ? {}
        : yield* this.generate(question, hits, answerLlm, options, ctx, deadline, redaction !== undefined);
    let answer: Answered =
      generated.answer ?? this.answerExtractively(question, hits, ctx, requestPrincipal(options));
    if (generated.fallback !== undefined) answer = { ...answer, fallback: generated.fallback };
    const raw: Omit<Answer, 'hits'> = {
      question,
      ...answer,
      ...(rewrite === undefined ? {} : { rewrite }),
      ...(routed === undefined ? {} : { route: routed.route }),
      degraded: [...ctx.degraded],
      usage: ctx.usage.report(),
      trace: undefined,
    };
    // The hits were redacted once already, for the `retrieved` event; everything else is redacted here.
    const final: Answer = {
      ...(redaction === undefined
        ? raw
        : ctx.trace.stage(
            'privacy.redact',
            () => redaction.answer(raw),
            () => ({ findings: redaction.findings }),
          )),
      hits: shownHits,
    };
    if (generated.answer === undefined || redaction !== undefined) yield { type: 'delta', text: final.text };
    // A degraded answer (an LLM fallback…) is not cached: the LLM may be back for the next asker. What is
    // cached is the redacted answer, so a cache hit cannot return raw text.
    if (key !== undefined && final.degraded.length === 0) await engine.caches.set('responses', key, final);
    ctx.trace.finish({ hits, degraded: final.degraded, strategy }, final);
    yield { type: 'answer', answer: { ...final, trace: traceOf(ctx, redaction) } };
  }

  /**
   * With `routing` configured: the question's complexity features, the tier the rule picks and that tier's
   * LLM, recorded as the `answer.route` stage. Undefined without routing (the default LLM answers).
   */
  private route(
    question: string,
    strategy: string | undefined,
    ctx: RequestContext,
  ): { provider: ConfiguredLlmProvider; route: AnswerRoute } | undefined {
    const routing = this.engine.config.routing;
    if (routing === undefined) return undefined;
    return ctx.trace.stage(
      'answer.route',
      () => {
        const features = queryComplexity(question, { countTokens, strategy });
        const { tier, reason } = classifyComplexity(features, routing.rule);
        const provider = this.engine.answerLlm(tier)!;
        const route: AnswerRoute = { tier, provider: provider.id, model: provider.model, reason, features };
        return { provider, route };
      },
      (r) => ({ ...r.route, rule: routing.rule }),
    );
  }

  /** The LLM's answer, streamed (deltas withheld when answers are redacted); undefined with a fallback reason. */
  private async *generate(
    question: string,
    hits: SearchHit[],
    provider: ConfiguredLlmProvider,
    options: AskOptions,
    ctx: RequestContext,
    deadline: Deadline,
    redact: boolean,
  ): AsyncGenerator<AskEvent, { answer?: LlmAnswer; fallback?: Answer['fallback'] }> {
    try {
      const generation = answerWithLlm(
        question,
        hits,
        provider,
        this.engine.config,
        this.engine.llmDeps(requestPrincipal(options)),
        ctx,
        deadline,
        {
          ...(options.jsonSchema === undefined ? {} : { jsonSchema: options.jsonSchema }),
          usage: ctx.usage,
        },
      );
      let finished = false;
      try {
        for (let step = await generation.next(); ; step = await generation.next()) {
          if (step.done === true) {
            finished = true;
            return { answer: step.value };
          }
          if (!(redact && step.value.type === 'delta')) yield step.value;
        }
      } finally {
        // A consumer that stops reading (a client gone mid-stream) must end the LLM request too: manual
        // iteration does not close the inner generator by itself, and its cleanup aborts the upstream call.
        if (!finished) await generation.return(undefined as never);
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
  private answerExtractively(
    question: string,
    hits: SearchHit[],
    ctx: RequestContext,
    principal: Principal,
  ): Answered {
    const cfg = this.engine.config.answer;
    const lexical = this.engine.lexical;
    // Sentence weights from the caller's visible statistics: a hidden document must not tip which sentence is quoted.
    const statistics = this.engine.statistics(principal);
    ctx.trace.contextUsed(() => hits.slice(0, cfg.topChunks).reduce((n, h) => n + h.chunk.tokenCount, 0));
    const result = generateExtractive(
      question,
      hits,
      cfg,
      { analyze: (t) => lexical.analyzer.analyze(t), idf: (t) => lexical.idf(t, statistics), countTokens },
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

function traceOf(ctx: RequestContext, redaction: AnswerRedaction | undefined) {
  if (!ctx.trace.enabled) return undefined;
  const report = ctx.trace.report();
  return redaction === undefined ? report : redaction.trace(report);
}

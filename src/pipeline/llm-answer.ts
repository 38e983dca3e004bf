/**
 * The LLM answer path as the runner composes it: assemble the hits into a context that fits the model's
 * window (src/assemble/stage.ts), guard it against prompt injection (src/generate/guard.ts), build the
 * prompt, generate (src/generate/stage.ts: streamed prose or structured JSON), guard the answer's links,
 * validate (src/validate/stage.ts: citations, support, confidence, optional self-critique). A failure before a usable answer is raised as `LlmAnswerFailed`; the runner falls back
 * to the extractive answerer.
 */
import { assemble } from '../assemble/stage.js';
import { tokenizerFor } from '../assemble/tokenizer.js';
import type { ContextWindow } from '../assemble/types.js';
import type { QuarryConfig } from '../config/config.js';
import { guardAnswer, guardPassages, StreamLinkGuard } from '../generate/guard.js';
import type { ConfiguredLlmProvider } from '../generate/llm/create.js';
import { meteredLlm } from '../generate/llm/metered.js';
import type { ChatMessage } from '../generate/llm/types.js';
import { buildPrompt, DEFAULT_PROMPT_TEMPLATE, parsePromptTemplate } from '../generate/prompt.js';
import { type Generated, type GenerateEvent, generate, generateStructured } from '../generate/stage.js';
import type { UsageMeter } from '../observability/usage.js';
import type { Budget, StageContext } from '../stage.js';
import type { ParentSection } from '../store/types.js';
import type { Answer, SearchHit, Tokenizer } from '../types.js';
import { critique, type LlmAnswer, validateProse, validateStructured } from '../validate/stage.js';
import type { JsonSchema } from '../validate/structured.js';

export { LlmAnswerFailed } from '../generate/stage.js';
export type { LlmAnswer } from '../validate/stage.js';

/** What a streaming ask reports while it works; the last event is always `answer`. */
export type AskEvent =
  | { type: 'retrieved'; hits: SearchHit[]; strategy: string }
  | { type: 'context'; sources: number; tokens: number; available: number }
  | GenerateEvent
  /** Generation failed after output started: the streamed text is void, the final answer replaces it. */
  | { type: 'reset'; reason: string }
  | { type: 'answer'; answer: Answer };

export interface LlmAnswerDeps {
  analyze(text: string): string[];
  idf(term: string): number;
  getParentSection(chunkId: number): ParentSection | undefined;
  sectionChunks(docId: string, section: number): Array<{ id: number; start: number; end: number }>;
  /** Counts the context budget; default the generation model's own tokenizer (`tokenizerFor`). */
  tokenizer?: Tokenizer;
}

export async function* answerWithLlm(
  question: string,
  hits: SearchHit[],
  provider: ConfiguredLlmProvider,
  config: QuarryConfig,
  deps: LlmAnswerDeps,
  ctx: StageContext,
  budget: Budget,
  opts: { jsonSchema?: JsonSchema; usage?: UsageMeter } = {},
): AsyncGenerator<AskEvent, LlmAnswer> {
  // Every call is metered where it is made: structured-output retries under generate, the critique apart.
  const critic = opts.usage === undefined ? provider : meteredLlm(provider, opts.usage, 'critique');
  if (opts.usage !== undefined) provider = meteredLlm(provider, opts.usage, 'generate');
  const template = config.prompt === undefined ? DEFAULT_PROMPT_TEMPLATE : parsePromptTemplate(config.prompt);
  const tokenizer = deps.tokenizer ?? tokenizerFor(provider.model);
  const today = new Date();
  const assembled = assemble(question, hits, today, { ...deps, config, provider, tokenizer, template }, ctx);
  // Sources that read like instructions to the model are a guard event (and left out under `drop`).
  const { context } = guardPassages(assembled, config.guard, ctx);
  yield {
    type: 'context',
    sources: context.sources.length,
    tokens: context.tokens,
    available: context.budget.available,
  };
  const messages = buildPrompt(template, question, context, { today });
  if (opts.jsonSchema !== undefined)
    return yield* answerStructured(messages, opts.jsonSchema, context, provider, config, deps, ctx, budget);
  const generated = yield* guardedStream(
    generate(
      messages,
      context.sources.map((s) => s.n),
      provider,
      config.llm ?? { maxTokens: provider.maxTokens },
      budget.slice('generate'),
      ctx,
    ),
    config.guard.exfiltration === 'strip' ? new StreamLinkGuard(context.sources) : undefined,
  );
  // A link that would carry data to a URL no source names is removed before validation sees the text.
  const guarded = guardAnswer(generated.text, context.sources, config.guard, ctx);
  const validated = validateProse(
    guarded.text,
    context,
    generated.unknownMarkers,
    config.validation,
    deps,
    ctx,
  );
  const answer: LlmAnswer = { ...validated, answerer: provider.id };
  return config.validation.critique && !answer.abstained
    ? critique(question, answer, context, critic, config.validation, budget, ctx)
    : answer;
}

/**
 * Streamed deltas pass the link guard, so a client that renders the stream never sees an exfiltration link
 * (the final text is guarded again, with the event recorded). Without a guard the stream is unchanged.
 */
async function* guardedStream(
  generation: AsyncGenerator<GenerateEvent, Generated>,
  links: StreamLinkGuard | undefined,
): AsyncGenerator<GenerateEvent, Generated> {
  if (links === undefined) return yield* generation;
  let finished = false;
  try {
    for (let step = await generation.next(); ; step = await generation.next()) {
      if (step.done === true) {
        finished = true;
        const rest = links.end();
        if (rest !== '') yield { type: 'delta', text: rest };
        return step.value;
      }
      const event = step.value;
      if (event.type !== 'delta') yield event;
      else {
        const text = links.push(event.text);
        if (text !== '') yield { type: 'delta', text };
      }
    }
  } finally {
    // A consumer that stops reading ends the LLM request too (manual iteration does not close it).
    if (!finished) await generation.return(undefined as never);
  }
}

async function* answerStructured(
  messages: ChatMessage[],
  jsonSchema: JsonSchema,
  context: ContextWindow,
  provider: ConfiguredLlmProvider,
  config: QuarryConfig,
  deps: LlmAnswerDeps,
  ctx: StageContext,
  budget: Budget,
): AsyncGenerator<AskEvent, LlmAnswer> {
  const result = await generateStructured(
    messages,
    jsonSchema,
    provider,
    config.llm ?? { maxTokens: provider.maxTokens },
    budget.slice('generate'),
    ctx,
  );
  yield { type: 'delta', text: result.text };
  const validated = validateStructured(result.value, result.attempts, context, config.validation, deps, ctx);
  return {
    ...validated,
    text: result.text,
    data: result.value,
    abstained: false,
    answerer: provider.id,
  };
}

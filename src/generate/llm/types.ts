/**
 * The LLM provider contract used by generation, LLM reranking, query rewriting and self-critique. One
 * interface, one file per provider (OpenAI-compatible chat completions, Anthropic Messages); the pipeline
 * never sees a provider's wire format.
 */

export interface ChatMessage {
  role: 'system' | 'user' | 'assistant';
  content: string;
}

export interface GenerateRequest {
  messages: ChatMessage[];
  temperature?: number;
  /** Output token limit for this request. */
  maxTokens?: number;
  stop?: string[];
  /** Ask the provider for a JSON object (OpenAI `response_format`; Anthropic gets it by instruction). */
  json?: boolean;
  /** Cancels the request (deadline or caller abort); the provider must stop reading and reject/return. */
  signal?: AbortSignal;
}

export interface TokenUsage {
  inputTokens: number;
  outputTokens: number;
  /** From the configured price table; undefined when the model has no price. */
  costUsd?: number;
  /** True when the server reported no usage and the counts were estimated with the local tokenizer. */
  estimated?: boolean;
}

/** One streamed event. A stream ends with exactly one `done`, or throws an LlmError. */
export type LlmEvent =
  | { type: 'delta'; text: string }
  | {
      type: 'done';
      /** Provider's reason: `stop`, `length`, `end_turn`, `max_tokens`, `stop_sequence`, … */
      finishReason: string;
      model: string;
      usage: TokenUsage;
    };

export interface Completion {
  text: string;
  finishReason: string;
  model: string;
  usage: TokenUsage;
  /** Attempts made (1 = no retry). */
  attempts: number;
}

export interface LlmProvider {
  /** e.g. `openai:gpt-4o-mini`, `anthropic:claude-sonnet-4-5`. Used in traces, caches and results. */
  readonly id: string;
  readonly model: string;
  /** Streams the answer token by token. Retries happen only before the first delta was yielded. */
  stream(request: GenerateRequest): AsyncIterable<LlmEvent>;
  /** Non-streaming convenience: collects the whole completion. */
  complete(request: GenerateRequest): Promise<Completion>;
}

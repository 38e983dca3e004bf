/**
 * The OpenAI-compatible chat completions provider (`POST {baseURL}/chat/completions`): OpenAI itself and
 * the servers that copy its API — vLLM, Ollama, llama.cpp server, LM Studio. Streams SSE `data:` chunks
 * with `choices[0].delta.content`, a final usage chunk (`stream_options.include_usage`) and `data: [DONE]`.
 */
import type { EventSourceMessage } from './sse.js';
import {
  endpoint,
  type FinishInfo,
  HttpLlmProvider,
  JSON_INSTRUCTION,
  type LlmClientOptions,
  ProtocolViolation,
  type StreamDecoder,
  type StreamStep,
  tokenCount,
  type WireProtocol,
} from './transport.js';
import type { ChatMessage, GenerateRequest } from './types.js';

export const OPENAI_DEFAULT_BASE_URL = 'https://api.openai.com/v1';

/** `baseURL` includes the API version, e.g. `https://api.openai.com/v1` (default), `http://127.0.0.1:11434/v1`. */
export type OpenAIChatOptions = LlmClientOptions;

type Json = Record<string, unknown>;

const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);

/** OpenAI refuses json_object mode unless a message mentions JSON; say so in the system prompt if none does. */
function withJsonInstruction(messages: ChatMessage[]): ChatMessage[] {
  if (messages.some((m) => /json/i.test(m.content))) return messages;
  return [{ role: 'system', content: JSON_INSTRUCTION }, ...messages];
}

function usageOf(j: Json): Pick<FinishInfo, 'inputTokens' | 'outputTokens'> {
  if (!isObject(j.usage)) return {};
  const input = tokenCount(j.usage.prompt_tokens);
  const output = tokenCount(j.usage.completion_tokens);
  return {
    ...(input !== undefined ? { inputTokens: input } : {}),
    ...(output !== undefined ? { outputTokens: output } : {}),
  };
}

/** Server errors worth another attempt; `invalid_request_error` and the like will fail again. */
const retryableErrorType = (type: string | undefined): boolean =>
  type === undefined || /server_error|rate_limit|overloaded|timeout|unavailable/i.test(type);

class OpenAIStreamDecoder implements StreamDecoder {
  private finishReason: string | undefined;
  private model: string | undefined;
  private usage: Pick<FinishInfo, 'inputTokens' | 'outputTokens'> = {};

  private finish(): FinishInfo {
    return {
      finishReason: this.finishReason ?? 'unknown',
      ...(this.model !== undefined ? { model: this.model } : {}),
      ...this.usage,
    };
  }

  accept(message: EventSourceMessage): StreamStep {
    const data = message.data.trim();
    if (data === '[DONE]') return { kind: 'done', finish: this.finish() };
    let j: unknown;
    try {
      j = JSON.parse(data);
    } catch {
      throw new ProtocolViolation(`a stream event is not JSON: ${data.slice(0, 200)}`);
    }
    if (!isObject(j))
      throw new ProtocolViolation(`a stream event is not a JSON object: ${data.slice(0, 200)}`);
    if (j.error !== undefined) {
      const e = isObject(j.error) ? j.error : {};
      const type = typeof e.type === 'string' ? e.type : typeof e.code === 'string' ? e.code : undefined;
      const msg = typeof e.message === 'string' ? e.message : String(j.error);
      return {
        kind: 'error',
        message: msg,
        ...(type ? { errorType: type } : {}),
        retryable: retryableErrorType(type),
      };
    }
    if (typeof j.model === 'string' && j.model !== '') this.model = j.model;
    const usage = usageOf(j);
    if (usage.inputTokens !== undefined || usage.outputTokens !== undefined) this.usage = usage;
    if (j.choices === undefined || j.choices === null) return { kind: 'ignore' };
    if (!Array.isArray(j.choices))
      throw new ProtocolViolation('a stream chunk has "choices" that is not an array');
    const choice = j.choices[0];
    if (choice === undefined) return { kind: 'ignore' };
    if (!isObject(choice)) throw new ProtocolViolation('a stream chunk has a choice that is not an object');
    if (typeof choice.finish_reason === 'string') this.finishReason = choice.finish_reason;
    const delta = choice.delta;
    if (delta === undefined || delta === null) return { kind: 'ignore' };
    if (!isObject(delta)) throw new ProtocolViolation('a stream chunk has a delta that is not an object');
    const content = delta.content;
    if (content === undefined || content === null) return { kind: 'ignore' };
    if (typeof content !== 'string')
      throw new ProtocolViolation('a stream chunk has delta.content that is not text');
    return { kind: 'text', text: content };
  }

  /** Some servers close after the finish chunk without `[DONE]`: the answer is complete all the same. */
  end(): FinishInfo | undefined {
    return this.finishReason === undefined ? undefined : this.finish();
  }
}

export class OpenAIChatProtocol implements WireProtocol {
  readonly url: string;

  constructor(private readonly opts: OpenAIChatOptions) {
    this.url = endpoint(opts.baseURL ?? OPENAI_DEFAULT_BASE_URL, '/chat/completions');
  }

  headers(): Record<string, string> {
    const h: Record<string, string> = {
      'content-type': 'application/json',
      accept: 'application/json, text/event-stream',
      ...this.opts.headers,
    };
    if (this.opts.apiKey) h.authorization = `Bearer ${this.opts.apiKey}`;
    return h;
  }

  body(request: GenerateRequest, stream: boolean): Record<string, unknown> {
    const messages = request.json ? withJsonInstruction(request.messages) : request.messages;
    const b: Record<string, unknown> = {
      model: this.opts.model,
      messages: messages.map((m) => ({ role: m.role, content: m.content })),
    };
    if (request.temperature !== undefined) b.temperature = request.temperature;
    if (request.maxTokens !== undefined) b.max_tokens = request.maxTokens;
    if (request.stop !== undefined && request.stop.length > 0) b.stop = request.stop;
    if (request.json) b.response_format = { type: 'json_object' };
    if (stream) {
      b.stream = true;
      b.stream_options = { include_usage: true };
    }
    return b;
  }

  decoder(): StreamDecoder {
    return new OpenAIStreamDecoder();
  }

  parseResponse(json: unknown): { text: string; finish: FinishInfo } {
    if (!isObject(json) || !Array.isArray(json.choices)) {
      throw new ProtocolViolation('the response has no "choices" array');
    }
    const choice = json.choices[0];
    if (!isObject(choice) || !isObject(choice.message)) {
      throw new ProtocolViolation('the response has no choices[0].message');
    }
    const content = choice.message.content;
    if (content !== null && content !== undefined && typeof content !== 'string') {
      throw new ProtocolViolation('choices[0].message.content is not text');
    }
    return {
      text: content ?? '',
      finish: {
        finishReason: typeof choice.finish_reason === 'string' ? choice.finish_reason : 'unknown',
        ...(typeof json.model === 'string' && json.model !== '' ? { model: json.model } : {}),
        ...usageOf(json),
      },
    };
  }
}

/** A provider for an OpenAI-compatible chat completions endpoint; id `openai:<model>` unless given. */
export function createOpenAIChatProvider(opts: OpenAIChatOptions): HttpLlmProvider {
  return new HttpLlmProvider(new OpenAIChatProtocol(opts), {
    ...opts,
    id: opts.id ?? `openai:${opts.model}`,
  });
}

/**
 * The Anthropic Messages API provider (`POST {baseURL}/v1/messages`). System messages become the top-level
 * `system` prompt; the stream is typed SSE events (message_start … content_block_delta … message_stop, with
 * `ping` keep-alives and `error` events such as overloaded_error); JSON mode is an instruction.
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
import type { GenerateRequest } from './types.js';

export const ANTHROPIC_DEFAULT_BASE_URL = 'https://api.anthropic.com';
export const ANTHROPIC_VERSION = '2023-06-01';
/** The API requires `max_tokens`; used when neither the request nor the options set one. */
export const ANTHROPIC_DEFAULT_MAX_TOKENS = 1024;

/** `baseURL` is the API root without the version, e.g. `https://api.anthropic.com` (default). */
export type AnthropicOptions = LlmClientOptions;

type Json = Record<string, unknown>;

const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Prompt tokens including the prompt cache's reads and writes (all of them are prompt the model saw). */
function inputTokensOf(usage: unknown): number | undefined {
  if (!isObject(usage)) return undefined;
  const base = tokenCount(usage.input_tokens);
  if (base === undefined) return undefined;
  return (
    base +
    (tokenCount(usage.cache_creation_input_tokens) ?? 0) +
    (tokenCount(usage.cache_read_input_tokens) ?? 0)
  );
}

/** Error types worth another attempt (https://docs.anthropic.com/en/api/errors). */
const RETRYABLE_ERRORS = new Set(['overloaded_error', 'api_error', 'rate_limit_error', 'timeout_error']);

class AnthropicStreamDecoder implements StreamDecoder {
  private model: string | undefined;
  private inputTokens: number | undefined;
  private outputTokens: number | undefined;
  private stopReason: string | undefined;

  private finish(): FinishInfo {
    return {
      finishReason: this.stopReason ?? 'unknown',
      ...(this.model !== undefined ? { model: this.model } : {}),
      ...(this.inputTokens !== undefined ? { inputTokens: this.inputTokens } : {}),
      ...(this.outputTokens !== undefined ? { outputTokens: this.outputTokens } : {}),
    };
  }

  accept(message: EventSourceMessage): StreamStep {
    let j: unknown;
    try {
      j = JSON.parse(message.data);
    } catch {
      throw new ProtocolViolation(
        `a "${message.event ?? 'message'}" event is not JSON: ${message.data.slice(0, 200)}`,
      );
    }
    if (!isObject(j))
      throw new ProtocolViolation(`a "${message.event ?? 'message'}" event is not a JSON object`);
    const type = typeof j.type === 'string' ? j.type : message.event;
    switch (type) {
      case 'message_start': {
        if (!isObject(j.message)) throw new ProtocolViolation('message_start without a message');
        if (typeof j.message.model === 'string') this.model = j.message.model;
        this.inputTokens = inputTokensOf(j.message.usage) ?? this.inputTokens;
        if (isObject(j.message.usage)) this.outputTokens = tokenCount(j.message.usage.output_tokens);
        return { kind: 'ignore' };
      }
      case 'content_block_start': {
        const block = j.content_block;
        if (isObject(block) && block.type === 'text' && typeof block.text === 'string') {
          return { kind: 'text', text: block.text };
        }
        return { kind: 'ignore' };
      }
      case 'content_block_delta': {
        if (!isObject(j.delta)) throw new ProtocolViolation('content_block_delta without a delta');
        if (j.delta.type !== 'text_delta') return { kind: 'ignore' }; // thinking, tool input…
        if (typeof j.delta.text !== 'string') throw new ProtocolViolation('a text_delta without text');
        return { kind: 'text', text: j.delta.text };
      }
      case 'message_delta': {
        if (isObject(j.delta) && typeof j.delta.stop_reason === 'string')
          this.stopReason = j.delta.stop_reason;
        if (isObject(j.usage)) {
          // Cumulative counts; newer API versions repeat the input side here too.
          this.outputTokens = tokenCount(j.usage.output_tokens) ?? this.outputTokens;
          this.inputTokens = inputTokensOf(j.usage) ?? this.inputTokens;
        }
        return { kind: 'ignore' };
      }
      case 'message_stop':
        return { kind: 'done', finish: this.finish() };
      case 'error': {
        const e = isObject(j.error) ? j.error : {};
        const errorType = typeof e.type === 'string' ? e.type : undefined;
        return {
          kind: 'error',
          message: typeof e.message === 'string' ? e.message : message.data.slice(0, 200),
          ...(errorType ? { errorType } : {}),
          retryable: errorType === undefined || RETRYABLE_ERRORS.has(errorType),
        };
      }
      default:
        // ping, content_block_stop, and event types added after this was written.
        return { kind: 'ignore' };
    }
  }

  /** A stream cut after message_delta carried the stop reason lost nothing but message_stop. */
  end(): FinishInfo | undefined {
    return this.stopReason === undefined ? undefined : this.finish();
  }
}

export class AnthropicProtocol implements WireProtocol {
  readonly url: string;

  constructor(private readonly opts: AnthropicOptions) {
    this.url = endpoint(opts.baseURL ?? ANTHROPIC_DEFAULT_BASE_URL, '/v1/messages');
  }

  headers(): Record<string, string> {
    const h: Record<string, string> = {
      'content-type': 'application/json',
      accept: 'application/json, text/event-stream',
      'anthropic-version': ANTHROPIC_VERSION,
      ...this.opts.headers,
    };
    if (this.opts.apiKey) h['x-api-key'] = this.opts.apiKey;
    return h;
  }

  body(request: GenerateRequest, stream: boolean): Record<string, unknown> {
    const system = request.messages.filter((m) => m.role === 'system').map((m) => m.content);
    if (request.json) system.push(JSON_INSTRUCTION);
    const b: Record<string, unknown> = {
      model: this.opts.model,
      max_tokens: request.maxTokens ?? ANTHROPIC_DEFAULT_MAX_TOKENS,
      messages: request.messages
        .filter((m) => m.role !== 'system')
        .map((m) => ({ role: m.role, content: m.content })),
    };
    if (system.length > 0) b.system = system.join('\n\n');
    if (request.temperature !== undefined) b.temperature = request.temperature;
    if (request.stop !== undefined && request.stop.length > 0) b.stop_sequences = request.stop;
    if (stream) b.stream = true;
    return b;
  }

  decoder(): StreamDecoder {
    return new AnthropicStreamDecoder();
  }

  parseResponse(json: unknown): { text: string; finish: FinishInfo } {
    if (!isObject(json) || !Array.isArray(json.content)) {
      throw new ProtocolViolation('the response has no "content" array');
    }
    let text = '';
    for (const block of json.content) {
      if (isObject(block) && block.type === 'text') {
        if (typeof block.text !== 'string') throw new ProtocolViolation('a text content block without text');
        text += block.text;
      }
    }
    const input = inputTokensOf(json.usage);
    const output = isObject(json.usage) ? tokenCount(json.usage.output_tokens) : undefined;
    return {
      text,
      finish: {
        finishReason: typeof json.stop_reason === 'string' ? json.stop_reason : 'unknown',
        ...(typeof json.model === 'string' && json.model !== '' ? { model: json.model } : {}),
        ...(input !== undefined ? { inputTokens: input } : {}),
        ...(output !== undefined ? { outputTokens: output } : {}),
      },
    };
  }
}

/** A provider for the Anthropic Messages API; id `anthropic:<model>` unless given. */
export function createAnthropicProvider(opts: AnthropicOptions): HttpLlmProvider {
  return new HttpLlmProvider(new AnthropicProtocol(opts), {
    ...opts,
    id: opts.id ?? `anthropic:${opts.model}`,
  });
}

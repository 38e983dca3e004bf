/**
 * A fake Anthropic Messages API server (`POST /v1/messages`) on 127.0.0.1: JSON message bodies and the typed
 * SSE stream (message_start, content_block_start, ping, content_block_delta, content_block_stop,
 * message_delta, message_stop, `event: error`), with Anthropic-shaped error bodies (529 overloaded_error…).
 * Scriptable per request; see `Scripted` in fake-llm-server.ts.
 */
import { type Dialect, type FakeLlmServer, startFakeLlmServer } from './fake-llm-server.js';

export type { FakeLlmServer, RecordedRequest, Scripted } from './fake-llm-server.js';

const event = (type: string, data: Record<string, unknown>): string =>
  `event: ${type}\ndata: ${JSON.stringify({ type, ...data })}\n\n`;

const ERROR_TYPES: Record<number, string> = {
  400: 'invalid_request_error',
  401: 'authentication_error',
  403: 'permission_error',
  404: 'not_found_error',
  413: 'request_too_large',
  429: 'rate_limit_error',
  500: 'api_error',
  529: 'overloaded_error',
};

export const anthropicDialect: Dialect = {
  path: '/v1/messages',
  baseURL: (origin) => origin,
  defaultFinish: 'end_turn',
  sseOpen: (model, usage) =>
    event('message_start', {
      message: {
        id: 'msg_fake',
        type: 'message',
        role: 'assistant',
        content: [],
        model,
        stop_reason: null,
        stop_sequence: null,
        ...(usage ? { usage: { input_tokens: usage.input, output_tokens: 1 } } : {}),
      },
    }) +
    event('content_block_start', { index: 0, content_block: { type: 'text', text: '' } }) +
    event('ping', {}),
  sseDelta: (text) => event('content_block_delta', { index: 0, delta: { type: 'text_delta', text } }),
  sseClose: (finishReason, usage) =>
    event('content_block_stop', { index: 0 }) +
    event('message_delta', {
      delta: { stop_reason: finishReason, stop_sequence: null },
      ...(usage ? { usage: { output_tokens: usage.output } } : {}),
    }) +
    event('message_stop', {}),
  sseMalformed: () =>
    'event: content_block_delta\ndata: {"type":"content_block_delta","index":0,"delta":{"type":"text_de\n\n',
  sseError: (errorType, message) => event('error', { error: { type: errorType, message } }),
  json: (text, finishReason, usage, model) => ({
    id: 'msg_fake',
    type: 'message',
    role: 'assistant',
    model,
    content: [{ type: 'text', text }],
    stop_reason: finishReason,
    stop_sequence: null,
    ...(usage ? { usage: { input_tokens: usage.input, output_tokens: usage.output } } : {}),
  }),
  errorBody: (status, message, errorType) => ({
    type: 'error',
    error: { type: errorType ?? ERROR_TYPES[status] ?? 'api_error', message },
  }),
};

/** Starts the server; `url` is the base URL (the client appends `/v1/messages`). */
export function startFakeAnthropicServer(): Promise<FakeLlmServer> {
  return startFakeLlmServer(anthropicDialect);
}

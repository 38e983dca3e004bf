/**
 * A fake OpenAI-compatible chat completions server (`POST /v1/chat/completions`) on 127.0.0.1: JSON bodies,
 * SSE chunks with `choices[0].delta.content`, the finish chunk, the usage chunk only when the request asked
 * for it (`stream_options.include_usage`), `data: [DONE]`, and OpenAI-shaped error bodies. Scriptable per
 * request; see `Scripted` in fake-llm-server.ts.
 */
import { type Dialect, type FakeLlmServer, startFakeLlmServer, type Usage } from './fake-llm-server.js';

export type { FakeLlmServer, RecordedRequest, Scripted } from './fake-llm-server.js';

const created = 1_700_000_000;
const chunk = (model: string, choices: unknown[], extra: Record<string, unknown> = {}): string =>
  `data: ${JSON.stringify({ id: 'chatcmpl-fake', object: 'chat.completion.chunk', created, model, choices, ...extra })}\n\n`;

const usageOf = (u: Usage) => ({
  prompt_tokens: u.input,
  completion_tokens: u.output,
  total_tokens: u.input + u.output,
});

export const openAIChatDialect: Dialect = {
  path: '/v1/chat/completions',
  baseURL: (origin) => `${origin}/v1`,
  defaultFinish: 'stop',
  sseOpen: (model) =>
    chunk(model, [{ index: 0, delta: { role: 'assistant', content: '' }, finish_reason: null }]),
  sseDelta: (text, model) => chunk(model, [{ index: 0, delta: { content: text }, finish_reason: null }]),
  sseClose: (finishReason, usage, model, request) => {
    const opts = request.stream_options as { include_usage?: boolean } | undefined;
    let out = chunk(model, [{ index: 0, delta: {}, finish_reason: finishReason }]);
    if (usage && opts?.include_usage) out += chunk(model, [], { usage: usageOf(usage) });
    return `${out}data: [DONE]\n\n`;
  },
  sseMalformed: () => 'data: {"id":"chatcmpl-fake","choices":[{"delta":{"content":"tru\n\n',
  sseError: (errorType, message) =>
    `data: ${JSON.stringify({ error: { message, type: errorType, code: null } })}\n\n`,
  json: (text, finishReason, usage, model) => ({
    id: 'chatcmpl-fake',
    object: 'chat.completion',
    created,
    model,
    choices: [
      {
        index: 0,
        message: { role: 'assistant', content: text },
        finish_reason: finishReason,
        logprobs: null,
      },
    ],
    ...(usage ? { usage: usageOf(usage) } : {}),
  }),
  errorBody: (status, message, errorType) => ({
    error: {
      message,
      type:
        errorType ?? (status === 429 ? 'requests' : status >= 500 ? 'server_error' : 'invalid_request_error'),
      param: null,
      code: status === 401 ? 'invalid_api_key' : null,
    },
  }),
};

/** Starts the server; `url` is the base URL including `/v1`. */
export function startFakeOpenAIChatServer(): Promise<FakeLlmServer> {
  return startFakeLlmServer(openAIChatDialect);
}

/**
 * Shared setup and assertions for tests that talk to an LLM: the fake server's lifecycle, a fail-fast provider
 * for the stages that call a model (rewrite, LLM rerank, critique, structured output), and stream collectors.
 */
import { afterAll, beforeAll, beforeEach, expect } from 'vitest';
import { QuarryError } from '../../../src/errors.js';
import { createOpenAIChatProvider, type OpenAIChatOptions } from '../../../src/generate/llm/openai-chat.js';
import type { HttpLlmProvider } from '../../../src/generate/llm/transport.js';
import type { LlmEvent } from '../../../src/generate/llm/types.js';
import { failure } from '../../fixtures/rejection.js';
import type { FakeLlmServer } from './fake-llm-server.js';

export { failure };

/**
 * Starts a fake LLM server before the file's tests, resets it before each and closes it after all. The
 * returned handle forwards to that server, so it can be captured at module level before the server exists.
 */
export function useFakeLlmServer(start: () => Promise<FakeLlmServer>): FakeLlmServer {
  let live: FakeLlmServer | undefined;
  const server = (): FakeLlmServer => {
    if (!live) throw new Error('the fake LLM server is used before it started (outside a test?)');
    return live;
  };
  beforeAll(async () => {
    live = await start();
  });
  afterAll(async () => {
    await live?.close();
  });
  beforeEach(() => server().reset());
  return {
    get url() {
      return server().url;
    },
    get requests() {
      return server().requests;
    },
    get respond() {
      return server().respond;
    },
    set respond(handler) {
      server().respond = handler;
    },
    queue: (...responses) => server().queue(...responses),
    reset: () => server().reset(),
    close: () => server().close(),
  };
}

/** Retry and deadline settings that keep provider tests fast: near-zero backoff, 5 s deadlines. */
export const FAST_RETRIES = {
  initialBackoffMs: 1,
  maxBackoffMs: 5,
  readTimeoutMs: 5_000,
  connectTimeoutMs: 5_000,
} as const;

/**
 * An OpenAI chat provider on `server` that fails at once (no retries, no circuit breaker), for tests of the
 * stages that call a model and must handle its failures themselves.
 */
export function failFastProvider(server: FakeLlmServer, o: Partial<OpenAIChatOptions> = {}): HttpLlmProvider {
  return createOpenAIChatProvider({
    baseURL: server.url,
    apiKey: 'sk-test',
    model: 'gpt-4o-mini',
    maxRetries: 0,
    connectTimeoutMs: 5_000,
    readTimeoutMs: 5_000,
    circuitBreaker: false,
    ...o,
  });
}

export interface Collected {
  deltas: string[];
  done: Extract<LlmEvent, { type: 'done' }> | undefined;
  error: unknown;
  /** Every event, in order. */
  events: LlmEvent[];
}

/** Drains a stream, keeping the events that arrived before any error. */
export async function collect(stream: AsyncIterable<LlmEvent>): Promise<Collected> {
  const out: Collected = { deltas: [], done: undefined, error: undefined, events: [] };
  try {
    for await (const e of stream) {
      out.events.push(e);
      if (e.type === 'delta') out.deltas.push(e.text);
      else out.done = e;
    }
  } catch (e) {
    out.error = e;
  }
  return out;
}

export function asQuarryError(e: unknown): QuarryError {
  expect(e).toBeInstanceOf(QuarryError);
  return e as QuarryError;
}

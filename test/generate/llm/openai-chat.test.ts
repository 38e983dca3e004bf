import { describe, expect, it } from 'vitest';
import { CircuitBreaker } from '../../../src/generate/llm/circuit-breaker.js';
import { createOpenAIChatProvider, type OpenAIChatOptions } from '../../../src/generate/llm/openai-chat.js';
import { estimatePromptTokens, type LlmRetryInfo } from '../../../src/generate/llm/transport.js';
import type { ChatMessage } from '../../../src/generate/llm/types.js';
import { countTokens } from '../../../src/ingest/tokens.js';
import { startFakeOpenAIChatServer } from './fake-openai-chat-server.js';
import { asQuarryError, collect, FAST_RETRIES, failure, useFakeLlmServer } from './helpers.js';

const server = useFakeLlmServer(startFakeOpenAIChatServer);

const make = (o: Partial<OpenAIChatOptions> = {}) =>
  createOpenAIChatProvider({
    baseURL: server.url,
    apiKey: 'sk-test',
    model: 'gpt-4o-mini',
    ...FAST_RETRIES,
    ...o,
  });

const messages: ChatMessage[] = [
  { role: 'system', content: 'You answer from the sources.' },
  { role: 'user', content: 'What is the default chunk size?' },
];

describe('OpenAI chat: wire format and streaming', () => {
  it('streams deltas in order, then one done with the server usage and its cost', async () => {
    server.queue({ kind: 'reply', deltas: ['The ', 'default is ', '256 tokens.'], finishReason: 'stop' });
    const p = make();
    expect(p.id).toBe('openai:gpt-4o-mini');
    const r = await collect(p.stream({ messages }));
    expect(r.error).toBeUndefined();
    expect(r.events.map((e) => e.type)).toEqual(['delta', 'delta', 'delta', 'done']);
    expect(r.deltas).toEqual(['The ', 'default is ', '256 tokens.']);
    expect(r.done).toEqual({
      type: 'done',
      finishReason: 'stop',
      model: 'gpt-4o-mini',
      usage: { inputTokens: 12, outputTokens: 3, costUsd: (12 * 0.15 + 3 * 0.6) / 1e6 },
    });
    const req = server.requests[0]!;
    expect(req.url).toBe('/v1/chat/completions');
    expect(req.headers.authorization).toBe('Bearer sk-test');
    expect(req.body).toEqual({
      model: 'gpt-4o-mini',
      messages,
      stream: true,
      stream_options: { include_usage: true },
    });
  });

  it('sends temperature, max_tokens and stop: configured defaults, overridden per request', async () => {
    const p = make({ temperature: 0.2, maxTokens: 300, stop: ['\n\nSources:'] });
    await p.complete({ messages });
    await p.complete({ messages, temperature: 0, maxTokens: 5, stop: ['END', '###'] });
    expect(server.requests[0]!.body).toMatchObject({
      temperature: 0.2,
      max_tokens: 300,
      stop: ['\n\nSources:'],
    });
    expect(server.requests[1]!.body).toMatchObject({ temperature: 0, max_tokens: 5, stop: ['END', '###'] });
    expect(server.requests[1]!.body.response_format).toBeUndefined();
  });

  it('asks for a JSON object in JSON mode, adding the word JSON to the prompt only when it is missing', async () => {
    server.queue({ kind: 'reply', deltas: ['{"a":', '1}'] }, { kind: 'reply', deltas: ['{}'] });
    const c = await make().complete({ messages, json: true });
    expect(JSON.parse(c.text)).toEqual({ a: 1 });
    const first = server.requests[0]!.body;
    expect(first.response_format).toEqual({ type: 'json_object' });
    const sent = first.messages as ChatMessage[];
    expect(sent).toHaveLength(3);
    expect(sent[0]!.role).toBe('system');
    expect(sent[0]!.content).toMatch(/JSON/);
    const withJson: ChatMessage[] = [{ role: 'user', content: 'Reply as json: {"ok": true}' }];
    await make().complete({ messages: withJson, json: true });
    expect(server.requests[1]!.body.messages).toEqual(withJson);
  });

  it('complete() collects the stream and reports the attempts', async () => {
    server.queue(
      { kind: 'status', status: 500 },
      { kind: 'reply', deltas: ['a', 'b'], finishReason: 'length' },
    );
    const c = await make().complete({ messages });
    expect(c).toMatchObject({ text: 'ab', finishReason: 'length', model: 'gpt-4o-mini', attempts: 2 });
  });

  it('speaks non-streaming JSON when streaming is off', async () => {
    server.queue({ kind: 'reply', deltas: ['Whole ', 'answer.'], model: 'gpt-4o-mini-2024-07-18' });
    const p = make({ stream: false });
    const r = await collect(p.stream({ messages }));
    expect(r.deltas).toEqual(['Whole answer.']);
    expect(r.done?.model).toBe('gpt-4o-mini-2024-07-18');
    // The dated model name is priced by its listed prefix.
    expect(r.done?.usage).toEqual({ inputTokens: 12, outputTokens: 2, costUsd: (12 * 0.15 + 2 * 0.6) / 1e6 });
    expect(server.requests[0]!.body.stream).toBeUndefined();
    expect(server.requests[0]!.body.stream_options).toBeUndefined();
  });

  it('accepts a JSON body from a server that ignores stream: true', async () => {
    server.queue({ kind: 'reply', deltas: ['plain'], format: 'json' });
    const c = await make().complete({ messages });
    expect(c.text).toBe('plain');
  });

  it('estimates usage with the tokenizer when the server reports none, and marks it', async () => {
    server.queue({ kind: 'reply', deltas: ['Paris is ', 'the capital.'], usage: null });
    const c = await make({ model: 'local-llama' }).complete({ messages });
    expect(c.usage).toEqual({
      inputTokens: estimatePromptTokens(messages),
      outputTokens: countTokens('Paris is the capital.'),
      estimated: true,
    });
    expect(c.usage.costUsd).toBeUndefined(); // no price for an unknown model
  });

  it('prices a model from configured prices', async () => {
    server.queue({ kind: 'reply', deltas: ['x'], usage: { input: 1_000_000, output: 500_000 } });
    const c = await make({ model: 'my-model', prices: { 'my-model': { input: 1, output: 2 } } }).complete({
      messages,
    });
    expect(c.usage.costUsd).toBeCloseTo(2, 10);
  });
});

describe('OpenAI chat: retries, timeouts and failures', () => {
  it('retries a 429 after the server-requested Retry-After', async () => {
    server.queue(
      { kind: 'status', status: 429, message: 'Rate limit reached', headers: { 'retry-after': '1' } },
      { kind: 'reply', deltas: ['ok'] },
    );
    const retries: LlmRetryInfo[] = [];
    const t0 = performance.now();
    const c = await make({ onRetry: (i) => retries.push(i) }).complete({ messages });
    expect(performance.now() - t0).toBeGreaterThanOrEqual(950);
    expect(c.attempts).toBe(2);
    expect(server.requests).toHaveLength(2);
    expect(retries).toHaveLength(1);
    expect(retries[0]).toMatchObject({ retry: 1, delayMs: 1000, status: 429 });
    expect(retries[0]!.reason).toContain('Rate limit reached');
  });

  it('prefers retry-after-ms and retries 5xx until success', async () => {
    server.queue(
      { kind: 'status', status: 503, headers: { 'retry-after-ms': '40', 'retry-after': '30' } },
      { kind: 'status', status: 500 },
      { kind: 'reply', deltas: ['fine'] },
    );
    const retries: LlmRetryInfo[] = [];
    const c = await make({ onRetry: (i) => retries.push(i) }).complete({ messages });
    expect(c.text).toBe('fine');
    expect(server.requests).toHaveLength(3);
    expect(retries.map((r) => r.status)).toEqual([503, 500]);
    expect(retries[0]!.delayMs).toBe(40);
  });

  it('fails at once when the server asks to wait longer than maxRetryAfterMs', async () => {
    server.queue({ kind: 'status', status: 429, headers: { 'retry-after': '120' } });
    const err = await failure(make({ maxRetryAfterMs: 2_000 }).complete({ messages }));
    expect(err.code).toBe('LLM_FAILED');
    expect(err.details).toMatchObject({ status: 429, retryAfterMs: 120_000, maxRetryAfterMs: 2_000 });
    expect(server.requests).toHaveLength(1);
  });

  it('gives up after maxRetries and says how many attempts were made', async () => {
    server.queue(...Array.from({ length: 3 }, () => ({ kind: 'status', status: 502 }) as const));
    const err = await failure(make({ maxRetries: 2 }).complete({ messages }));
    expect(err.code).toBe('LLM_FAILED');
    expect(err.exitCode).toBe(9);
    expect(err.details).toMatchObject({ status: 502, attempts: 3 });
    expect(server.requests).toHaveLength(3);
  });

  it('never retries a 401 and names the status and the server message', async () => {
    server.queue({ kind: 'status', status: 401, message: 'Incorrect API key provided: sk-test.' });
    const err = await failure(make().complete({ messages }));
    expect(err.code).toBe('LLM_FAILED');
    expect(err.message).toContain('HTTP 401');
    expect(err.message).toContain('Incorrect API key provided');
    expect(server.requests).toHaveLength(1);
  });

  it('never retries a 400', async () => {
    server.queue({ kind: 'status', status: 400, message: "'temperature' must be at most 2" });
    const err = await failure(make().complete({ messages, temperature: 3 }));
    expect(err.message).toContain("HTTP 400 Bad Request: 'temperature' must be at most 2");
    expect(server.requests).toHaveLength(1);
  });

  it('does not retry once a delta was yielded: a mid-stream disconnect throws with the partial text', async () => {
    server.queue(
      { kind: 'disconnect', after: ['The answer ', 'is'] },
      { kind: 'reply', deltas: ['never sent'] },
    );
    const r = await collect(make().stream({ messages }));
    expect(r.deltas).toEqual(['The answer ', 'is']);
    const err = asQuarryError(r.error);
    expect(err.code).toBe('LLM_FAILED');
    expect(err.details).toMatchObject({ partialText: 'The answer is', afterOutput: true, attempts: 1 });
    expect(server.requests).toHaveLength(1);
  });

  it('retries a disconnect that happened before any output', async () => {
    server.queue(
      { kind: 'disconnect', after: [] },
      { kind: 'reset' },
      { kind: 'reply', deltas: ['second ', 'try'] },
    );
    const c = await make().complete({ messages });
    expect(c.text).toBe('second try');
    expect(c.attempts).toBe(3);
  });

  it('rejects a malformed event after output with LLM_PROTOCOL and the partial text', async () => {
    server.queue({ kind: 'malformed', after: ['Partial '] });
    const r = await collect(make().stream({ messages }));
    expect(r.deltas).toEqual(['Partial ']);
    const err = asQuarryError(r.error);
    expect(err.code).toBe('LLM_PROTOCOL');
    expect(err.message).toContain('not JSON');
    expect(err.details.partialText).toBe('Partial ');
    expect(server.requests).toHaveLength(1);
  });

  it('does not retry a malformed stream even before output (a protocol mismatch repeats)', async () => {
    server.queue({ kind: 'malformed', after: [] });
    const err = await failure(make().complete({ messages }));
    expect(err.code).toBe('LLM_PROTOCOL');
    expect(server.requests).toHaveLength(1);
  });

  it('reports an in-stream error event; retries it only before output', async () => {
    server.queue(
      { kind: 'error-event', after: [], errorType: 'server_error', message: 'The model is overloaded' },
      { kind: 'reply', deltas: ['ok'] },
    );
    expect((await make().complete({ messages })).text).toBe('ok');
    server.reset();
    server.queue({ kind: 'error-event', after: ['half'], errorType: 'server_error', message: 'boom' });
    const r = await collect(make().stream({ messages }));
    const err = asQuarryError(r.error);
    expect(err.message).toContain('(server_error): boom');
    expect(err.details.partialText).toBe('half');
    expect(server.requests).toHaveLength(1);
  });

  it('times out a stalled stream after output (read timeout) without retrying', async () => {
    server.queue({ kind: 'stall', after: ['Some'], ms: 10_000 });
    const t0 = performance.now();
    const r = await collect(make({ readTimeoutMs: 200 }).stream({ messages }));
    expect(performance.now() - t0).toBeLessThan(5_000);
    expect(r.deltas).toEqual(['Some']);
    const err = asQuarryError(r.error);
    expect(err.code).toBe('LLM_TIMEOUT');
    expect(err.details).toMatchObject({ timeout: 'read', timeoutMs: 200, partialText: 'Some' });
    expect(server.requests).toHaveLength(1);
    await waitFor(() => server.requests[0]!.clientClosed);
  });

  it('retries a stream that stalls before any output', async () => {
    server.queue({ kind: 'stall', ms: 10_000 }, { kind: 'reply', deltas: ['recovered'] });
    const c = await make({ readTimeoutMs: 200 }).complete({ messages });
    expect(c.text).toBe('recovered');
    expect(server.requests).toHaveLength(2);
  });

  it('times out waiting for response headers (connect timeout)', async () => {
    server.queue({ kind: 'stall', beforeHeaders: true, ms: 10_000 }, { kind: 'stall', beforeHeaders: true });
    const err = await failure(make({ connectTimeoutMs: 200, maxRetries: 1 }).complete({ messages }));
    expect(err.code).toBe('LLM_TIMEOUT');
    expect(err.details).toMatchObject({ timeout: 'connect', timeoutMs: 200, attempts: 2 });
    expect(server.requests).toHaveLength(2);
  });

  it('reports an unreachable server as a network error after retrying', async () => {
    const err = await failure(
      make({ baseURL: 'http://127.0.0.1:1/v1', maxRetries: 1 }).complete({ messages }),
    );
    expect(err.code).toBe('LLM_FAILED');
    expect(err.message).toContain('network error');
    expect(err.details.attempts).toBe(2);
  });
});

describe('OpenAI chat: cancellation and the circuit breaker', () => {
  it('stops reading and closes the connection when the caller aborts mid-stream', async () => {
    server.queue({ kind: 'reply', deltas: ['a', 'b', 'c', 'd', 'e', 'f'], gapMs: 150 });
    const ctl = new AbortController();
    const seen: string[] = [];
    const stream = make().stream({ messages, signal: ctl.signal });
    const err = await (async () => {
      try {
        for await (const e of stream) {
          if (e.type === 'delta') {
            seen.push(e.text);
            if (seen.length === 2) ctl.abort(new Error('caller gave up'));
          }
        }
      } catch (e) {
        return e as Error;
      }
      return undefined;
    })();
    expect(err?.message).toBe('caller gave up');
    expect(seen).toEqual(['a', 'b']);
    await waitFor(() => server.requests[0]!.clientClosed);
  });

  it('aborts during a retry backoff without another request', async () => {
    server.queue({ kind: 'status', status: 503, headers: { 'retry-after': '20' } });
    const ctl = new AbortController();
    const p = make({ maxRetryAfterMs: 60_000 }).complete({ messages, signal: ctl.signal });
    setTimeout(() => ctl.abort(new Error('deadline')), 100);
    await expect(p).rejects.toThrow('deadline');
    expect(server.requests).toHaveLength(1);
  });

  it('rejects at once when the signal is already aborted', async () => {
    const err = await make()
      .complete({ messages, signal: AbortSignal.abort(new Error('too late')) })
      .catch((e: Error) => e);
    expect((err as Error).message).toBe('too late');
    expect(server.requests).toHaveLength(0);
  });

  it('opens after consecutive failed calls, rejects without a request, then closes on a good probe', async () => {
    let now = 0;
    const breaker = new CircuitBreaker({
      name: 'openai:test',
      failureThreshold: 2,
      cooldownMs: 1_000,
      now: () => now,
    });
    const p = make({ maxRetries: 0, circuitBreaker: breaker });
    server.queue({ kind: 'status', status: 500 }, { kind: 'status', status: 503 });
    await failure(p.complete({ messages }));
    expect(p.circuit()).toMatchObject({ state: 'closed', consecutiveFailures: 1 });
    await failure(p.complete({ messages }));
    expect(p.circuit()).toMatchObject({ state: 'open', consecutiveFailures: 2, retryInMs: 1_000 });

    const rejected = await failure(p.complete({ messages }));
    expect(rejected.code).toBe('LLM_UNAVAILABLE');
    expect(rejected.message).toContain('circuit open');
    expect(server.requests).toHaveLength(2);

    now = 1_000;
    expect(p.circuit().state).toBe('half-open');
    server.queue({ kind: 'reply', deltas: ['back'] });
    expect((await p.complete({ messages })).text).toBe('back');
    expect(p.circuit()).toMatchObject({ state: 'closed', consecutiveFailures: 0, rejected: 1 });
  });

  it('a failed half-open probe re-opens the circuit; client errors do not count as failures', async () => {
    let now = 0;
    const breaker = new CircuitBreaker({
      name: 'openai:test',
      failureThreshold: 1,
      cooldownMs: 500,
      now: () => now,
    });
    const p = make({ maxRetries: 0, circuitBreaker: breaker });
    server.queue({ kind: 'status', status: 401 }, { kind: 'status', status: 400 });
    await failure(p.complete({ messages }));
    await failure(p.complete({ messages }));
    expect(p.circuit().state).toBe('closed');

    server.queue({ kind: 'status', status: 500 });
    await failure(p.complete({ messages }));
    expect(p.circuit().state).toBe('open');
    now = 500;
    server.queue({ kind: 'disconnect', after: [] });
    await failure(p.complete({ messages }));
    expect(p.circuit()).toMatchObject({ state: 'open', retryInMs: 500 });
    expect(server.requests).toHaveLength(4);
  });

  it('a consumer that stops early releases the connection and the half-open probe slot', async () => {
    let now = 0;
    const breaker = new CircuitBreaker({
      name: 'openai:test',
      failureThreshold: 1,
      cooldownMs: 10,
      now: () => now,
    });
    const p = make({ maxRetries: 0, circuitBreaker: breaker });
    server.queue({ kind: 'status', status: 500 });
    await failure(p.complete({ messages }));
    now = 10;
    server.queue({ kind: 'reply', deltas: ['one', 'two', 'three'], gapMs: 100 });
    for await (const e of p.stream({ messages })) {
      expect(e).toEqual({ type: 'delta', text: 'one' });
      break;
    }
    expect(p.circuit()).toMatchObject({ state: 'half-open', probeInFlight: false });
    await waitFor(() => server.requests[1]!.clientClosed);
  });
});

async function waitFor(cond: () => boolean, ms = 3_000): Promise<void> {
  const t0 = Date.now();
  while (!cond()) {
    if (Date.now() - t0 > ms) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 10));
  }
}

import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { CircuitBreaker } from '../../../src/generate/llm/circuit-breaker.js';
import { contextWindowFor, createLlmProvider, LlmConfigSchema } from '../../../src/generate/llm/create.js';
import { costUsd, DEFAULT_PRICES, priceFor, priceTable } from '../../../src/generate/llm/pricing.js';
import { startFakeAnthropicServer } from './fake-anthropic-server.js';
import type { FakeLlmServer } from './fake-llm-server.js';
import { startFakeOpenAIChatServer } from './fake-openai-chat-server.js';

let openai: FakeLlmServer;
let anthropic: FakeLlmServer;
beforeAll(async () => {
  [openai, anthropic] = await Promise.all([startFakeOpenAIChatServer(), startFakeAnthropicServer()]);
});
afterAll(async () => {
  await Promise.all([openai.close(), anthropic.close()]);
});
beforeEach(() => {
  openai.reset();
  anthropic.reset();
});

const messages = [{ role: 'user' as const, content: 'hello' }];

describe('createLlmProvider', () => {
  it('fills defaults and builds an OpenAI-compatible provider that reads its key from the named variable', async () => {
    const p = createLlmProvider(
      { baseURL: openai.url, model: 'gpt-4o', apiKeyEnv: 'MY_LLM_KEY', temperature: 0 },
      { MY_LLM_KEY: 'sk-from-env' },
    );
    expect(p.id).toBe('openai:gpt-4o');
    expect(p.contextWindow).toBe(128_000);
    expect(p.maxTokens).toBe(1024);
    expect(p.circuit().state).toBe('closed');
    await p.complete({ messages });
    expect(openai.requests[0]!.headers.authorization).toBe('Bearer sk-from-env');
    expect(openai.requests[0]!.body).toMatchObject({ temperature: 0, max_tokens: 1024 });
  });

  it('builds the Anthropic provider with its default key variable', async () => {
    const p = createLlmProvider(
      { provider: 'anthropic', baseURL: anthropic.url, model: 'claude-haiku-4-5', maxTokens: 256 },
      { ANTHROPIC_API_KEY: 'sk-ant' },
    );
    expect(p.id).toBe('anthropic:claude-haiku-4-5');
    expect(p.contextWindow).toBe(200_000);
    const c = await p.complete({ messages });
    expect(c.text).toBe('ok');
    expect(anthropic.requests[0]!.headers['x-api-key']).toBe('sk-ant');
    expect(anthropic.requests[0]!.body.max_tokens).toBe(256);
  });

  it('sends no key to a local server when the default variable is unset', async () => {
    const p = createLlmProvider({ baseURL: openai.url, model: 'qwen2.5:7b' }, {});
    await p.complete({ messages });
    expect(openai.requests[0]!.headers.authorization).toBeUndefined();
    expect(p.contextWindow).toBe(32_768);
  });

  it('refuses a named key variable that is not set, and a key pasted where the name belongs', () => {
    expect(() => createLlmProvider({ model: 'gpt-4o', apiKeyEnv: 'MISSING_KEY' }, {})).toThrow(
      /MISSING_KEY, which is not set/,
    );
    const e = (() => {
      try {
        createLlmProvider({ model: 'gpt-4o', apiKeyEnv: 'sk-proj-abc123/+=' }, {});
      } catch (x) {
        return x as { code: string; message: string; details: { path: string } };
      }
      throw new Error('expected a throw');
    })();
    expect(e.code).toBe('INVALID_CONFIG');
    expect(e.details.path).toBe('llm.apiKeyEnv');
    expect(e.message).not.toContain('abc123');
  });

  it('validates the config at the boundary', () => {
    expect(() => createLlmProvider({ model: '' })).toThrow(/llm\.model/);
    expect(() => createLlmProvider({ model: 'm', baseURL: 'ftp://x' })).toThrow(/llm\.baseURL/);
    expect(() => createLlmProvider({ model: 'm', maxRetries: -1 })).toThrow(/llm\.maxRetries/);
    expect(() => createLlmProvider({ model: 'm', provider: 'cohere' as 'openai' })).toThrow(/llm\.provider/);
    const c = LlmConfigSchema.parse({ model: 'm', circuitBreaker: { cooldownMs: 5 } });
    expect(c.circuitBreaker).toEqual({ failureThreshold: 5, cooldownMs: 5 });
    expect(LlmConfigSchema.parse({ model: 'm' }).circuitBreaker).toEqual({
      failureThreshold: 5,
      cooldownMs: 30_000,
    });
  });

  it('takes the configured context window and prices over the defaults', async () => {
    const p = createLlmProvider(
      {
        baseURL: openai.url,
        model: 'gpt-4o',
        contextWindow: 4096,
        prices: { 'gpt-4o': { input: 10, output: 10 } },
      },
      {},
    );
    expect(p.contextWindow).toBe(4096);
    openai.queue({ kind: 'reply', deltas: ['x'], usage: { input: 100_000, output: 0 } });
    expect((await p.complete({ messages })).usage.costUsd).toBeCloseTo(1, 10);
  });
});

describe('context windows and prices', () => {
  it('matches dated and tagged model names by prefix and falls back to 8192', () => {
    expect(contextWindowFor('gpt-4o-mini-2024-07-18')).toBe(128_000);
    expect(contextWindowFor('claude-opus-4-1-20250805')).toBe(200_000);
    expect(contextWindowFor('llama3.1:8b')).toBe(131_072);
    expect(contextWindowFor('mistral-7b-instruct')).toBe(8192);
    expect(contextWindowFor('gpt-4o', 1000)).toBe(1000);
  });

  it('prices by exact name, else by the longest prefix', () => {
    expect(priceFor('gpt-4o', DEFAULT_PRICES)).toEqual({ input: 2.5, output: 10 });
    expect(priceFor('gpt-4o-mini-2024-07-18', DEFAULT_PRICES)).toEqual({ input: 0.15, output: 0.6 });
    expect(priceFor('claude-opus-4-5-20251101', DEFAULT_PRICES)).toEqual({ input: 5, output: 25 });
    expect(priceFor('claude-opus-4-20250514', DEFAULT_PRICES)).toEqual({ input: 15, output: 75 });
    expect(priceFor('gpt-4oo', DEFAULT_PRICES)).toBeUndefined();
    expect(costUsd(['unknown', 'gpt-4o'], 1_000_000, 1_000_000, priceTable())).toBe(12.5);
    expect(costUsd(['unknown'], 1, 1, priceTable())).toBeUndefined();
  });
});

describe('CircuitBreaker', () => {
  it('walks closed → open → half-open → closed, admitting one probe at a time', () => {
    let now = 0;
    const changes: string[] = [];
    const b = new CircuitBreaker({
      name: 'llm',
      failureThreshold: 3,
      cooldownMs: 100,
      now: () => now,
      onStateChange: (from, to) => changes.push(`${from}>${to}`),
    });
    b.acquire()('failure');
    b.acquire()('failure');
    b.acquire()('success'); // a success resets the count
    for (let i = 0; i < 3; i++) b.acquire()('failure');
    expect(b.snapshot()).toMatchObject({ state: 'open', consecutiveFailures: 3, retryInMs: 100 });
    now = 60;
    expect(() => b.acquire()).toThrow(
      /circuit open after 3 consecutive failed call\(s\); next attempt allowed in 40 ms/,
    );
    now = 100;
    const probe = b.acquire();
    expect(b.snapshot()).toMatchObject({ state: 'half-open', probeInFlight: true });
    expect(() => b.acquire()).toThrow(/a probe call is running/);
    probe('success');
    probe('failure'); // ignored: settled once
    expect(b.snapshot()).toMatchObject({ state: 'closed', consecutiveFailures: 0, rejected: 2 });
    expect(changes).toEqual(['closed>open', 'open>half-open', 'half-open>closed']);
  });

  it('a neutral probe leaves the circuit half-open for the next one', () => {
    let now = 0;
    const b = new CircuitBreaker({ name: 'llm', failureThreshold: 1, cooldownMs: 10, now: () => now });
    b.acquire()('failure');
    now = 10;
    b.acquire()('neutral');
    expect(b.state).toBe('half-open');
    b.acquire()('failure');
    expect(b.state).toBe('open');
  });

  it('validates its options', () => {
    expect(() => new CircuitBreaker({ name: 'x', failureThreshold: 0, cooldownMs: 1 })).toThrow(
      /failureThreshold/,
    );
    expect(() => new CircuitBreaker({ name: 'x', failureThreshold: 1, cooldownMs: -1 })).toThrow(
      /cooldownMs/,
    );
  });
});

/**
 * Per-key budgets end to end: a key's asks are answered by an LLM (a fake OpenAI-compatible server on
 * loopback that reports its token usage); once the key has spent its token budget, its next request is a
 * 429 BUDGET_EXCEEDED naming the budget, other keys go on, and /metrics shows the tokens per key and tenant.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type FakeLlmServer, startFakeOpenAIChatServer } from '../generate/llm/fake-openai-chat-server.js';
import { HANDBOOK, startTestServer, type TestServer } from './harness.js';

let llm: FakeLlmServer;
let t: TestServer;

beforeAll(async () => {
  llm = await startFakeOpenAIChatServer();
  llm.respond = () => ({
    kind: 'reply',
    deltas: ['The ferry leaves Kennacraig at 07:00 [1].'],
    usage: { input: 700, output: 20 },
  });
  t = await startTestServer({
    docs: HANDBOOK.filter((d) => d.access === undefined),
    pipeline: {
      llm: {
        provider: 'openai',
        baseURL: llm.url,
        model: 'gpt-4o-mini',
        maxRetries: 0,
        prices: { 'gpt-4o-mini': { input: 0.15, output: 0.6 } },
      },
    },
    keys: [
      { name: 'small', scopes: ['query'], budget: { tokens: 1000, period: 'day' } },
      { name: 'other', scopes: ['query'] },
      { name: 'ops', scopes: ['admin'] },
    ],
  });
});
afterAll(async () => {
  await t?.close();
  await llm?.close();
});

const ask = (key: string | undefined, question: string) =>
  t.call('POST', '/v1/ask', { key, body: { question, cache: false } });

describe('token budgets per key', () => {
  it('answers until the budget is spent, then 429 BUDGET_EXCEEDED naming it; other keys are unaffected', async () => {
    const first = await ask(t.keys.small, 'When does the ferry to Islay leave Kennacraig?');
    expect(first.status).toBe(200);
    expect(first.body.usage.inputTokens).toBe(700);
    expect(first.body.usage.costUsd).toBeCloseTo((700 * 0.15 + 20 * 0.6) / 1e6, 12);
    const second = await ask(t.keys.small, 'What do ferry tickets to Islay cost?');
    expect(second.status).toBe(200); // 720 used of 1000: still within
    const third = await ask(t.keys.small, 'Refund policy?');
    expect(third.status).toBe(429);
    expect(third.body.error.code).toBe('BUDGET_EXCEEDED');
    expect(third.body.error.message).toMatch(/"small" used 1440 of its 1000-token daily budget/);
    expect(third.headers.get('retry-after')).toBeTruthy();
    const before = llm.requests.length;
    expect((await t.call('POST', '/v1/search', { key: t.keys.small, body: { query: 'ferry' } })).status).toBe(
      429,
    );
    expect(llm.requests.length).toBe(before); // refused before any model call
    expect((await ask(t.keys.other, 'When does the ferry to Islay leave Kennacraig?')).status).toBe(200);
  });

  it('exports tokens and cost per key and tenant', async () => {
    const m = await t.call('GET', '/metrics', { key: t.keys.ops });
    const keyId = t.keys.small!.slice(3, 19);
    const line = (m.body as string)
      .split('\n')
      .find(
        (l) =>
          l.startsWith('quarry_tokens_total{') &&
          l.includes(`key="${keyId}"`) &&
          l.includes('direction="in"'),
      );
    expect(line).toBeDefined();
    expect(line).toContain('tenant="default"');
    expect(line).toContain('component="generate"');
    expect(Number(line!.split(' ').at(-1))).toBe(1400);
    expect(m.body).toMatch(new RegExp(`quarry_cost_usd_total\\{[^}]*key="${keyId}"[^}]*\\} [0-9.e-]+`));
  });
});

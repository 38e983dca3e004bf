/**
 * LLM faults through the real HTTP server: a fake OpenAI-compatible chat endpoint on loopback stalls, rate
 * limits, fails with 5xx, sends malformed or truncated bodies and streams, or drops the connection. Quarry
 * retries within its budget (the fake counts the attempts), answers with the extractive answerer, lists the
 * degradation on the answer (JSON `degraded`, SSE `degraded` event) and in `quarry_degraded_total`, and the
 * next request after the fake recovers is answered by the LLM again, without a restart (circuit breaker
 * half-open recovery included).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Scripted } from '../generate/llm/fake-llm-server.js';
import { type FakeLlmServer, startFakeOpenAIChatServer } from '../generate/llm/fake-openai-chat-server.js';
import { HANDBOOK, parseSse, startTestServer, type TestServer } from '../server/harness.js';
import { askJson, askSse, degradedTotal, timed } from './helpers.js';

const MODEL = 'gpt-4o-mini';
const PROVIDER = `openai:${MODEL}`;
const TIMEOUT_MS = 400;
const COOLDOWN_MS = 600;
const QUESTION = 'When does the ferry to Islay leave Kennacraig?';
const GOOD: Scripted = {
  kind: 'reply',
  deltas: ['The ferry leaves Kennacraig ', 'at 07:00 and 13:30 every day [1].'],
};

/** Two retries (three attempts), fast backoff, short deadlines, a breaker that opens after 3 failed calls. */
function llmConfig(url: string, stream: boolean) {
  return {
    provider: 'openai' as const,
    baseURL: url,
    model: MODEL,
    maxTokens: 200,
    stream,
    maxRetries: 2,
    initialBackoffMs: 1,
    maxBackoffMs: 5,
    connectTimeoutMs: TIMEOUT_MS,
    readTimeoutMs: TIMEOUT_MS,
    circuitBreaker: { failureThreshold: 3, cooldownMs: COOLDOWN_MS },
  };
}

let sseFake: FakeLlmServer;
let jsonFake: FakeLlmServer;
let sseServer: TestServer;
let jsonServer: TestServer;

beforeAll(async () => {
  sseFake = await startFakeOpenAIChatServer();
  jsonFake = await startFakeOpenAIChatServer();
  sseServer = await startTestServer({ docs: HANDBOOK, pipeline: { llm: llmConfig(sseFake.url, true) } });
  jsonServer = await startTestServer({ docs: HANDBOOK, pipeline: { llm: llmConfig(jsonFake.url, false) } });
});

afterAll(async () => {
  await sseServer?.close();
  await jsonServer?.close();
  await sseFake?.close();
  await jsonFake?.close();
});

interface FaultCase {
  name: string;
  /** What the fake answers, one entry per request it receives. */
  script: Scripted[];
  /** Requests the fake must see for one ask: retries stop at 2, and at once after output was streamed. */
  requests: number;
  reason: RegExp;
  /** The reason class on `quarry_degraded_total`. */
  klass: 'timeout' | 'error' | 'unavailable';
  /** Deltas reached the client before the failure: the SSE stream sends `reset`. */
  partial?: boolean;
}

const times = (n: number, s: Scripted): Scripted[] => Array.from({ length: n }, () => s);
const chunk = (content: string) => ({
  id: 'chatcmpl-fake',
  object: 'chat.completion.chunk',
  created: 1_700_000_000,
  model: MODEL,
  choices: [{ index: 0, delta: { content }, finish_reason: null }],
});

/** Faults of the streaming wire protocol (SSE from the LLM). */
const STREAM_FAULTS: FaultCase[] = [
  {
    name: 'no response headers past the connect timeout',
    script: times(3, { kind: 'stall', beforeHeaders: true, ms: 10_000 }),
    requests: 3,
    reason: new RegExp(`no response headers within ${TIMEOUT_MS} ms`),
    klass: 'timeout',
  },
  {
    name: 'headers, then silence past the read timeout',
    script: times(3, { kind: 'stall', after: [], ms: 10_000 }),
    requests: 3,
    reason: new RegExp(`sent nothing for ${TIMEOUT_MS} ms \\(read timeout\\)`),
    klass: 'timeout',
  },
  {
    name: 'silence mid-answer past the read timeout',
    script: [{ kind: 'stall', after: ['The ferry leaves '], ms: 10_000 }],
    requests: 1,
    reason: /read timeout/,
    klass: 'timeout',
    partial: true,
  },
  {
    name: '429 whose Retry-After is past maxRetryAfterMs',
    script: [{ kind: 'status', status: 429, headers: { 'retry-after': '120' } }],
    requests: 1,
    reason: /HTTP 429/,
    klass: 'error',
  },
  {
    name: '500, 503, 500',
    script: [
      { kind: 'status', status: 500 },
      { kind: 'status', status: 503 },
      { kind: 'status', status: 500 },
    ],
    requests: 3,
    reason: /HTTP 500/,
    klass: 'error',
  },
  {
    name: 'an SSE event whose data is not JSON',
    script: [{ kind: 'malformed', after: [] }],
    requests: 1,
    reason: /JSON/,
    klass: 'error',
  },
  {
    name: 'a stream cut before any text, without finish or [DONE]',
    script: times(3, { kind: 'sse', events: [], done: false }),
    requests: 3,
    reason: /stream ended before the response was complete/,
    klass: 'error',
  },
  {
    name: 'a stream cut mid-answer, without finish or [DONE]',
    script: [{ kind: 'sse', events: [chunk('The ferry leaves ')], done: false }],
    requests: 1,
    reason: /stream ended before the response was complete/,
    klass: 'error',
    partial: true,
  },
  {
    name: 'the connection dropped mid-stream',
    script: [{ kind: 'disconnect', after: ['The ferry leaves '] }],
    requests: 1,
    reason: /network error|ended before/,
    klass: 'error',
    partial: true,
  },
  {
    name: 'an in-stream error event before any text',
    script: times(3, { kind: 'error-event', after: [], errorType: 'server_error', message: 'overloaded' }),
    requests: 3,
    reason: /error in the stream \(server_error\): overloaded/,
    klass: 'error',
  },
  {
    name: '401 (a bad key: not retried, not held against the service)',
    script: [{ kind: 'status', status: 401, message: 'Incorrect API key provided' }],
    requests: 1,
    reason: /HTTP 401/,
    klass: 'error',
  },
  {
    name: 'the connection reset before any response',
    script: times(3, { kind: 'reset' }),
    requests: 3,
    reason: /network error/,
    klass: 'error',
  },
];

/** Faults of the non-streaming wire protocol (`llm.stream: false`, one JSON body). */
const JSON_FAULTS: FaultCase[] = [
  {
    name: 'no response past the connect timeout (which covers the whole generation)',
    script: times(3, { kind: 'stall', beforeHeaders: true, ms: 10_000 }),
    requests: 3,
    reason: new RegExp(`no response headers within ${TIMEOUT_MS} ms`),
    klass: 'timeout',
  },
  {
    name: '503 three times',
    script: times(3, { kind: 'status', status: 503 }),
    requests: 3,
    reason: /HTTP 503/,
    // "503 Service Unavailable"
    klass: 'unavailable',
  },
  {
    name: 'a JSON body cut off halfway',
    script: [{ kind: 'raw', body: '{"id":"chatcmpl-fake","choices":[{"message":{"content":"The fer' }],
    requests: 1,
    reason: /not JSON/,
    klass: 'error',
  },
  {
    name: 'JSON that is not a chat completion (no choices)',
    script: [{ kind: 'json', body: { id: 'chatcmpl-fake', object: 'chat.completion', choices: [] } }],
    requests: 1,
    reason: /choices/,
    klass: 'error',
  },
  {
    name: 'the connection dropped mid-body',
    script: times(3, { kind: 'raw', body: '{"id":"chatcmpl-fake","choices":[', cut: true }),
    requests: 3,
    reason: /network error/,
    klass: 'error',
  },
];

/** Figures for docs/reliability.md, printed at the end. */
const figures: string[] = [];

/** The fake recovered: the next ask is the LLM's own answer, nothing degraded, no restart. */
async function expectRecovered(t: TestServer, fake: FakeLlmServer): Promise<number> {
  fake.reset();
  fake.respond = () => GOOD;
  const { value: a, ms } = await timed(() => askJson(t, QUESTION));
  expect(a.status).toBe(200);
  expect(a.body.answerer).toBe(PROVIDER);
  expect(a.body.degraded).toEqual([]);
  expect(a.body.text).toContain('07:00');
  expect(fake.requests).toHaveLength(1);
  return ms;
}

function faultSuite(label: string, faults: FaultCase[], server: () => TestServer, fake: () => FakeLlmServer) {
  describe(label, () => {
    for (const c of faults) {
      it(`${c.name}: retried ${c.requests - 1}×, extractive answer, degraded listed and counted; then recovers`, async () => {
        const t = server();
        const f = fake();
        const before = await degradedTotal(t, 'answer.generate', c.klass);

        f.reset();
        f.queue(...c.script);
        const { value: a, ms: jsonMs } = await timed(() => askJson(t, QUESTION));
        expect(a.status).toBe(200);
        expect(f.requests).toHaveLength(c.requests);
        expect(a.body.answerer).toBe('extractive');
        expect(a.body.text).toContain('07:00');
        expect(a.body.fallback).toMatchObject({ from: PROVIDER, reason: expect.stringMatching(c.reason) });
        expect(a.body.degraded).toEqual([
          {
            stage: 'answer.generate',
            reason: expect.stringMatching(new RegExp(`LLM ${PROVIDER} failed .*${c.reason.source}`)),
          },
        ]);
        // One degradation more, in the class the reason belongs to.
        expect(await degradedTotal(t, 'answer.generate', c.klass)).toBe(before + 1);

        let sseMs: number | undefined;
        if (label.startsWith('streaming')) {
          // The same fault while the client reads the answer as SSE.
          f.reset();
          f.queue(...c.script);
          const s = await timed(() => askSse(t, QUESTION));
          sseMs = s.ms;
          expect(s.value.status).toBe(200);
          expect(f.requests).toHaveLength(c.requests);
          const names = s.value.events.map((e) => e.event);
          expect(names).toContain('degraded');
          expect(names.at(-1)).toBe('done');
          expect(names).not.toContain('error');
          // Deltas already sent are withdrawn before the extractive answer replaces them.
          expect(names.includes('reset')).toBe(c.partial === true);
          const degraded = s.value.events.find((e) => e.event === 'degraded')?.data;
          expect(degraded).toEqual([{ stage: 'answer.generate', reason: expect.stringMatching(c.reason) }]);
          expect(s.value.answer).toMatchObject({ answerer: 'extractive', degraded });
          expect(await degradedTotal(t, 'answer.generate', c.klass)).toBe(before + 2);
        }

        const recoverMs = await expectRecovered(t, f);
        figures.push(
          `${label} | ${c.name} | ${c.requests} | ${Math.round(jsonMs)}${sseMs === undefined ? '' : ` / ${Math.round(sseMs)}`} | ${Math.round(recoverMs)}`,
        );
      });
    }
  });
}

faultSuite(
  'streaming (SSE) wire',
  STREAM_FAULTS,
  () => sseServer,
  () => sseFake,
);
faultSuite(
  'non-streaming (JSON) wire',
  JSON_FAULTS,
  () => jsonServer,
  () => jsonFake,
);

describe('retries and the circuit breaker', () => {
  it('a 429 with Retry-After: 1 is retried after the wait, and the LLM answers: nothing degraded', async () => {
    sseFake.reset();
    sseFake.queue({ kind: 'status', status: 429, headers: { 'retry-after': '1' } }, GOOD);
    const a = await askJson(sseServer, QUESTION);
    expect(a.status).toBe(200);
    expect(a.body.answerer).toBe(PROVIDER);
    expect(a.body.degraded).toEqual([]);
    expect(sseFake.requests).toHaveLength(2);
    const waited = sseFake.requests[1]!.at - sseFake.requests[0]!.at;
    expect(waited).toBeGreaterThanOrEqual(950);
    expect(waited).toBeLessThan(2500);
    figures.push(`retry | 429 Retry-After: 1, then 200 | 2 | waited ${Math.round(waited)} ms | —`);
  });

  it('opens after 3 failed calls (no request reaches the LLM), then a half-open probe closes it', async () => {
    const t = sseServer;
    const before = await degradedTotal(t, 'answer.generate', 'error');
    const unavailableBefore = await degradedTotal(t, 'answer.generate', 'unavailable');
    sseFake.reset();
    sseFake.queue(...times(9, { kind: 'status', status: 500 }));
    for (let i = 0; i < 3; i++) {
      const a = await askJson(t, QUESTION);
      expect(a.body.degraded).toEqual([
        { stage: 'answer.generate', reason: expect.stringMatching(/HTTP 500/) },
      ]);
    }
    expect(sseFake.requests).toHaveLength(9);

    // Open: answered at once, extractively, without calling the LLM.
    const open = await timed(() => askJson(t, QUESTION));
    expect(open.value.status).toBe(200);
    expect(open.value.body.answerer).toBe('extractive');
    expect(open.value.body.degraded).toEqual([
      { stage: 'answer.generate', reason: expect.stringMatching(/circuit open after 3 consecutive failed/) },
    ]);
    expect(sseFake.requests).toHaveLength(9);
    expect(await degradedTotal(t, 'answer.generate', 'error')).toBe(before + 3);
    // "LLM service unavailable: … circuit open"
    expect(await degradedTotal(t, 'answer.generate', 'unavailable')).toBe(unavailableBefore + 1);

    // A probe that fails opens it again; the next call is rejected without a request.
    await new Promise((r) => setTimeout(r, COOLDOWN_MS + 50));
    sseFake.queue(...times(3, { kind: 'status', status: 503 }));
    const failedProbe = await askJson(t, QUESTION);
    expect(failedProbe.body.answerer).toBe('extractive');
    expect(sseFake.requests).toHaveLength(12);
    const reopened = await askJson(t, QUESTION);
    expect(reopened.body.degraded[0]?.reason).toMatch(/circuit open/);
    expect(sseFake.requests).toHaveLength(12);

    // After the cooldown the probe succeeds: closed, the LLM answers, and keeps answering.
    await new Promise((r) => setTimeout(r, COOLDOWN_MS + 50));
    const t0 = performance.now();
    await expectRecovered(t, sseFake);
    await expectRecovered(t, sseFake);
    figures.push(
      `breaker | 3 failed calls (9 requests), open, probe | 12 + 1 probe | open: ${Math.round(open.ms)} | ${Math.round(performance.now() - t0)} (two asks)`,
    );
  });
});

describe('half-open under concurrent load', () => {
  it('one probe reaches the LLM; the asks arriving meanwhile are answered extractively at once', async () => {
    sseFake.reset();
    sseFake.queue(...times(9, { kind: 'status', status: 500 }));
    for (let i = 0; i < 3; i++) await askJson(sseServer, QUESTION);
    expect(sseFake.requests).toHaveLength(9);
    await new Promise((r) => setTimeout(r, COOLDOWN_MS + 50));

    sseFake.reset();
    // The probe's answer takes ~300 ms to stream, so the other asks arrive while it runs.
    sseFake.respond = () => ({ ...(GOOD as Extract<Scripted, { kind: 'reply' }>), gapMs: 100 });
    const probe = askJson(sseServer, QUESTION);
    await new Promise((r) => setTimeout(r, 50));
    const others = await Promise.all([askJson(sseServer, QUESTION), askJson(sseServer, QUESTION)]);
    for (const o of others) {
      expect(o.status).toBe(200);
      expect(o.body.answerer).toBe('extractive');
      expect(o.body.degraded[0]?.reason).toMatch(/a probe call is running/);
    }
    const p = await probe;
    expect(p.body.answerer).toBe(PROVIDER);
    expect(p.body.degraded).toEqual([]);
    expect(sseFake.requests).toHaveLength(1);
    await expectRecovered(sseServer, sseFake);
  });
});

describe('bounded by the request budget, and the OpenAI-compatible route', () => {
  it('an LLM slower than the request budget: cut at the budget, the upstream call cancelled', async () => {
    sseFake.reset();
    // Each attempt would wait 400 ms for headers, three attempts: longer than the 700 ms request budget.
    sseFake.queue(...times(3, { kind: 'stall', beforeHeaders: true, ms: 10_000 }));
    const { value: a, ms } = await timed(() => askJson(sseServer, QUESTION, { budgetMs: 700 }));
    expect(a.status).toBe(200);
    expect(a.body.answerer).toBe('extractive');
    expect(a.body.degraded).toEqual([
      { stage: 'answer.generate', reason: expect.stringMatching(/generation exceeded its \d+ ms budget/) },
    ]);
    expect(ms).toBeLessThan(1200);
    await new Promise((r) => setTimeout(r, 50));
    expect(sseFake.requests.every((r) => r.clientClosed)).toBe(true);
    figures.push(
      `budget | 700 ms request budget, LLM silent | ${sseFake.requests.length} | ${Math.round(ms)} | —`,
    );
    await expectRecovered(sseServer, sseFake);
  });

  it('POST /v1/chat/completions streamed: a dropped LLM stream is replaced, degraded in the last chunk', async () => {
    sseFake.reset();
    sseFake.queue({ kind: 'disconnect', after: ['The ferry leaves '] });
    const r = await sseServer.call('POST', '/v1/chat/completions', {
      body: { model: 'quarry', stream: true, messages: [{ role: 'user', content: QUESTION }] },
    });
    expect(r.status).toBe(200);
    const events = parseSse(String(r.body));
    expect(events.at(-1)?.data).toBe('[DONE]');
    const chunks = events.filter((e) => typeof e.data === 'object' && e.data !== null);
    expect(chunks.some((e) => 'error' in e.data)).toBe(false);
    const last = chunks.findLast((e) => e.data.quarry !== undefined)?.data.quarry;
    expect(last).toMatchObject({ answerer: 'extractive', replaced: true });
    expect(last.degraded).toEqual([
      { stage: 'answer.generate', reason: expect.stringMatching(/LLM openai:gpt-4o-mini failed/) },
    ]);
    const text = chunks.map((e) => e.data.choices?.[0]?.delta?.content ?? '').join('');
    expect(text).toContain('07:00');
    expect(sseFake.requests).toHaveLength(1);
    await expectRecovered(sseServer, sseFake);
  });
});

afterAll(() => {
  // The figures docs/reliability.md quotes: mode | fault | requests the fake saw | ms to the degraded answer
  // (JSON / SSE) | ms of the recovered answer.
  console.log(`LLM faults:\n${figures.join('\n')}`);
});

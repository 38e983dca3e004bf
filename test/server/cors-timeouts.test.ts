/**
 * CORS and request deadlines against real servers on loopback: only configured origins get CORS headers
 * (none by default); `requestTimeoutMs` caps the pipeline's budget, so a stalled LLM ends in the extractive
 * answer with a `degraded` entry within about that time, JSON or streamed; a client that leaves mid-stream
 * stops the upstream LLM request and leaves no stream open.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type FakeLlmServer, startFakeOpenAIChatServer } from '../generate/llm/fake-openai-chat-server.js';
import { HANDBOOK, parseSse, startTestServer, type TestServer } from './harness.js';

// The whole handbook: with two documents only, every word is too common for the extractive answerer.
const DOCS = HANDBOOK;
const ORIGIN = 'https://app.example';

describe('CORS', () => {
  let open: TestServer;
  let closed: TestServer;
  beforeAll(async () => {
    open = await startTestServer({ docs: DOCS, config: { cors: { origins: [ORIGIN] } } });
    closed = await startTestServer({ docs: DOCS });
  });
  afterAll(async () => {
    await open?.close();
    await closed?.close();
  });

  const preflight = (t: TestServer, origin: string) =>
    fetch(`${t.url}/v1/search`, {
      method: 'OPTIONS',
      headers: {
        origin,
        'access-control-request-method': 'POST',
        'access-control-request-headers': 'authorization, content-type, x-api-key',
      },
    });

  it('a configured origin gets the preflight allow headers and the allow-origin header on requests', async () => {
    const pre = await preflight(open, ORIGIN);
    expect(pre.status).toBeLessThan(300);
    expect(pre.headers.get('access-control-allow-origin')).toBe(ORIGIN);
    const allowed = (pre.headers.get('access-control-allow-headers') ?? '').toLowerCase().split(/\s*,\s*/);
    expect(allowed).toEqual(expect.arrayContaining(['authorization', 'content-type', 'x-api-key']));
    expect((pre.headers.get('access-control-allow-methods') ?? '').toUpperCase()).toContain('POST');

    const r = await open.call('POST', '/v1/search', {
      body: { query: 'ferry' },
      headers: { origin: ORIGIN },
    });
    expect(r.status).toBe(200);
    expect(r.headers.get('access-control-allow-origin')).toBe(ORIGIN);
    expect(r.headers.get('access-control-expose-headers')).toMatch(/x-request-id/);
  });

  it('another origin gets no CORS headers', async () => {
    const pre = await preflight(open, 'https://evil.example');
    expect(pre.headers.get('access-control-allow-origin')).toBeNull();
    expect(pre.headers.get('access-control-allow-headers')).toBeNull();
    const r = await open.call('POST', '/v1/search', {
      body: { query: 'ferry' },
      headers: { origin: 'https://evil.example' },
    });
    expect(r.headers.get('access-control-allow-origin')).toBeNull();
  });

  it('without configured origins no origin gets CORS headers', async () => {
    const pre = await preflight(closed, ORIGIN);
    expect(pre.headers.get('access-control-allow-origin')).toBeNull();
    expect(pre.headers.get('access-control-allow-headers')).toBeNull();
    const r = await closed.call('POST', '/v1/search', {
      body: { query: 'ferry' },
      headers: { origin: ORIGIN },
    });
    expect(r.status).toBe(200);
    expect(r.headers.get('access-control-allow-origin')).toBeNull();
  });
});

describe('request deadlines with a slow LLM', () => {
  let llm: FakeLlmServer;
  let t: TestServer;
  const TIMEOUT = 600;
  beforeAll(async () => {
    llm = await startFakeOpenAIChatServer();
    t = await startTestServer({
      docs: DOCS,
      config: { requestTimeoutMs: TIMEOUT },
      pipeline: {
        llm: {
          provider: 'openai',
          baseURL: llm.url,
          model: 'gpt-4o-mini',
          maxRetries: 0,
          readTimeoutMs: 60_000,
        },
        cache: { responses: false },
      },
    });
  });
  afterAll(async () => {
    await t?.close();
    await llm?.close();
  });

  const QUESTION = 'When does the ferry to Islay leave Kennacraig?';

  it('a non-streaming ask whose LLM stalls answers extractively within about the request timeout', async () => {
    llm.reset();
    llm.respond = () => ({ kind: 'stall', after: ['The ferry '], ms: 20_000 });
    const t0 = performance.now();
    const r = await t.call('POST', '/v1/ask', { body: { question: QUESTION } });
    const ms = performance.now() - t0;
    expect(r.status).toBe(200);
    expect(ms).toBeLessThan(TIMEOUT + 1500);
    expect(r.body.answerer).toBe('extractive');
    expect(r.body.text).toMatch(/07:00/);
    expect(r.body.degraded).toEqual(
      expect.arrayContaining([{ stage: 'answer.generate', reason: expect.stringMatching(/budget/) }]),
    );
    expect(llm.requests.length).toBe(1);
    // The abandoned LLM request was closed, not left running for 20 s.
    await waitFor(() => llm.requests[0]!.clientClosed);
  });

  it('a body budget larger than the server timeout is capped by it', async () => {
    llm.reset();
    llm.respond = () => ({ kind: 'stall', beforeHeaders: true, ms: 20_000 });
    const t0 = performance.now();
    const r = await t.call('POST', '/v1/ask', { body: { question: QUESTION, budgetMs: 60_000 } });
    expect(performance.now() - t0).toBeLessThan(TIMEOUT + 1500);
    expect(r.status).toBe(200);
    expect(r.body.answerer).toBe('extractive');
    expect(r.body.degraded.map((d: { stage: string }) => d.stage)).toContain('answer.generate');
  });

  it('a streamed ask whose LLM stalls ends with degraded, answer and done within about the timeout', async () => {
    llm.reset();
    llm.respond = () => ({ kind: 'stall', after: ['The ferry '], ms: 20_000 });
    const t0 = performance.now();
    const res = await fetch(`${t.url}/v1/ask`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ question: QUESTION, stream: true }),
    });
    const events = parseSse(await res.text());
    expect(performance.now() - t0).toBeLessThan(TIMEOUT + 1500);
    const names = events.map((e) => e.event);
    expect(names.slice(-3)).toEqual(['degraded', 'answer', 'done']);
    expect(events.find((e) => e.event === 'degraded')!.data[0].stage).toBe('answer.generate');
    const answer = events.find((e) => e.event === 'answer')!.data;
    expect(answer.answerer).toBe('extractive');
    expect(answer.text).toMatch(/07:00/);
  });
});

describe('a client that leaves mid-stream', () => {
  let llm: FakeLlmServer;
  let t: TestServer;
  beforeAll(async () => {
    llm = await startFakeOpenAIChatServer();
    t = await startTestServer({
      docs: DOCS,
      pipeline: {
        llm: { provider: 'openai', baseURL: llm.url, model: 'gpt-4o-mini', maxRetries: 0 },
        cache: { responses: false },
      },
    });
  });
  afterAll(async () => {
    await t?.close();
    await llm?.close();
  });

  async function leaveAfterFirstDelta(url: string, body: unknown): Promise<void> {
    const controller = new AbortController();
    const res = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
      signal: controller.signal,
    });
    const reader = res.body!.getReader();
    let text = '';
    while (!/event: delta|"content":"[^"]/.test(text)) {
      const { value, done } = await reader.read();
      if (done) throw new Error(`stream ended before a delta: ${text}`);
      text += new TextDecoder().decode(value);
    }
    controller.abort();
  }

  async function streamsOpen(): Promise<number> {
    const m = (await t.call('GET', '/metrics')).body as string;
    return Number(/^quarry_http_streams_open (\S+)$/m.exec(m)![1]);
  }

  for (const [route, body] of [
    ['/v1/ask', { question: 'When does the ferry to Islay leave Kennacraig?', stream: true }],
    [
      '/v1/chat/completions',
      { model: 'quarry', stream: true, messages: [{ role: 'user', content: 'When does the ferry leave?' }] },
    ],
  ] as const) {
    it(`${route}: the upstream LLM request is closed and no stream stays open`, async () => {
      llm.reset();
      // A long, slow answer: 100 words, one every 100 ms (10 s if nobody stops it).
      llm.respond = () => ({
        kind: 'reply',
        deltas: Array.from({ length: 100 }, () => 'ferry '),
        gapMs: 100,
      });
      await leaveAfterFirstDelta(t.url + route, body);
      await waitFor(() => llm.requests[0]?.clientClosed === true, 3000);
      await waitFor(async () => (await streamsOpen()) === 0, 3000);
      // Still healthy: the next request is answered.
      expect((await t.call('GET', '/healthz')).status).toBe(200);
      llm.respond = () => ({ kind: 'reply', deltas: ['The ferry leaves at 07:00 [1].'] });
      const r = await t.call('POST', '/v1/ask', {
        body: { question: 'When does the ferry to Islay leave?' },
      });
      expect(r.status).toBe(200);
    });
  }
});

async function waitFor(check: () => boolean | Promise<boolean>, ms = 5000): Promise<void> {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`condition not met within ${ms} ms`);
}

/**
 * Load shedding through the real server: past its query slots and queue a request gets 503 OVERLOADED with
 * Retry-After at once (the admitted ones finish normally), a lagging event loop sheds new work while health
 * and metrics still answer, and the server serves normally again as soon as the pressure is gone.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Admission } from '../../src/server/admission.js';
import { loadServerConfig } from '../../src/server/config.js';
import { ServerMetrics } from '../../src/server/metrics.js';
import { type FakeLlmServer, startFakeOpenAIChatServer } from '../generate/llm/fake-openai-chat-server.js';
import { HANDBOOK, parseSse, startTestServer, type TestServer } from './harness.js';

const QUESTION = 'When does the ferry to Islay leave Kennacraig?';

async function metricValue(t: TestServer, series: string): Promise<number> {
  const text = (await t.call('GET', '/metrics')).body as string;
  const line = text.split('\n').find((l) => l.startsWith(series));
  return line === undefined ? 0 : Number(line.slice(series.length).trim());
}

async function streamAsk(t: TestServer): Promise<{
  status: number;
  ms: number;
  retryAfter: string | null;
  events: ReturnType<typeof parseSse>;
  body: any;
}> {
  const t0 = performance.now();
  const res = await fetch(`${t.url}/v1/ask`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ question: QUESTION, stream: true }),
  });
  const text = await res.text();
  const ms = performance.now() - t0;
  const isSse = (res.headers.get('content-type') ?? '').includes('text/event-stream');
  return {
    status: res.status,
    ms,
    retryAfter: res.headers.get('retry-after'),
    events: isSse ? parseSse(text) : [],
    body: isSse ? undefined : JSON.parse(text),
  };
}

describe('query slots: a burst past capacity is shed at once, the admitted requests finish', () => {
  let llm: FakeLlmServer;
  let t: TestServer;
  beforeAll(async () => {
    llm = await startFakeOpenAIChatServer();
    t = await startTestServer({
      docs: HANDBOOK,
      config: {
        admission: { queryInFlight: 2, queryQueue: 1, queueTimeoutMs: 300, maxEventLoopDelayMs: 0 },
      },
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

  it('2 run, 1 waits and times out, 5 are refused with Retry-After; then the server serves again', async () => {
    // Each answer streams for about 1.5 s, so the two admitted streams hold their slots past the queue timeout.
    llm.respond = () => ({
      kind: 'reply',
      deltas: ['The ferry ', 'leaves ', 'Kennacraig ', 'at ', '07:00 ', '[1].'],
      gapMs: 250,
    });
    const burst = Array.from({ length: 8 }, () => streamAsk(t));
    // While the burst runs, health, readiness and metrics still answer.
    await new Promise((r) => setTimeout(r, 100));
    expect((await t.call('GET', '/healthz')).status).toBe(200);
    expect(await metricValue(t, 'quarry_admission_in_flight{kind="query"}')).toBe(2);
    const results = await Promise.all(burst);

    const ok = results.filter((r) => r.status === 200);
    const shed = results.filter((r) => r.status === 503);
    expect(ok).toHaveLength(2);
    expect(shed).toHaveLength(6);
    for (const r of ok) {
      expect(r.events.map((e) => e.event).slice(-2)).toEqual(['answer', 'done']);
      expect(r.events.find((e) => e.event === 'answer')!.data.answerer).not.toBe('extractive');
    }
    for (const r of shed) {
      expect(r.body.error.code).toBe('OVERLOADED');
      expect(r.retryAfter).toBe('2');
      expect(r.body.error.details.retryAfterSeconds).toBe(2);
    }
    const reasons = shed.map((r) => r.body.error.details.reason).sort();
    expect(reasons).toEqual([
      'in_flight',
      'in_flight',
      'in_flight',
      'in_flight',
      'in_flight',
      'queue_timeout',
    ]);
    // Refused at once, not after the admitted streams: well under their 1.5 s.
    const immediate = shed.filter((r) => r.body.error.details.reason === 'in_flight');
    expect(Math.max(...immediate.map((r) => r.ms))).toBeLessThan(1000);
    // Only the admitted requests reached the LLM.
    expect(llm.requests).toHaveLength(2);

    expect(await metricValue(t, 'quarry_http_shed_total{kind="query",reason="in_flight"}')).toBe(5);
    expect(await metricValue(t, 'quarry_http_shed_total{kind="query",reason="queue_timeout"}')).toBe(1);
    expect(await metricValue(t, 'quarry_admission_in_flight{kind="query"}')).toBe(0);
    expect(await metricValue(t, 'quarry_admission_queued{kind="query"}')).toBe(0);

    // Recovery without a restart: the next request is admitted and answered.
    const after = await streamAsk(t);
    expect(after.status).toBe(200);
    expect(after.events.at(-1)!.event).toBe('done');
    const search = await t.call('POST', '/v1/search', { body: { query: 'ferry Islay' } });
    expect(search.status).toBe(200);
    expect(search.body.hits.length).toBeGreaterThan(0);
  });

  it('a queued request gets the slot a finished one frees', async () => {
    llm.reset();
    llm.respond = () => ({ kind: 'reply', deltas: ['The ferry ', 'leaves ', 'at 07:00 [1].'], gapMs: 60 });
    // queueTimeoutMs 300 is longer than one answer here (~200 ms), so the third waits and then runs.
    const results = await Promise.all([streamAsk(t), streamAsk(t), streamAsk(t)]);
    expect(results.map((r) => r.status)).toEqual([200, 200, 200]);
    expect(llm.requests).toHaveLength(3);
  });
});

describe('process pressure: a lagging event loop sheds new work, health still answers', () => {
  let t: TestServer;
  beforeAll(async () => {
    t = await startTestServer({
      docs: HANDBOOK,
      config: { admission: { maxEventLoopDelayMs: 50, sampleIntervalMs: 100 } },
      pipeline: { cache: { responses: false } },
    });
  });
  afterAll(async () => {
    await t?.close();
  });

  it('refuses search with OVERLOADED right after a 2 s stall, then serves again', async () => {
    expect((await t.call('POST', '/v1/search', { body: { query: 'ferry' } })).status).toBe(200);
    // The server runs in this process: block its event loop as a CPU-bound burst would.
    const until = performance.now() + 2000;
    while (performance.now() < until) {
      /* busy */
    }
    const [refused, health] = await Promise.all([
      t.call('POST', '/v1/search', { body: { query: 'ferry' } }),
      t.call('GET', '/healthz'),
    ]);
    expect(refused.status).toBe(503);
    expect(refused.body.error.code).toBe('OVERLOADED');
    expect(refused.body.error.details.reason).toBe('event_loop_delay');
    expect(refused.body.error.message).toMatch(
      /event-loop delay (\d+ ms|longer than the 100 ms sample) over 50 ms/,
    );
    expect(refused.headers.get('retry-after')).toBe('2');
    expect(health.status).toBe(200);
    expect(await metricValue(t, 'quarry_http_shed_total{kind="query",reason="event_loop_delay"}')).toBe(1);
    // A few samples later the pressure is gone and work is admitted again, without a restart.
    let status = 0;
    const deadline = performance.now() + 5000;
    while (status !== 200 && performance.now() < deadline) {
      await new Promise((r) => setTimeout(r, 100));
      status = (await t.call('POST', '/v1/search', { body: { query: 'ferry' } })).status;
    }
    expect(status).toBe(200);
  });
});

describe('Admission (the gate itself)', () => {
  const admission = (over: Record<string, number>) =>
    new Admission(
      loadServerConfig({ env: {}, flags: { admission: { ingestInFlight: 1, ingestQueue: 2, ...over } } })
        .admission,
      new ServerMetrics(),
    );

  it('grants queued slots first come, first served; a release is idempotent', async () => {
    const a = admission({ queueTimeoutMs: 5_000 });
    const order: number[] = [];
    const first = await a.enter('ingest');
    const second = a.enter('ingest').then((release) => {
      order.push(2);
      return release;
    });
    const third = a.enter('ingest').then((release) => {
      order.push(3);
      return release;
    });
    await expect(a.enter('ingest')).rejects.toMatchObject({
      code: 'OVERLOADED',
      details: { reason: 'in_flight' },
    });
    first();
    first(); // a second call must not free a slot it no longer holds
    const r2 = await second;
    expect(order).toEqual([2]);
    r2();
    (await third)();
    expect(order).toEqual([2, 3]);
    // Query slots are separate from ingest slots.
    (await a.enter('query'))();
  });

  it('reads its bounds from the environment, and refuses a bad value naming it', () => {
    expect(loadServerConfig({ env: { QUARRY_MAX_IN_FLIGHT: '7' } }).admission.queryInFlight).toBe(7);
    expect(() => loadServerConfig({ env: { QUARRY_MAX_IN_FLIGHT: 'many' } })).toThrow(/QUARRY_MAX_IN_FLIGHT/);
    expect(() => loadServerConfig({ env: {}, flags: { admission: { queryInFlight: 0 } } })).toThrow(
      /admission\.queryInFlight/,
    );
  });
});

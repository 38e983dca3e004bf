/**
 * The HTTP API against a real server on loopback (no keys: trusted local caller): every endpoint's happy
 * path, the one error shape with stable codes, request ids, body limits, SSE streams, and the OpenAPI
 * document generated from the same schemas that validate.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HANDBOOK, parseSse, startTestServer, type TestServer } from './harness.js';

let t: TestServer;

beforeAll(async () => {
  t = await startTestServer({ docs: HANDBOOK, config: { bodyLimitBytes: 64 * 1024 } });
});
afterAll(async () => {
  await t?.close();
});

describe('search and ask over HTTP', () => {
  it('POST /v1/search returns ranked hits, a query id and a request id', async () => {
    const r = await t.call('POST', '/v1/search', { body: { query: 'ferry to Islay', k: 3 } });
    expect(r.status).toBe(200);
    expect(r.headers.get('x-request-id')).toMatch(/^[0-9a-f-]{36}$/);
    expect(r.body.queryId).toMatch(/^[0-9a-f-]{36}$/);
    expect(r.body.hits[0].document.id).toBe('ferry');
    expect(r.body.degraded).toEqual([]);
    expect(r.body.trace).toBeUndefined();
  });

  it('keeps a caller-supplied request id and returns the trace when asked', async () => {
    const r = await t.call('POST', '/v1/search', {
      body: { query: 'refund', trace: true },
      headers: { 'x-request-id': 'abc-123' },
    });
    expect(r.headers.get('x-request-id')).toBe('abc-123');
    expect(r.body.trace.stages.map((s: { stage: string }) => s.stage)).toContain('retrieve.bm25');
  });

  it('POST /v1/ask answers with citations that point into the cited document', async () => {
    const r = await t.call('POST', '/v1/ask', {
      body: { question: 'When does the ferry to Islay leave Kennacraig?' },
    });
    expect(r.status).toBe(200);
    expect(r.body.abstained).toBe(false);
    expect(r.body.text).toMatch(/07:00/);
    expect(r.body.citations[0].docId).toBe('ferry');
    const doc = await t.call('GET', '/v1/documents/ferry');
    const c = r.body.citations[0];
    expect(doc.body.text.slice(c.start, c.end)).toBe(c.quote);
  });

  it('POST /v1/ask with stream: true sends meta, retrieved, answer and done as Server-Sent Events', async () => {
    const res = await fetch(`${t.url}/v1/ask`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-request-id': 'sse-1' },
      body: JSON.stringify({
        question: 'Within how many working days are refunds paid back to the card?',
        stream: true,
      }),
    });
    expect(res.headers.get('content-type')).toMatch(/^text\/event-stream/);
    expect(res.headers.get('x-request-id')).toBe('sse-1');
    const events = parseSse(await res.text());
    const names = events.map((e) => e.event);
    expect(names[0]).toBe('meta');
    expect(names).toContain('retrieved');
    expect(names.at(-2)).toBe('answer');
    expect(names.at(-1)).toBe('done');
    const meta = events[0]!.data;
    expect(meta.requestId).toBe('sse-1');
    const answer = events.find((e) => e.event === 'answer')!.data;
    expect(answer.queryId).toBe(meta.queryId);
    expect(answer.citations[0].docId).toBe('refunds');
    // The stream's query id leads to its stored trace.
    const trace = await t.call('GET', `/v1/traces/${meta.queryId}`);
    expect(trace.status).toBe(200);
    expect(trace.body.query).toBe('Within how many working days are refunds paid back to the card?');
    expect(trace.body.trace.stages.length).toBeGreaterThan(2);
  });

  it('Accept: text/event-stream also selects the stream', async () => {
    const res = await fetch(`${t.url}/v1/ask`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'text/event-stream' },
      body: JSON.stringify({ question: 'ticket price for the ferry' }),
    });
    expect(res.headers.get('content-type')).toMatch(/^text\/event-stream/);
    expect(parseSse(await res.text()).at(-1)!.event).toBe('done');
  });
});

describe('errors: one body shape, stable codes, HTTP statuses from the error table', () => {
  it('malformed JSON is 400 INVALID_ARGUMENT with the request id', async () => {
    const r = await t.call('POST', '/v1/search', {
      raw: '{"query": ',
      headers: { 'x-request-id': 'bad-json' },
    });
    expect(r.status).toBe(400);
    expect(r.body).toEqual({
      error: { code: 'INVALID_ARGUMENT', message: expect.stringMatching(/JSON/), requestId: 'bad-json' },
    });
  });

  it('schema violations name the field', async () => {
    const r = await t.call('POST', '/v1/search', { body: { query: 'x', k: 0, extra: true } });
    expect(r.status).toBe(400);
    expect(r.body.error.code).toBe('INVALID_ARGUMENT');
    expect(r.body.error.message).toMatch(/body\.k/);
    expect(r.body.error.message).toMatch(/extra/);
  });

  it('an invalid filter is 400 INVALID_FILTER', async () => {
    const r = await t.call('POST', '/v1/search', { body: { query: 'ferry', filter: { $where: 'x' } } });
    expect(r.status).toBe(400);
    expect(r.body.error.code).toBe('INVALID_FILTER');
  });

  it('a body over the limit is 413 PAYLOAD_TOO_LARGE and nothing is stored', async () => {
    const before = await t.call('GET', '/v1/documents?limit=1000');
    const r = await t.call('POST', '/v1/documents', {
      body: { documents: [{ id: 'huge', text: 'x '.repeat(100_000) }] },
    });
    expect(r.status).toBe(413);
    expect(r.body.error.code).toBe('PAYLOAD_TOO_LARGE');
    const after = await t.call('GET', '/v1/documents?limit=1000');
    expect(after.body.documents.length).toBe(before.body.documents.length);
  });

  it('unknown routes, documents, traces and collections are 404 NOT_FOUND', async () => {
    expect((await t.call('GET', '/v2/nothing')).body.error.code).toBe('NOT_FOUND');
    expect((await t.call('GET', '/v1/documents/nope')).status).toBe(404);
    expect((await t.call('GET', '/v1/traces/nope')).status).toBe(404);
    const r = await t.call('POST', '/v1/search', { body: { query: 'x', collection: 'nope' } });
    expect(r.status).toBe(404);
    expect(r.body.error.code).toBe('NOT_FOUND');
  });

  it('a wrong content type is a 4xx with a code, not a crash', async () => {
    const r = await t.call('POST', '/v1/search', {
      raw: 'query=x',
      headers: { 'content-type': 'text/plain' },
    });
    expect(r.status).toBeGreaterThanOrEqual(400);
    expect(r.status).toBeLessThan(500);
    expect(typeof r.body.error.code).toBe('string');
  });
});

describe('documents, collections, feedback', () => {
  it('upserts JSON documents incrementally and reports each status', async () => {
    const doc = { id: 'parking', markdown: '# Parking\n\nStaff parking is on level -2, bay 40 to 80.' };
    const first = await t.call('POST', '/v1/documents', { body: { documents: [doc] } });
    expect(first.status).toBe(200);
    expect(first.body.documents).toEqual([{ id: 'parking', status: 'added' }]);
    const again = await t.call('POST', '/v1/documents', { body: { documents: [doc] } });
    expect(again.body.documents).toEqual([{ id: 'parking', status: 'unchanged' }]);
    const hit = await t.call('POST', '/v1/search', { body: { query: 'staff parking bay' } });
    expect(hit.body.hits[0].document.id).toBe('parking');
    const del = await t.call('DELETE', '/v1/documents/parking');
    expect(del.body.ok).toBe(true);
    const gone = await t.call('POST', '/v1/search', { body: { query: 'staff parking bay', cache: false } });
    expect(gone.body.hits.map((h: { document: { id: string } }) => h.document.id)).not.toContain('parking');
    expect((await t.call('GET', '/v1/documents/parking')).status).toBe(404);
  });

  it('a bad record is refused with its code and nothing of the batch is written', async () => {
    const r = await t.call('POST', '/v1/documents', {
      body: {
        documents: [
          { id: 'ok-one', text: 'fine' },
          { id: 'bad', text: 'x', markdown: 'y' },
        ],
      },
    });
    expect(r.status).toBeGreaterThanOrEqual(400);
    expect(r.status).toBeLessThan(500);
    expect((await t.call('GET', '/v1/documents/ok-one')).status).toBe(404);
  });

  it('uploads files as multipart, keeps them searchable, refuses path traversal names', async () => {
    const form = new FormData();
    form.append('file', new Blob(['# Lockers\n\nLockers are opened with the blue badge.']), 'lockers.md');
    const r = await fetch(`${t.url}/v1/documents/upload`, { method: 'POST', body: form });
    const body = (await r.json()) as { documents: Array<{ status: string }>; added: number };
    expect(r.status).toBe(200);
    expect(body.added).toBe(1);
    const hit = await t.call('POST', '/v1/search', { body: { query: 'blue badge lockers' } });
    expect(hit.body.hits[0].chunk.title).toBe('Lockers');

    // A path in the file name never leaves the collection's uploads folder.
    const evil = new FormData();
    evil.append('file', new Blob(['# Owned\n\nowned by the upload']), '../../escaped.md');
    const r2 = await fetch(`${t.url}/v1/documents/upload`, { method: 'POST', body: evil });
    expect(r2.status).toBe(200);
    expect(fs.existsSync(path.join(t.store, '..', 'escaped.md'))).toBe(false);
    expect(fs.existsSync(path.join(path.dirname(t.store), '..', 'escaped.md'))).toBe(false);
    const listed = await t.call('GET', `/v1/documents?limit=1000`);
    const sources = listed.body.documents.map((d: { meta: { source: string } }) => d.meta.source);
    expect(sources.filter((s: string) => s.endsWith('escaped.md'))).toHaveLength(1);
    // Named relative to the collection's store: no server path in what clients see.
    expect(sources.find((s: string) => s.endsWith('escaped.md'))).toBe('uploads/escaped.md');

    const hidden = new FormData();
    hidden.append('file', new Blob(['x']), '.env');
    const bad = await fetch(`${t.url}/v1/documents/upload`, { method: 'POST', body: hidden });
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as { error: { code: string } }).error.code).toBe('INVALID_ARGUMENT');
  });

  it('lists documents with paging and a metadata filter', async () => {
    const page1 = await t.call('GET', '/v1/documents?limit=2&offset=0');
    expect(page1.body.documents).toHaveLength(2);
    expect(page1.body.nextOffset).toBe(2);
    const page2 = await t.call('GET', `/v1/documents?limit=2&offset=${page1.body.nextOffset}`);
    const ids1 = page1.body.documents.map((d: { id: string }) => d.id);
    const ids2 = page2.body.documents.map((d: { id: string }) => d.id);
    expect(ids1.filter((id: string) => ids2.includes(id))).toEqual([]);
    const filtered = await t.call(
      'GET',
      `/v1/documents?filter=${encodeURIComponent(JSON.stringify({ id: { $in: ['ferry', 'refunds'] } }))}`,
    );
    expect(filtered.body.documents.map((d: { id: string }) => d.id).sort()).toEqual(['ferry', 'refunds']);
  });

  it('feedback is tied to a query id and refused for an unknown one', async () => {
    const s = await t.call('POST', '/v1/search', { body: { query: 'refund card' } });
    const ok = await t.call('POST', '/v1/feedback', {
      body: { queryId: s.body.queryId, docId: 'refunds', helpful: true },
    });
    expect(ok.status).toBe(201);
    expect(ok.body.feedback.query).toBe('refund card');
    const bad = await t.call('POST', '/v1/feedback', {
      body: { queryId: 'nope', docId: 'refunds', helpful: true },
    });
    expect(bad.status).toBe(404);
  });

  it('creates, lists and deletes collections, each its own store', async () => {
    const c = await t.call('POST', '/v1/collections', { body: { name: 'support' } });
    expect(c.status).toBe(201);
    await t.call('POST', '/v1/documents', {
      body: {
        collection: 'support',
        documents: [{ id: 'wifi', text: 'The guest wifi password is on the badge.' }],
      },
    });
    const inSupport = await t.call('POST', '/v1/search', {
      body: { collection: 'support', query: 'wifi password' },
    });
    expect(inSupport.body.hits[0].document.id).toBe('wifi');
    const inDefault = await t.call('POST', '/v1/search', { body: { query: 'wifi password' } });
    expect(inDefault.body.hits.map((h: { document: { id: string } }) => h.document.id)).not.toContain('wifi');
    const list = await t.call('GET', '/v1/collections');
    expect(list.body.collections.map((x: { name: string }) => x.name)).toEqual(['default', 'support']);
    expect((await t.call('POST', '/v1/collections', { body: { name: 'Bad Name!' } })).status).toBe(400);
    expect((await t.call('DELETE', '/v1/collections/support')).status).toBe(200);
    expect(
      (await t.call('POST', '/v1/search', { body: { collection: 'support', query: 'wifi' } })).status,
    ).toBe(404);
  });
});

describe('service endpoints', () => {
  it('/healthz and /readyz', async () => {
    expect((await t.call('GET', '/healthz')).body).toEqual({ ok: true, version: 'test' });
    expect((await t.call('GET', '/readyz')).body).toEqual({ ready: true, draining: false });
  });

  it('sets security headers', async () => {
    const r = await t.call('GET', '/healthz');
    expect(r.headers.get('x-content-type-options')).toBe('nosniff');
    expect(r.headers.get('content-security-policy')).toMatch(/default-src 'self'/);
    expect(r.headers.get('x-frame-options')).toBeTruthy();
  });

  it('/openapi.json is OpenAPI 3.1 covering every route, with request schemas from the validators', async () => {
    const doc = (await t.call('GET', '/openapi.json')).body;
    expect(doc.openapi).toBe('3.1.0');
    for (const [p, m] of [
      ['/v1/search', 'post'],
      ['/v1/ask', 'post'],
      ['/v1/chat/completions', 'post'],
      ['/v1/models', 'get'],
      ['/v1/documents', 'post'],
      ['/v1/documents', 'get'],
      ['/v1/documents/upload', 'post'],
      ['/v1/documents/{id}', 'get'],
      ['/v1/documents/{id}', 'delete'],
      ['/v1/collections', 'post'],
      ['/v1/feedback', 'post'],
      ['/v1/traces/{id}', 'get'],
      ['/v1/admin/pii/restore', 'post'],
      ['/metrics', 'get'],
    ] as const)
      expect(doc.paths[p]?.[m], `${m} ${p}`).toBeDefined();
    const search = doc.paths['/v1/search'].post.requestBody.content['application/json'].schema;
    expect(search.required).toContain('query');
    expect(search.properties.k).toMatchObject({ type: 'integer', minimum: 1, maximum: 200 });
    expect(search.additionalProperties).toBe(false);
    expect(doc.components.schemas.ErrorCode.enum).toContain('BUDGET_EXCEEDED');
  });

  it('GET /metrics is Prometheus text with request counters', async () => {
    const r = await t.call('GET', '/metrics');
    expect(r.status).toBe(200);
    expect(r.headers.get('content-type')).toMatch(/^text\/plain/);
    expect(r.body).toMatch(/^# TYPE quarry_http_requests_total counter$/m);
    // The pipeline's series are served too: stage latency, HTTP latency, cache lookups, answers.
    expect(r.body).toMatch(/quarry_stage_duration_seconds_count\{stage="retrieve.bm25"\} [1-9]/);
    expect(r.body).toMatch(
      /quarry_http_request_duration_seconds_count\{method="POST",route="\/v1\/ask",status="200"\} [1-9]/,
    );
    expect(r.body).toMatch(/quarry_cache_lookups_total\{layer="retrieval",result="(hit|miss)"\} [1-9]/);
    expect(r.body).toMatch(/quarry_answers_total\{answerer="extractive"\} [1-9]/);
    expect(r.body).toMatch(/quarry_index_version_age_seconds\{collection="default"\} [0-9.]+/);
    // Every sample line parses as Prometheus text: name{labels} value.
    for (const line of (r.body as string).split('\n')) {
      if (line === '' || line.startsWith('#')) continue;
      expect(line).toMatch(/^[a-zA-Z_:][a-zA-Z0-9_:]*(\{[^}]*\})? -?[0-9.e+-]+|NaN|[+-]Inf$/);
    }
    expect(r.body).toMatch(
      /quarry_http_requests_total\{method="POST",route="\/v1\/search",status="200"\} [1-9]/,
    );
  });
});

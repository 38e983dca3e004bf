import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { QuarryError } from '../../src/errors.js';
import {
  createHttpReranker,
  HttpRerankerConfigSchema,
  type HttpRerankerOptions,
  type RerankRetryInfo,
} from '../../src/rerank/http-reranker.js';
import type { RerankScore } from '../../src/rerank/types.js';
import { failure } from '../fixtures/rejection.js';
import { FakeRerankServer, type Flavor, fakeScore, teiScore } from './fake-rerank-server.js';
import { hitsOf } from './hits.js';

const QUERY = 'how does the store survive a crash';
const DOCS = [
  'Quarry ingests Markdown and PDF files.',
  'Every batch is one transaction, so the store survives a crash.',
  'A crash during ingest leaves each document present or absent.',
  'BM25 uses Lucene norms.',
  'The store is one SQLite directory.',
];

const servers = {} as Record<Flavor, FakeRerankServer>;

beforeAll(async () => {
  for (const f of ['cohere', 'jina', 'tei'] as const)
    servers[f] = await new FakeRerankServer(f, { slowMs: 5000 }).start();
});
afterAll(async () => {
  await Promise.all(Object.values(servers).map((s) => s.close()));
});
beforeEach(() => {
  for (const s of Object.values(servers)) s.reset();
});

const byIndex = (scores: RerankScore[]): number[] =>
  [...scores].sort((a, b) => a.index - b.index).map((s) => s.score);
const order = (scores: RerankScore[]): number[] =>
  [...scores].sort((a, b) => b.score - a.score).map((s) => s.index);
const expectedOrder = (docs: string[]): number[] =>
  docs
    .map((d, i) => ({ i, s: fakeScore(QUERY, d) }))
    .sort((a, b) => b.s - a.s)
    .map((x) => x.i);

function cohere(o: Partial<HttpRerankerOptions> = {}) {
  return createHttpReranker({
    flavor: 'cohere',
    baseURL: servers.cohere.url,
    apiKey: 'co-test-key',
    model: 'rerank-v3.5',
    initialBackoffMs: 1,
    maxBackoffMs: 5,
    ...o,
  } as HttpRerankerOptions);
}

describe('wire formats', () => {
  it('Cohere v2: POST /v2/rerank {model, query, documents, top_n} with a bearer key; scores follow result indexes', async () => {
    const r = cohere();
    expect(r.id).toBe('http:cohere/rerank-v3.5');
    const scores = await r.rerank({ query: QUERY, hits: hitsOf(DOCS) });
    const [req] = servers.cohere.requests;
    expect(req).toMatchObject({ method: 'POST', url: '/v2/rerank' });
    expect(req!.headers.authorization).toBe('Bearer co-test-key');
    expect(req!.headers['content-type']).toBe('application/json');
    expect(req!.body).toEqual({ model: 'rerank-v3.5', query: QUERY, documents: DOCS, top_n: 5 });
    // The server answers sorted by relevance; the scores must land on the right hits.
    expect(byIndex(scores)).toEqual(DOCS.map((d) => fakeScore(QUERY, d)));
    expect(order(scores)).toEqual(expectedOrder(DOCS));
    expect(order(scores).slice(0, 2)).toEqual([1, 4]);
    expect(r.stats).toMatchObject({ requests: 1, retries: 0, documents: 5, searchUnits: 1 });
  });

  it('Cohere v1: POST /v1/rerank and asks for no documents back', async () => {
    const r = cohere({ apiVersion: 'v1' });
    await r.rerank({ query: QUERY, hits: hitsOf(DOCS) });
    expect(servers.cohere.requests[0]).toMatchObject({
      url: '/v1/rerank',
      body: { model: 'rerank-v3.5', query: QUERY, documents: DOCS, top_n: 5, return_documents: false },
    });
  });

  it('Jina: POST /v1/rerank, documents not echoed, token usage counted', async () => {
    const r = createHttpReranker({
      flavor: 'jina',
      baseURL: servers.jina.url,
      apiKey: 'jina_key',
      model: 'jina-reranker-v2-base-multilingual',
    });
    const scores = await r.rerank({ query: QUERY, hits: hitsOf(DOCS) });
    expect(servers.jina.requests[0]).toMatchObject({
      url: '/v1/rerank',
      body: {
        model: 'jina-reranker-v2-base-multilingual',
        query: QUERY,
        documents: DOCS,
        top_n: 5,
        return_documents: false,
      },
    });
    expect(servers.jina.requests[0]!.headers.authorization).toBe('Bearer jina_key');
    expect(byIndex(scores)).toEqual(DOCS.map((d) => fakeScore(QUERY, d)));
    expect(r.stats.tokens).toBe(35);
  });

  it('TEI: POST /rerank {query, texts, raw_scores}, no key, id from the host', async () => {
    const r = createHttpReranker({ flavor: 'tei', baseURL: `${servers.tei.url}/` });
    expect(r.id).toBe(`http:tei/${new URL(servers.tei.url).host}`);
    const scores = await r.rerank({ query: QUERY, hits: hitsOf(DOCS) });
    const [req] = servers.tei.requests;
    expect(req).toMatchObject({ url: '/rerank', body: { query: QUERY, texts: DOCS, raw_scores: false } });
    expect(req!.body).not.toHaveProperty('model');
    expect(req!.headers.authorization).toBeUndefined();
    expect(byIndex(scores)).toEqual(DOCS.map((d) => teiScore(QUERY, d, false)));
    expect(order(scores)).toEqual(expectedOrder(DOCS));

    const raw = createHttpReranker({
      flavor: 'tei',
      baseURL: servers.tei.url,
      rawScores: true,
      truncate: true,
    });
    const rawScores = await raw.rerank({ query: QUERY, hits: hitsOf(DOCS) });
    expect(servers.tei.requests[1]!.body).toMatchObject({ raw_scores: true, truncate: true });
    expect(byIndex(rawScores)).toEqual(DOCS.map((d) => teiScore(QUERY, d, true)));
  });

  it('sends the title in front of the text only when asked', async () => {
    await cohere({ includeTitle: true }).rerank({
      query: QUERY,
      hits: hitsOf(['body text'], 'Crash safety'),
    });
    expect(servers.cohere.requests[0]!.body.documents).toEqual(['Crash safety\nbody text']);
  });

  it('sends nothing for no hits', async () => {
    expect(await cohere().rerank({ query: QUERY, hits: [] })).toEqual([]);
    expect(servers.cohere.requests).toHaveLength(0);
  });
});

describe('batching', () => {
  it('splits a pool over maxDocumentsPerRequest and merges the scores back onto the right hits', async () => {
    const docs = Array.from({ length: 70 }, (_, i) =>
      i % 7 === 3 ? `passage ${i}: the store survives a crash` : `passage ${i} about ${'x '.repeat(i % 5)}`,
    );
    const r = createHttpReranker({ flavor: 'tei', baseURL: servers.tei.url, concurrency: 2 });
    const scores = await r.rerank({ query: QUERY, hits: hitsOf(docs) });
    // TEI's default client batch limit is 32.
    expect(servers.tei.requests.map((q) => (q.body.texts as string[]).length)).toEqual([32, 32, 6]);
    expect(servers.tei.requests.map((q) => (q.body.texts as string[])[0])).toEqual([
      docs[0],
      docs[32],
      docs[64],
    ]);
    expect(scores).toHaveLength(70);
    expect(byIndex(scores)).toEqual(docs.map((d) => teiScore(QUERY, d, false)));
    expect(order(scores).slice(0, 10)).toEqual([3, 10, 17, 24, 31, 38, 45, 52, 59, 66]);
  });

  it('keeps at most `concurrency` requests in flight', async () => {
    const slow = await new FakeRerankServer('cohere', { delayMs: 30 }).start();
    try {
      const r = cohere({ baseURL: slow.url, maxDocumentsPerRequest: 2, concurrency: 2 });
      const scores = await r.rerank({ query: QUERY, hits: hitsOf([...DOCS, ...DOCS]) });
      expect(slow.requests).toHaveLength(5);
      expect(slow.maxInFlight).toBe(2);
      expect(byIndex(scores)).toEqual([...DOCS, ...DOCS].map((d) => fakeScore(QUERY, d)));
    } finally {
      await slow.close();
    }
  });
});

describe('retries', () => {
  it('retries 429 after the Retry-After the server asked for', async () => {
    const fast = await new FakeRerankServer('cohere', { retryAfter: '0.05' }).start();
    try {
      const retries: RerankRetryInfo[] = [];
      fast.reset(['429', '429']);
      const r = cohere({ baseURL: fast.url, onRetry: (i) => retries.push(i) });
      const scores = await r.rerank({ query: QUERY, hits: hitsOf(DOCS) });
      expect(fast.requests.map((q) => q.behaviour)).toEqual(['429', '429', 'ok']);
      expect(retries.map((i) => [i.retry, i.status, i.delayMs])).toEqual([
        [1, 429, 50],
        [2, 429, 50],
      ]);
      expect(retries[0]!.reason).toContain('limited to 10 API calls');
      expect(byIndex(scores)).toEqual(DOCS.map((d) => fakeScore(QUERY, d)));
      expect(r.stats.retries).toBe(2);
    } finally {
      await fast.close();
    }
  });

  it('fails at once when Retry-After asks for longer than maxRetryAfterMs', async () => {
    servers.cohere.reset(['429']);
    const e = await failure(cohere({ maxRetryAfterMs: 500 }).rerank({ query: QUERY, hits: hitsOf(DOCS) }));
    expect(e.code).toBe('RERANK_FAILED');
    expect(e.exitCode).toBe(10);
    expect(e.details).toMatchObject({ status: 429, retryAfterMs: 1000 });
    expect(servers.cohere.requests).toHaveLength(1);
  });

  it('retries 5xx and dropped connections with backoff, then gives up naming the attempts', async () => {
    servers.cohere.reset(['500', 'reset']);
    const ok = await cohere().rerank({ query: QUERY, hits: hitsOf(DOCS) });
    expect(ok).toHaveLength(5);
    expect(servers.cohere.requests).toHaveLength(3);

    servers.cohere.reset(['500', '503', '500']);
    const e = await failure(cohere({ maxRetries: 2 }).rerank({ query: QUERY, hits: hitsOf(DOCS) }));
    expect(e.details).toMatchObject({ status: 500, attempts: 3 });
    expect(e.message).toContain('HTTP 500');
    expect(e.message).toContain('internal server error');
    expect(servers.cohere.requests).toHaveLength(3);
  });

  it('never retries other 4xx and reports the server’s own message', async () => {
    servers.cohere.reset(['401']);
    const e = await failure(cohere().rerank({ query: QUERY, hits: hitsOf(DOCS) }));
    expect(e.message).toMatch(/HTTP 401.*invalid api token/);
    expect(servers.cohere.requests).toHaveLength(1);

    servers.tei.reset(['400']);
    const e2 = await failure(
      createHttpReranker({ flavor: 'tei', baseURL: servers.tei.url }).rerank({
        query: QUERY,
        hits: hitsOf(DOCS),
      }),
    );
    expect(e2.message).toContain('too many documents');
    expect(e2.details.status).toBe(400);
    expect(servers.tei.requests).toHaveLength(1);
  });
});

describe('response validation', () => {
  const cases: Array<[string, RegExp]> = [
    ['malformed', /invalid response: not JSON/],
    ['wrong-index', /results\[0\]\.index 5 is out of range for 5 document/],
    ['duplicate-index', /index 1 appears more than once/],
    ['missing-result', /4 score\(s\) for 5 document\(s\); no score for document\(s\) 0$/],
    ['nan-score', /results\[0\]\.relevance_score is "NaN", not a finite number/],
  ];
  for (const [behaviour, message] of cases) {
    it(`rejects a response with ${behaviour} and does not retry it`, async () => {
      servers.cohere.reset([behaviour as 'malformed']);
      const e = await failure(cohere().rerank({ query: QUERY, hits: hitsOf(DOCS) }));
      expect(e.code).toBe('RERANK_FAILED');
      expect(e.message).toMatch(message);
      expect(servers.cohere.requests).toHaveLength(1);
    });
  }

  it('names the TEI fields in its messages', async () => {
    servers.tei.reset(['nan-score']);
    const e = await failure(
      createHttpReranker({ flavor: 'tei', baseURL: servers.tei.url }).rerank({
        query: QUERY,
        hits: hitsOf(DOCS),
      }),
    );
    expect(e.message).toMatch(/the response\[0\]\.score is "NaN"/);
  });

  it('fails the whole request when one slice of a split pool is invalid', async () => {
    servers.cohere.reset(['ok', 'wrong-index']);
    const e = await failure(
      cohere({ maxDocumentsPerRequest: 3, concurrency: 1 }).rerank({ query: QUERY, hits: hitsOf(DOCS) }),
    );
    expect(e.message).toContain('out of range for 2 document(s)');
  });
});

describe('timeouts and cancellation', () => {
  it('times out waiting for headers (connect) and for the body (read), and retries a timeout', async () => {
    servers.cohere.reset(['slow-headers']);
    const e = await failure(
      cohere({ connectTimeoutMs: 100, maxRetries: 0 }).rerank({ query: QUERY, hits: hitsOf(DOCS) }),
    );
    expect(e.message).toContain('connect timeout');
    expect(e.details).toMatchObject({ timeout: 'connect', timeoutMs: 100 });

    servers.cohere.reset(['slow-body']);
    const e2 = await failure(
      cohere({ readTimeoutMs: 100, maxRetries: 0 }).rerank({ query: QUERY, hits: hitsOf(DOCS) }),
    );
    expect(e2.message).toContain('read timeout');

    servers.cohere.reset(['slow-headers', 'ok']);
    const ok = await cohere({ connectTimeoutMs: 100, maxRetries: 1 }).rerank({
      query: QUERY,
      hits: hitsOf(DOCS),
    });
    expect(byIndex(ok)).toEqual(DOCS.map((d) => fakeScore(QUERY, d)));
    await expect.poll(() => servers.cohere.requests[0]!.clientClosed).toBe(true);
  });

  it('aborting the request signal rejects with its reason and closes the connection', async () => {
    servers.cohere.reset(['slow-headers']);
    const ctl = new AbortController();
    const budget = new Error('rerank budget exhausted');
    const pending = cohere().rerank({ query: QUERY, hits: hitsOf(DOCS), signal: ctl.signal });
    await expect.poll(() => servers.cohere.requests.length).toBe(1);
    ctl.abort(budget);
    await expect(pending).rejects.toBe(budget);
    await expect.poll(() => servers.cohere.requests[0]!.clientClosed).toBe(true);
    expect(servers.cohere.requests).toHaveLength(1);
  });

  it('an abort during the retry backoff stops at once', async () => {
    servers.cohere.reset(['500']);
    const ctl = new AbortController();
    const budget = new Error('rerank budget exhausted');
    const r = cohere({ initialBackoffMs: 60_000, maxBackoffMs: 60_000, onRetry: () => ctl.abort(budget) });
    await expect(r.rerank({ query: QUERY, hits: hitsOf(DOCS), signal: ctl.signal })).rejects.toBe(budget);
    expect(servers.cohere.requests).toHaveLength(1);
    const pre = new AbortController();
    pre.abort(budget);
    await expect(cohere().rerank({ query: QUERY, hits: hitsOf(DOCS), signal: pre.signal })).rejects.toBe(
      budget,
    );
    expect(servers.cohere.requests).toHaveLength(1);
  });
});

describe('configuration', () => {
  it('refuses incomplete or contradictory options with INVALID_CONFIG naming the field', () => {
    const bad: Array<[unknown, string]> = [
      [{ flavor: 'cohere' }, 'model'],
      [{ flavor: 'tei' }, 'baseURL'],
      [{ flavor: 'tei', baseURL: 'ftp://example.com' }, 'baseURL'],
      [{ flavor: 'jina', model: 'm', rawScores: true }, 'rawScores'],
      [{ flavor: 'jina', model: 'm', apiVersion: 'v1' }, 'apiVersion'],
      [{ flavor: 'cohere', model: 'm', maxDocumentsPerRequest: 0 }, 'maxDocumentsPerRequest'],
      [{ flavor: 'cohere', model: 'm', topN: 3 }, 'topN'],
    ];
    for (const [opts, field] of bad) {
      let e: unknown;
      try {
        createHttpReranker(opts as HttpRerankerOptions);
      } catch (x) {
        e = x;
      }
      expect(e, JSON.stringify(opts)).toBeInstanceOf(QuarryError);
      expect((e as QuarryError).code).toBe('INVALID_CONFIG');
      expect((e as QuarryError).message).toContain(field);
    }
  });

  it('defaults to the public endpoints and sensible limits', () => {
    expect(createHttpReranker({ flavor: 'cohere', model: 'rerank-v3.5' }).url).toBe(
      'https://api.cohere.com/v2/rerank',
    );
    expect(createHttpReranker({ flavor: 'jina', model: 'j' }).url).toBe('https://api.jina.ai/v1/rerank');
    expect(HttpRerankerConfigSchema.parse({ flavor: 'tei', baseURL: 'http://tei:8080' })).toMatchObject({
      concurrency: 4,
      maxRetries: 3,
      connectTimeoutMs: 10_000,
      readTimeoutMs: 30_000,
    });
  });
});

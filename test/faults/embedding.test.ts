/**
 * Embedding-service faults through the real HTTP server: a fake OpenAI-compatible `/v1/embeddings` on
 * loopback fails while a hybrid search embeds its query (the search answers from BM25 alone and lists the
 * dense retriever as degraded) and while an ingest embeds new chunks (the request fails with
 * EMBEDDING_FAILED naming what was written; the documents are stored whole, `quarry check` finds nothing,
 * BM25 finds them, and the dense index catches up once the service is back, without a restart).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../cli/run-cli.js';
import { type Behaviour, FakeOpenAIServer } from '../embed/providers/fake-openai-server.js';
import { HANDBOOK, parseSse, startTestServer, type TestServer } from '../server/harness.js';
import { type Degradation, degradedTotal, timed } from './helpers.js';

const TIMEOUT_MS = 400;
let fake: FakeOpenAIServer;
let t: TestServer;

beforeAll(async () => {
  fake = await new FakeOpenAIServer({ dim: 8, slowMs: 3000, retryAfter: '1' }).start();
  t = await startTestServer({
    docs: HANDBOOK,
    pipeline: {
      retrieval: {
        retriever: 'hybrid',
        dense: {
          models: [
            {
              name: 'remote',
              provider: 'openai',
              baseURL: fake.url,
              model: 'emb',
              // One retry (two attempts) with fast backoff and short deadlines.
              maxRetries: 1,
              initialBackoffMs: 1,
              connectTimeoutMs: TIMEOUT_MS,
              readTimeoutMs: TIMEOUT_MS,
            },
          ],
        },
      },
    },
  });
});

afterAll(async () => {
  await t?.close();
  await fake?.close();
  console.log(`Embedding faults:\n${figures.join('\n')}`);
});

const figures: string[] = [];

async function search(query: string) {
  const r = await t.call('POST', '/v1/search', { body: { query, k: 3, cache: false } });
  expect(r.status).toBe(200);
  return r.body as {
    hits: Array<{ document: { id: string }; scores: Record<string, unknown> }>;
    degraded: Degradation[];
  };
}

interface SearchFault {
  name: string;
  script: Behaviour[];
  requests: number;
  reason: RegExp;
  /** The reason class on `quarry_degraded_total`: "did not run" is `unavailable`, unless it timed out. */
  klass: 'timeout' | 'unavailable';
}

const SEARCH_FAULTS: SearchFault[] = [
  { name: '500 twice', script: ['500', '500'], requests: 2, reason: /500/, klass: 'unavailable' },
  {
    name: 'no response headers past the timeout, twice',
    script: ['slow-headers', 'slow-headers'],
    requests: 2,
    reason: /time|timed out/i,
    klass: 'timeout',
  },
  {
    name: 'headers, then the body stalls past the timeout, twice',
    script: ['slow-body', 'slow-body'],
    requests: 2,
    reason: /time|timed out/i,
    klass: 'timeout',
  },
  {
    name: 'a body that is not JSON',
    script: ['malformed'],
    requests: 1,
    reason: /not JSON/,
    klass: 'unavailable',
  },
  {
    name: 'a vector of the wrong dimension',
    script: ['wrong-length'],
    requests: 1,
    reason: /dimension|length/i,
    klass: 'unavailable',
  },
  {
    name: 'the connection reset, twice',
    script: ['reset', 'reset'],
    requests: 2,
    reason: /network|socket|fetch failed/i,
    klass: 'unavailable',
  },
];

describe('an embedding service failing at query time', () => {
  const queries = [
    'ferry timetable Kennacraig',
    'refund to the original card',
    'when do ferries leave Islay',
    'refunds paid within working days',
    'ticket price of the ferry',
    'card refund request',
  ];
  SEARCH_FAULTS.forEach((c, i) => {
    it(`${c.name}: hybrid answers from BM25 alone, retrieve.dense degraded and counted; then recovers`, async () => {
      const before = await degradedTotal(t, 'retrieve.dense', c.klass);
      fake.reset(c.script);
      const { value: r, ms } = await timed(() => search(queries[i]!));
      expect(fake.requests).toHaveLength(c.requests);
      expect(r.hits.length).toBeGreaterThan(0);
      expect(r.hits.every((h) => h.scores.dense === undefined && h.scores.bm25 !== undefined)).toBe(true);
      expect(r.degraded).toEqual([{ stage: 'retrieve.dense', reason: expect.stringMatching(c.reason) }]);
      expect(await degradedTotal(t, 'retrieve.dense', c.klass)).toBe(before + 1);

      // Recovered: the next query is embedded and dense scores are back, nothing degraded.
      fake.reset();
      const { value: back, ms: backMs } = await timed(() => search(`${queries[i]!} again`));
      expect(back.degraded).toEqual([]);
      expect(back.hits.some((h) => h.scores.dense !== undefined)).toBe(true);
      expect(fake.requests).toHaveLength(1);
      figures.push(`search | ${c.name} | ${c.requests} | ${Math.round(ms)} | ${Math.round(backMs)}`);
    });
  });

  it('a 429 with Retry-After: 1 is retried after the wait: dense answers, nothing degraded', async () => {
    fake.reset(['429']);
    const { value: r, ms } = await timed(() => search('salary bands of senior engineers'));
    expect(fake.requests).toHaveLength(2);
    expect(fake.requests[1]!.at - fake.requests[0]!.at).toBeGreaterThanOrEqual(950);
    expect(r.degraded).toEqual([]);
    expect(r.hits.some((h) => h.scores.dense !== undefined)).toBe(true);
    figures.push(`search | 429 Retry-After: 1, then 200 | 2 | ${Math.round(ms)} | —`);
  });
});

describe('an embedding service failing during ingest', () => {
  const doc = {
    id: 'lighthouse',
    markdown: '# Lighthouse keepers\n\nThe lighthouse on Rhinns of Islay is kept by two keepers in shifts.',
  };

  it('the request fails with EMBEDDING_FAILED naming what was written; the store is whole; dense catches up', async () => {
    fake.reset(['500', '500']);
    const { value: r, ms } = await timed(() =>
      t.call('POST', '/v1/documents', { body: { documents: [doc] } }),
    );
    expect(r.status).toBe(502);
    expect(r.body.error.code).toBe('EMBEDDING_FAILED');
    expect(r.body.error.message).toMatch(/the documents were written \(1 added, 0 updated, 0 removed\)/);
    expect(r.body.error.details.written).toEqual({ added: 1, updated: 0, removed: 0 });
    expect(fake.requests).toHaveLength(2);
    expect(String((await t.call('GET', '/metrics')).body)).toMatch(
      /quarry_http_errors_total\{code="EMBEDDING_FAILED"\} [1-9]/,
    );

    // Stored whole: the document with its text, found by BM25, and the store passes `quarry check`.
    const got = await t.call('GET', '/v1/documents/lighthouse');
    expect(got.status).toBe(200);
    const bm25 = await t.call('POST', '/v1/search', {
      body: { query: 'lighthouse keepers Rhinns', retriever: 'bm25', cache: false },
    });
    expect(bm25.body.hits[0].document.id).toBe('lighthouse');
    const check = await runCli(['check', '--store', t.store, '--json']);
    expect(check.code, check.stderr).toBe(0);
    expect(JSON.parse(check.stdout).ok).toBe(true);
    const unembedded = await unembeddedChunks();
    expect(unembedded).toBeGreaterThan(0);

    // Still failing: a hybrid search (which first tries to catch the dense index up) answers from BM25.
    fake.reset(Array.from({ length: 10 }, () => '500' as const));
    const during = await t.call('POST', '/v1/search', {
      body: { query: 'lighthouse keepers on Islay', cache: false },
    });
    expect(during.status).toBe(200);
    expect(during.body.hits[0].document.id).toBe('lighthouse');
    expect(during.body.degraded).toEqual([{ stage: 'retrieve.dense', reason: expect.stringMatching(/500/) }]);

    // Back: the next hybrid search embeds the missing chunks first and finds the document by dense too.
    fake.reset();
    const { value: back, ms: backMs } = await timed(() => search('lighthouse keepers in shifts'));
    expect(back.degraded).toEqual([]);
    const hit = back.hits.find((h) => h.document.id === 'lighthouse');
    expect(hit?.scores.dense).toBeDefined();
    expect(await unembeddedChunks()).toBe(0);

    // Nothing doubled: the same document again is unchanged (no new version).
    const again = await t.call('POST', '/v1/documents', { body: { documents: [doc] } });
    expect(again.status).toBe(200);
    expect(again.body).toMatchObject({ added: 0, updated: 0, unchanged: 1 });
    figures.push(
      `ingest | 500 twice while embedding | 2 | ${Math.round(ms)} (502 EMBEDDING_FAILED, ${unembedded} chunk(s) waiting) | ${Math.round(backMs)}`,
    );
  });
});

describe('an embedding service failing during a streamed upload', () => {
  it('the stream ends with an EMBEDDING_FAILED error event, the file stored whole, then embedded', async () => {
    fake.reset(['reset', 'reset']);
    const form = new FormData();
    form.append(
      'file',
      new Blob(['# Harbour dues\n\nHarbour dues at Port Ellen are paid at the pier office.']),
      'harbour.md',
    );
    const res = await fetch(`${t.url}/v1/documents/upload?stream=true`, { method: 'POST', body: form });
    expect(res.status).toBe(200);
    const events = parseSse(await res.text());
    const names = events.map((e) => e.event);
    expect(names.at(-1)).toBe('done');
    const error = events.find((e) => e.event === 'error')?.data;
    expect(error).toMatchObject({ code: 'EMBEDDING_FAILED' });
    expect(error.message).toMatch(/the documents were written \(1 added/);
    expect(fake.requests).toHaveLength(2);
    const check = await runCli(['check', '--store', t.store, '--json']);
    expect(check.code, check.stderr).toBe(0);

    fake.reset();
    const back = await search('harbour dues Port Ellen pier');
    expect(back.degraded).toEqual([]);
    expect(back.hits[0]?.scores.dense).toBeDefined();
    expect(await unembeddedChunks()).toBe(0);
  });
});

async function unembeddedChunks(): Promise<number> {
  const text = String((await t.call('GET', '/metrics')).body);
  const line = text.split('\n').find((l) => l.startsWith('quarry_index_unembedded_chunks{'));
  return line === undefined ? 0 : Number(line.split(' ').pop());
}

import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { cachedEmbedder, MemoryEmbeddingCache } from '../../../src/embed/cache.js';
import {
  createOpenAIEmbedder,
  type OpenAIEmbedderOptions,
  parseRetryAfter,
} from '../../../src/embed/providers/openai.js';
import { assertSameModel } from '../../../src/embed/types.js';
import type { QuarryError } from '../../../src/errors.js';
import { failure } from '../../fixtures/rejection.js';
import { FakeOpenAIServer, fakeVector } from './fake-openai-server.js';

let server: FakeOpenAIServer;

beforeAll(async () => {
  server = await new FakeOpenAIServer({ dim: 8, slowMs: 1500 }).start();
});
afterAll(async () => {
  await server.close();
});
beforeEach(() => {
  server.reset();
  server.opts.delayMs = 0;
});

const make = (o: Partial<OpenAIEmbedderOptions> = {}) =>
  createOpenAIEmbedder({
    baseURL: server.url,
    apiKey: 'sk-test',
    model: 'text-embedding-3-small',
    initialBackoffMs: 10,
    maxBackoffMs: 50,
    ...o,
  });

const texts = (n: number) => Array.from({ length: n }, (_, i) => `text number ${i}`);

describe('OpenAI-compatible embedder: wire format', () => {
  it('posts model, input array and dimensions with a bearer token, and reorders by index', async () => {
    const e = make({ dimensions: 8 });
    expect(e.id).toBe('openai:text-embedding-3-small');
    expect(e.dimension).toBe(8);
    const input = ['alpha', 'beta', 'gamma'];
    const out = await e.embed(input);
    expect(server.requests).toHaveLength(1);
    const r = server.requests[0]!;
    expect(r.url).toBe('/v1/embeddings');
    expect(r.headers.authorization).toBe('Bearer sk-test');
    expect(r.headers['content-type']).toBe('application/json');
    expect(r.body).toEqual({ model: 'text-embedding-3-small', input, dimensions: 8 });
    // The fake answers in reverse order: the client must have put them back by `index`.
    expect(out.map((v) => Array.from(v))).toEqual(input.map((t) => Array.from(fakeVector(t, 8))));
    expect(e.stats).toMatchObject({
      requests: 1,
      retries: 0,
      promptTokens: 9,
      serverModel: 'text-embedding-3-small',
    });
  });

  it('omits Authorization and dimensions when not configured, and learns the dimension from the first response', async () => {
    const e = make({ apiKey: undefined, id: 'ollama:nomic-embed-text' });
    expect(e.id).toBe('ollama:nomic-embed-text');
    expect(e.dimension).toBe(0);
    await e.embed(['x']);
    expect(server.requests[0]!.headers.authorization).toBeUndefined();
    expect(server.requests[0]!.body).toEqual({ model: 'text-embedding-3-small', input: ['x'] });
    expect(e.dimension).toBe(8);
  });

  it('requests and decodes base64 embeddings', async () => {
    const e = make({ encodingFormat: 'base64' });
    const out = await e.embed(['one', 'two']);
    expect(server.requests[0]!.body.encoding_format).toBe('base64');
    expect(Array.from(out[1]!)).toEqual(Array.from(fakeVector('two', 8)));
  });

  it('applies query / document prefixes by kind', async () => {
    const e = make({ queryPrefix: 'search_query: ', documentPrefix: 'search_document: ' });
    expect(e.distinguishesKind).toBe(true);
    await e.embed(['q'], { kind: 'query' });
    await e.embed(['d']);
    expect(server.requests.map((r) => r.body.input)).toEqual([['search_query: q'], ['search_document: d']]);
  });

  it('returns [] for no texts without a request', async () => {
    expect(await make().embed([])).toEqual([]);
    expect(server.requests).toHaveLength(0);
  });
});

describe('OpenAI-compatible embedder: batching and concurrency', () => {
  it('splits M texts into ceil(M / batchSize) requests and keeps input order', async () => {
    const e = make({ batchSize: 4, concurrency: 2 });
    const input = texts(10);
    const out = await e.embed(input);
    expect(server.requests).toHaveLength(3);
    expect(server.requests.map((r) => r.body.input!.length).sort()).toEqual([2, 4, 4]);
    expect(out.map((v) => Array.from(v))).toEqual(input.map((t) => Array.from(fakeVector(t, 8))));
  });

  it('never has more than `concurrency` requests in flight, across concurrent calls', async () => {
    server.opts.delayMs = 40;
    const e = make({ batchSize: 2, concurrency: 3 });
    const [a, b] = await Promise.all([e.embed(texts(12)), e.embed(texts(8).map((t) => `b ${t}`))]);
    expect(a).toHaveLength(12);
    expect(b).toHaveLength(8);
    expect(server.requests).toHaveLength(10);
    expect(server.maxInFlight).toBe(3);
  });
});

describe('OpenAI-compatible embedder: retries', () => {
  it('retries a 429 after the Retry-After delay (seconds)', async () => {
    server.reset(['429']);
    const retries: number[] = [];
    const e = make({ onRetry: (i) => retries.push(i.delayMs) });
    const out = await e.embed(['a', 'b']);
    expect(out).toHaveLength(2);
    expect(server.requests.map((r) => r.behaviour)).toEqual(['429', 'ok']);
    const gap = server.requests[1]!.at - server.requests[0]!.at;
    expect(gap).toBeGreaterThanOrEqual(950);
    expect(gap).toBeLessThan(1800);
    expect(retries).toEqual([1000]);
    expect(e.stats.retries).toBe(1);
  });

  it('retries 5xx with backoff, honouring retry-after-ms', async () => {
    server.reset(['500', '503-retry-after-ms', '500']);
    const delays: number[] = [];
    const e = make({ onRetry: (i) => delays.push(i.delayMs) });
    await e.embed(['a']);
    expect(server.requests).toHaveLength(4);
    expect(delays[1]).toBe(50);
    expect(delays[0]).toBeGreaterThanOrEqual(5);
    expect(delays[0]).toBeLessThanOrEqual(50);
  });

  it('retries network errors (connection reset)', async () => {
    server.reset(['reset', 'ok']);
    const out = await make().embed(['a']);
    expect(out).toHaveLength(1);
    expect(server.requests).toHaveLength(2);
  });

  it('gives up after maxRetries with the status and a body excerpt', async () => {
    server.reset(['500', '500', '500', '500']);
    const err = await failure(make({ maxRetries: 2 }).embed(['a']));
    expect(server.requests).toHaveLength(3);
    expect(err.code).toBe('EMBEDDING_FAILED');
    expect(err.message).toContain('HTTP 500');
    expect(err.message).toContain('The server had an error processing your request.');
    expect(err.details).toMatchObject({ status: 500, attempts: 3 });
    expect(String(err.details.body)).toContain('error');
  });

  it('does not retry a 401, and says why', async () => {
    server.reset(['401', 'ok']);
    const err = await failure(make().embed(['a']));
    expect(server.requests).toHaveLength(1);
    expect(err.code).toBe('EMBEDDING_FAILED');
    expect(err.message).toContain('HTTP 401');
    expect(err.message).toContain('Incorrect API key provided');
    expect(err.details.status).toBe(401);
    expect(err.exitCode).toBe(8);
  });

  it('does not retry other 4xx', async () => {
    server.reset(['400']);
    const err = await failure(make().embed(['a']));
    expect(server.requests).toHaveLength(1);
    expect(err.details.status).toBe(400);
  });

  it('fails instead of waiting when Retry-After exceeds maxRetryAfterMs', async () => {
    server.reset(['429']);
    const err = await failure(make({ maxRetryAfterMs: 200 }).embed(['a']));
    expect(server.requests).toHaveLength(1);
    expect(err.details).toMatchObject({ status: 429, retryAfterMs: 1000 });
  });

  it('parses Retry-After as seconds or an HTTP date', () => {
    const now = Date.parse('2025-01-01T00:00:00Z');
    expect(parseRetryAfter('2', now)).toBe(2000);
    expect(parseRetryAfter('0.5', now)).toBe(500);
    expect(parseRetryAfter('Wed, 01 Jan 2025 00:00:03 GMT', now)).toBe(3000);
    expect(parseRetryAfter('Tue, 31 Dec 2024 23:59:00 GMT', now)).toBe(0);
    expect(parseRetryAfter('soon', now)).toBeUndefined();
    expect(parseRetryAfter(null, now)).toBeUndefined();
  });
});

describe('OpenAI-compatible embedder: timeouts and bad responses', () => {
  it('times out waiting for the response headers and retries', async () => {
    server.reset(['slow-headers', 'ok']);
    const t0 = performance.now();
    const out = await make({ connectTimeoutMs: 200 }).embed(['a']);
    expect(out).toHaveLength(1);
    expect(server.requests).toHaveLength(2);
    expect(performance.now() - t0).toBeLessThan(1200);
  });

  it('times out reading a stalled body, and reports the timeout when retries run out', async () => {
    server.reset(['slow-body', 'slow-body']);
    const t0 = performance.now();
    const err = await failure(make({ readTimeoutMs: 200, maxRetries: 1 }).embed(['a']));
    expect(performance.now() - t0).toBeLessThan(1200);
    expect(server.requests).toHaveLength(2);
    expect(err.details).toMatchObject({ timeout: 'read', timeoutMs: 200, attempts: 2 });
    expect(err.message).toContain('read timeout');
  });

  it('rejects malformed JSON without retrying', async () => {
    server.reset(['malformed']);
    const err = await failure(make().embed(['a']));
    expect(server.requests).toHaveLength(1);
    expect(err.message).toContain('invalid response: not JSON');
  });

  it('rejects a vector whose length differs from the learned dimension', async () => {
    const e = make();
    await e.embed(['first']);
    expect(e.dimension).toBe(8);
    server.reset(['wrong-length']);
    const err = await failure(e.embed(['a', 'b']));
    expect(err.message).toContain('dimension 9, expected 8');
    expect(err.details).toMatchObject({ expected: 8, actual: 9 });
  });

  it('rejects a vector whose length differs from the requested dimensions', async () => {
    server.reset(['wrong-length']);
    const err = await failure(make({ dimensions: 8 }).embed(['a', 'b']));
    expect(err.details).toMatchObject({ expected: 8, actual: 9 });
  });

  it('rejects a response with the wrong number of embeddings', async () => {
    server.reset(['wrong-count']);
    const err = await failure(make().embed(['a', 'b']));
    expect(err.message).toContain('1 embedding(s) for 2 input(s)');
  });

  it('reports an unreachable server as a network error', async () => {
    const err = await failure(make({ baseURL: 'http://127.0.0.1:1/v1', maxRetries: 1 }).embed(['a']));
    expect(err.message).toContain('network error');
    expect(err.details.attempts).toBe(2);
  });

  it('stops at once when the caller aborts, even mid-backoff', async () => {
    server.reset(['429']);
    const ctl = new AbortController();
    const p = make().embed(['a'], { signal: ctl.signal });
    setTimeout(() => ctl.abort(new Error('caller gave up')), 100);
    const t0 = performance.now();
    await expect(p).rejects.toThrow('caller gave up');
    expect(performance.now() - t0).toBeLessThan(500);
    expect(server.requests).toHaveLength(1);
  });

  it('validates its options', () => {
    expect(() => make({ model: '' })).toThrow(/model name/);
    expect(() => make({ batchSize: 0 })).toThrow(/batchSize/);
    expect(() => make({ baseURL: 'not a url' })).toThrow(/baseURL/);
  });
});

describe('OpenAI-compatible embedder: cache and model guard', () => {
  it('serves repeated texts from the cache without touching the server', async () => {
    const cache = new MemoryEmbeddingCache();
    const e = cachedEmbedder(make({ batchSize: 2 }), cache);
    const first = await e.embed(['a', 'b', 'c']);
    expect(server.requests).toHaveLength(2);
    server.reset();
    const again = await e.embed(['c', 'a', 'b']);
    expect(server.requests).toHaveLength(0);
    expect(again.map((v) => Array.from(v))).toEqual(
      [first[2], first[0], first[1]].map((v) => Array.from(v!)),
    );
    const mixed = await e.embed(['a', 'new one', 'b']);
    expect(server.requests).toHaveLength(1);
    expect(server.requests[0]!.body.input).toEqual(['new one']);
    expect(Array.from(mixed[1]!)).toEqual(Array.from(fakeVector('new one', 8)));
    expect(e.stats).toEqual({ hits: 5, misses: 4 });
  });

  it('keys the cache on kind when prefixes make queries and documents differ', async () => {
    const cache = new MemoryEmbeddingCache();
    const e = cachedEmbedder(make({ queryPrefix: 'q: ' }), cache);
    await e.embed(['same'], { kind: 'query' });
    await e.embed(['same'], { kind: 'document' });
    await e.embed(['same'], { kind: 'query' });
    expect(server.requests.map((r) => r.body.input)).toEqual([['q: same'], ['same']]);
  });

  it('refuses an index built with another model', async () => {
    const e = make();
    await e.embed(['x']);
    expect(() =>
      assertSameModel({ modelId: 'openai:text-embedding-3-small', dimension: 8 }, e),
    ).not.toThrow();
    const err = (() => {
      try {
        assertSameModel({ modelId: 'onnx:0123456789ab', dimension: 384 }, e);
      } catch (x) {
        return x as QuarryError;
      }
      throw new Error('expected a throw');
    })();
    expect(err.code).toBe('EMBEDDING_MODEL_MISMATCH');
    expect(err.exitCode).toBe(5);
    expect(err.message).toContain('"onnx:0123456789ab" (dimension 384)');
    expect(err.message).toContain('"openai:text-embedding-3-small" (dimension 8)');
  });
});

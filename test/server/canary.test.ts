/**
 * Online A/B (the `canary` setting) on a real server: a share of keys is answered by the candidate
 * configuration (here: the learning-to-rank reranker on), sticky per key; the variant is in the response,
 * the header, the trace, the Prometheus series and the per-variant summary with feedback; an admin can force
 * a variant, nobody else can; a candidate that would change the index settings stops the server at start.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HANDBOOK, startTestServer, type TestServer } from './harness.js';

let srv: TestServer;
const KEYS = Array.from({ length: 24 }, (_, i) => ({ name: `k${i}`, scopes: ['query' as const] }));

beforeAll(async () => {
  srv = await startTestServer({
    docs: HANDBOOK,
    keys: [...KEYS, { name: 'admin', scopes: ['query', 'ingest', 'admin'] }],
    config: { canary: { name: 'ltr', share: 0.5, config: { rerank: { reranker: 'ltr' } } } },
  });
});
afterAll(async () => {
  await srv?.close();
});

describe('canary', () => {
  it('splits keys between the variants, sticky per key, and the candidate really runs its configuration', async () => {
    const seen = new Map<string, string>();
    for (const k of KEYS) {
      const variants = new Set<string>();
      for (let i = 0; i < 3; i++) {
        const r = await srv.call('POST', '/v1/search', {
          key: srv.keys[k.name],
          body: { query: 'refund card', trace: true },
        });
        expect(r.status).toBe(200);
        expect(r.headers.get('x-quarry-variant')).toBe(r.body.variant);
        variants.add(r.body.variant);
        // The candidate reranks; the current configuration does not (also when the answer comes from a cache:
        // each variant caches its own results).
        expect(r.body.rerank?.reranker === 'ltr:default').toBe(r.body.variant === 'ltr');
      }
      expect(variants.size).toBe(1);
      seen.set(k.name, [...variants][0]!);
    }
    const ltr = [...seen.values()].filter((v) => v === 'ltr').length;
    expect(ltr).toBeGreaterThan(3);
    expect(ltr).toBeLessThan(KEYS.length - 3);
  });

  it('records answers and feedback per variant: summary and metrics', async () => {
    const forced = await srv.call('POST', '/v1/ask', {
      key: srv.keys.admin,
      body: { question: 'When are refunds paid back?' },
      headers: { 'x-quarry-variant': 'ltr' },
    });
    expect(forced.body.variant).toBe('ltr');
    const fb = await srv.call('POST', '/v1/feedback', {
      key: srv.keys.admin,
      body: { queryId: forced.body.queryId, docId: 'refunds', helpful: true },
    });
    expect(fb.status).toBe(201);
    const current = await srv.call('POST', '/v1/ask', {
      key: srv.keys.admin,
      body: { question: 'When are refunds paid back?' },
      headers: { 'x-quarry-variant': 'default' },
    });
    expect(current.body.variant).toBe('default');

    const sum = await srv.call('GET', '/v1/admin/variants', { key: srv.keys.admin });
    expect(sum.status).toBe(200);
    expect(sum.body.canary).toEqual({ name: 'ltr', share: 0.5 });
    const by = Object.fromEntries(sum.body.variants.map((v: { variant: string }) => [v.variant, v]));
    expect(by.ltr.asks).toBe(1);
    expect(by.default.asks).toBe(1);
    expect(by.ltr.feedback).toEqual({ votes: 1, helpful: 1, helpfulRate: 1 });
    expect(by.default.feedback.votes).toBe(0);
    expect(by.ltr.requests + by.default.requests).toBe(KEYS.length * 3 + 2);
    expect(by.ltr.abstentionRate).toBe(0);
    expect(by.ltr.citationValidity).toBe(1);
    expect(by.ltr.latency_ms.p95).toBeGreaterThan(0);

    const metrics = await srv.call('GET', '/metrics', { key: srv.keys.admin });
    expect(metrics.body).toMatch(/quarry_variant_requests_total\{variant="ltr",route="\/v1\/ask"\} 1/);
    expect(metrics.body).toMatch(/quarry_variant_feedback_total\{variant="ltr",helpful="true"\} 1/);
    expect(metrics.body).toMatch(/quarry_variant_answers_total\{variant="default",outcome="answered"\} 1/);
  });

  it('only an admin may force a variant, and only one that exists', async () => {
    const r = await srv.call('POST', '/v1/search', {
      key: srv.keys.k0,
      body: { query: 'ferry' },
      headers: { 'x-quarry-variant': 'ltr' },
    });
    expect(r.status).toBe(403);
    const bad = await srv.call('POST', '/v1/search', {
      key: srv.keys.admin,
      body: { query: 'ferry' },
      headers: { 'x-quarry-variant': 'nope' },
    });
    expect(bad.status).toBe(400);
    expect(bad.body.error.message).toMatch(/no variant "nope"/);
    const summary = await srv.call('GET', '/v1/admin/variants', { key: srv.keys.k0 });
    expect(summary.status).toBe(403);
  });

  it('a candidate that would change the index settings stops the server at start, naming the canary', async () => {
    const started = await startTestServer({
      docs: HANDBOOK,
      config: { canary: { name: 'no-stem', share: 0.1, config: { analyzer: { stemmer: 'none' } } } },
    }).catch((e: unknown) => e);
    expect(String(started)).toMatch(
      /canary "no-stem" cannot open collection "default": Store was created with different index settings/,
    );
  });

  it('refuses a canary setting that is out of range or named default', async () => {
    for (const canary of [{ share: 1.5 }, { name: 'default', share: 0.1 }]) {
      const r = await startTestServer({ config: { canary } as never }).catch((e: unknown) => e);
      expect(String(r)).toMatch(/server configuration: canary\./);
    }
  });
});

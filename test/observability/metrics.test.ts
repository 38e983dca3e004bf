/**
 * Prometheus metrics from the real pipeline (real SQLite store of the sample docs, real retrievers and
 * answerers, the fake OpenAI-compatible LLM over real HTTP): the registry's text parses as the exposition
 * format line by line, and the series a dashboard needs carry the counts of what actually ran.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeEach, describe, expect, it } from 'vitest';
import {
  disableMetrics,
  enableMetrics,
  indexFreshness,
  metricsText,
  recordCacheLookup,
  registerIndexProbe,
  startHttpRequest,
  withRequestLabels,
} from '../../src/observability/metrics.js';
import { Quarry } from '../../src/pipeline/quarry.js';
import { useSamplesStoreWithLlm } from '../pipeline/samples-store.js';

const env = useSamplesStoreWithLlm('quarry-metrics-');
const dirs: string[] = [];
afterAll(() => {
  disableMetrics();
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
});
beforeEach(() => {
  disableMetrics();
  enableMetrics();
});

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** Parse the text exposition format strictly: HELP/TYPE comments and `name{labels} value` samples only. */
function parseExposition(text: string): { samples: Sample[]; types: Map<string, string> } {
  const samples: Sample[] = [];
  const types = new Map<string, string>();
  const help = new Set<string>();
  for (const line of text.split('\n')) {
    if (line === '') continue;
    let m = /^# HELP ([a-zA-Z_:][a-zA-Z0-9_:]*) .+$/.exec(line);
    if (m) {
      help.add(m[1]!);
      continue;
    }
    m = /^# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (counter|gauge|histogram|summary|untyped)$/.exec(line);
    if (m) {
      types.set(m[1]!, m[2]!);
      continue;
    }
    m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (-?(?:\d+(?:\.\d+)?(?:e[+-]?\d+)?|\+Inf|-Inf|NaN))$/.exec(
      line,
    );
    if (!m) throw new Error(`not exposition format: ${JSON.stringify(line)}`);
    const labels: Record<string, string> = {};
    const body = m[2] ?? '';
    const re = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"(,|$)/gy;
    let consumed = 0;
    for (let l = re.exec(body); l !== null; l = re.exec(body)) {
      labels[l[1]!] = l[2]!;
      consumed = re.lastIndex;
    }
    if (consumed !== body.length) throw new Error(`bad labels: ${JSON.stringify(line)}`);
    samples.push({ name: m[1]!, labels, value: Number(m[3]) });
  }
  // Every family that has a TYPE has a HELP, and every sample belongs to a typed family.
  for (const name of types.keys()) expect(help, name).toContain(name);
  for (const s of samples) {
    const family = s.name.replace(/_(bucket|sum|count)$/, '');
    expect(types.has(s.name) || types.has(family), s.name).toBe(true);
  }
  return { samples, types };
}

async function scrape() {
  return parseExposition((await metricsText()).text);
}

function value(samples: Sample[], name: string, labels: Record<string, string> = {}): number {
  return samples
    .filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))
    .reduce((a, s) => a + s.value, 0);
}

function open(extra: Record<string, unknown> = {}): Quarry {
  return Quarry.open({
    store: env.store,
    config: { cache: { retrievals: false, responses: false }, ...extra },
  });
}

describe('Prometheus metrics', () => {
  it('searches and asks fill the stage, request, score and answer series', async () => {
    const q = open();
    try {
      await q.search('how are documents split into chunks', { k: 5 });
      await q.search('what is bm25', { k: 5, reranker: 'ltr' });
      const answer = await q.ask('how are documents split into chunks');
      const { samples, types } = await scrape();
      expect(types.get('quarry_stage_duration_seconds')).toBe('histogram');
      expect(types.get('quarry_errors_total')).toBe('counter');
      expect(
        value(samples, 'quarry_request_duration_seconds_count', { operation: 'search', status: 'ok' }),
      ).toBe(2);
      expect(value(samples, 'quarry_request_duration_seconds_count', { operation: 'ask' })).toBe(1);
      // Three requests ran BM25 and loaded hits; one reranked.
      expect(value(samples, 'quarry_stage_duration_seconds_count', { stage: 'retrieve.bm25' })).toBe(3);
      expect(value(samples, 'quarry_stage_duration_seconds_count', { stage: 'hits.load' })).toBe(3);
      expect(value(samples, 'quarry_stage_duration_seconds_count', { stage: 'rerank' })).toBe(1);
      expect(value(samples, 'quarry_stage_duration_seconds_sum', { stage: 'retrieve.bm25' })).toBeGreaterThan(
        0,
      );
      expect(value(samples, 'quarry_retrieval_top1_score_count', { kind: 'fused' })).toBe(3);
      expect(value(samples, 'quarry_retrieval_top1_score_count', { kind: 'rerank' })).toBe(1);
      expect(value(samples, 'quarry_answers_total', { answerer: 'extractive' })).toBe(1);
      expect(value(samples, 'quarry_abstentions_total')).toBe(answer.abstained ? 1 : 0);
      // Cumulative histogram buckets end at +Inf = count.
      const inf = samples.find(
        (s) =>
          s.name === 'quarry_stage_duration_seconds_bucket' &&
          s.labels.stage === 'hits.load' &&
          s.labels.le === '+Inf',
      );
      expect(inf?.value).toBe(3);
    } finally {
      q.close();
    }
  });

  it('an abstention and a failed request are counted (the error by its code)', async () => {
    const q = open();
    try {
      const a = await q.ask('zzqx wibblefrotz quuxly');
      expect(a.abstained).toBe(true);
      await expect(q.search('chunks', { filter: { nope: { $regex: '(' } } })).rejects.toThrow();
      const { samples } = await scrape();
      expect(value(samples, 'quarry_abstentions_total', { answerer: 'extractive' })).toBe(1);
      expect(value(samples, 'quarry_errors_total', { operation: 'search', code: 'INVALID_FILTER' })).toBe(1);
      expect(
        value(samples, 'quarry_request_duration_seconds_count', { operation: 'search', status: 'error' }),
      ).toBe(1);
    } finally {
      q.close();
    }
  });

  it('a degraded stage increments the degraded counter by stage and reason class', async () => {
    const store = fs.mkdtempSync(path.join(os.tmpdir(), 'quarry-metrics-tiny-'));
    dirs.push(store);
    const q = Quarry.open({ store });
    try {
      await q.addDocuments([
        { id: 'a', markdown: '# Comets\n\nA zorblaxian comet crossed the sky.' },
        { id: 'b', markdown: '# Tides\n\nTides follow the moon.' },
      ]);
      const r = await q.search('zorblaxian comet', { retriever: 'dense' });
      expect(r.degraded.map((d) => d.stage)).toEqual(['retrieve.dense']);
      const { samples } = await scrape();
      expect(
        value(samples, 'quarry_degraded_total', { stage: 'retrieve.dense', reason: 'unavailable' }),
      ).toBe(1);
      expect(
        value(samples, 'quarry_request_duration_seconds_count', { operation: 'search', status: 'degraded' }),
      ).toBe(1);
      expect(
        value(samples, 'quarry_request_duration_seconds_count', { operation: 'ingest', status: 'ok' }),
      ).toBe(1);
    } finally {
      q.close();
    }
  });

  it('LLM tokens and cost are counted per key and tenant; unknown citations are guard events', async () => {
    env.server.respond = () => ({
      kind: 'reply',
      deltas: ['Documents are split into chunks [1]. See also [9].'],
      usage: { input: 400, output: 12 },
    });
    const q = open({
      llm: {
        provider: 'openai',
        baseURL: env.server.url,
        model: 'gpt-4o-mini',
        maxTokens: 200,
        contextWindow: 1200,
        maxRetries: 0,
        prices: { 'gpt-4o-mini': { input: 0.15, output: 0.6 } },
      },
    });
    try {
      const answer = await withRequestLabels({ keyId: 'k1', tenant: 'acme' }, () =>
        q.ask('how are documents split into chunks'),
      );
      expect(answer.usage?.inputTokens).toBe(400);
      const { samples } = await scrape();
      const who = { key: 'k1', tenant: 'acme', component: 'generate' };
      expect(value(samples, 'quarry_tokens_total', { ...who, direction: 'in' })).toBe(400);
      expect(value(samples, 'quarry_tokens_total', { ...who, direction: 'out' })).toBe(12);
      expect(value(samples, 'quarry_cost_usd_total', who)).toBeCloseTo(answer.usage!.costUsd!, 9);
      expect(
        value(samples, 'quarry_guard_events_total', { kind: 'unknown_citation' }),
      ).toBeGreaterThanOrEqual(1);
      expect(value(samples, 'quarry_answers_total', { answerer: 'llm' })).toBe(1);
    } finally {
      q.close();
      env.server.reset();
    }
  });

  it('cache lookups, HTTP requests and index staleness helpers export their series', async () => {
    recordCacheLookup('embedding', true);
    recordCacheLookup('embedding', false);
    recordCacheLookup('response', true);
    const done = startHttpRequest('POST', '/v1/search');
    let { samples } = await scrape();
    expect(value(samples, 'quarry_http_requests_in_flight', { route: '/v1/search' })).toBe(1);
    done(200);
    done(200); // idempotent
    const q = open();
    const stop = registerIndexProbe('default', () => indexFreshness(q.stats()));
    try {
      ({ samples } = await scrape());
      expect(value(samples, 'quarry_cache_lookups_total', { layer: 'embedding', result: 'hit' })).toBe(1);
      expect(value(samples, 'quarry_cache_lookups_total', { layer: 'embedding', result: 'miss' })).toBe(1);
      expect(value(samples, 'quarry_cache_lookups_total', { layer: 'response', result: 'hit' })).toBe(1);
      expect(value(samples, 'quarry_http_requests_in_flight', { route: '/v1/search' })).toBe(0);
      expect(
        value(samples, 'quarry_http_request_duration_seconds_count', { method: 'POST', status: '200' }),
      ).toBe(1);
      expect(
        samples.some(
          (s) => s.name === 'quarry_index_version_age_seconds' && s.labels.collection === 'default',
        ),
      ).toBe(true);
      expect(
        value(samples, 'quarry_index_version_age_seconds', { collection: 'default' }),
      ).toBeGreaterThanOrEqual(0);
    } finally {
      stop();
      q.close();
    }
  });

  it('nothing is collected before metrics are enabled', async () => {
    disableMetrics();
    const q = open();
    try {
      await q.search('chunks');
      recordCacheLookup('retrieval', true);
    } finally {
      q.close();
    }
    enableMetrics();
    const { samples } = await scrape();
    expect(value(samples, 'quarry_request_duration_seconds_count')).toBe(0);
    expect(value(samples, 'quarry_cache_lookups_total')).toBe(0);
  });
});

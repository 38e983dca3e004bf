/**
 * OpenTelemetry spans from the real pipeline: a real SQLite store of the sample docs, the real retrievers,
 * reranker and answerers, and the fake OpenAI-compatible LLM server over real HTTP. Spans go to the SDK's
 * in-memory exporter; names must come from the closed list, stage spans must be children of their
 * request span (itself a child of an active parent), and the `rag.*` attributes must hold real figures.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { context, trace } from '@opentelemetry/api';
import {
  BasicTracerProvider,
  InMemorySpanExporter,
  type ReadableSpan,
  SimpleSpanProcessor,
} from '@opentelemetry/sdk-trace-base';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { createLogger } from '../../src/observability/log.js';
import { configureTelemetry, SPAN_NAMES, shutdownTelemetry } from '../../src/observability/tracing.js';
import { Quarry } from '../../src/pipeline/quarry.js';
import { useSamplesStoreWithLlm } from '../pipeline/samples-store.js';

const env = useSamplesStoreWithLlm('quarry-tracing-');
const exporter = new InMemorySpanExporter();

afterEach(async () => {
  await shutdownTelemetry();
  exporter.reset();
});
afterAll(() => exporter.shutdown());

function open(withLlm = false): Quarry {
  return Quarry.open({
    store: env.store,
    config: {
      // Response and retrieval caches off: every call runs the pipeline.
      cache: { retrievals: false, responses: false },
      ...(withLlm
        ? {
            llm: {
              provider: 'openai',
              baseURL: env.server.url,
              model: 'gpt-4o-mini',
              maxTokens: 200,
              contextWindow: 1200,
              maxRetries: 0,
            },
          }
        : {}),
    },
  });
}

async function traced(): Promise<void> {
  // A fresh processor per test: shutting telemetry down shuts the provider (and its processor) down.
  const fresh = new InMemorySpanExporter();
  current = fresh;
  await configureTelemetry({ spanProcessor: new SimpleSpanProcessor(fresh) });
}
let current = exporter;
const spans = (): ReadableSpan[] => current.getFinishedSpans();
const parentOf = (s: ReadableSpan): string | undefined => s.parentSpanContext?.spanId;

function requestTree(name: string): { request: ReadableSpan; children: ReadableSpan[] } {
  const all = spans();
  const requests = all.filter((s) => s.name === name);
  expect(requests).toHaveLength(1);
  const request = requests[0]!;
  const children = all.filter((s) => parentOf(s) === request.spanContext().spanId);
  return { request, children };
}

describe('OpenTelemetry spans', () => {
  it('a search: one request span, a child span per stage, rag.* attributes from the real result', async () => {
    await traced();
    const q = open();
    try {
      const result = await q.search('how are documents split into chunks', { k: 5, reranker: 'ltr' });
      expect(result.hits.length).toBe(5);
      expect(result.rerank?.status).toBe('reranked');
      for (const s of spans()) expect(SPAN_NAMES).toContain(s.name);
      const { request, children } = requestTree('quarry.search');
      // Every span of the request is its child, in one trace.
      expect(children.length).toBe(spans().length - 1);
      for (const c of children) expect(c.spanContext().traceId).toBe(request.spanContext().traceId);
      const names = new Set(children.map((c) => c.name));
      for (const n of ['quarry.understand', 'quarry.retrieve.bm25', 'quarry.hits', 'quarry.rerank'])
        expect(names, n).toContain(n);
      const a = request.attributes;
      expect(a['rag.query_tokens']).toBeGreaterThan(0);
      expect(a['rag.retrieved_chunks']).toBe(result.hits.length);
      expect(a['rag.rerank_score_top1']).toBe(result.hits[0]!.score);
      expect(a['rag.degraded']).toBe(0);
      const bm25 = children.find((c) => c.name === 'quarry.retrieve.bm25')!;
      expect(bm25.attributes['rag.retriever']).toBe('bm25');
      expect(bm25.attributes['rag.candidates']).toBeGreaterThanOrEqual(5);
      const rerank = children.find((c) => c.name === 'quarry.rerank')!;
      expect(rerank.attributes['quarry.status']).toBe('reranked');
      expect(rerank.attributes['rag.rerank_score_top1']).toBe(result.hits[0]!.score);
      // Stage spans sit inside the request span's time.
      for (const c of children) {
        expect(hr(c.startTime)).toBeGreaterThanOrEqual(hr(request.startTime) - 0.001);
        expect(hr(c.endTime)).toBeLessThanOrEqual(hr(request.endTime) + 0.001);
      }
    } finally {
      q.close();
    }
  });

  it('an ask with an LLM: assemble, generate and validate spans, context and token figures', async () => {
    await traced();
    env.server.respond = () => ({
      kind: 'reply',
      deltas: ['Documents are split into chunks [1].'],
      usage: { input: 321, output: 9 },
    });
    const q = open(true);
    try {
      const answer = await q.ask('how are documents split into chunks');
      const { request, children } = requestTree('quarry.ask');
      for (const s of spans()) expect(SPAN_NAMES).toContain(s.name);
      const names = children.map((c) => c.name);
      for (const n of ['quarry.retrieve.bm25', 'quarry.assemble', 'quarry.generate', 'quarry.validate'])
        expect(names, n).toContain(n);
      const assemble = children.find((c) => c.name === 'quarry.assemble')!;
      expect(assemble.attributes['rag.context_tokens']).toBeGreaterThan(0);
      const generate = children.find((c) => c.name === 'quarry.generate')!;
      expect(generate.attributes['gen_ai.usage.input_tokens']).toBe(321);
      expect(generate.attributes['gen_ai.usage.output_tokens']).toBe(9);
      const a = request.attributes;
      expect(a['rag.query_tokens']).toBeGreaterThan(0);
      expect(a['rag.retrieved_chunks']).toBe(answer.hits.length);
      expect(a['rag.context_tokens']).toBe(assemble.attributes['rag.context_tokens']);
      expect(a['rag.answerer']).toBe(answer.answerer);
      expect(a['rag.abstained']).toBe(answer.abstained);
    } finally {
      q.close();
      env.server.reset();
    }
  });

  it('an extractive ask reports the context it read; an active parent span is respected', async () => {
    await traced();
    const q = open();
    const outer = trace.getTracer('test').startSpan('http.request');
    try {
      const answer = await context.with(trace.setSpan(context.active(), outer), () =>
        q.ask('how are documents split into chunks'),
      );
      outer.end();
      expect(answer.answerer).toBe('extractive');
      const { request } = requestTree('quarry.ask');
      expect(parentOf(request)).toBe(outer.spanContext().spanId);
      expect(request.spanContext().traceId).toBe(outer.spanContext().traceId);
      expect(request.attributes['rag.context_tokens']).toBeGreaterThan(0);
      expect(request.attributes['rag.retrieved_chunks']).toBe(answer.hits.length);
    } finally {
      q.close();
    }
  });

  it('a failing request records the error on its span with status ERROR', async () => {
    await traced();
    const q = open();
    try {
      await expect(q.search('chunks', { filter: { nope: { $regex: '(' } } })).rejects.toThrow();
      const { request } = requestTree('quarry.search');
      expect(request.status.code).toBe(2); // SpanStatusCode.ERROR
      expect(request.attributes['error.type']).toBe('INVALID_FILTER');
      expect(request.events.some((e) => e.name === 'exception')).toBe(true);
      const filter = spans().find((s) => s.name === 'quarry.filter')!;
      expect(filter.status.code).toBe(2);
    } finally {
      q.close();
    }
  });

  it('a degraded stage is an event on the request span', async () => {
    await traced();
    const q = Quarry.open({ store: tinyStore() });
    await q.addDocuments([
      { id: 'a', markdown: '# Comets\n\nA zorblaxian comet crossed the sky.' },
      { id: 'b', markdown: '# Tides\n\nTides follow the moon.' },
    ]);
    current.reset();
    try {
      // Two documents are too few to train the built-in dense embedder: dense degrades to BM25.
      const r = await q.search('zorblaxian comet', { retriever: 'dense' });
      expect(r.degraded).toHaveLength(1);
      const { request } = requestTree('quarry.search');
      const events = request.events.filter((e) => e.name === 'quarry.degraded');
      expect(events.map((e) => e.attributes?.['rag.stage'])).toEqual(['retrieve.dense']);
      expect(request.attributes['rag.degraded']).toBe(1);
    } finally {
      q.close();
    }
  });

  it('ingest runs under a quarry.ingest span with its counts', async () => {
    await traced();
    const q = open();
    try {
      await q.addDocuments([{ id: 'span-doc', markdown: '# Spans\n\nA document about spans and traces.' }]);
      const { request } = requestTree('quarry.ingest');
      expect(request.attributes['rag.ingest.added'] ?? request.attributes['rag.ingest.updated']).toBe(1);
      q.deleteDocuments(['span-doc']);
    } finally {
      q.close();
    }
  });

  it('logs carry the active span ids', async () => {
    await traced();
    const lines: string[] = [];
    const log = createLogger({
      destination: { write: (l: string) => void lines.push(l) },
      bindings: { requestId: 'req-1' },
    });
    const span = trace.getTracer('test').startSpan('http.request');
    context.with(trace.setSpan(context.active(), span), () => log.info('inside'));
    log.info('outside');
    span.end();
    const [inside, outside] = lines.map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(inside).toMatchObject({
      msg: 'inside',
      requestId: 'req-1',
      traceId: span.spanContext().traceId,
      spanId: span.spanContext().spanId,
    });
    expect(outside).toMatchObject({ msg: 'outside', requestId: 'req-1' });
    expect(outside).not.toHaveProperty('traceId');
  });

  it('no spans when telemetry is not configured (a provider the app owns keeps working)', async () => {
    const own = new InMemorySpanExporter();
    const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(own)] });
    await configureTelemetry({ tracerProvider: provider });
    const q = open();
    try {
      await q.search('chunks');
      expect(own.getFinishedSpans().map((s) => s.name)).toContain('quarry.search');
      own.reset();
      await configureTelemetry({ exporter: 'none' });
      await q.search('chunks');
      await q.ask('how are documents split into chunks');
      expect(own.getFinishedSpans()).toEqual([]);
      provider.getTracer('test').startSpan('still-alive').end();
      expect(own.getFinishedSpans().map((s) => s.name)).toEqual(['still-alive']);
    } finally {
      q.close();
      await provider.shutdown();
    }
  });

  it('rejects an invalid OTLP configuration with INVALID_CONFIG', async () => {
    await expect(configureTelemetry({ exporter: 'otlp', endpoint: 'not a url' })).rejects.toMatchObject({
      code: 'INVALID_CONFIG',
    });
  });
});

function tinyStore(): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'quarry-tracing-tiny-'));
  tiny.push(d);
  return d;
}
const tiny: string[] = [];
afterAll(() => {
  for (const d of tiny) fs.rmSync(d, { recursive: true, force: true });
});

function hr(t: [number, number]): number {
  return t[0] * 1000 + t[1] / 1e6;
}

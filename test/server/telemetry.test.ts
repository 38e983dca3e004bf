/**
 * Spans over the wire: `quarry serve` configured with an OTLP endpoint exports to a real OTLP/HTTP receiver on
 * loopback. A request carrying a W3C traceparent continues that trace: `quarry.http` (server span) under the
 * caller's span, the pipeline's request span under it, and the stage spans under that, with the rag.*
 * attributes. Without an endpoint nothing is exported.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SPAN_NAMES } from '../../src/observability/tracing.js';
import { HANDBOOK, startTestServer } from './harness.js';

interface OtlpSpan {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  kind: number;
  attributes: Array<{ key: string; value: Record<string, unknown> }>;
}

const received: OtlpSpan[] = [];
let receiver: http.Server;
let endpoint: string;

beforeAll(async () => {
  receiver = http.createServer((req, res) => {
    let body = '';
    req.on('data', (d) => (body += d));
    req.on('end', () => {
      expect(req.url).toBe('/v1/traces');
      const json = JSON.parse(body) as {
        resourceSpans: Array<{ scopeSpans: Array<{ spans: OtlpSpan[] }> }>;
      };
      for (const rs of json.resourceSpans) for (const ss of rs.scopeSpans) received.push(...ss.spans);
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
  });
  await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', r));
  endpoint = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/v1/traces`;
});
afterAll(async () => {
  await new Promise((r) => receiver.close(r));
});

const attr = (s: OtlpSpan, key: string) => {
  const v = s.attributes.find((a) => a.key === key)?.value;
  return v === undefined ? undefined : (v.intValue ?? v.doubleValue ?? v.stringValue ?? v.boolValue);
};

describe('OTLP export from quarry serve', () => {
  it('continues the caller’s trace: http → search → stages, names from the closed list', async () => {
    const t = await startTestServer({ docs: HANDBOOK, config: { telemetry: { otlpEndpoint: endpoint } } });
    const traceId = '4bf92f3577b34da6a3ce929d0e0e4736';
    const parent = '00f067aa0ba902b7';
    const r = await t.call('POST', '/v1/search', {
      body: { query: 'ferry to Islay' },
      headers: { traceparent: `00-${traceId}-${parent}-01` },
    });
    expect(r.status).toBe(200);
    await t.close(); // graceful shutdown flushes the batch exporter
    const mine = received.filter((s) => s.traceId === traceId);
    const names = mine.map((s) => s.name);
    for (const n of names) expect(SPAN_NAMES).toContain(n);
    const httpSpan = mine.find((s) => s.name === 'quarry.http')!;
    expect(httpSpan.parentSpanId).toBe(parent);
    expect(httpSpan.kind).toBe(2); // SERVER
    expect(attr(httpSpan, 'http.route')).toBe('/v1/search');
    expect(Number(attr(httpSpan, 'http.response.status_code'))).toBe(200);
    const search = mine.find((s) => s.name === 'quarry.search')!;
    expect(search.parentSpanId).toBe(httpSpan.spanId);
    expect(Number(attr(search, 'rag.retrieved_chunks'))).toBeGreaterThan(0);
    expect(Number(attr(search, 'rag.query_tokens'))).toBeGreaterThan(0);
    const bm25 = mine.find((s) => s.name === 'quarry.retrieve.bm25')!;
    expect(bm25.parentSpanId).toBe(search.spanId);
  });

  it('exports nothing without an endpoint', async () => {
    const before = received.length;
    const t = await startTestServer({ docs: HANDBOOK });
    await t.call('POST', '/v1/search', { body: { query: 'refunds' } });
    await t.close();
    expect(received.length).toBe(before);
  });
});

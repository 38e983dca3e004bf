/**
 * The server's Prometheus series (HTTP requests, in-flight requests and streams, per-key and per-tenant
 * tokens and cost, rejections by code), on a registry of its own that `/metrics` serves together with the
 * pipeline's.
 */
import client from 'prom-client';

export class ServerMetrics {
  readonly registry = new client.Registry();
  readonly requests = new client.Counter({
    name: 'quarry_http_requests_total',
    help: 'HTTP requests by method, route and status',
    labelNames: ['method', 'route', 'status'] as const,
    registers: [this.registry],
  });
  readonly duration = new client.Histogram({
    name: 'quarry_http_request_duration_seconds',
    help: 'HTTP request latency (streams: until the last byte)',
    labelNames: ['method', 'route', 'status'] as const,
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers: [this.registry],
  });
  readonly inFlight = new client.Gauge({
    name: 'quarry_http_in_flight',
    help: 'Requests being served (streams included)',
    registers: [this.registry],
  });
  readonly streams = new client.Gauge({
    name: 'quarry_http_streams_open',
    help: 'Server-Sent Event streams open',
    registers: [this.registry],
  });
  readonly errors = new client.Counter({
    name: 'quarry_http_errors_total',
    help: 'Error responses by stable error code',
    labelNames: ['code'] as const,
    registers: [this.registry],
  });
  readonly tokens = new client.Counter({
    name: 'quarry_key_tokens_total',
    help: 'Model tokens used per key and tenant (generation, rewriting, reranking, embeddings)',
    labelNames: ['key', 'tenant', 'direction'] as const,
    registers: [this.registry],
  });
  readonly cost = new client.Counter({
    name: 'quarry_key_cost_usd_total',
    help: 'Priced model cost per key and tenant, US dollars',
    labelNames: ['key', 'tenant'] as const,
    registers: [this.registry],
  });
  readonly ttft = new client.Histogram({
    name: 'quarry_stream_time_to_first_token_seconds',
    help: 'Time from request to the first streamed answer token',
    labelNames: ['route'] as const,
    buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 1.5, 2, 3, 5, 10],
    registers: [this.registry],
  });
}

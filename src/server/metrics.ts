/**
 * The server's own Prometheus series (requests by route and status, open streams, error responses by code, time to first token), on a registry of its own that `/metrics`
 * serves together with the pipeline's (stages, caches, scores, HTTP latency and in-flight requests, tokens and cost per component, key and tenant).
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
  readonly ttft = new client.Histogram({
    name: 'quarry_stream_time_to_first_token_seconds',
    help: 'Time from request to the first streamed answer token',
    labelNames: ['route'] as const,
    buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 1.5, 2, 3, 5, 10],
    registers: [this.registry],
  });
  readonly shed = new client.Counter({
    name: 'quarry_http_shed_total',
    help: 'Requests refused with 503 OVERLOADED, by kind of work and reason (in_flight, queue_timeout, event_loop_delay, heap)',
    labelNames: ['kind', 'reason'] as const,
    registers: [this.registry],
  });
  readonly inFlight = new client.Gauge({
    name: 'quarry_admission_in_flight',
    help: 'Requests holding a work slot, by kind (query, ingest)',
    labelNames: ['kind'] as const,
    registers: [this.registry],
  });
  readonly queued = new client.Gauge({
    name: 'quarry_admission_queued',
    help: 'Requests waiting for a work slot, by kind (query, ingest)',
    labelNames: ['kind'] as const,
    registers: [this.registry],
  });
}

/**
 * The server's span around each request (`quarry.http`, kind SERVER), continuing the caller's trace when it
 * sends a W3C `traceparent` header, so the pipeline's request and stage spans hang under it. Nothing runs
 * when telemetry is not configured.
 */
import type { FastifyReply, FastifyRequest } from 'fastify';
import { activeTracer, otel } from '../observability/tracing.js';

let propagator: import('@opentelemetry/core').W3CTraceContextPropagator | undefined;

async function w3c() {
  if (propagator === undefined) {
    const { W3CTraceContextPropagator } = await import('@opentelemetry/core');
    propagator = new W3CTraceContextPropagator();
  }
  return propagator;
}

export async function withHttpSpan<T>(
  request: FastifyRequest,
  reply: FastifyReply,
  fn: () => Promise<T>,
): Promise<T> {
  const tracer = activeTracer();
  if (tracer === undefined) return fn();
  const api = otel();
  const parent = (await w3c()).extract(api.ROOT_CONTEXT, request.headers, api.defaultTextMapGetter);
  const route = request.routeOptions.url ?? 'unmatched';
  const span = tracer.startSpan(
    'quarry.http',
    {
      kind: api.SpanKind.SERVER,
      attributes: {
        'http.request.method': request.method,
        'http.route': route,
        'quarry.request_id': request.id,
        ...(request.apiKey === undefined
          ? {}
          : { 'quarry.key_id': request.apiKey.id, 'quarry.tenant': request.apiKey.tenant }),
      },
    },
    parent,
  );
  try {
    const out = await api.context.with(api.trace.setSpan(parent, span), fn);
    span.setAttribute(
      'http.response.status_code',
      reply.raw.headersSent ? reply.raw.statusCode : reply.statusCode,
    );
    return out;
  } catch (e) {
    span.recordException(e as Error);
    span.setStatus({ code: api.SpanStatusCode.ERROR, message: (e as Error).message });
    throw e;
  } finally {
    span.end();
  }
}

/**
 * The server's JSON log (pino): one line per event with the request id (Fastify's child logger adds it)
 * and, when a span is active, its trace and span ids, so a log line leads to its trace.
 */
import { trace } from '@opentelemetry/api';
import pino, { type Logger } from 'pino';

export function createServerLogger(level: string, destination?: NodeJS.WritableStream): Logger {
  return pino(
    {
      level,
      base: { service: 'quarry' },
      timestamp: pino.stdTimeFunctions.isoTime,
      mixin() {
        const span = trace.getActiveSpan();
        if (span === undefined) return {};
        const c = span.spanContext();
        return { traceId: c.traceId, spanId: c.spanId };
      },
      redact: { paths: ['req.headers.authorization', 'req.headers["x-api-key"]'], censor: '[redacted]' },
    },
    (destination as pino.DestinationStream | undefined) ?? pino.destination({ fd: 1, sync: false }),
  );
}

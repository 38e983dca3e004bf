/**
 * JSON logs (pino) that carry the ids to join them with traces: `traceId`/`spanId` of the active span
 * (when telemetry is configured) and the `requestId` of a child logger. Small on purpose; the server
 * makes one per request with `logger.child({ requestId })`.
 */
import type { DestinationStream, LevelWithSilent, Logger } from 'pino';
import { lazyModule } from '../lazy.js';
import { activeTracer, otel } from './tracing.js';

export type { Logger } from 'pino';

const loadPino = lazyModule<typeof import('pino')>('pino');

export interface LoggerOptions {
  level?: LevelWithSilent;
  /** Where lines go (default stdout): a stream, or a file descriptor / path via `pino.destination`. */
  destination?: DestinationStream | NodeJS.WritableStream;
  /** Bound on every line, e.g. `{ requestId }` for a request's logger. */
  bindings?: { requestId?: string; [key: string]: unknown };
}

/**
 * @example
 * const log = createLogger({ level: 'info' }).child({ requestId: req.id });
 * log.info({ route: '/v1/ask' }, 'request'); // {"level":30,...,"requestId":"…","traceId":"…","spanId":"…"}
 */
export function createLogger(options: LoggerOptions = {}): Logger {
  const pino = loadPino();
  const logger = pino(
    {
      level: options.level ?? 'info',
      base: undefined,
      timestamp: pino.stdTimeFunctions.isoTime,
      mixin() {
        // No tracer configured: no span can be active, and the API need not load.
        if (activeTracer() === undefined) return {};
        const span = otel().trace.getActiveSpan();
        if (span === undefined) return {};
        const { traceId, spanId } = span.spanContext();
        return { traceId, spanId };
      },
      // An API key must never reach a log line, whoever logs a request's headers.
      redact: {
        paths: [
          'req.headers.authorization',
          'req.headers["x-api-key"]',
          'headers.authorization',
          'headers["x-api-key"]',
        ],
        censor: '[redacted]',
      },
    },
    options.destination as DestinationStream | undefined,
  );
  return options.bindings === undefined ? logger : logger.child(options.bindings);
}

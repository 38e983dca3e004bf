/**
 * Server-Sent Events over a hijacked reply: headers the reply already carries (request id, security
 * headers, CORS) are sent with the stream, writes wait for the socket to drain (a slow reader never makes
 * the server buffer a whole answer), a comment line every 15 s keeps proxies from closing an idle stream,
 * and `closed` reports a client that went away so the pipeline can stop.
 */
import type { FastifyReply, FastifyRequest } from 'fastify';
import { describeError, isQuarryError } from '../errors.js';
import type { ServerState } from './state.js';

export interface SseStream {
  /** `event: <name>` with JSON data (or raw data for the OpenAI `[DONE]` sentinel). */
  send(event: string | undefined, data: unknown): Promise<void>;
  readonly closed: boolean;
  /** Aborted when the client disconnects. */
  readonly signal: AbortSignal;
  end(): void;
}

/** The request asked for a stream: its `stream` flag, or else `Accept: text/event-stream`. */
export function wantsStream(request: FastifyRequest, stream: boolean | undefined): boolean {
  if (stream !== undefined) return stream;
  return (request.headers.accept ?? '').includes('text/event-stream');
}

export function openSse(reply: FastifyReply): SseStream {
  const res = reply.raw;
  const headers: Record<string, string | number | string[]> = {};
  for (const [k, v] of Object.entries(reply.getHeaders())) if (v !== undefined) headers[k] = v as string;
  reply.hijack();
  res.writeHead(200, {
    ...headers,
    'content-type': 'text/event-stream; charset=utf-8',
    'cache-control': 'no-cache, no-transform',
    connection: 'keep-alive',
    'x-accel-buffering': 'no',
  });
  const abort = new AbortController();
  let closed = false;
  const onClose = () => {
    if (!res.writableFinished) abort.abort(new Error('client disconnected'));
    closed = true;
    clearInterval(keepAlive);
  };
  res.on('close', onClose);
  const keepAlive = setInterval(() => {
    if (!closed) res.write(': keep-alive\n\n');
  }, 15_000);
  keepAlive.unref();
  return {
    get closed() {
      return closed;
    },
    signal: abort.signal,
    async send(event, data) {
      if (closed) return;
      const payload = typeof data === 'string' && event === undefined ? data : JSON.stringify(data);
      const frame = `${event === undefined ? '' : `event: ${event}\n`}data: ${payload}\n\n`;
      if (!res.write(frame) && !closed)
        await new Promise<void>((resolve) => {
          const done = () => {
            res.off('drain', done);
            res.off('close', done);
            resolve();
          };
          res.on('drain', done);
          res.on('close', done);
        });
    },
    end() {
      clearInterval(keepAlive);
      if (!closed) res.end();
      closed = true;
    },
  };
}

/** How one stream protocol frames its error and its end (Quarry's events, or OpenAI's chunks). */
export interface StreamProtocol {
  /** The frame sent when the pipeline fails after the stream opened. */
  error(sse: SseStream, e: unknown, d: { code: string; message: string }): Promise<void>;
  /** The last frame (`done`, `[DONE]`). */
  end(sse: SseStream): Promise<void>;
}

/** Quarry's own streams (ask, upload progress): an `error` event with the error body's fields, then `done`. */
export function quarryEvents(request: FastifyRequest): StreamProtocol {
  return {
    error: (x, err, d) =>
      x.send('error', {
        ...d,
        requestId: request.id,
        ...(isQuarryError(err) ? { details: err.details } : {}),
      }),
    end: (x) => x.send('done', {}),
  };
}

/**
 * Run `body` over an open stream to its end: counted in the open-streams gauge, awaited by graceful
 * shutdown, an error turned into the protocol's error frame (and counted by code), the end frame always sent.
 */
export async function runStream(
  s: ServerState,
  sse: SseStream,
  protocol: StreamProtocol,
  body: () => Promise<void>,
): Promise<void> {
  const run = (async () => {
    s.metrics.streams.inc();
    try {
      await body();
    } catch (err) {
      const d = describeError(err);
      s.metrics.errors.inc({ code: d.code });
      await protocol.error(sse, err, d);
    } finally {
      await protocol.end(sse);
      sse.end();
      s.metrics.streams.dec();
    }
  })();
  s.streams.add(run);
  try {
    await run;
  } finally {
    s.streams.delete(run);
  }
}

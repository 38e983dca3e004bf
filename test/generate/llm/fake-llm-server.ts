/**
 * The HTTP half of the fake LLM servers: a real `node:http` server on 127.0.0.1 that records every request
 * and answers each one with the next scripted response (else the `respond` handler, else a short reply). The
 * wire format itself — OpenAI chat completions or Anthropic Messages — is a `Dialect`.
 */
import { createServer, type IncomingHttpHeaders, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface Usage {
  input: number;
  output: number;
}

/** One scripted response. `after` deltas are streamed before the misbehaviour. */
export type Scripted =
  /** A normal answer: SSE when the request asked to stream (or `format: 'sse'`), else one JSON body. */
  | {
      kind: 'reply';
      deltas: string[];
      finishReason?: string;
      /** null: the server reports no usage at all. Default: input 12, output = number of deltas. */
      usage?: Usage | null;
      model?: string;
      format?: 'auto' | 'json' | 'sse';
      /** Pause between SSE events (ms). */
      gapMs?: number;
    }
  /** An HTTP error with the provider's error body, e.g. 429 + `retry-after`, 500, 529, 401. */
  | { kind: 'status'; status: number; message?: string; errorType?: string; headers?: Record<string, string> }
  /** Streams `after`, then an event whose data is not JSON. */
  | { kind: 'malformed'; after: string[] }
  /** Streams `after`, then destroys the socket. */
  | { kind: 'disconnect'; after: string[] }
  /** Streams `after` then goes silent (or, with `beforeHeaders`, never sends headers) for `ms`. */
  | { kind: 'stall'; after?: string[]; beforeHeaders?: boolean; ms?: number }
  /** Streams `after`, then the provider's in-stream error event (Anthropic `event: error`, OpenAI `data: {"error"}`). */
  | { kind: 'error-event'; after: string[]; errorType: string; message?: string }
  /** Destroys the socket before any response. */
  | { kind: 'reset' }
  /** This exact JSON body (e.g. a chat completion with `tool_calls`), written by the test in the wire format. */
  | { kind: 'json'; body: unknown; status?: number }
  /** These exact SSE `data:` payloads (JSON-encoded), then `data: [DONE]` unless `done: false`. */
  | { kind: 'sse'; events: unknown[]; done?: boolean }
  /**
   * These exact bytes as a 200 body (e.g. JSON cut off halfway). With `cut`, the headers announce a longer
   * body and the socket is destroyed after these bytes: a connection lost mid-response.
   */
  | { kind: 'raw'; body: string; contentType?: string; cut?: boolean };

export interface RecordedRequest {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
  body: Record<string, unknown>;
  scripted: Scripted;
  /** Set when the client went away before the response was finished. */
  clientClosed: boolean;
  /** When the request arrived (performance.now()). */
  at: number;
}

/** The wire format of one provider. */
export interface Dialect {
  /** Path the API is served on. */
  path: string;
  /** Base URL a client is configured with, from the server origin. */
  baseURL(origin: string): string;
  defaultFinish: string;
  /** Raw SSE text before the first delta. */
  sseOpen(model: string, usage: Usage | null): string;
  sseDelta(text: string, model: string): string;
  sseClose(
    finishReason: string,
    usage: Usage | null,
    model: string,
    request: Record<string, unknown>,
  ): string;
  sseMalformed(): string;
  sseError(errorType: string, message: string): string;
  json(text: string, finishReason: string, usage: Usage | null, model: string): unknown;
  errorBody(status: number, message: string, errorType: string | undefined): unknown;
}

export interface FakeLlmServer {
  /** The base URL to configure a provider with. */
  url: string;
  requests: RecordedRequest[];
  /** Queues responses for the next requests, in order. */
  queue(...responses: Scripted[]): void;
  /** Answers requests when the queue is empty (default: reply "ok"). */
  respond: ((body: Record<string, unknown>) => Scripted) | undefined;
  /** Clears the queue, the recorded requests and the handler. */
  reset(): void;
  close(): Promise<void>;
}

export async function startFakeLlmServer(dialect: Dialect): Promise<FakeLlmServer> {
  const requests: RecordedRequest[] = [];
  const script: Scripted[] = [];
  const timers = new Set<NodeJS.Timeout>();
  const later = (ms: number, f: () => void): void => {
    const t = setTimeout(() => {
      timers.delete(t);
      f();
    }, ms);
    timers.add(t);
  };

  const fake: FakeLlmServer = {
    url: '',
    requests,
    respond: undefined,
    queue: (...r) => {
      script.push(...r);
    },
    reset: () => {
      requests.length = 0;
      script.length = 0;
      fake.respond = undefined;
    },
    close: async () => {
      for (const t of timers) clearTimeout(t);
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };

  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      let body: Record<string, unknown> = {};
      try {
        body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
      } catch {
        // recorded as {}
      }
      const scripted: Scripted = script.shift() ?? fake.respond?.(body) ?? { kind: 'reply', deltas: ['ok'] };
      const record: RecordedRequest = {
        method: req.method ?? '',
        url: req.url ?? '',
        headers: req.headers,
        body,
        scripted,
        clientClosed: false,
        at: performance.now(),
      };
      requests.push(record);
      res.on('close', () => {
        if (!res.writableFinished) record.clientClosed = true;
      });
      if (req.method !== 'POST' || req.url !== dialect.path) {
        sendJson(res, 404, dialect.errorBody(404, `no route ${req.method} ${req.url}`, 'not_found_error'));
        return;
      }
      serve(dialect, body, scripted, res, later);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  fake.url = dialect.baseURL(`http://127.0.0.1:${(server.address() as AddressInfo).port}`);
  return fake;
}

function sendJson(
  res: ServerResponse,
  status: number,
  payload: unknown,
  headers: Record<string, string> = {},
): void {
  res.writeHead(status, { 'content-type': 'application/json', ...headers });
  res.end(JSON.stringify(payload));
}

function serve(
  dialect: Dialect,
  body: Record<string, unknown>,
  s: Scripted,
  res: ServerResponse,
  later: (ms: number, f: () => void) => void,
): void {
  const model = typeof body.model === 'string' ? body.model : 'unknown-model';
  const openStream = (usage: Usage | null = { input: 12, output: 0 }): void => {
    res.writeHead(200, {
      'content-type': 'text/event-stream',
      'cache-control': 'no-cache',
      connection: 'keep-alive',
    });
    res.write(dialect.sseOpen(model, usage));
  };
  const write = (text: string): void => {
    if (!res.destroyed) res.write(text);
  };
  switch (s.kind) {
    case 'status':
      sendJson(
        res,
        s.status,
        dialect.errorBody(s.status, s.message ?? `scripted ${s.status}`, s.errorType),
        s.headers,
      );
      return;
    case 'reset':
      res.socket?.destroy();
      return;
    case 'json':
      sendJson(res, s.status ?? 200, s.body);
      return;
    case 'sse':
      res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
      res.end(
        s.events.map((e) => `data: ${JSON.stringify(e)}\n\n`).join('') +
          (s.done === false ? '' : 'data: [DONE]\n\n'),
      );
      return;
    case 'raw': {
      const length = Buffer.byteLength(s.body) + (s.cut ? 64 : 0);
      res.writeHead(200, {
        'content-type': s.contentType ?? 'application/json',
        'content-length': String(length),
      });
      if (!s.cut) {
        res.end(s.body);
        return;
      }
      res.write(s.body);
      later(30, () => res.socket?.destroy());
      return;
    }
    case 'malformed':
      openStream();
      for (const d of s.after) write(dialect.sseDelta(d, model));
      write(dialect.sseMalformed());
      later(20, () => res.end());
      return;
    case 'disconnect':
      openStream();
      for (const d of s.after) write(dialect.sseDelta(d, model));
      // Let the deltas reach the client before the connection dies.
      later(30, () => res.socket?.destroy());
      return;
    case 'stall':
      if (s.beforeHeaders) {
        later(s.ms ?? 30_000, () =>
          sendJson(res, 200, dialect.json('late', dialect.defaultFinish, null, model)),
        );
        return;
      }
      openStream();
      for (const d of s.after ?? []) write(dialect.sseDelta(d, model));
      later(s.ms ?? 30_000, () => res.end());
      return;
    case 'error-event':
      openStream();
      for (const d of s.after) write(dialect.sseDelta(d, model));
      write(dialect.sseError(s.errorType, s.message ?? s.errorType));
      res.end();
      return;
    case 'reply': {
      const usage = s.usage === undefined ? { input: 12, output: s.deltas.length } : s.usage;
      const finish = s.finishReason ?? dialect.defaultFinish;
      const m = s.model ?? model;
      const sse = s.format === 'sse' || ((s.format ?? 'auto') === 'auto' && body.stream === true);
      if (!sse) {
        sendJson(res, 200, dialect.json(s.deltas.join(''), finish, usage, m));
        return;
      }
      res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
      const events = [
        dialect.sseOpen(m, usage),
        ...s.deltas.map((d) => dialect.sseDelta(d, m)),
        dialect.sseClose(finish, usage, m, body),
      ];
      if (!s.gapMs) {
        res.end(events.join(''));
        return;
      }
      const next = (i: number): void => {
        if (res.destroyed) return;
        if (i === events.length) {
          res.end();
          return;
        }
        res.write(events[i]!);
        later(s.gapMs!, () => next(i + 1));
      };
      next(0);
      return;
    }
  }
}

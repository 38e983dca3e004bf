/**
 * A real `node:http` server on 127.0.0.1 speaking the OpenAI `/v1/embeddings` wire format, with scripted
 * misbehaviour. Each request takes the next behaviour from the script (then `ok`). Vectors are a pure
 * function of the text (`fakeVector`), so tests can compute what they expect.
 */
import { createHash } from 'node:crypto';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export type Behaviour =
  | 'ok'
  | '429' // Retry-After: `retryAfter` (default "1")
  | '500'
  | '503-retry-after-ms' // retry-after-ms: 50
  | 'slow-headers' // responds after `slowMs`
  | 'slow-body' // sends headers and half the body, then stalls for `slowMs`
  | 'malformed' // 200 with a body that is not JSON
  | 'wrong-length' // one vector one element too long
  | 'wrong-count' // one embedding missing
  | '401'
  | '400'
  | 'reset'; // destroys the socket without a response

export interface RecordedRequest {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
  body: { model?: string; input?: string[]; dimensions?: number; encoding_format?: string } & Record<
    string,
    unknown
  >;
  /** ms since the server started */
  at: number;
  behaviour: Behaviour;
}

export interface FakeServerOptions {
  dim?: number;
  /** Delay before answering `ok` requests, to make concurrency observable (default 0). */
  delayMs?: number;
  slowMs?: number;
  retryAfter?: string;
}

export function fakeVector(text: string, dim: number): Float32Array {
  const out = new Float32Array(dim);
  let block = createHash('sha256').update(text).digest();
  for (let i = 0; i < dim; i++) {
    if (i > 0 && i % 32 === 0) block = createHash('sha256').update(block).digest();
    out[i] = (block[i % 32]! - 127.5) / 127.5;
  }
  return out;
}

export class FakeOpenAIServer {
  readonly requests: RecordedRequest[] = [];
  script: Behaviour[] = [];
  inFlight = 0;
  maxInFlight = 0;
  private readonly t0 = performance.now();
  private readonly server: Server;
  private pending = new Set<NodeJS.Timeout>();

  constructor(readonly opts: FakeServerOptions = {}) {
    this.server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () =>
        this.handle(req.method ?? '', req.url ?? '', req.headers, Buffer.concat(chunks), res),
      );
    });
  }

  get url(): string {
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}/v1`;
  }

  get dim(): number {
    return this.opts.dim ?? 8;
  }

  async start(): Promise<this> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    return this;
  }

  async close(): Promise<void> {
    for (const t of this.pending) clearTimeout(t);
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  reset(script: Behaviour[] = []): void {
    this.requests.length = 0;
    this.script = script;
    this.maxInFlight = 0;
  }

  private later(ms: number, f: () => void): void {
    const t = setTimeout(() => {
      this.pending.delete(t);
      f();
    }, ms);
    this.pending.add(t);
  }

  private handle(
    method: string,
    url: string,
    headers: IncomingHttpHeaders,
    raw: Buffer,
    res: import('node:http').ServerResponse,
  ): void {
    const behaviour = this.script.shift() ?? 'ok';
    let body: RecordedRequest['body'] = {};
    try {
      body = JSON.parse(raw.toString('utf8'));
    } catch {
      // recorded as {}
    }
    this.requests.push({ method, url, headers, body, at: performance.now() - this.t0, behaviour });
    this.inFlight++;
    this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
    const done = (): void => {
      this.inFlight--;
    };
    res.on('close', done);

    const json = (status: number, payload: unknown, extra: Record<string, string> = {}): void => {
      res.writeHead(status, { 'content-type': 'application/json', ...extra });
      res.end(JSON.stringify(payload));
    };
    if (method !== 'POST' || url !== '/v1/embeddings') {
      json(404, { error: { message: `no route ${method} ${url}` } });
      return;
    }
    switch (behaviour) {
      case '429':
        json(
          429,
          { error: { message: 'Rate limit reached', type: 'requests' } },
          { 'retry-after': this.opts.retryAfter ?? '1' },
        );
        return;
      case '500':
        json(500, { error: { message: 'The server had an error processing your request.' } });
        return;
      case '503-retry-after-ms':
        json(503, { error: { message: 'overloaded' } }, { 'retry-after-ms': '50' });
        return;
      case '401':
        json(401, { error: { message: 'Incorrect API key provided: sk-wrong.', code: 'invalid_api_key' } });
        return;
      case '400':
        json(400, { error: { message: "'$.input' is invalid." } });
        return;
      case 'malformed':
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end('{"data": [ {"embedding": [0.1, 0.2');
        return;
      case 'reset':
        res.socket?.destroy();
        return;
      case 'slow-headers':
        this.later(this.opts.slowMs ?? 2000, () => this.respond(body, res, behaviour));
        return;
      default:
        if (this.opts.delayMs) this.later(this.opts.delayMs, () => this.respond(body, res, behaviour));
        else this.respond(body, res, behaviour);
    }
  }

  private respond(
    body: RecordedRequest['body'],
    res: import('node:http').ServerResponse,
    b: Behaviour,
  ): void {
    if (res.destroyed) return;
    const input = Array.isArray(body.input) ? body.input : [String(body.input)];
    const dim = typeof body.dimensions === 'number' ? body.dimensions : this.dim;
    const base64 = body.encoding_format === 'base64';
    let data = input.map((text, index) => {
      const v = fakeVector(text, b === 'wrong-length' && index === input.length - 1 ? dim + 1 : dim);
      const embedding = base64 ? Buffer.from(v.buffer).toString('base64') : Array.from(v);
      return { object: 'embedding', index, embedding };
    });
    if (b === 'wrong-count') data = data.slice(1);
    data.reverse(); // servers may answer in any order; clients must use `index`
    const payload = JSON.stringify({
      object: 'list',
      data,
      model: body.model,
      usage: { prompt_tokens: input.length * 3, total_tokens: input.length * 3 },
    });
    if (b === 'slow-body') {
      res.writeHead(200, {
        'content-type': 'application/json',
        'content-length': String(Buffer.byteLength(payload)),
      });
      res.write(payload.slice(0, Math.floor(payload.length / 2)));
      this.later(this.opts.slowMs ?? 2000, () => {
        if (!res.destroyed) res.end(payload.slice(Math.floor(payload.length / 2)));
      });
      return;
    }
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(payload);
  }
}

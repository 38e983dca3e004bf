/**
 * A real `node:http` server on 127.0.0.1 speaking the OpenAI `/v1/embeddings` wire format, with scripted
 * misbehaviour. Each request takes the next behaviour from the script (then `ok`). Vectors are a pure
 * function of the text (`fakeVector`), so tests can compute what they expect.
 */
import { createHash } from 'node:crypto';
import type { IncomingHttpHeaders, ServerResponse } from 'node:http';
import {
  type FakeTiming,
  type IncomingJson,
  ScriptedJsonServer,
} from '../../fixtures/scripted-json-server.js';

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

export interface FakeServerOptions extends FakeTiming {
  dim?: number;
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

export class FakeOpenAIServer extends ScriptedJsonServer<Behaviour, RecordedRequest> {
  private readonly t0 = performance.now();

  constructor(readonly opts: FakeServerOptions = {}) {
    super(opts, 'ok');
  }

  get url(): string {
    return `${this.origin}/v1`;
  }

  get dim(): number {
    return this.opts.dim ?? 8;
  }

  protected handle(
    { method, url, headers, body, behaviour }: IncomingJson<Behaviour>,
    res: ServerResponse,
  ): void {
    this.requests.push({ method, url, headers, body, at: performance.now() - this.t0, behaviour });

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
      default:
        this.deliver(res, behaviour, () => this.respond(body, res, behaviour));
    }
  }

  private respond(body: RecordedRequest['body'], res: ServerResponse, b: Behaviour): void {
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
    this.sendJson(res, payload, b === 'slow-body');
  }
}

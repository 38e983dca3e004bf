/**
 * A real `node:http` server on 127.0.0.1 speaking one rerank wire format — Cohere (`/v1/rerank`,
 * `/v2/rerank`), Jina (`/v1/rerank`) or Hugging Face TEI (`/rerank`) — with scripted misbehaviour: each
 * request takes the next behaviour from the script (then `ok`). Scores are a pure function of the query and
 * the document (`fakeScore`) and results come back sorted by score, as the real services send them.
 */
import type { IncomingHttpHeaders, ServerResponse } from 'node:http';
import { type FakeTiming, type IncomingJson, ScriptedJsonServer } from '../fixtures/scripted-json-server.js';

export type Flavor = 'cohere' | 'jina' | 'tei';

export type Behaviour =
  | 'ok'
  | '429' // Retry-After: `retryAfter` (default "1")
  | '500'
  | '503' // Retry-After as an HTTP date `retryAfter` (or none)
  | '400'
  | '401'
  | 'malformed' // 200 with a body cut off mid-JSON
  | 'wrong-index' // one index equal to the number of documents
  | 'duplicate-index' // the last result repeats the first index
  | 'missing-result' // the lowest-scored result left out
  | 'nan-score' // one score is the string "NaN"
  | 'slow-headers' // answers after `slowMs`
  | 'slow-body' // sends the headers and half the body, then stalls for `slowMs`
  | 'reset'; // destroys the socket without a response

export interface RecordedRequest {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
  body: Record<string, unknown>;
  behaviour: Behaviour;
  /** The client went away before the response was complete (abort, timeout). */
  clientClosed: boolean;
}

export interface FakeRerankOptions extends FakeTiming {
  retryAfter?: string;
}

const words = (s: string): string[] => s.toLowerCase().match(/[\p{L}\p{N}]+/gu) ?? [];

/**
 * The fake model: the share of query words found in the document, nudged down by document length so that
 * ties break the same way every time. Always in (−0.01, 1].
 */
export function fakeScore(query: string, document: string): number {
  const doc = new Set(words(document));
  const q = words(query);
  const hit = q.filter((w) => doc.has(w)).length;
  return (q.length === 0 ? 0 : hit / q.length) - words(document).length / 10_000;
}

/** TEI with `raw_scores: false` returns sigmoid scores; the raw ones are the logits. */
const logit = (s: number): number => 8 * s - 4;
export const teiScore = (query: string, document: string, raw: boolean): number =>
  raw ? logit(fakeScore(query, document)) : 1 / (1 + Math.exp(-logit(fakeScore(query, document))));

const ROUTES: Record<Flavor, string[]> = {
  cohere: ['/v1/rerank', '/v2/rerank'],
  jina: ['/v1/rerank'],
  tei: ['/rerank'],
};

export class FakeRerankServer extends ScriptedJsonServer<Behaviour, RecordedRequest> {
  constructor(
    readonly flavor: Flavor,
    readonly opts: FakeRerankOptions = {},
  ) {
    super(opts, 'ok');
  }

  /** The server root (no API path). */
  get url(): string {
    return this.origin;
  }

  /** An error body in the flavor's own shape. */
  private error(
    res: ServerResponse,
    status: number,
    message: string,
    extra: Record<string, string> = {},
  ): void {
    const payload =
      this.flavor === 'cohere'
        ? { message }
        : this.flavor === 'jina'
          ? { detail: message }
          : {
              error: message,
              error_type: status === 429 ? 'Overloaded' : status >= 500 ? 'Backend' : 'Validation',
            };
    res.writeHead(status, { 'content-type': 'application/json', ...extra });
    res.end(JSON.stringify(payload));
  }

  protected handle(
    { method, url, headers, body, behaviour }: IncomingJson<Behaviour>,
    res: ServerResponse,
  ): void {
    const rec: RecordedRequest = { method, url, headers, body, behaviour, clientClosed: false };
    this.requests.push(rec);
    res.on('close', () => {
      if (!res.writableFinished) rec.clientClosed = true;
    });
    if (method !== 'POST' || !ROUTES[this.flavor].includes(url)) {
      this.error(res, 404, `no route ${method} ${url}`);
      return;
    }
    switch (behaviour) {
      case '429':
        this.error(res, 429, 'You are using a Trial key, which is limited to 10 API calls / minute.', {
          'retry-after': this.opts.retryAfter ?? '1',
        });
        return;
      case '500':
        this.error(res, 500, 'internal server error');
        return;
      case '503':
        this.error(
          res,
          503,
          'model is overloaded',
          this.opts.retryAfter ? { 'retry-after': this.opts.retryAfter } : {},
        );
        return;
      case '400':
        this.error(res, 400, 'invalid request: too many documents');
        return;
      case '401':
        this.error(res, 401, 'invalid api token');
        return;
      case 'malformed':
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end('{"results": [{"index": 0, "relevance_score": 0.');
        return;
      default:
        this.deliver(res, behaviour, () => this.respond(body, res, behaviour));
    }
  }

  private respond(body: Record<string, unknown>, res: ServerResponse, b: Behaviour): void {
    if (res.destroyed) return;
    const query = body.query;
    const docs = this.flavor === 'tei' ? body.texts : body.documents;
    // Validate as the real services do: a missing field is a 4xx, not a 500.
    if (typeof query !== 'string' || !Array.isArray(docs) || !docs.every((d) => typeof d === 'string')) {
      this.error(res, this.flavor === 'tei' ? 422 : 400, 'query and documents are required');
      return;
    }
    if (this.flavor !== 'tei' && typeof body.model !== 'string') {
      this.error(res, 400, 'model is required');
      return;
    }
    const raw = body.raw_scores === true;
    const score = (d: string): number =>
      this.flavor === 'tei' ? teiScore(query, d, raw) : fakeScore(query, d);
    let results: Array<{ index: number; score: unknown }> = (docs as string[])
      .map((d, index) => ({ index, score: score(d) }))
      .sort((x, y) => (y.score as number) - (x.score as number));
    const topN = typeof body.top_n === 'number' ? body.top_n : results.length;
    results = results.slice(0, topN);
    if (b === 'wrong-index' && results[0]) results[0].index = docs.length;
    if (b === 'duplicate-index' && results.length > 1) results[results.length - 1]!.index = results[0]!.index;
    if (b === 'missing-result') results = results.slice(0, -1);
    if (b === 'nan-score' && results[0]) results[0].score = 'NaN';
    let payload: unknown;
    if (this.flavor === 'tei') {
      payload = results.map((r) => ({ index: r.index, score: r.score }));
    } else {
      const withDocs =
        this.flavor === 'jina' ? body.return_documents !== false : body.return_documents === true;
      const items = results.map((r) => ({
        index: r.index,
        relevance_score: r.score,
        ...(withDocs ? { document: { text: (docs as string[])[r.index] } } : {}),
      }));
      payload =
        this.flavor === 'jina'
          ? { model: body.model, usage: { total_tokens: 7 * docs.length }, results: items }
          : {
              id: 'rr-1',
              results: items,
              meta: { api_version: { version: '2' }, billed_units: { search_units: 1 } },
            };
    }
    this.sendJson(res, JSON.stringify(payload), b === 'slow-body');
  }
}

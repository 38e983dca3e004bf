/**
 * `quarry/client`: a typed client for the HTTP API of `quarry serve`, for Node (≥ 20) and browsers alike
 * (it needs only `fetch`). Request and response types are inferred from the zod schemas the server validates
 * with and generates `/openapi.json` from (src/server/schemas.ts), so the web UI, the tests and the server
 * agree on every field; only types are imported from there, the client carries no zod at run time.
 * Errors are `QuarryApiError` with the server's stable code, HTTP status and request id; streams (ask,
 * upload progress) are async iterables of typed Server-Sent Events that stop when the signal aborts.
 *
 * @example
 * const quarry = new QuarryClient({ baseUrl: 'http://127.0.0.1:7700', apiKey: process.env.QUARRY_API_KEY });
 * const { hits } = await quarry.search({ query: 'refund policy', k: 5 });
 * for await (const e of quarry.askStream({ question: 'How do refunds work?' }))
 *   if (e.event === 'delta') process.stdout.write(e.data.text);
 */
import { createParser, type EventSourceMessage } from 'eventsource-parser';
import type { z } from 'zod';
import type * as S from '../server/schemas.js';

export type SearchRequest = z.input<typeof S.SearchRequest>;
export type SearchResponse = z.infer<typeof S.SearchResponse>;
export type AskRequest = Omit<z.input<typeof S.AskRequest>, 'stream'>;
export type AskResponse = z.infer<typeof S.AskResponse>;
export type Citation = z.infer<typeof S.Citation>;
export type DocumentInput = z.input<typeof S.DocumentInputSchema>;
export type UpsertDocumentsRequest = z.input<typeof S.UpsertDocumentsRequest>;
export type IngestResponse = z.infer<typeof S.IngestResponse>;
export type ListDocumentsQuery = z.input<typeof S.ListDocumentsQuery>;
export type DocumentResponse = z.infer<typeof S.DocumentResponse>;
export type DocumentListResponse = z.infer<typeof S.DocumentListResponse>;
export type CollectionResponse = z.infer<typeof S.CollectionResponse>;
export type FeedbackRequest = z.input<typeof S.FeedbackRequest>;
export type TraceResponse = z.infer<typeof S.TraceResponse>;
export type WhoamiResponse = z.infer<typeof S.WhoamiResponse>;
export type EvalRunList = z.infer<typeof S.EvalRunList>;
export type EvalRunSummary = EvalRunList['runs'][number];
export type EvalRunResponse = z.infer<typeof S.EvalRunResponse>;
export type ChatCompletionRequest = z.input<typeof S.ChatCompletionRequest>;
export type ChatCompletionResponse = z.infer<typeof S.ChatCompletionResponse>;
export type ModelsResponse = z.infer<typeof S.ModelsResponse>;
export type ErrorDetail = z.infer<typeof S.ErrorBody>['error'];
export type UploadEvent = z.infer<typeof S.UploadEvent>;
export type VariantsResponse = z.infer<typeof S.VariantsResponse>;
export type UploadProgress = Extract<UploadEvent, { event: 'progress' }>['data'];

type Degraded = AskResponse['degraded'];

/** The Server-Sent Events of `POST /v1/ask` with `stream: true`, in the order the server sends them. */
export type AskStreamEvent =
  | { event: 'meta'; data: { queryId: string; requestId: string } }
  | {
      event: 'retrieved';
      data: {
        strategy: string;
        hits: Array<{ rank: number; docId: string; chunkId: number; title: string; score: number }>;
      };
    }
  | { event: 'context'; data: { sources: number; tokens: number; available: number } }
  | { event: 'delta'; data: { text: string } }
  | { event: 'citation'; data: { sources: number[]; unknown: number[] } }
  | { event: 'reset'; data: { reason: string } }
  | { event: 'validation'; data: NonNullable<AskResponse['validation']> }
  | { event: 'degraded'; data: Degraded }
  | { event: 'answer'; data: AskResponse }
  | { event: 'error'; data: ErrorDetail }
  | { event: 'done'; data: Record<string, never> };

export interface QuarryClientOptions {
  /** The server's address, e.g. `http://127.0.0.1:7700` (a path prefix is kept). */
  baseUrl: string;
  /** Sent as `Authorization: Bearer <key>`; omit on a key-less loopback server. */
  apiKey?: string;
  /** Default: the global `fetch`. */
  fetch?: typeof fetch;
  /** Extra headers on every request. */
  headers?: Record<string, string>;
}

export interface RequestOptions {
  signal?: AbortSignal;
  /** The collection (default: the server's default collection). */
  collection?: string;
}

/** An error answer of the API: `code` is the stable code of src/errors.ts, `status` the HTTP status. */
export class QuarryApiError extends Error {
  readonly code: string;
  readonly status: number;
  readonly requestId: string | undefined;
  readonly details: Record<string, unknown> | undefined;

  constructor(status: number, e: Partial<ErrorDetail> & { message: string }) {
    super(e.message);
    this.name = 'QuarryApiError';
    this.status = status;
    this.code = e.code ?? (status === 0 ? 'NETWORK' : `HTTP_${status}`);
    this.requestId = e.requestId;
    this.details = e.details;
  }
}

type Query = Record<string, string | number | boolean | undefined>;

export class QuarryClient {
  private readonly base: string;
  private readonly doFetch: typeof fetch;

  constructor(private readonly options: QuarryClientOptions) {
    this.base = options.baseUrl.replace(/\/+$/, '');
    const f = options.fetch ?? globalThis.fetch;
    if (typeof f !== 'function') throw new TypeError('QuarryClient needs fetch (Node ≥ 18 or a browser)');
    // Bound: a browser's fetch throws "Illegal invocation" when called as a method of another object.
    this.doFetch = f.bind(globalThis);
  }

  /** Who this client is to the server: the key's tenant, groups and scopes; `authRequired` on the server. */
  whoami(o: RequestOptions = {}): Promise<WhoamiResponse> {
    return this.json('GET', '/v1/whoami', { signal: o.signal });
  }

  health(o: RequestOptions = {}): Promise<{ status: string } & Record<string, unknown>> {
    return this.json('GET', '/healthz', { signal: o.signal });
  }

  search(body: SearchRequest, o: RequestOptions = {}): Promise<SearchResponse> {
    return this.json('POST', '/v1/search', { body: withCollection(body, o), signal: o.signal });
  }

  /** A whole answer with citations (JSON). */
  ask(body: AskRequest, o: RequestOptions = {}): Promise<AskResponse> {
    return this.json('POST', '/v1/ask', {
      body: { ...withCollection(body, o), stream: false },
      signal: o.signal,
    });
  }

  /** The answer as it is generated: `delta` events, then `answer` (the whole answer), then `done`. */
  askStream(body: AskRequest, o: RequestOptions = {}): AsyncGenerator<AskStreamEvent> {
    return this.stream<AskStreamEvent>('/v1/ask', {
      body: JSON.stringify({ ...withCollection(body, o), stream: true }),
      headers: { 'content-type': 'application/json' },
      ...(o.signal === undefined ? {} : { signal: o.signal }),
    });
  }

  listDocuments(query: ListDocumentsQuery = {}, o: RequestOptions = {}): Promise<DocumentListResponse> {
    return this.json('GET', '/v1/documents', { query: withCollection(query, o) as Query, signal: o.signal });
  }

  getDocument(id: string, o: RequestOptions = {}): Promise<DocumentResponse> {
    return this.json('GET', `/v1/documents/${encodeURIComponent(id)}`, {
      query: { collection: o.collection },
      signal: o.signal,
    });
  }

  deleteDocument(id: string, o: RequestOptions = {}): Promise<{ ok: boolean; deleted: string[] }> {
    return this.json('DELETE', `/v1/documents/${encodeURIComponent(id)}`, {
      query: { collection: o.collection },
      signal: o.signal,
    });
  }

  /** Add or update documents given as JSON (incremental: unchanged content is skipped). */
  upsertDocuments(body: UpsertDocumentsRequest, o: RequestOptions = {}): Promise<IngestResponse> {
    return this.json('POST', '/v1/documents', { body: withCollection(body, o), signal: o.signal });
  }

  /**
   * Upload files (each a `File`, or a `Blob` with a name); with `onProgress` the ingest reports as it runs.
   * Resolves to the per-document result; a failed file is a `failed` entry, a refused upload rejects.
   */
  async upload(
    files: ReadonlyArray<Blob & { name?: string }> | ReadonlyArray<{ name: string; data: Blob }>,
    o: RequestOptions & { onProgress?: (e: UploadEvent) => void } = {},
  ): Promise<IngestResponse> {
    const form = new FormData();
    if (o.collection !== undefined) form.append('collection', o.collection);
    for (const f of files) {
      if ('data' in f) form.append('file', f.data, f.name);
      else form.append('file', f, f.name ?? 'upload');
    }
    let result: IngestResponse | undefined;
    for await (const e of this.stream<UploadEvent>('/v1/documents/upload?stream=true', {
      body: form,
      ...(o.signal === undefined ? {} : { signal: o.signal }),
    })) {
      o.onProgress?.(e);
      if (e.event === 'result') result = e.data;
    }
    if (result === undefined)
      throw new QuarryApiError(0, { message: 'the upload stream ended without a result' });
    return result;
  }

  listCollections(o: RequestOptions = {}): Promise<{ collections: CollectionResponse[] }> {
    return this.json('GET', '/v1/collections', { signal: o.signal });
  }

  createCollection(name: string, o: RequestOptions = {}): Promise<CollectionResponse> {
    return this.json('POST', '/v1/collections', { body: { name }, signal: o.signal });
  }

  deleteCollection(name: string, o: RequestOptions = {}): Promise<{ ok: boolean }> {
    return this.json('DELETE', `/v1/collections/${encodeURIComponent(name)}`, { signal: o.signal });
  }

  feedback(body: FeedbackRequest, o: RequestOptions = {}): Promise<{ ok: boolean; queryId: string }> {
    return this.json('POST', '/v1/feedback', { body, signal: o.signal });
  }

  /** A query's stored trace: its id comes from a response's `queryId`, an ask stream's `meta`, or an eval run. */
  getTrace(id: string, o: RequestOptions = {}): Promise<TraceResponse> {
    return this.json('GET', `/v1/traces/${encodeURIComponent(id)}`, { signal: o.signal });
  }

  listEvalRuns(
    query: { limit?: number; dataset?: string } = {},
    o: RequestOptions = {},
  ): Promise<EvalRunList> {
    return this.json('GET', '/v1/eval/runs', {
      query: { ...query, collection: o.collection },
      signal: o.signal,
    });
  }

  getEvalRun(id: string, query: { worst?: number } = {}, o: RequestOptions = {}): Promise<EvalRunResponse> {
    return this.json('GET', `/v1/eval/runs/${encodeURIComponent(id)}`, {
      query: { ...query, collection: o.collection },
      signal: o.signal,
    });
  }

  /** Restore reversible PII tokens in `text` (admin scope; every attempt is audit-logged on the server). */
  restorePii(
    body: { text: string; reason: string },
    o: RequestOptions = {},
  ): Promise<{ text: string; restored: number }> {
    return this.json('POST', '/v1/admin/pii/restore', { body: withCollection(body, o), signal: o.signal });
  }

  /** Online A/B: requests, latency, abstention, citation validity and feedback per variant (admin scope). */
  variants(o: RequestOptions = {}): Promise<VariantsResponse> {
    return this.json('GET', '/v1/admin/variants', { query: { collection: o.collection }, signal: o.signal });
  }

  /** The OpenAI-compatible endpoint (non-streaming); citations in `quarry`. */
  chatCompletions(body: ChatCompletionRequest, o: RequestOptions = {}): Promise<ChatCompletionResponse> {
    return this.json('POST', '/v1/chat/completions', { body: { ...body, stream: false }, signal: o.signal });
  }

  models(o: RequestOptions = {}): Promise<ModelsResponse> {
    return this.json('GET', '/v1/models', { signal: o.signal });
  }

  private url(path: string, query?: Query): string {
    const qs = new URLSearchParams();
    for (const [k, v] of Object.entries(query ?? {})) if (v !== undefined) qs.set(k, String(v));
    const s = qs.toString();
    return `${this.base}${path}${s === '' ? '' : `${path.includes('?') ? '&' : '?'}${s}`}`;
  }

  private headers(extra: Record<string, string> = {}): Record<string, string> {
    return {
      ...this.options.headers,
      ...(this.options.apiKey === undefined ? {} : { authorization: `Bearer ${this.options.apiKey}` }),
      ...extra,
    };
  }

  private async send(path: string, init: RequestInit, query?: Query): Promise<Response> {
    let res: Response;
    try {
      res = await this.doFetch(this.url(path, query), {
        ...init,
        headers: this.headers(init.headers as Record<string, string> | undefined),
      });
    } catch (err) {
      if ((err as Error).name === 'AbortError') throw err;
      throw new QuarryApiError(0, {
        code: 'NETWORK',
        message: `cannot reach ${this.base}: ${(err as Error).message}`,
      });
    }
    if (!res.ok) throw await errorOf(res);
    return res;
  }

  private async json<T>(
    method: 'GET' | 'POST' | 'DELETE',
    path: string,
    r: { body?: unknown; query?: Query; signal?: AbortSignal | undefined },
  ): Promise<T> {
    const res = await this.send(
      path,
      {
        method,
        ...(r.body === undefined
          ? {}
          : { body: JSON.stringify(r.body), headers: { 'content-type': 'application/json' } }),
        ...(r.signal === undefined ? {} : { signal: r.signal }),
      },
      r.query,
    );
    return (await res.json()) as T;
  }

  private async *stream<E extends { event: string; data: unknown }>(
    path: string,
    init: { body: NonNullable<RequestInit['body']>; headers?: Record<string, string>; signal?: AbortSignal },
  ): AsyncGenerator<E> {
    const res = await this.send(path, {
      method: 'POST',
      body: init.body,
      headers: { accept: 'text/event-stream', ...init.headers },
      ...(init.signal === undefined ? {} : { signal: init.signal }),
    });
    if (res.body === null) throw new QuarryApiError(res.status, { message: 'the stream has no body' });
    const queue: EventSourceMessage[] = [];
    const parser = createParser({ onEvent: (m) => queue.push(m) });
    const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
    try {
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        parser.feed(value);
        while (queue.length > 0) {
          const m = queue.shift()!;
          const e = { event: m.event ?? 'message', data: JSON.parse(m.data) } as E;
          yield e;
          if (e.event === 'done') return;
        }
      }
    } finally {
      reader.cancel().catch(() => {});
    }
  }
}

async function errorOf(res: Response): Promise<QuarryApiError> {
  const text = await res.text().catch(() => '');
  try {
    const body = JSON.parse(text) as { error?: ErrorDetail };
    if (body.error !== undefined) return new QuarryApiError(res.status, body.error);
  } catch {
    // not the server's error body (a proxy's page, say): keep the status and the text
  }
  return new QuarryApiError(res.status, { message: `HTTP ${res.status}: ${text.slice(0, 200)}` });
}

function withCollection<T extends object>(body: T, o: RequestOptions): T {
  return o.collection === undefined ? body : { ...body, collection: o.collection };
}

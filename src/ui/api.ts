/**
 * The one place the web UI talks to the server: every request carries the session's API key (if any) as
 * `Authorization: Bearer`, errors come back as `ApiError` with the server's stable code and message, and the
 * ask stream is read as Server-Sent Events with eventsource-parser. The views only render what these return.
 */
import { EventSourceParserStream } from 'eventsource-parser/stream';
import type {
  AskEvent,
  CollectionInfo,
  DocumentPage,
  DocumentView,
  IngestResult,
  TraceRecord,
  UploadProgress,
  Whoami,
} from './types.js';

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

export interface AskRequest {
  question: string;
  collection?: string;
}

export interface ListQuery {
  collection?: string;
  limit: number;
  offset: number;
  filter?: string;
  source?: string;
}

async function failure(res: Response): Promise<ApiError> {
  try {
    const body = (await res.json()) as { error?: { code?: string; message?: string } };
    return new ApiError(res.status, body.error?.code ?? 'HTTP_ERROR', body.error?.message ?? res.statusText);
  } catch {
    return new ApiError(res.status, 'HTTP_ERROR', `${res.status} ${res.statusText}`);
  }
}

function query(params: Record<string, string | number | undefined>): string {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== '') q.set(k, String(v));
  const s = q.toString();
  return s === '' ? '' : `?${s}`;
}

export class Api {
  constructor(readonly key: string | undefined) {}

  private headers(extra: Record<string, string> = {}): Record<string, string> {
    return this.key === undefined ? extra : { ...extra, authorization: `Bearer ${this.key}` };
  }

  private async json<T>(method: string, url: string, body?: unknown): Promise<T> {
    const res = await fetch(url, {
      method,
      headers: this.headers(body === undefined ? {} : { 'content-type': 'application/json' }),
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    if (!res.ok) throw await failure(res);
    return (await res.json()) as T;
  }

  /** Who the key is; on a key-less loopback server the caller is trusted. */
  async whoami(): Promise<Whoami> {
    const { collections } = await this.json<{ collections: CollectionInfo[] }>('GET', '/v1/collections');
    return this.key === undefined
      ? { kind: 'trusted', scopes: ['admin'], groups: [], tenant: collections[0]?.tenant ?? 'default' }
      : { kind: 'user', keyId: this.key.split('_')[1] ?? '', scopes: [], groups: [] };
  }

  async collections(): Promise<CollectionInfo[]> {
    return (await this.json<{ collections: CollectionInfo[] }>('GET', '/v1/collections')).collections;
  }

  async *askStream(req: AskRequest, signal: AbortSignal): AsyncGenerator<AskEvent> {
    const res = await fetch('/v1/ask', {
      method: 'POST',
      headers: this.headers({ 'content-type': 'application/json', accept: 'text/event-stream' }),
      body: JSON.stringify({ ...req, stream: true }),
      signal,
    });
    if (!res.ok || res.body === null) throw await failure(res);
    const reader = res.body
      .pipeThrough(new TextDecoderStream())
      .pipeThrough(new EventSourceParserStream())
      .getReader();
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      yield { event: value.event, data: JSON.parse(value.data) } as AskEvent;
    }
  }

  trace(id: string): Promise<TraceRecord> {
    return this.json('GET', `/v1/traces/${encodeURIComponent(id)}`);
  }

  documents(q: ListQuery): Promise<DocumentPage> {
    return this.json('GET', `/v1/documents${query({ ...q })}`);
  }

  document(id: string, collection?: string): Promise<DocumentView> {
    return this.json('GET', `/v1/documents/${encodeURIComponent(id)}${query({ collection })}`);
  }

  deleteDocument(id: string, collection?: string): Promise<{ ok: boolean }> {
    return this.json('DELETE', `/v1/documents/${encodeURIComponent(id)}${query({ collection })}`);
  }

  /** Multipart upload; progress is the bytes sent, then the ingest's own report. */
  upload(files: File[], collection: string | undefined, onProgress: (p: UploadProgress) => void) {
    return new Promise<IngestResult>((resolve, reject) => {
      const form = new FormData();
      if (collection !== undefined) form.append('collection', collection);
      for (const f of files) form.append('file', f, f.name);
      const xhr = new XMLHttpRequest();
      xhr.open('POST', '/v1/documents/upload');
      for (const [k, v] of Object.entries(this.headers())) xhr.setRequestHeader(k, v);
      xhr.upload.onprogress = (e) => onProgress({ phase: 'upload', done: e.loaded, total: e.total });
      xhr.upload.onload = () => onProgress({ phase: 'ingest', done: 0, total: files.length });
      xhr.onerror = () => reject(new ApiError(0, 'NETWORK', 'the upload did not reach the server'));
      xhr.onload = () => {
        let body: { error?: { code: string; message: string } } & IngestResult;
        try {
          body = JSON.parse(xhr.responseText);
        } catch {
          reject(new ApiError(xhr.status, 'HTTP_ERROR', `${xhr.status} ${xhr.statusText}`));
          return;
        }
        if (xhr.status >= 400 || body.error !== undefined)
          reject(new ApiError(xhr.status, body.error?.code ?? 'HTTP_ERROR', body.error?.message ?? ''));
        else resolve(body);
      };
      xhr.send(form);
    });
  }
}

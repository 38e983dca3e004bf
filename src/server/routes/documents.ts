/**
 * `/v1/documents`: upsert JSON records, upload files (multipart), list with paging and filters, get one
 * (with its text), delete. Writes need the `ingest` scope and run one at a time per collection; reads show
 * only documents the principal may read (an invisible document is a 404, exactly like a missing one).
 * Uploaded files are kept under the collection's `uploads/` folder (their source), so uploading a file of the
 * same name again updates that document instead of adding another.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { FastifyInstance } from 'fastify';
import { QuarryError } from '../../errors.js';
import type { IngestReport } from '../../ingest/ingest.js';
import { ingestProgressEvent } from '../../ingest/progress.js';
import type { ProgressEvent } from '../../observability/progress.js';
import { compileFilter } from '../../retrieve/filter.js';
import type { StoredDocument } from '../../types.js';
import { defineRoute } from '../route.js';
import {
  CollectionQuery,
  DocumentListResponse,
  DocumentParams,
  DocumentResponse,
  IngestResponse,
  ListDocumentsQuery,
  Ok,
  UploadQuery,
  UpsertDocumentsRequest,
} from '../schemas.js';
import { openSse, quarryEvents, runStream, wantsStream } from '../sse.js';
import type { ServerState } from '../state.js';

/** Per-document status from an ingest report. */
export function ingestResponse(report: IngestReport, sourceOf?: (p: string) => string) {
  const docs: Array<Record<string, unknown>> = [
    ...report.documents.added.map((id) => ({ id, status: 'added' })),
    ...report.documents.updated.map((id) => ({ id, status: 'updated' })),
    ...report.documents.unchanged.map((id) => ({ id, status: 'unchanged' })),
    ...report.errors.map((e) => ({
      ...(e.record === undefined ? {} : { id: e.record }),
      source: sourceOf ? sourceOf(e.path) : e.path,
      status: 'failed',
      code: e.code,
      message: e.message,
    })),
  ];
  return {
    added: report.added,
    updated: report.updated,
    unchanged: report.unchanged,
    failed: report.failed,
    chunks: report.chunks,
    indexVersion: report.indexVersion,
    durationMs: report.durationMs,
    documents: docs,
  };
}

function documentView(d: StoredDocument, text?: string) {
  return {
    id: d.id,
    status: 'indexed',
    meta: d.meta,
    chunkCount: d.chunkCount,
    charCount: d.charCount,
    ...(text === undefined ? {} : { text }),
  };
}

/** An upload's file name as a safe single path segment, or an error naming it. */
export function safeUploadName(name: string): string {
  const base = name.normalize('NFC');
  if (
    base === '' ||
    base.length > 255 ||
    base.includes('/') ||
    base.includes('\\') ||
    base.includes('\0') ||
    base === '.' ||
    base === '..' ||
    base.startsWith('.')
  )
    throw new QuarryError(
      'INVALID_ARGUMENT',
      `upload file name "${name}" must be a plain file name (no path, not hidden)`,
      {
        file: name,
      },
    );
  return base;
}

export function registerDocumentRoutes(app: FastifyInstance, s: ServerState): void {
  defineRoute(
    app,
    s.registry,
    {
      method: 'POST',
      url: '/v1/documents',
      summary: 'Upsert documents given as JSON (text, markdown or html), incremental by content hash',
      tag: 'documents',
      scope: 'ingest',
      work: 'ingest',
      body: UpsertDocumentsRequest,
      response: IngestResponse,
    },
    async ({ body, principal }) => {
      const { quarry, info } = s.collections.get(principal, body.collection);
      const report = await s.collections.serialize(info.name, () =>
        quarry.addDocuments(body.documents as never),
      );
      return ingestResponse(report);
    },
  );

  defineRoute(
    app,
    s.registry,
    {
      method: 'POST',
      url: '/v1/documents/upload',
      summary:
        'Upload files (multipart/form-data, field `file`, repeatable; optional field `collection`); `?stream=true` streams ingest progress as SSE events received, progress, result, error, done',
      tag: 'documents',
      scope: 'ingest',
      work: 'ingest',
      multipart: true,
      query: UploadQuery,
      response: IngestResponse,
      streams: true,
    },
    async ({ principal, request, reply, query }) => {
      if (!request.isMultipart())
        throw new QuarryError(
          'INVALID_ARGUMENT',
          'upload must be multipart/form-data with one or more `file` fields',
        );
      let collection: string | undefined;
      const staged: Array<{ name: string; tmp: string }> = [];
      const stageDir = fs.mkdtempSync(path.join(s.collections.uploadsTmp(), 'upload-'));
      try {
        for await (const part of request.parts({
          limits: { fileSize: s.config.upload.maxFileBytes, files: s.config.upload.maxFiles },
        })) {
          if (part.type === 'field') {
            if (part.fieldname === 'collection') collection = String(part.value);
            continue;
          }
          // A part sent with an empty file name has none at run time (busboy), whatever its type says.
          const name = safeUploadName(part.filename ?? '');
          const tmp = path.join(stageDir, `${staged.length}-${name}`);
          await fs.promises.writeFile(tmp, part.file);
          if (part.file.truncated)
            throw new QuarryError(
              'FILE_TOO_LARGE',
              `${name} is larger than ${s.config.upload.maxFileBytes} bytes`,
              { file: name },
            );
          staged.push({ name, tmp });
        }
        if (staged.length === 0) throw new QuarryError('INVALID_ARGUMENT', 'upload has no `file` field');
        const { quarry, info } = s.collections.get(principal, collection);
        const dir = s.collections.uploadsDir(info.name);
        const ingestStaged = (onProgress?: (p: ProgressEvent) => void) =>
          s.collections.serialize(info.name, async () => {
            const fresh = new Set<string>();
            // A file replacing one of the same name keeps the previous bytes aside until it is ingested.
            const previous = new Map<string, string>();
            const targets = staged.map((f) => {
              const target = path.resolve(dir, f.name);
              if (!fs.existsSync(target)) fresh.add(target);
              else {
                const kept = path.join(stageDir, `previous-${previous.size}-${f.name}`);
                fs.renameSync(target, kept);
                previous.set(target, kept);
              }
              fs.renameSync(f.tmp, target);
              return target;
            });
            let result: IngestReport;
            try {
              // Named `uploads/<file>`, relative to the collection's store: no server path reaches a client.
              result = await quarry.ingest(targets, {
                prune: false,
                sourceRoot: path.dirname(dir),
                ...(onProgress === undefined
                  ? {}
                  : { onProgress: (p) => onProgress(ingestProgressEvent(p)) }),
              });
            } catch (e) {
              for (const [target, kept] of previous) fs.renameSync(kept, target);
              for (const target of fresh) fs.rmSync(target, { force: true });
              throw e;
            }
            // uploads/ holds the sources of stored documents only: a new file that failed is removed, and a
            // failed replacement gives way to the previous bytes, which the stored document was made from.
            for (const e of result.errors) {
              const file = path.resolve(path.dirname(dir), e.path);
              if (fresh.has(file)) fs.rmSync(file, { force: true });
              const kept = previous.get(file);
              if (kept !== undefined) fs.renameSync(kept, file);
            }
            return result;
          });
        if (!wantsStream(request, query.stream === undefined ? undefined : query.stream === 'true'))
          return ingestResponse(await ingestStaged(), (p) => path.basename(p));
        // Streamed: the files are received (the request body is consumed); the ingest reports as it goes.
        const sse = openSse(reply);
        const protocol = quarryEvents(request);
        await runStream(s, sse, protocol, async () => {
          const bytes = staged.reduce((n, f) => n + fs.statSync(f.tmp).size, 0);
          await sse.send('received', { files: staged.map((f) => f.name), bytes });
          // Writes are ordered on the socket; progress frames are not awaited so the ingest never waits on a reader.
          const report = await ingestStaged((p) => void sse.send('progress', p));
          await sse.send(
            'result',
            ingestResponse(report, (p) => path.basename(p)),
          );
        });
        return undefined;
      } finally {
        fs.rmSync(stageDir, { recursive: true, force: true });
      }
    },
  );

  defineRoute(
    app,
    s.registry,
    {
      method: 'GET',
      url: '/v1/documents',
      summary: 'List documents the key may read, with paging and filters (metadata filter, source prefix)',
      tag: 'documents',
      scope: 'query',
      query: ListDocumentsQuery,
      response: DocumentListResponse,
    },
    async ({ query, principal }) => {
      const { quarry } = s.collections.get(principal, query.collection);
      const filter = query.filter === undefined ? undefined : compileFilter(query.filter);
      const keep = (d: StoredDocument) =>
        (query.source === undefined || d.meta.source.startsWith(query.source)) &&
        (filter === undefined || filter.matches({ ...d.meta, id: d.id }));
      if (filter === undefined && query.source === undefined) {
        const page = quarry.listDocuments({ limit: query.limit + 1, offset: query.offset, principal });
        const more = page.length > query.limit;
        return {
          documents: page.slice(0, query.limit).map((d) => documentView(d)),
          limit: query.limit,
          offset: query.offset,
          nextOffset: more ? query.offset + query.limit : null,
        };
      }
      // Filtered: walk the readable documents in store order and page over the matches.
      const out: StoredDocument[] = [];
      let matched = 0;
      let more = false;
      for (let off = 0; ; off += 1000) {
        const batch = quarry.listDocuments({ limit: 1000, offset: off, principal });
        for (const d of batch) {
          if (!keep(d)) continue;
          if (matched >= query.offset && out.length < query.limit) out.push(d);
          else if (out.length >= query.limit) more = true;
          matched++;
        }
        if (batch.length < 1000 || more) break;
      }
      return {
        documents: out.map((d) => documentView(d)),
        limit: query.limit,
        offset: query.offset,
        nextOffset: more ? query.offset + query.limit : null,
      };
    },
  );

  defineRoute(
    app,
    s.registry,
    {
      method: 'GET',
      url: '/v1/documents/:id',
      summary: 'One document with its text and status',
      tag: 'documents',
      scope: 'query',
      params: DocumentParams,
      query: CollectionQuery,
      response: DocumentResponse,
    },
    async ({ params, query, principal }) => {
      const { quarry } = s.collections.get(principal, query.collection);
      const doc = quarry.getDocument(params.id, { principal });
      if (doc === undefined)
        throw new QuarryError('NOT_FOUND', `no document with id "${params.id}"`, { docId: params.id });
      return documentView(doc, doc.text);
    },
  );

  defineRoute(
    app,
    s.registry,
    {
      method: 'DELETE',
      url: '/v1/documents/:id',
      summary: 'Delete a document: nothing of it stays retrievable',
      tag: 'documents',
      scope: 'ingest',
      work: 'ingest',
      params: DocumentParams,
      query: CollectionQuery,
      response: Ok,
    },
    async ({ params, query, principal }) => {
      const { quarry, info } = s.collections.get(principal, query.collection);
      // A key cannot delete (or learn of) a document it cannot read.
      if (quarry.getDocument(params.id, { principal }) === undefined)
        throw new QuarryError('NOT_FOUND', `no document with id "${params.id}"`, { docId: params.id });
      const deleted = await s.collections.serialize(info.name, async () =>
        quarry.deleteDocuments([params.id]),
      );
      return { ok: deleted.length === 1, deleted };
    },
  );
}

/**
 * The MCP server: Quarry's search, cited answers and documents as Model Context Protocol tools and
 * resources, for one principal. A shell like the CLI and the HTTP server: every call goes to the library with
 * that principal, so an MCP client sees exactly what the same key sees over HTTP (tenants' collections,
 * document access, output redaction). `quarry mcp` serves it over stdio on a store opened in-process;
 * `quarry serve` builds one per `/mcp` request, bound to the request's API key (src/server/routes/mcp.ts).
 *
 * Documents are resources: `quarry://documents/{id}` in the default collection and
 * `quarry://collections/{collection}/documents/{id}` in another one, the id percent-encoded.
 */
import { createHash } from 'node:crypto';
import { McpServer, ResourceTemplate } from '@modelcontextprotocol/sdk/server/mcp.js';
import {
  type CallToolResult,
  ErrorCode as JsonRpcError,
  ListResourcesRequestSchema,
  type ListResourcesResult,
  McpError,
  type ReadResourceResult,
  type Resource,
} from '@modelcontextprotocol/sdk/types.js';
import { z } from 'zod';
import { hasScope, type Principal } from '../access/principal.js';
import { ERRORS, type ErrorCode, isQuarryError, QuarryError } from '../errors.js';
import type { IngestReport } from '../ingest/ingest.js';
import type { Quarry, SearchResult } from '../pipeline/quarry.js';
import { DEFAULT_COLLECTION } from '../server/collections.js';
// The HTTP request schemas, so a tool argument has the same limits as the same field of POST /v1/search.
import { AskRequest, DocumentInputSchema, DocumentParams, SearchRequest } from '../server/schemas.js';
import type { Answer, RequestUsage } from '../types.js';

/** How the server finds a principal's collections: the server's `Collections`, or one store (`singleCollection`). */
export interface McpCollections {
  /** The collection's Quarry instance; NOT_FOUND when it does not exist or the principal may not use it. */
  get(p: Principal, name: string | undefined): { quarry: Quarry; info: { name: string } };
  /** The collections the principal may use, in listing order (the default one first when visible). */
  list(p: Principal): Array<{ name: string }>;
  /** Run a write to one collection after the writes before it. */
  serialize<T>(collection: string, fn: () => Promise<T>): Promise<T>;
}

export interface CreateMcpServerOptions {
  principal: Principal;
  collections: McpCollections;
  /** Quarry's version, announced to the client. */
  version: string;
  /** Deadline of each search and ask (default: the pipeline's `budget.totalMs`). */
  budgetMs?: number;
  /** Called before every tool call and resource request; throws to refuse it (a revoked key, a spent budget). */
  beforeCall?: () => void;
  /** The model usage of each search and ask, e.g. to count it against the key's budget. */
  onUsage?: (usage: RequestUsage) => void;
  /** Keep a search under a query id (for its trace and feedback); the id is returned with the hits. */
  recordSearch?: (collection: string, result: SearchResult) => string;
  /** Keep an answer under a query id; the id is returned with the answer. */
  recordAnswer?: (collection: string, answer: Answer) => string;
  /** A refused tool call or resource request (its error code and message), e.g. for metrics and logs. */
  onRefused?: (error: { code: string; message: string }) => void;
  /** An error that is not a QuarryError (a bug): the client only learns that one happened. */
  onInternalError?: (e: unknown) => void;
}

/** Resources per `resources/list` page. */
export const RESOURCE_PAGE = 100;

const Collection = SearchRequest.shape.collection;

const SearchInput = z
  .object({
    query: SearchRequest.shape.query,
    k: SearchRequest.shape.k,
    collection: Collection,
    filter: SearchRequest.shape.filter,
  })
  .strict();

const AskInput = z
  .object({
    question: AskRequest.shape.question,
    collection: Collection,
    k: AskRequest.shape.k.describe('Chunks to retrieve for the answer (default 10)'),
    filter: AskRequest.shape.filter,
  })
  .strict();

const GetDocumentInput = z.object({ id: DocumentParams.shape.id, collection: Collection }).strict();

const AddDocumentInput = z
  .object({
    id: DocumentInputSchema.shape.id
      .optional()
      .describe('Document id (default: derived from the text, so the same text added again is unchanged)'),
    text: z.string().min(1).describe('The content'),
    format: z
      .enum(['text', 'markdown', 'html'])
      .default('text')
      .describe('How to parse the content: Markdown headings become sections, HTML keeps its structure'),
    meta: z
      .object({
        title: DocumentInputSchema.shape.title,
        source: DocumentInputSchema.shape.source.describe('Where it came from (shown with citations)'),
        metadata: DocumentInputSchema.shape.metadata.describe(
          'User fields (filterable), e.g. {"tags":["faq"]}',
        ),
        access: DocumentInputSchema.shape.access,
      })
      .strict()
      .optional(),
    collection: Collection,
  })
  .strict();

const Degraded = z.array(z.object({ stage: z.string(), reason: z.string() }));

const SearchOutput = z.object({
  queryId: z.string().optional(),
  collection: z.string(),
  query: z.string().describe('The query as searched (after redaction when output is redacted)'),
  hits: z.array(
    z.object({
      rank: z.number(),
      score: z.number(),
      docId: z.string(),
      uri: z.string().describe('The document as an MCP resource'),
      chunkId: z.number(),
      title: z.string(),
      source: z.string(),
      sectionPath: z.array(z.string()),
      text: z.string(),
    }),
  ),
  rewrite: z.object({ original: z.string(), searched: z.string() }).optional(),
  degraded: Degraded,
});

const AskOutput = z.object({
  queryId: z.string().optional(),
  collection: z.string(),
  text: z.string().describe('The answer, with [n] markers naming its citations'),
  citations: z.array(
    z.object({
      marker: z.number(),
      docId: z.string(),
      uri: z.string(),
      source: z.string(),
      title: z.string(),
      chunkId: z.number(),
      start: z.number().describe('Offset of the passage in the document text'),
      end: z.number(),
      passage: z.string().describe('The cited text, exactly as it is in the document'),
    }),
  ),
  confidence: z.number(),
  abstained: z.boolean().describe('True when the sources did not support an answer'),
  answerer: z.string(),
  degraded: Degraded,
});

const DocumentOutput = z.object({
  id: z.string(),
  collection: z.string(),
  uri: z.string(),
  meta: z.record(z.string(), z.unknown()),
  chunkCount: z.number(),
  charCount: z.number(),
  text: z.string(),
});

const AddDocumentOutput = z.object({
  id: z.string(),
  collection: z.string(),
  uri: z.string(),
  status: z.enum(['added', 'updated', 'unchanged']),
  chunks: z.number().describe('Chunks written'),
  indexVersion: z.number(),
});

/** What each tool returns as `structuredContent` (its output schema). */
export type SearchToolOutput = z.infer<typeof SearchOutput>;
export type AskToolOutput = z.infer<typeof AskOutput>;
export type DocumentToolOutput = z.infer<typeof DocumentOutput>;
export type AddDocumentToolOutput = z.infer<typeof AddDocumentOutput>;

/** The resource URI of a document. */
export function documentUri(collection: string, id: string): string {
  const doc = encodeURIComponent(id);
  return collection === DEFAULT_COLLECTION
    ? `quarry://documents/${doc}`
    : `quarry://collections/${encodeURIComponent(collection)}/documents/${doc}`;
}

/** A store opened in-process as the one collection `default` (stdio without a server database). */
export function singleCollection(quarry: Quarry): McpCollections & { close(): void } {
  let queue: Promise<unknown> = Promise.resolve();
  return {
    get(_p, name) {
      if (name !== undefined && name !== DEFAULT_COLLECTION)
        throw new QuarryError(
          'NOT_FOUND',
          `no collection "${name}" (this store has no server database, so only "${DEFAULT_COLLECTION}")`,
          { collection: name },
        );
      return { quarry, info: { name: DEFAULT_COLLECTION } };
    },
    list: () => [{ name: DEFAULT_COLLECTION }],
    serialize(_c, fn) {
      const next = queue.then(fn, fn);
      queue = next.catch(() => undefined);
      return next;
    },
    close: () => quarry.close(),
  };
}

function errorText(code: string, message: string): string {
  // QuarryError messages start with the code's title ("Not found: …"); the code in front is what scripts match.
  return `${code}: ${message}`;
}

type Hooks = Pick<CreateMcpServerOptions, 'onRefused' | 'onInternalError'>;

/** A refused call as an MCP tool error (`isError`) carrying the QuarryError code, message and details. */
function toolError(e: unknown, hooks: Hooks): CallToolResult {
  const d = isQuarryError(e)
    ? { code: e.code, message: e.message, details: e.details }
    : { code: 'INTERNAL', message: 'internal error (see the Quarry server log)', details: {} };
  if (!isQuarryError(e)) hooks.onInternalError?.(e);
  hooks.onRefused?.({ code: d.code, message: d.message });
  return {
    isError: true,
    content: [{ type: 'text', text: errorText(d.code, d.message) }],
    _meta: { 'quarry/error': d },
  };
}

/** A refused resource request as a JSON-RPC error: not found is MCP's resource-not-found code. */
function resourceError(e: unknown, hooks: Hooks): McpError {
  if (e instanceof McpError) {
    hooks.onRefused?.({ code: 'INVALID_ARGUMENT', message: e.message });
    return e;
  }
  if (!isQuarryError(e)) {
    hooks.onInternalError?.(e);
    hooks.onRefused?.({ code: 'INTERNAL', message: 'internal error' });
    return new McpError(JsonRpcError.InternalError, 'internal error (see the Quarry server log)');
  }
  hooks.onRefused?.({ code: e.code, message: e.message });
  const code =
    e.code === 'NOT_FOUND' || e.code === 'STORE_NOT_FOUND'
      ? RESOURCE_NOT_FOUND
      : e.code === 'INVALID_ARGUMENT' || e.code === 'INVALID_FILTER'
        ? JsonRpcError.InvalidParams
        : JsonRpcError.InternalError;
  return new McpError(code, errorText(e.code, e.message), { code: e.code, ...e.details });
}

/** MCP's "resource not found" JSON-RPC error code. */
const RESOURCE_NOT_FOUND = -32002;

function decodeSegment(value: string | string[] | undefined, what: string): string {
  const v = Array.isArray(value) ? value.join(',') : (value ?? '');
  try {
    return decodeURIComponent(v);
  } catch {
    throw new QuarryError('INVALID_ARGUMENT', `${what} "${v}" in the resource URI is not percent-encoded`);
  }
}

interface Cursor {
  collection: string;
  offset: number;
}

function encodeCursor(c: Cursor): string {
  return Buffer.from(JSON.stringify([c.collection, c.offset])).toString('base64url');
}

function decodeCursor(s: string): Cursor {
  try {
    const v = JSON.parse(Buffer.from(s, 'base64url').toString('utf8')) as unknown;
    if (Array.isArray(v) && typeof v[0] === 'string' && Number.isInteger(v[1]) && (v[1] as number) >= 0)
      return { collection: v[0], offset: v[1] as number };
  } catch {
    // fall through
  }
  throw new McpError(JsonRpcError.InvalidParams, `invalid resources/list cursor "${s}"`);
}

function formatHits(r: SearchResult, hits: z.infer<typeof SearchOutput>['hits']): string {
  if (hits.length === 0) return `no results for "${r.query}"`;
  const lines: string[] = [];
  if (r.rewrite !== undefined)
    lines.push(`searched for "${r.rewrite.searched}" instead of "${r.rewrite.original}"`);
  for (const h of hits) {
    const section = h.sectionPath.length > 0 ? ` › ${h.sectionPath.join(' › ')}` : '';
    lines.push(
      `${h.rank}. ${h.title || h.docId} — ${h.source}${section} (score ${h.score.toFixed(3)}, ${h.uri})`,
      `   ${h.text.replace(/\s+/g, ' ').trim()}`,
    );
  }
  return lines.join('\n');
}

function formatAnswer(a: z.infer<typeof AskOutput>): string {
  const lines = [a.text];
  const seen = new Set<number>();
  const sources = a.citations.filter((c) => !seen.has(c.marker) && seen.add(c.marker));
  if (sources.length > 0) {
    lines.push('', 'Sources:');
    for (const c of sources)
      lines.push(`[${c.marker}] ${c.title || c.docId} — ${c.source} (${c.uri})`, `    "${c.passage}"`);
  }
  lines.push('', `confidence ${a.confidence.toFixed(2)}${a.abstained ? ' (abstained)' : ''}`);
  return lines.join('\n');
}

/** The document id `add_document` gives content that came without one. */
function contentId(text: string): string {
  return `doc-${createHash('sha256').update(text).digest('hex').slice(0, 16)}`;
}

function ingestOutcome(report: IngestReport, id: string): 'added' | 'updated' | 'unchanged' {
  const failed = report.errors[0];
  if (failed !== undefined)
    throw new QuarryError(
      failed.code in ERRORS ? (failed.code as ErrorCode) : 'INVALID_RECORD',
      failed.message,
      { docId: id },
    );
  if (report.documents.added.includes(id)) return 'added';
  if (report.documents.updated.includes(id)) return 'updated';
  return 'unchanged';
}

/**
 * An MCP server for `principal`: tools `search`, `ask`, `get_document` and, with the `ingest` scope only,
 * `add_document`; documents as resources (listed in pages of RESOURCE_PAGE, only those the principal may
 * read). Connect it to a transport (stdio, Streamable HTTP) with `server.connect(transport)`.
 *
 * @example
 * const server = createMcpServer({ principal: TRUSTED_LOCAL, collections: singleCollection(quarry), version });
 * await server.connect(new StdioServerTransport());
 */
export function createMcpServer(opts: CreateMcpServerOptions): McpServer {
  const { principal, collections } = opts;
  const server = new McpServer(
    { name: 'quarry', title: 'Quarry', version: opts.version },
    {
      capabilities: { tools: {}, resources: {} },
      instructions:
        'Quarry searches and answers from an indexed document store. Use `search` for passages, `ask` for an answer ' +
        'with numbered citations ([1], [2]…) that point at the passages it rests on, and `get_document` (or the ' +
        'quarry://documents/{id} resource) for a whole document. Cite sources by their markers.',
    },
  );

  const retrieval = (extra: { signal: AbortSignal }, record: boolean) => ({
    principal,
    trace: record,
    signal: extra.signal,
    ...(opts.budgetMs === undefined ? {} : { budgetMs: opts.budgetMs }),
  });

  const tool = async <T>(
    run: () => Promise<T>,
    present: (out: T) => CallToolResult,
  ): Promise<CallToolResult> => {
    try {
      opts.beforeCall?.();
      return present(await run());
    } catch (e) {
      return toolError(e, opts);
    }
  };

  server.registerTool(
    'search',
    {
      title: 'Search documents',
      description:
        'Hybrid search over the documents you may read: the top-k passages for a query, each with its document, ' +
        'source, section and score. Optional metadata filter (MongoDB-style JSON, e.g. {"tags":{"$in":["faq"]}}).',
      inputSchema: SearchInput,
      outputSchema: SearchOutput,
      annotations: { readOnlyHint: true, openWorldHint: false },
    },
    (args, extra) =>
      tool(
        async () => {
          const { quarry, info } = collections.get(principal, args.collection);
          const result = await quarry.search(args.query, {
            ...retrieval(extra, opts.recordSearch !== undefined),
            ...(args.k === undefined ? {} : { k: args.k }),
            ...(args.filter === undefined ? {} : { filter: args.filter }),
          });
          if (result.usage !== undefined) opts.onUsage?.(result.usage);
          const queryId = opts.recordSearch?.(info.name, result);
          const out: z.infer<typeof SearchOutput> = {
            ...(queryId === undefined ? {} : { queryId }),
            collection: info.name,
            query: result.query,
            hits: result.hits.map((h) => ({
              rank: h.rank,
              score: h.score,
              docId: h.document.id,
              uri: documentUri(info.name, h.document.id),
              chunkId: h.chunk.id,
              title: h.chunk.title,
              source: h.document.source,
              sectionPath: h.chunk.sectionPath,
              text: h.chunk.text,
            })),
            ...(result.rewrite === undefined
              ? {}
              : { rewrite: { original: result.rewrite.original, searched: result.rewrite.searched } }),
            degraded: result.degraded.map((d) => ({ stage: d.stage, reason: d.reason })),
          };
          return { result, out };
        },
        ({ result, out }) => ({
          content: [
            { type: 'text', text: formatHits(result, out.hits) },
            ...[...new Map(out.hits.map((h) => [h.uri, h])).values()].map((h) => ({
              type: 'resource_link' as const,
              uri: h.uri,
              name: h.docId,
              ...(h.title === '' ? {} : { title: h.title }),
              mimeType: 'text/plain',
            })),
          ],
          structuredContent: out,
        }),
      ),
  );

  server.registerTool(
    'ask',
    {
      title: 'Answer with citations',
      description:
        'Answer a question from the documents you may read. The answer carries numbered markers ([1], [2]…); each ' +
        'citation gives the document, its source and the exact passage. Abstains (abstained: true) when the ' +
        'sources do not support an answer.',
      inputSchema: AskInput,
      outputSchema: AskOutput,
      annotations: { readOnlyHint: true, openWorldHint: false },
    },
    (args, extra) =>
      tool(
        async () => {
          const { quarry, info } = collections.get(principal, args.collection);
          const answer = await quarry.ask(args.question, {
            ...retrieval(extra, opts.recordAnswer !== undefined),
            ...(args.k === undefined ? {} : { k: args.k }),
            ...(args.filter === undefined ? {} : { filter: args.filter }),
          });
          if (answer.usage !== undefined) opts.onUsage?.(answer.usage);
          const queryId = opts.recordAnswer?.(info.name, answer);
          const out: z.infer<typeof AskOutput> = {
            ...(queryId === undefined ? {} : { queryId }),
            collection: info.name,
            text: answer.text,
            citations: answer.citations.map((c) => ({
              marker: c.marker,
              docId: c.docId,
              uri: documentUri(info.name, c.docId),
              source: c.source,
              title: c.title,
              chunkId: c.chunkId,
              start: c.start,
              end: c.end,
              passage: c.quote,
            })),
            confidence: answer.confidence,
            abstained: answer.abstained,
            answerer: answer.answerer,
            degraded: answer.degraded.map((d) => ({ stage: d.stage, reason: d.reason })),
          };
          return out;
        },
        (out) => ({ content: [{ type: 'text', text: formatAnswer(out) }], structuredContent: out }),
      ),
  );

  const readDocument = (collection: string | undefined, id: string) => {
    const { quarry, info } = collections.get(principal, collection);
    // Invisible is absent: the same NOT_FOUND as GET /v1/documents/{id}.
    const doc = quarry.getDocument(id, { principal });
    if (doc === undefined) throw new QuarryError('NOT_FOUND', `no document with id "${id}"`, { docId: id });
    return { doc, collection: info.name };
  };

  server.registerTool(
    'get_document',
    {
      title: 'Get a document',
      description: 'One whole document (its text and metadata) by id, if you may read it.',
      inputSchema: GetDocumentInput,
      outputSchema: DocumentOutput,
      annotations: { readOnlyHint: true, openWorldHint: false },
    },
    (args) =>
      tool(
        async () => {
          const { doc, collection } = readDocument(args.collection, args.id);
          return {
            id: doc.id,
            collection,
            uri: documentUri(collection, doc.id),
            meta: { ...doc.meta },
            chunkCount: doc.chunkCount,
            charCount: doc.charCount,
            text: doc.text,
          } satisfies z.infer<typeof DocumentOutput>;
        },
        (out) => ({ content: [{ type: 'text', text: out.text }], structuredContent: out }),
      ),
  );

  if (hasScope(principal, 'ingest'))
    server.registerTool(
      'add_document',
      {
        title: 'Add a document',
        description:
          'Add (or replace, by id) a document: parsed, chunked and indexed at once, searchable on return. ' +
          'Adding the same content again changes nothing.',
        inputSchema: AddDocumentInput,
        outputSchema: AddDocumentOutput,
        annotations: {
          readOnlyHint: false,
          destructiveHint: false,
          idempotentHint: true,
          openWorldHint: false,
        },
      },
      (args) =>
        tool(
          async () => {
            // Registered only for an ingest key; checked again so a change of registration cannot open it.
            if (!hasScope(principal, 'ingest'))
              throw new QuarryError('FORBIDDEN', 'this key lacks the "ingest" scope needed for add_document');
            const { quarry, info } = collections.get(principal, args.collection);
            const id = args.id ?? contentId(args.text);
            const m = args.meta ?? {};
            const report = await collections.serialize(info.name, () =>
              quarry.addDocuments([
                {
                  id,
                  [args.format]: args.text,
                  ...(m.title === undefined ? {} : { title: m.title }),
                  ...(m.source === undefined ? {} : { source: m.source }),
                  ...(m.metadata === undefined ? {} : { metadata: m.metadata }),
                  ...(m.access === undefined ? {} : { access: m.access }),
                },
              ]),
            );
            return {
              id,
              collection: info.name,
              uri: documentUri(info.name, id),
              status: ingestOutcome(report, id),
              chunks: report.chunks,
              indexVersion: report.indexVersion,
            } satisfies z.infer<typeof AddDocumentOutput>;
          },
          (out) => ({
            content: [
              {
                type: 'text',
                text: `${out.status} document "${out.id}" (${out.chunks} chunks written, ${out.uri})`,
              },
            ],
            structuredContent: out,
          }),
        ),
    );

  /** One page of the documents the principal may read, collection after collection. */
  const listPage = (cursor: string | undefined): ListResourcesResult => {
    const names = collections.list(principal).map((c) => c.name);
    const start =
      cursor === undefined ? { collection: names[0] ?? DEFAULT_COLLECTION, offset: 0 } : decodeCursor(cursor);
    let i = names.indexOf(start.collection);
    if (i < 0) return { resources: [] };
    let offset = start.offset;
    const resources: Resource[] = [];
    while (i < names.length) {
      const name = names[i]!;
      const room = RESOURCE_PAGE - resources.length;
      const { quarry } = collections.get(principal, name);
      // One more than fits tells whether this collection goes on past the page.
      const docs = quarry.listDocuments({ limit: room + 1, offset, principal });
      for (const d of docs.slice(0, room))
        resources.push({
          uri: documentUri(name, d.id),
          name: d.id,
          ...(d.meta.title === '' ? {} : { title: d.meta.title }),
          description: `${d.meta.source}${name === DEFAULT_COLLECTION ? '' : ` (collection ${name})`}`,
          mimeType: 'text/plain',
        });
      if (docs.length > room)
        return { resources, nextCursor: encodeCursor({ collection: name, offset: offset + room }) };
      i++;
      offset = 0;
      if (resources.length >= RESOURCE_PAGE)
        return i < names.length
          ? { resources, nextCursor: encodeCursor({ collection: names[i]!, offset: 0 }) }
          : { resources };
    }
    return { resources };
  };

  const guardedList = (cursor: string | undefined): ListResourcesResult => {
    try {
      opts.beforeCall?.();
      return listPage(cursor);
    } catch (e) {
      throw resourceError(e, opts);
    }
  };

  const read = (uri: URL, collection: string | undefined, id: string): ReadResourceResult => {
    try {
      opts.beforeCall?.();
      const { doc } = readDocument(collection, id);
      return {
        contents: [
          {
            uri: uri.href,
            mimeType: 'text/plain',
            text: doc.text,
            _meta: { title: doc.meta.title, source: doc.meta.source },
          },
        ],
      };
    } catch (e) {
      throw resourceError(e, opts);
    }
  };

  server.registerResource(
    'document',
    new ResourceTemplate('quarry://documents/{id}', { list: () => guardedList(undefined) }),
    {
      title: 'Document',
      description: 'A document of the default collection, by id (percent-encoded): its text.',
      mimeType: 'text/plain',
    },
    (uri, v) => read(uri, undefined, decodeSegment(v.id, 'document id')),
  );
  server.registerResource(
    'collection-document',
    // Listed by the template above, which pages through every collection the principal may use.
    new ResourceTemplate('quarry://collections/{collection}/documents/{id}', { list: undefined }),
    {
      title: 'Document in a collection',
      description: 'A document of a named collection, by id (both percent-encoded): its text.',
      mimeType: 'text/plain',
    },
    (uri, v) => read(uri, decodeSegment(v.collection, 'collection'), decodeSegment(v.id, 'document id')),
  );
  // McpServer's own resources/list calls each template's list callback without the request's cursor and
  // returns everything at once; this one pages (RESOURCE_PAGE per call, `nextCursor` until the last page).
  server.server.setRequestHandler(ListResourcesRequestSchema, (request) =>
    guardedList(request.params?.cursor),
  );
  return server;
}

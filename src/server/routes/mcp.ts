/**
 * `/mcp`: the MCP server (src/mcp/server.ts) over Streamable HTTP. Stateless: each POST gets a new server
 * bound to that request's principal, so a key is checked, rate-limited and budgeted on every message exactly
 * as on the other routes, and a revoked key stops working at the next message; there is no session to keep or
 * steal. Replies are JSON (the transport's JSON response mode), handed to Fastify as a web Response, so the
 * request id, security and CORS headers and the request log are the same as everywhere else. Without
 * sessions there is no server-to-client stream to open and no session to end: GET and DELETE answer 405, as
 * the protocol allows a stateless server to.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { defineRoute } from '../route.js';
import type { ServerState } from '../state.js';
import { answerRecord, searchRecord } from './query.js';
import { recordUsage } from './usage.js';

const JsonRpcMessage = z
  .object({
    jsonrpc: z.literal('2.0'),
    id: z.union([z.string(), z.number()]).optional(),
    method: z.string().optional(),
    params: z.record(z.string(), z.unknown()).optional(),
  })
  .passthrough();

const McpRequest = z
  .union([JsonRpcMessage, z.array(JsonRpcMessage).min(1).max(100)])
  .describe(
    'A Model Context Protocol message (JSON-RPC 2.0), or a batch. Send `Accept: application/json, text/event-stream`. Tools: search, ask, get_document, add_document (ingest scope); documents as resources quarry://documents/{id}',
  );

const McpResponse = z
  .union([z.record(z.string(), z.unknown()), z.array(z.record(z.string(), z.unknown()))])
  .describe('The JSON-RPC response(s); 202 with no body for notifications');

const NOT_ALLOWED = {
  jsonrpc: '2.0',
  error: {
    code: -32000,
    message: 'Method not allowed: this MCP endpoint is stateless (POST only; no server stream, no session)',
  },
  id: null,
};

// The SDK loads on the first MCP request, not when the server starts.
let sdk:
  | Promise<
      [
        typeof import('../../mcp/server.js'),
        typeof import('@modelcontextprotocol/sdk/server/webStandardStreamableHttp.js'),
      ]
    >
  | undefined;

function webRequest(request: FastifyRequest): Request {
  const headers = new Headers();
  for (const [k, v] of Object.entries(request.headers)) {
    if (v === undefined) continue;
    for (const one of Array.isArray(v) ? v : [v]) headers.append(k, one);
  }
  return new Request(new URL(request.url, 'http://localhost'), { method: request.method, headers });
}

export function registerMcpRoutes(app: FastifyInstance, s: ServerState): void {
  defineRoute(
    app,
    s.registry,
    {
      method: 'POST',
      url: '/mcp',
      summary: 'Model Context Protocol (Streamable HTTP, stateless): search, ask, documents as MCP tools',
      tag: 'mcp',
      scope: 'query',
      work: 'query',
      body: McpRequest,
      response: McpResponse,
    },
    async ({ principal, request, reply }) => {
      sdk ??= Promise.all([
        import('../../mcp/server.js'),
        import('@modelcontextprotocol/sdk/server/webStandardStreamableHttp.js'),
      ]);
      const [{ createMcpServer }, { WebStandardStreamableHTTPServerTransport }] = await sdk;
      const record = (
        kind: 'search' | 'ask',
        collection: string,
        query: string,
        body: Record<string, unknown>,
      ) => {
        const id = s.records.newId();
        s.records.save(principal, { id, collection, kind, query, body });
        return id;
      };
      const server = createMcpServer({
        principal,
        collections: s.collections,
        version: s.version,
        budgetMs: s.config.requestTimeoutMs,
        onUsage: (u) => recordUsage(s, request, u),
        recordSearch: (c, r) => record('search', c, r.query, searchRecord(r)),
        recordAnswer: (c, a) => record('ask', c, a.question, answerRecord(a)),
        // Refusals travel as MCP results (HTTP 200), so they are counted and logged here as other routes' are.
        onRefused: (d) => {
          s.metrics.errors.inc({ code: d.code });
          request.log.info(d, 'MCP call refused');
        },
        onInternalError: (e) => request.log.error({ err: e }, 'MCP call failed'),
      });
      const transport = new WebStandardStreamableHTTPServerTransport({
        sessionIdGenerator: undefined,
        enableJsonResponse: true,
      });
      // A client that goes away mid-call: closing the server aborts the running tool (its search or ask).
      const gone = () => {
        if (!reply.raw.writableFinished) void server.close();
      };
      reply.raw.once('close', gone);
      try {
        await server.connect(transport);
        // JSON response mode: resolves once every reply of this request is ready.
        return await transport.handleRequest(webRequest(request), { parsedBody: request.body });
      } finally {
        reply.raw.off('close', gone);
        await server.close();
      }
    },
  );

  for (const method of ['GET', 'DELETE'] as const)
    defineRoute(
      app,
      s.registry,
      {
        method,
        url: '/mcp',
        summary: `405: the MCP endpoint is stateless (no ${method === 'GET' ? 'server-to-client stream' : 'session to end'})`,
        tag: 'mcp',
        scope: 'query',
        response: z.object({
          jsonrpc: z.literal('2.0'),
          error: z.object({ code: z.number(), message: z.string() }),
        }),
      },
      async ({ reply }) => {
        reply.code(405).header('allow', 'POST');
        return NOT_ALLOWED;
      },
    );
}

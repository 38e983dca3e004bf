/**
 * The MCP endpoint of `quarry serve` (POST /mcp, Streamable HTTP), driven by the SDK's own client over real
 * HTTP: the same keys, scopes, tenants, document access, rate limits and output redaction as the rest of the
 * API. Tools differ by scope, answers cite real passages, restricted documents are invisible on every path
 * (tools, resource listing and reads), and add_document writes what search then finds.
 */
import { randomBytes } from 'node:crypto';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { McpError } from '@modelcontextprotocol/sdk/types.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DocumentInput } from '../../src/ingest/add-documents.js';
import { type DocumentToolOutput, RESOURCE_PAGE, type SearchToolOutput } from '../../src/mcp/server.js';
import { HANDBOOK, startTestServer, type TestServer } from '../server/harness.js';
import { call, errorCode, type ToolResult } from './tools.js';

const FILLERS: DocumentInput[] = Array.from({ length: 130 }, (_, i) => ({
  id: `note-${String(i).padStart(3, '0')}`,
  text: `Harbour note ${i}: the quay lamp number ${i} was checked on a windy evening.`,
}));

let t: TestServer;

beforeAll(async () => {
  t = await startTestServer({
    docs: [...HANDBOOK, ...FILLERS],
    keys: [
      { name: 'reader', scopes: ['query'] },
      { name: 'hr', scopes: ['query'], groups: ['hr'] },
      { name: 'writer', scopes: ['query', 'ingest'] },
      { name: 'ingest-only', scopes: ['ingest'] },
      { name: 'acme', scopes: ['query', 'ingest'], tenant: 'acme' },
      { name: 'admin', scopes: ['admin'] },
      { name: 'limited', scopes: ['query'], ratePerMinute: 4 },
    ],
  });
});
afterAll(async () => {
  await t?.close();
});

const open: Client[] = [];
afterAll(async () => {
  await Promise.all(open.map((c) => c.close()));
});

async function connect(url: string, key?: string): Promise<Client> {
  const client = new Client({ name: 'quarry-test', version: '1.0.0' });
  const headers: Record<string, string> = key === undefined ? {} : { authorization: `Bearer ${key}` };
  await client.connect(new StreamableHTTPClientTransport(new URL('/mcp', url), { requestInit: { headers } }));
  open.push(client);
  return client;
}

/** A raw MCP POST (what the client sends), for status codes and error bodies. */
function post(key: string | undefined, message: unknown) {
  return t.call('POST', '/mcp', {
    ...(key === undefined ? {} : { key }),
    body: message,
    headers: { accept: 'application/json, text/event-stream' },
  });
}

const INITIALIZE = {
  jsonrpc: '2.0',
  id: 1,
  method: 'initialize',
  params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'raw', version: '1' } },
};

async function allResources(c: Client): Promise<{ uris: string[]; pages: number; firstPage: number }> {
  const uris: string[] = [];
  let cursor: string | undefined;
  let pages = 0;
  let firstPage = 0;
  do {
    const page = await c.listResources(cursor === undefined ? {} : { cursor });
    if (pages === 0) firstPage = page.resources.length;
    pages++;
    uris.push(...page.resources.map((r) => r.uri));
    cursor = page.nextCursor;
  } while (cursor !== undefined && pages < 50);
  return { uris, pages, firstPage };
}

describe('connecting', () => {
  it('no key and an unknown key are 401 with the server error body; the SDK client fails to connect', async () => {
    const none = await post(undefined, INITIALIZE);
    expect(none.status).toBe(401);
    expect(none.body.error.code).toBe('UNAUTHORIZED');
    expect(none.headers.get('www-authenticate')).toBe('Bearer');
    const unknown = await post(`${t.keys.reader!.slice(0, -4)}AAAA`, INITIALIZE);
    expect(unknown.status).toBe(401);
    expect(unknown.body.error.code).toBe('UNAUTHORIZED');
    const err = await connect(t.url, 'qk_0123456789abcdef_nope').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(Error);
    expect((err as { code?: number }).code).toBe(401);
    expect(String(err)).toMatch(/UNAUTHORIZED/);
  });

  it('a key without the query scope is 403 FORBIDDEN', async () => {
    const r = await post(t.keys['ingest-only'], INITIALIZE);
    expect(r.status).toBe(403);
    expect(r.body.error.code).toBe('FORBIDDEN');
    expect(r.body.error.message).toMatch(/"query" scope/);
  });

  it('GET and DELETE answer 405 (stateless: no stream, no session), and need a key like POST', async () => {
    for (const method of ['GET', 'DELETE']) {
      const r = await t.call(method, '/mcp', {
        key: t.keys.reader!,
        headers: { accept: 'text/event-stream' },
      });
      expect(r.status).toBe(405);
      expect(r.headers.get('allow')).toBe('POST');
      expect(r.body.error.code).toBe(-32000);
      expect((await t.call(method, '/mcp')).status).toBe(401);
    }
  });

  it('each MCP message counts against the key rate limit like any request (429 RATE_LIMITED)', async () => {
    const statuses: number[] = [];
    for (let i = 0; i < 5; i++) statuses.push((await post(t.keys.limited, INITIALIZE)).status);
    expect(statuses).toEqual([200, 200, 200, 200, 429]);
    const r = await post(t.keys.limited, INITIALIZE);
    expect(r.body.error.code).toBe('RATE_LIMITED');
  });

  it('is listed in the OpenAPI document with the scope it needs', async () => {
    const doc = await t.call('GET', '/openapi.json');
    expect(doc.body.paths['/mcp'].post['x-quarry-scope']).toBe('query');
    expect(Object.keys(doc.body.paths['/mcp']).sort()).toEqual(['delete', 'get', 'post']);
  });
});

describe('tools', () => {
  it('differ by scope: add_document only for a key with ingest', async () => {
    const reader = await connect(t.url, t.keys.reader);
    const writer = await connect(t.url, t.keys.writer);
    const names = async (c: Client) => (await c.listTools()).tools.map((x) => x.name).sort();
    expect(await names(reader)).toEqual(['ask', 'get_document', 'search']);
    expect(await names(writer)).toEqual(['add_document', 'ask', 'get_document', 'search']);
    const search = (await reader.listTools()).tools.find((x) => x.name === 'search')!;
    expect(search.outputSchema).toBeDefined();
    expect(search.inputSchema.required).toEqual(['query']);
  });

  it('search returns the expected document, recorded under a query id whose trace the key may read', async () => {
    const c = await connect(t.url, t.keys.reader);
    const r = await call(c, 'search', { query: 'ferry to Islay from Kennacraig', k: 3 });
    expect(r.isError).toBeFalsy();
    const s = r.structuredContent!;
    expect(s.hits[0]!.docId).toBe('ferry');
    expect(s.hits[0]!.uri).toBe('quarry://documents/ferry');
    expect(s.hits[0]!.text).toContain('07:00');
    expect(s.hits.length).toBeLessThanOrEqual(3);
    expect(r.content[0]!.text).toContain('Ferry timetable');
    expect(r.content.some((x) => x.type === 'resource_link' && x.uri === 'quarry://documents/ferry')).toBe(
      true,
    );
    const trace = await t.call('GET', `/v1/traces/${s.queryId}`, { key: t.keys.reader! });
    expect(trace.status).toBe(200);
    expect(trace.body.kind).toBe('search');
  });

  it('search hides what the key may not read, and sees it with the right group', async () => {
    const reader = await connect(t.url, t.keys.reader);
    const hr = await connect(t.url, t.keys.hr);
    const q = { query: 'senior engineer salary band euros' };
    const seen = (r: ToolResult<SearchToolOutput>) => r.structuredContent!.hits.map((h) => h.docId);
    expect(seen(await call(reader, 'search', q))).not.toContain('salaries');
    expect(seen(await call(hr, 'search', q))[0]).toBe('salaries');
    expect(seen(await call(hr, 'search', { query: 'merger Northwind codename Bluebird' }))).not.toContain(
      'merger',
    );
  });

  it('search has the limits and filter semantics of POST /v1/search', async () => {
    const c = await connect(t.url, t.keys.reader);
    const tooMany = await call(c, 'search', { query: 'ferry', k: 201 });
    expect(tooMany.isError).toBe(true);
    expect(tooMany.content[0]!.text).toMatch(/k/);
    const badFilter = await call(c, 'search', { query: 'ferry', filter: { $where: 'x' } });
    expect(badFilter.isError).toBe(true);
    expect(errorCode(badFilter)).toBe('INVALID_FILTER');
    expect(badFilter.content[0]!.text).toMatch(/^INVALID_FILTER: /);
    const filtered = await call(c, 'search', { query: 'ferry Islay', filter: { id: 'refunds' } });
    expect(filtered.isError).toBeFalsy();
    expect(filtered.structuredContent!.hits.every((h) => h.docId === 'refunds')).toBe(true);
  });

  it('ask answers with numbered citations whose passages are in the cited documents', async () => {
    const c = await connect(t.url, t.keys.reader);
    const r = await call(c, 'ask', { question: 'When does the ferry to Islay leave Kennacraig?' });
    expect(r.isError).toBeFalsy();
    const a = r.structuredContent!;
    expect(a.abstained).toBe(false);
    expect(a.confidence).toBeGreaterThan(0);
    expect(a.citations.length).toBeGreaterThan(0);
    expect(a.text).toMatch(/\[1\]/);
    for (const cit of a.citations) {
      const doc = await call(c, 'get_document', { id: cit.docId });
      expect(doc.isError).toBeFalsy();
      expect(doc.structuredContent!.text.slice(cit.start, cit.end)).toBe(cit.passage);
    }
    expect(a.citations[0]!.docId).toBe('ferry');
    expect(r.content[0]!.text).toContain('Sources:');
    expect(r.content[0]!.text).toContain('[1] Ferry timetable');
  });

  it('get_document of a restricted document is NOT_FOUND, exactly as a missing one, and counted', async () => {
    const reader = await connect(t.url, t.keys.reader);
    const notFound = async () => {
      const m = await t.call('GET', '/metrics', { key: t.keys.admin! });
      return Number(/quarry_http_errors_total\{code="NOT_FOUND"\} (\d+)/.exec(m.body)?.[1] ?? 0);
    };
    const before = await notFound();
    const hidden = await call(reader, 'get_document', { id: 'salaries' });
    const missing = await call(reader, 'get_document', { id: 'no-such-doc' });
    expect(hidden.isError).toBe(true);
    expect(errorCode(hidden)).toBe('NOT_FOUND');
    expect(hidden.content[0]!.text).toBe(missing.content[0]!.text!.replace('no-such-doc', 'salaries'));
    expect(await notFound()).toBe(before + 2);
    const hr = await connect(t.url, t.keys.hr);
    const shown = await call(hr, 'get_document', { id: 'salaries' });
    expect(shown.isError).toBeFalsy();
    expect(shown.structuredContent!.text).toContain('90,000 to 120,000');
  });

  it('a query key calling add_document by name fails, and nothing is written', async () => {
    const reader = await connect(t.url, t.keys.reader);
    const r = await call(reader, 'add_document', { id: 'sneaky', text: 'Sneaky note about the lighthouse.' });
    expect(r.isError).toBe(true);
    expect(r.content[0]!.text).toMatch(/add_document not found/);
    expect((await call(reader, 'get_document', { id: 'sneaky' })).isError).toBe(true);
  });

  it('add_document writes what search then finds; the same content again is unchanged', async () => {
    const writer = await connect(t.url, t.keys.writer);
    const doc = {
      id: 'kayaks',
      text: '# Kayak hire\n\nSea kayaks are hired out at the harbour slipway from May to September.',
      format: 'markdown',
      meta: { metadata: { tags: ['leisure'] } },
    };
    const added = await call(writer, 'add_document', doc);
    expect(added.isError).toBeFalsy();
    expect(added.structuredContent).toMatchObject({
      id: 'kayaks',
      status: 'added',
      uri: 'quarry://documents/kayaks',
    });
    expect(added.structuredContent!.chunks).toBeGreaterThan(0);
    const reader = await connect(t.url, t.keys.reader);
    const found = await call(reader, 'search', {
      query: 'sea kayak hire slipway',
      filter: { tags: 'leisure' },
    });
    expect(found.structuredContent!.hits[0]!.docId).toBe('kayaks');
    expect(found.structuredContent!.hits[0]!.title).toBe('Kayak hire');
    expect((await call(writer, 'add_document', doc)).structuredContent!.status).toBe('unchanged');
    const noId = await call(writer, 'add_document', { text: 'Bicycles can be left at the pier rack.' });
    expect(noId.structuredContent!.id).toMatch(/^doc-[0-9a-f]{16}$/);
  });

  it('add_document into a restricted document stays invisible to keys outside its group', async () => {
    const writer = await connect(t.url, t.keys.writer);
    const r = await call(writer, 'add_document', {
      id: 'payroll-run',
      text: 'The payroll run happens on the 25th of every month.',
      meta: { access: ['hr'] },
    });
    expect(r.structuredContent!.status).toBe('added');
    const reader = await connect(t.url, t.keys.reader);
    expect((await call(reader, 'get_document', { id: 'payroll-run' })).isError).toBe(true);
    const hr = await connect(t.url, t.keys.hr);
    expect((await call(hr, 'get_document', { id: 'payroll-run' })).isError).toBeFalsy();
  });

  it("another tenant's key cannot reach the default collection", async () => {
    const acme = await connect(t.url, t.keys.acme);
    const r = await call(acme, 'search', { query: 'ferry' });
    expect(r.isError).toBe(true);
    expect(errorCode(r)).toBe('NOT_FOUND');
    expect(r.content[0]!.text).toMatch(/no collection "default"/);
    expect((await acme.listResources()).resources).toEqual([]);
  });
});

describe('documents as resources', () => {
  it('resources/list pages through only the documents the key may read', async () => {
    const reader = await connect(t.url, t.keys.reader);
    const { uris, pages, firstPage } = await allResources(reader);
    expect(firstPage).toBe(RESOURCE_PAGE);
    expect(pages).toBeGreaterThan(1);
    expect(new Set(uris).size).toBe(uris.length);
    expect(uris).toContain('quarry://documents/ferry');
    expect(uris).toContain('quarry://documents/note-129');
    expect(uris).not.toContain('quarry://documents/salaries');
    expect(uris).not.toContain('quarry://documents/merger');
    expect(uris).not.toContain('quarry://documents/payroll-run');
    const hr = await connect(t.url, t.keys.hr);
    const hrUris = (await allResources(hr)).uris;
    expect(hrUris).toContain('quarry://documents/salaries');
    expect(hrUris).not.toContain('quarry://documents/merger');
    expect(hrUris.length).toBeGreaterThan(uris.length);
  });

  it('resources/read returns the text, and a restricted document is resource-not-found', async () => {
    const reader = await connect(t.url, t.keys.reader);
    const r = await reader.readResource({ uri: 'quarry://documents/refunds' });
    expect((r.contents[0] as { text: string }).text).toContain('five working days');
    const err = await reader.readResource({ uri: 'quarry://documents/salaries' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(McpError);
    expect((err as McpError).code).toBe(-32002);
    expect((err as McpError).message).toMatch(/NOT_FOUND/);
    const hr = await connect(t.url, t.keys.hr);
    const shown = await hr.readResource({ uri: 'quarry://documents/salaries' });
    expect((shown.contents[0] as { text: string }).text).toContain('Salary bands');
    const templates = (await reader.listResourceTemplates()).resourceTemplates.map((x) => x.uriTemplate);
    expect(templates.sort()).toEqual([
      'quarry://collections/{collection}/documents/{id}',
      'quarry://documents/{id}',
    ]);
  });

  it('documents of another collection have their own URIs, listed after the default collection', async () => {
    const created = await t.call('POST', '/v1/collections', { key: t.keys.admin!, body: { name: 'ops' } });
    expect(created.status).toBe(201);
    const writer = await connect(t.url, t.keys.writer);
    const added = await call(writer, 'add_document', {
      id: 'runbook/restart',
      text: 'Restart the tide gauge by holding the reset switch for ten seconds.',
      collection: 'ops',
    });
    const uri = 'quarry://collections/ops/documents/runbook%2Frestart';
    expect(added.structuredContent!.uri).toBe(uri);
    const read = await writer.readResource({ uri });
    expect((read.contents[0] as { text: string }).text).toContain('tide gauge');
    const { uris } = await allResources(writer);
    expect(uris.at(-1)).toBe(uri);
    const found = await call(writer, 'search', { query: 'tide gauge reset switch', collection: 'ops' });
    expect(found.structuredContent!.hits[0]!.uri).toBe(uri);
  });
});

describe('a key-less loopback server', () => {
  it('trusts its local caller, as on every other route: all tools, every document', async () => {
    const local = await startTestServer({ docs: HANDBOOK });
    try {
      const c = await connect(local.url);
      expect((await c.listTools()).tools.map((x) => x.name)).toContain('add_document');
      const merger = await call(c, 'get_document', { id: 'merger' });
      expect(merger.structuredContent!.text).toContain('Bluebird');
      await c.close();
    } finally {
      await local.close();
    }
  });
});

describe('from a browser', () => {
  it('a configured CORS origin may send the headers an MCP client sends', async () => {
    const origin = 'https://app.example';
    const web = await startTestServer({ docs: HANDBOOK, config: { cors: { origins: [origin] } } });
    try {
      const pre = await fetch(`${web.url}/mcp`, {
        method: 'OPTIONS',
        headers: {
          origin,
          'access-control-request-method': 'POST',
          'access-control-request-headers': 'authorization, content-type, mcp-protocol-version',
        },
      });
      expect(pre.headers.get('access-control-allow-origin')).toBe(origin);
      const allowed = (pre.headers.get('access-control-allow-headers') ?? '').toLowerCase().split(/\s*,\s*/);
      expect(allowed).toEqual(
        expect.arrayContaining(['authorization', 'content-type', 'mcp-protocol-version']),
      );
    } finally {
      await web.close();
    }
  });
});

describe('output redaction', () => {
  it('no raw PII leaves through search, ask, get_document or a resource read', async () => {
    const KEY_ENV = 'QUARRY_TEST_MCP_PII_KEY';
    process.env[KEY_ENV] = randomBytes(32).toString('hex');
    const EMAIL = 'dana.whitfield@example.org';
    const SSN = '536-22-1937';
    const pii = await startTestServer({
      docs: [
        {
          id: 'contacts',
          markdown: `# Payroll contacts\n\nEscalations go to Dana Whitfield at ${EMAIL}; her payroll SSN is ${SSN}.`,
        },
      ],
      pipeline: { privacy: { enabled: true, at: 'answers', mode: 'reversible', keyEnv: KEY_ENV } },
      keys: [{ name: 'app', scopes: ['query'] }],
    });
    try {
      const c = await connect(pii.url, pii.keys.app);
      const outputs = [
        await call(c, 'search', { query: `payroll escalations ${EMAIL}` }),
        await call(c, 'ask', { question: 'Who handles payroll escalations?' }),
        await call(c, 'get_document', { id: 'contacts' }),
        await c.readResource({ uri: 'quarry://documents/contacts' }),
        await c.listResources(),
      ];
      expect((outputs[0] as ToolResult<SearchToolOutput>).structuredContent!.hits[0]!.docId).toBe('contacts');
      expect((outputs[2] as ToolResult<DocumentToolOutput>).structuredContent!.text).toMatch(
        /\[EMAIL_[0-9a-f]{16}\]/,
      );
      const all = JSON.stringify(outputs);
      expect(all).not.toContain(EMAIL);
      expect(all).not.toContain(SSN);
      await c.close();
    } finally {
      await pii.close();
      delete process.env[KEY_ENV];
    }
  });
});

/**
 * Access boundaries, probed adversarially on a real server: keys of two tenants and of different groups and
 * clearances issue every read the API has — search, ask (JSON and streamed), OpenAI chat, MCP tools and
 * resources, document get and list (with crafted filters and source prefixes), feedback, traces of other
 * keys' queries, eval runs, variants — with queries naming what they may not see, after an admin has warmed
 * the caches with the same queries. Hidden documents carry unique marker words; no response body of a key
 * that may not read them contains a marker, a hidden id or a hidden title. Prints the requests tried.
 */
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DocumentInput } from '../../src/ingest/add-documents.js';
import { startTestServer, type TestServer } from '../server/harness.js';

const HIDDEN: Array<{ id: string; title: string; marker: string; access: DocumentInput['access'] }> = [
  { id: 'hr-salaries', title: 'Salary bands zephyrine', marker: 'zephyrine', access: { groups: ['hr'] } },
  {
    id: 'exec-merger',
    title: 'Merger quillberry',
    marker: 'quillberry',
    access: { groups: ['exec'], level: 3 },
  },
  { id: 'user-review', title: 'Review of marlowe', marker: 'marlowe', access: { users: ['boss'] } },
];

const DOCS: DocumentInput[] = [
  { id: 'canteen', markdown: '# Canteen\n\nThe canteen serves soup at noon. Salary day is the 25th.' },
  { id: 'ferry', markdown: '# Ferry\n\nThe ferry leaves at seven; tickets cost 18 pounds.' },
  ...HIDDEN.map((h) => ({
    id: h.id,
    markdown: `# ${h.title}\n\nConfidential ${h.marker} notes: the ${h.marker} figure is 120,000 euros. Salary merger review.`,
    access: h.access,
  })),
];

let srv: TestServer;
const probes: Array<{ who: string; what: string; sent: string; body: string }> = [];

beforeAll(async () => {
  srv = await startTestServer({
    docs: DOCS,
    keys: [
      {
        name: 'admin',
        scopes: ['query', 'ingest', 'admin'],
        groups: ['hr', 'exec'],
        clearance: 5,
        userId: 'boss',
      },
      { name: 'reader', scopes: ['query'] },
      { name: 'hr', scopes: ['query'], groups: ['hr'] },
      { name: 'exec-low', scopes: ['query'], groups: ['exec'], clearance: 1 },
      { name: 'writer', scopes: ['query', 'ingest'] },
      {
        name: 'other-tenant',
        scopes: ['query', 'ingest', 'admin'],
        tenant: 'rival',
        groups: ['hr', 'exec'],
        clearance: 9,
        userId: 'boss',
      },
    ],
  });
});
afterAll(async () => {
  await srv?.close();
});

/** What each key may see of the hidden documents. */
const MAY_SEE: Record<string, string[]> = {
  reader: [],
  hr: ['hr-salaries'],
  'exec-low': [],
  writer: [],
  'other-tenant': [],
};

async function probe(
  who: string,
  what: string,
  method: string,
  url: string,
  body?: unknown,
  headers?: Record<string, string>,
) {
  const r = await fetch(srv.url + url, {
    method,
    headers: {
      authorization: `Bearer ${srv.keys[who]}`,
      ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      ...headers,
    },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = await r.text();
  probes.push({ who, what, sent: `${url} ${JSON.stringify(body ?? null)}`, body: text });
  return { status: r.status, text };
}

const QUERIES = [
  'zephyrine salary figure',
  'quillberry merger',
  'marlowe review',
  'confidential notes 120,000 euros',
];
const FILTERS: unknown[] = [
  { id: 'hr-salaries' },
  { id: { $in: HIDDEN.map((h) => h.id) } },
  { $or: [{ id: 'exec-merger' }, { id: 'canteen' }] },
  { access_groups: { $in: ['hr', 'exec'] } },
  { title: { $regex: 'zephyrine' } },
  { security_level: { $gte: 0 } },
];

describe('access boundaries under probing', () => {
  it('no content, title, id, count or trace of a hidden document reaches a key that may not read it', async () => {
    // The admin warms every cache layer with the same questions first.
    const adminQueryIds: string[] = [];
    for (const q of QUERIES) {
      const s = await probe('admin', 'warm search', 'POST', '/v1/search', { query: q });
      const a = await probe('admin', 'warm ask', 'POST', '/v1/ask', { question: q });
      adminQueryIds.push(JSON.parse(s.text).queryId, JSON.parse(a.text).queryId);
    }
    expect(probes.some((p) => p.body.includes('zephyrine'))).toBe(true); // the admin does see them

    for (const who of Object.keys(MAY_SEE)) {
      const collection = who === 'other-tenant' ? { collection: 'default' } : {};
      for (const q of QUERIES) {
        await probe(who, 'search', 'POST', '/v1/search', { query: q, k: 50, trace: true, ...collection });
        await probe(who, 'search no cache', 'POST', '/v1/search', {
          query: q,
          cache: false,
          trace: true,
          ...collection,
        });
        await probe(who, 'search no typos', 'POST', '/v1/search', { query: q, typos: false, ...collection });
        await probe(who, 'ask', 'POST', '/v1/ask', { question: q, trace: true, ...collection });
        await probe(who, 'ask stream', 'POST', '/v1/ask', { question: q, stream: true, ...collection });
        await probe(who, 'chat', 'POST', '/v1/chat/completions', {
          model: 'quarry',
          messages: [{ role: 'user', content: q }],
        });
        await probe(who, 'chat stream', 'POST', '/v1/chat/completions', {
          model: 'quarry',
          stream: true,
          messages: [{ role: 'user', content: q }],
        });
        for (const filter of FILTERS) {
          await probe(who, 'search filter', 'POST', '/v1/search', { query: q, filter, ...collection });
          await probe(
            who,
            'list filter',
            'GET',
            `/v1/documents?filter=${encodeURIComponent(JSON.stringify(filter))}`,
          );
        }
      }
      for (const h of HIDDEN) {
        await probe(who, 'get', 'GET', `/v1/documents/${h.id}`);
        await probe(who, 'delete', 'DELETE', `/v1/documents/${h.id}`);
        await probe(who, 'feedback', 'POST', '/v1/feedback', {
          queryId: adminQueryIds[0],
          docId: h.id,
          helpful: true,
        });
      }
      await probe(who, 'list', 'GET', '/v1/documents?limit=1000');
      await probe(who, 'list source', 'GET', `/v1/documents?source=${encodeURIComponent('memory:')}`);
      await probe(who, 'collections', 'GET', '/v1/collections');
      await probe(who, 'models', 'GET', '/v1/models');
      await probe(who, 'eval runs', 'GET', '/v1/eval/runs');
      await probe(who, 'variants', 'GET', '/v1/admin/variants');
      for (const id of adminQueryIds) await probe(who, "admin's trace", 'GET', `/v1/traces/${id}`);
      // MCP: the same key over the MCP endpoint.
      if (who !== 'other-tenant') {
        const client = new Client({ name: 'probe', version: '1.0.0' });
        await client.connect(
          new StreamableHTTPClientTransport(new URL('/mcp', srv.url), {
            requestInit: { headers: { authorization: `Bearer ${srv.keys[who]}` } },
          }),
        );
        const mcp = (what: string, sent: string, v: unknown) =>
          probes.push({ who, what, sent, body: JSON.stringify(v) });
        for (const q of QUERIES) {
          mcp('mcp search', q, await client.callTool({ name: 'search', arguments: { query: q, k: 50 } }));
          mcp('mcp ask', q, await client.callTool({ name: 'ask', arguments: { question: q } }));
        }
        for (const h of HIDDEN)
          mcp('mcp get', h.id, await client.callTool({ name: 'get_document', arguments: { id: h.id } }));
        mcp('mcp resources', '', await client.listResources());
        for (const h of HIDDEN)
          mcp(
            'mcp read',
            h.id,
            await client.readResource({ uri: `quarry://documents/${h.id}` }).catch((e: Error) => e.message),
          );
        await client.close();
      }
    }

    // A leak is hidden content (sentences of the hidden document), its title, or its id where the caller
    // did not send that id itself (a NOT_FOUND naming the id asked for echoes the caller's own input).
    const leaks: string[] = [];
    for (const p of probes) {
      if (p.who === 'admin') continue;
      const allowed = new Set(MAY_SEE[p.who]);
      const text = p.body.toLowerCase();
      for (const h of HIDDEN) {
        if (allowed.has(h.id)) continue;
        if (text.includes(`confidential ${h.marker} notes`) || text.includes(`${h.marker} figure`))
          leaks.push(`${p.who} ${p.what}: content of ${h.id}`);
        if (text.includes(h.title.toLowerCase())) leaks.push(`${p.who} ${p.what}: title of ${h.id}`);
        if (text.includes(h.id) && !p.sent.includes(h.id)) leaks.push(`${p.who} ${p.what}: id ${h.id}`);
      }
    }
    const tried = probes.filter((p) => p.who !== 'admin').length;
    console.log(
      `access probes: ${tried} requests by ${Object.keys(MAY_SEE).length} keys, leaks: ${leaks.length}`,
    );
    expect([...new Set(leaks)]).toEqual([]);
    // The hr key does see its own document (the probes can find what is there).
    expect(probes.some((p) => p.who === 'hr' && p.what === 'get' && p.body.includes('zephyrine'))).toBe(true);
    expect(tried).toBeGreaterThan(500);
  });
});

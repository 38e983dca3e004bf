/**
 * Auth and access control that fail closed, against a real server with API keys: missing, malformed,
 * unknown and revoked keys (401), missing scopes (403), other tenants' collections (404, as if absent),
 * documents outside a key's groups, user or clearance (invisible on every path), per-key rate limits and
 * budgets (429 naming the limit). Every refused write leaves the store as it was.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openServerDb } from '../../src/server/db.js';
import { KeyStore } from '../../src/server/keys.js';
import { HANDBOOK, parseSse, startTestServer, type TestServer } from './harness.js';

let t: TestServer;

beforeAll(async () => {
  t = await startTestServer({
    docs: HANDBOOK,
    keys: [
      { name: 'reader', scopes: ['query'] },
      { name: 'hr', scopes: ['query'], groups: ['hr'] },
      { name: 'exec-low', scopes: ['query'], groups: ['exec'], clearance: 1 },
      { name: 'exec-high', scopes: ['query'], groups: ['exec'], clearance: 5 },
      { name: 'writer', scopes: ['query', 'ingest'] },
      { name: 'admin', scopes: ['admin'] },
      { name: 'acme-admin', scopes: ['admin'], tenant: 'acme' },
      { name: 'limited', scopes: ['query'], ratePerMinute: 3 },
      { name: 'budgeted', scopes: ['query'], budget: { tokens: 1 } },
    ],
  });
});
afterAll(async () => {
  await t?.close();
});

const ids = (r: { body: { hits: Array<{ document: { id: string } }> } }) =>
  r.body.hits.map((h) => h.document.id);

describe('keys', () => {
  it('no key, a malformed key and an unknown key are 401 UNAUTHORIZED', async () => {
    const none = await t.call('POST', '/v1/search', { body: { query: 'ferry' } });
    expect(none.status).toBe(401);
    expect(none.body.error.code).toBe('UNAUTHORIZED');
    expect(none.headers.get('www-authenticate')).toBe('Bearer');
    expect((await t.call('POST', '/v1/search', { key: 'hunter2', body: { query: 'ferry' } })).status).toBe(
      401,
    );
    const forged = `${t.keys.reader!.slice(0, -4)}AAAA`;
    expect((await t.call('POST', '/v1/search', { key: forged, body: { query: 'ferry' } })).status).toBe(401);
    const viaHeader = await t.call('POST', '/v1/search', {
      headers: { 'x-api-key': t.keys.reader! },
      body: { query: 'ferry' },
    });
    expect(viaHeader.status).toBe(200);
  });

  it('keys are stored hashed: the database never holds the secret', () => {
    const db = openServerDb(t.store);
    const rows = db.prepare('SELECT * FROM api_keys').all();
    db.close();
    const dump = JSON.stringify(rows);
    for (const key of Object.values(t.keys))
      expect(dump).not.toContain(key.slice('qk_0123456789abcdef_'.length));
  });

  it('a revoked key stops working at once', async () => {
    const db = openServerDb(t.store);
    const ks = new KeyStore(db);
    const { key, record } = ks.create({ name: 'temp', scopes: ['query'] });
    expect((await t.call('GET', '/v1/collections', { key })).status).toBe(200);
    ks.revoke(record.id);
    db.close();
    expect((await t.call('GET', '/v1/collections', { key })).status).toBe(401);
  });

  it('health and the OpenAPI document need no key; metrics need an admin key', async () => {
    expect((await t.call('GET', '/healthz')).status).toBe(200);
    expect((await t.call('GET', '/openapi.json')).status).toBe(200);
    expect((await t.call('GET', '/metrics')).status).toBe(401);
    expect((await t.call('GET', '/metrics', { key: t.keys.reader })).status).toBe(403);
    expect((await t.call('GET', '/metrics', { key: t.keys.admin })).status).toBe(200);
  });
});

describe('scopes', () => {
  it('a query key cannot write, delete or administer, and nothing changes', async () => {
    const w = await t.call('POST', '/v1/documents', {
      key: t.keys.reader,
      body: { documents: [{ id: 'sneaky', text: 'should not be stored' }] },
    });
    expect(w.status).toBe(403);
    expect(w.body.error.code).toBe('FORBIDDEN');
    expect(w.body.error.message).toMatch(/ingest/);
    expect((await t.call('DELETE', '/v1/documents/ferry', { key: t.keys.reader })).status).toBe(403);
    expect(
      (await t.call('POST', '/v1/collections', { key: t.keys.writer, body: { name: 'x' } })).status,
    ).toBe(403);
    const restore = await t.call('POST', '/v1/admin/pii/restore', {
      key: t.keys.writer,
      body: { text: 'x', reason: 'test' },
    });
    expect(restore.status).toBe(403);
    expect((await t.call('GET', '/v1/documents/sneaky', { key: t.keys.admin })).status).toBe(404);
    expect((await t.call('GET', '/v1/documents/ferry', { key: t.keys.admin })).status).toBe(200);
  });

  it('an ingest key writes', async () => {
    const w = await t.call('POST', '/v1/documents', {
      key: t.keys.writer,
      body: { documents: [{ id: 'canteen', text: 'The canteen opens at noon.' }] },
    });
    expect(w.status).toBe(200);
    expect(w.body.added).toBe(1);
  });
});

describe('tenants', () => {
  it("a key of one tenant cannot name another tenant's collection (404, as if it did not exist)", async () => {
    const created = await t.call('POST', '/v1/collections', {
      key: t.keys['acme-admin'],
      body: { name: 'acme-docs' },
    });
    expect(created.status).toBe(201);
    expect(created.body.tenant).toBe('acme');
    await t.call('POST', '/v1/documents', {
      key: t.keys['acme-admin'],
      body: {
        collection: 'acme-docs',
        documents: [{ id: 'acme-secret', text: 'Acme pricing is confidential.' }],
      },
    });
    for (const key of [t.keys.admin, t.keys.reader]) {
      const s = await t.call('POST', '/v1/search', {
        key,
        body: { collection: 'acme-docs', query: 'pricing' },
      });
      expect(s.status).toBe(404);
      expect(s.body.error.code).toBe('NOT_FOUND');
      const d = await t.call('GET', '/v1/documents/acme-secret?collection=acme-docs', { key });
      expect(d.status).toBe(404);
      const w = await t.call('POST', '/v1/documents', {
        key: t.keys.admin,
        body: { collection: 'acme-docs', documents: [{ id: 'planted', text: 'x' }] },
      });
      expect(w.status).toBe(404);
      expect((await t.call('DELETE', '/v1/collections/acme-docs', { key: t.keys.admin })).status).toBe(404);
    }
    // The default tenant's collection is not acme's either.
    const other = await t.call('POST', '/v1/search', { key: t.keys['acme-admin'], body: { query: 'ferry' } });
    expect(other.status).toBe(404);
    const mine = await t.call('GET', '/v1/collections', { key: t.keys['acme-admin'] });
    expect(mine.body.collections.map((c: { name: string }) => c.name)).toEqual(['acme-docs']);
    const models = await t.call('GET', '/v1/models', { key: t.keys['acme-admin'] });
    expect(models.body.data.map((m: { id: string }) => m.id)).toEqual(['quarry/acme-docs']);
    const found = await t.call('POST', '/v1/search', {
      key: t.keys['acme-admin'],
      body: { collection: 'acme-docs', query: 'pricing' },
    });
    expect(ids(found)).toEqual(['acme-secret']);
  });

  it('a trace of one key is not readable by another tenant or by a key that sees other documents', async () => {
    const s = await t.call('POST', '/v1/search', { key: t.keys.hr, body: { query: 'salary band' } });
    expect((await t.call('GET', `/v1/traces/${s.body.queryId}`, { key: t.keys.hr })).status).toBe(200);
    expect((await t.call('GET', `/v1/traces/${s.body.queryId}`, { key: t.keys.reader })).status).toBe(404);
    expect((await t.call('GET', `/v1/traces/${s.body.queryId}`, { key: t.keys['acme-admin'] })).status).toBe(
      404,
    );
    expect((await t.call('GET', `/v1/traces/${s.body.queryId}`, { key: t.keys.admin })).status).toBe(200);
    const fb = await t.call('POST', '/v1/feedback', {
      key: t.keys.reader,
      body: { queryId: s.body.queryId, docId: 'salaries', helpful: true },
    });
    expect(fb.status).toBe(404);
  });
});

describe('documents outside a key’s access are invisible on every path', () => {
  it('search, ask (JSON and stream), chat, get and list', async () => {
    const q = 'senior engineer salary band euros';
    expect(ids(await t.call('POST', '/v1/search', { key: t.keys.reader, body: { query: q } }))).not.toContain(
      'salaries',
    );
    expect(ids(await t.call('POST', '/v1/search', { key: t.keys.hr, body: { query: q } }))).toContain(
      'salaries',
    );

    const ask = await t.call('POST', '/v1/ask', {
      key: t.keys.reader,
      body: { question: 'What is the senior engineer salary band?' },
    });
    expect(JSON.stringify(ask.body)).not.toMatch(/120,000|salaries/);
    const askHr = await t.call('POST', '/v1/ask', {
      key: t.keys.hr,
      body: { question: 'What is the senior engineer salary band?' },
    });
    expect(askHr.body.citations.map((c: { docId: string }) => c.docId)).toContain('salaries');

    const res = await fetch(`${t.url}/v1/ask`, {
      method: 'POST',
      headers: { authorization: `Bearer ${t.keys.reader}`, 'content-type': 'application/json' },
      body: JSON.stringify({ question: 'What is the senior engineer salary band?', stream: true }),
    });
    const streamed = await res.text();
    expect(parseSse(streamed).at(-1)!.event).toBe('done');
    expect(streamed).not.toMatch(/120,000|"salaries"/);

    const chat = await t.call('POST', '/v1/chat/completions', {
      key: t.keys.reader,
      body: {
        model: 'quarry',
        messages: [{ role: 'user', content: 'What is the senior engineer salary band?' }],
      },
    });
    expect(chat.status).toBe(200);
    expect(JSON.stringify(chat.body)).not.toMatch(/120,000|"salaries"/);

    expect((await t.call('GET', '/v1/documents/salaries', { key: t.keys.reader })).status).toBe(404);
    expect((await t.call('GET', '/v1/documents/salaries', { key: t.keys.hr })).status).toBe(200);
    const listed = await t.call('GET', '/v1/documents?limit=100', { key: t.keys.reader });
    expect(listed.body.documents.map((d: { id: string }) => d.id)).not.toContain('salaries');
    expect((await t.call('DELETE', '/v1/documents/salaries', { key: t.keys.writer })).status).toBe(404);
    // Scopes say what a key may do, not what it may read: an admin key without the group sees nothing either.
    expect((await t.call('GET', '/v1/documents/salaries', { key: t.keys.admin })).status).toBe(404);
    expect((await t.call('GET', '/v1/documents/salaries', { key: t.keys.hr })).status).toBe(200);
  });

  it('a security level above the key’s clearance hides the document even from its group', async () => {
    const q = 'merger Northwind codename';
    expect(
      ids(await t.call('POST', '/v1/search', { key: t.keys['exec-low'], body: { query: q } })),
    ).not.toContain('merger');
    expect(
      ids(await t.call('POST', '/v1/search', { key: t.keys['exec-high'], body: { query: q } })),
    ).toContain('merger');
  });

  it('the response cache never serves one principal’s answer to another', async () => {
    const question = { question: 'What is the senior engineer salary band?' };
    const hr1 = await t.call('POST', '/v1/ask', { key: t.keys.hr, body: question });
    const reader = await t.call('POST', '/v1/ask', { key: t.keys.reader, body: question });
    expect(hr1.body.text).toMatch(/120,000/);
    expect(reader.body.text).not.toMatch(/120,000/);
  });
});

describe('limits', () => {
  it('a key over its rate limit gets 429 RATE_LIMITED with Retry-After', async () => {
    const statuses: number[] = [];
    for (let i = 0; i < 5; i++)
      statuses.push((await t.call('GET', '/v1/collections', { key: t.keys.limited })).status);
    expect(statuses.slice(0, 3)).toEqual([200, 200, 200]);
    expect(statuses[4]).toBe(429);
    const r = await t.call('GET', '/v1/collections', { key: t.keys.limited });
    expect(r.body.error.code).toBe('RATE_LIMITED');
    expect(r.headers.get('retry-after')).toBeTruthy();
    // Other keys are not affected.
    expect((await t.call('GET', '/v1/collections', { key: t.keys.reader })).status).toBe(200);
  });

  it('a key over its token budget gets 429 BUDGET_EXCEEDED naming the budget', async () => {
    const db = openServerDb(t.store);
    const key = new KeyStore(db).list().find((k) => k.name === 'budgeted')!;
    // Usage as the server records it after a request that used model tokens.
    db.prepare(
      "INSERT INTO key_usage (key_id, period, input_tokens, output_tokens, cost_usd, requests) VALUES (?, strftime('%Y-%m','now'), 5, 3, 0, 1)",
    ).run(key.id);
    db.close();
    const r = await t.call('POST', '/v1/search', { key: t.keys.budgeted, body: { query: 'ferry' } });
    expect(r.status).toBe(429);
    expect(r.body.error.code).toBe('BUDGET_EXCEEDED');
    expect(r.body.error.message).toMatch(/budgeted.*8 of its 1-token monthly budget/);
    expect(r.body.error.details).toMatchObject({ budget: 'tokens', limit: 1, used: 8 });
  });
});

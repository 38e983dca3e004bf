/**
 * PII over HTTP with reversible redaction of output (`privacy.at: answers`, so the store keeps the raw
 * text): no raw SSN or e-mail address leaves the server on any path — search hits, documents, answers as
 * JSON and as a stream, chat completions, stored traces — and the admin-only restore endpoint puts the
 * originals back, refuses a query key, and leaves audit entries a library caller can read afterwards.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { QuarryConfigInput } from '../../src/config/config.js';
import { Quarry } from '../../src/pipeline/quarry.js';
import { HANDBOOK, parseSse, startTestServer, type TestServer } from './harness.js';

const EMAIL = 'dana.whitfield@example.org';
const SSN = '536-22-1937';
const CONTACTS = `# Payroll contacts\n\nEscalations go to Dana Whitfield at ${EMAIL}; her payroll SSN is ${SSN}. The payroll office opens at nine.`;
const KEY_ENV = 'QUARRY_TEST_SERVER_PII_KEY';
const PIPELINE: QuarryConfigInput = {
  privacy: { enabled: true, at: 'answers', mode: 'reversible', keyEnv: KEY_ENV },
};
const RAW = [EMAIL, SSN, SSN.replace(/-/g, '')];
const PLACEHOLDER = /\[(?:EMAIL|SSN)_[0-9a-f]{16}\]/;

let t: TestServer;
let store: string;

beforeAll(async () => {
  process.env[KEY_ENV] = randomBytes(32).toString('hex');
  store = fs.mkdtempSync(path.join(os.tmpdir(), 'quarry-server-pii-'));
  t = await startTestServer({
    store,
    docs: [...HANDBOOK.filter((d) => d.access === undefined), { id: 'contacts', markdown: CONTACTS }],
    pipeline: PIPELINE,
    keys: [
      { name: 'admin', scopes: ['query', 'ingest', 'admin'] },
      { name: 'app', scopes: ['query'] },
    ],
  });
});
afterAll(async () => {
  await t?.close();
  fs.rmSync(store, { recursive: true, force: true });
  delete process.env[KEY_ENV];
});

/** The whole response body as text, checked for every raw value. */
function expectNoRaw(body: unknown): void {
  const text = typeof body === 'string' ? body : JSON.stringify(body);
  for (const raw of RAW) expect(text).not.toContain(raw);
}

const QUESTION = `What is the payroll SSN of Dana Whitfield (${EMAIL})?`;

describe('no raw PII leaves the server', () => {
  it('the store itself keeps the raw text (output redaction, not ingest redaction)', () => {
    // So every redaction below is the server's output redaction at work, not text that was never there.
    const raw = Quarry.open({ store });
    try {
      expect(raw.getDocument('contacts')!.text).toContain(EMAIL);
    } finally {
      raw.close();
    }
    const q = Quarry.open({ store, config: PIPELINE });
    try {
      expect(q.getDocument('contacts')!.text).toMatch(PLACEHOLDER);
    } finally {
      q.close();
    }
  });

  it('search hits, and the stored trace of the search (whose query names an e-mail address)', async () => {
    const r = await t.call('POST', '/v1/search', {
      key: t.keys.app,
      body: { query: `payroll SSN escalations ${EMAIL}`, trace: true },
    });
    expect(r.status).toBe(200);
    expect(r.body.hits[0].document.id).toBe('contacts');
    expect(r.body.hits[0].chunk.text).toMatch(PLACEHOLDER);
    expectNoRaw(r.body);
    const trace = await t.call('GET', `/v1/traces/${r.body.queryId}`, { key: t.keys.app });
    expect(trace.status).toBe(200);
    expect(trace.body.query).toMatch(/payroll SSN escalations \[EMAIL_[0-9a-f]{16}\]/);
    expectNoRaw(trace.body);
    // Not even as the query's analyzed terms (the pieces the tokenizer makes of an address).
    expect(JSON.stringify(trace.body)).not.toMatch(/dana\.whitfield|example\.org/);
    expect(JSON.stringify(r.body.trace)).not.toMatch(/dana\.whitfield|example\.org/);
  });

  it('GET /v1/documents/:id and the document list', async () => {
    const doc = await t.call('GET', '/v1/documents/contacts', { key: t.keys.app });
    expect(doc.status).toBe(200);
    expect(doc.body.text).toMatch(/Dana Whitfield at \[EMAIL_[0-9a-f]{16}\]/);
    expectNoRaw(doc.body);
    const list = await t.call('GET', '/v1/documents', { key: t.keys.app });
    expect(list.body.documents.map((d: { id: string }) => d.id)).toContain('contacts');
    expectNoRaw(list.body);
  });

  it('the ask answer as JSON, and its stored trace', async () => {
    const r = await t.call('POST', '/v1/ask', { key: t.keys.app, body: { question: QUESTION, trace: true } });
    expect(r.status).toBe(200);
    expect(r.body.abstained).toBe(false);
    expect(r.body.citations[0].docId).toBe('contacts');
    expect(r.body.text).toMatch(PLACEHOLDER);
    expectNoRaw(r.body);
    const trace = await t.call('GET', `/v1/traces/${r.body.queryId}`, { key: t.keys.app });
    expect(trace.status).toBe(200);
    expect(trace.body.trace.stages.length).toBeGreaterThan(2);
    expectNoRaw(trace.body);
  });

  it('the ask stream, every event', async () => {
    const res = await fetch(`${t.url}/v1/ask`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${t.keys.app}` },
      body: JSON.stringify({ question: QUESTION, stream: true, cache: false }),
    });
    const text = await res.text();
    const events = parseSse(text);
    expect(events.at(-1)!.event).toBe('done');
    const answer = events.find((e) => e.event === 'answer')!.data;
    expect(answer.text).toMatch(PLACEHOLDER);
    expectNoRaw(text);
    const trace = await t.call('GET', `/v1/traces/${events[0]!.data.queryId}`, { key: t.keys.app });
    expectNoRaw(trace.body);
  });

  it('chat completions, plain and streamed, and the chat trace', async () => {
    const body = { model: 'quarry', messages: [{ role: 'user', content: QUESTION }] };
    const plain = await t.call('POST', '/v1/chat/completions', { key: t.keys.app, body });
    expect(plain.status).toBe(200);
    expect(plain.body.choices[0].message.content).toMatch(PLACEHOLDER);
    expectNoRaw(plain.body);
    const trace = await t.call('GET', `/v1/traces/${plain.body.quarry.queryId}`, { key: t.keys.app });
    expect(trace.status).toBe(200);
    expectNoRaw(trace.body);
    const res = await fetch(`${t.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${t.keys.app}` },
      body: JSON.stringify({ ...body, stream: true }),
    });
    const streamed = await res.text();
    expect(streamed).toMatch(/\[DONE\]/);
    expect(streamed).toMatch(PLACEHOLDER);
    expectNoRaw(streamed);
  });
});

describe('POST /v1/admin/pii/restore', () => {
  it('restores the originals in a redacted text for an admin key', async () => {
    const doc = await t.call('GET', '/v1/documents/contacts', { key: t.keys.app });
    const r = await t.call('POST', '/v1/admin/pii/restore', {
      key: t.keys.admin,
      body: { text: doc.body.text, reason: 'DSAR-42' },
    });
    expect(r.status).toBe(200);
    expect(r.body).toEqual({ text: CONTACTS, restored: 2 });
  });

  it('refuses a query key (403) and restores nothing', async () => {
    const doc = await t.call('GET', '/v1/documents/contacts', { key: t.keys.app });
    const r = await t.call('POST', '/v1/admin/pii/restore', {
      key: t.keys.app,
      body: { text: doc.body.text, reason: 'curious' },
    });
    expect(r.status).toBe(403);
    expect(r.body.error.code).toBe('FORBIDDEN');
    expectNoRaw(r.body);
  });

  it('a malformed restore body is 400 naming the field', async () => {
    const r = await t.call('POST', '/v1/admin/pii/restore', { key: t.keys.admin, body: { text: 'x' } });
    expect(r.status).toBe(400);
    expect(r.body.error.code).toBe('INVALID_ARGUMENT');
    expect(r.body.error.message).toMatch(/body\.reason/);
  });

  it('the audit log holds the restore, read through the library after the server stops', async () => {
    await t.close();
    const q = Quarry.open({ store, config: PIPELINE });
    try {
      const log = q.piiAuditLog();
      const restored = log.filter((l) => l.outcome === 'restored');
      expect(restored).toHaveLength(1);
      expect(restored[0]).toMatchObject({ reason: 'DSAR-42', restored: 2 });
      expect(restored[0]!.actor).toMatch(/^key:/);
      // The refused attempt by the query key is in the log too.
      const refused = log.filter((l) => l.outcome === 'forbidden');
      expect(refused).toHaveLength(1);
      expect(refused[0]).toMatchObject({ reason: 'curious', restored: 0 });
      expectNoRaw(log);
    } finally {
      q.close();
    }
  });
});

/**
 * `quarry mcp` over stdio, spawned as an MCP client spawns it (`node bin/quarry.js mcp --store …`, the
 * compiled dist/) and driven by the SDK's own client: the store owner by default, `--groups` to read as a
 * user, or an API key of the store's server database with exactly the scopes and access it has over HTTP.
 * Standard output carries nothing but protocol messages; a bad key is a clear error and a non-zero exit.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SearchToolOutput } from '../../src/mcp/server.js';
import { Quarry } from '../../src/pipeline/quarry.js';
import { openServerDb } from '../../src/server/db.js';
import { KeyStore } from '../../src/server/keys.js';
import { REPO_ROOT, runCli } from '../cli/run-cli.js';
import { HANDBOOK } from '../server/harness.js';
import { call, type ToolResult } from './tools.js';

let root: string;
let store: string;
/** A store `quarry serve` never ran on: no server database, so the one collection `default`. */
let plain: string;
const keys: Record<string, string> = {};
let revokedKey: string;

beforeAll(async () => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'quarry-mcp-stdio-'));
  store = path.join(root, 'store');
  plain = path.join(root, 'plain');
  for (const dir of [store, plain]) {
    const q = Quarry.open({ store: dir });
    await q.addDocuments(HANDBOOK);
    q.close();
  }
  const db = openServerDb(store);
  const ks = new KeyStore(db);
  keys.reader = ks.create({ name: 'reader', scopes: ['query'] }).key;
  keys.writer = ks.create({ name: 'writer', scopes: ['query', 'ingest'] }).key;
  keys.ingestOnly = ks.create({ name: 'ingest-only', scopes: ['ingest'] }).key;
  const revoked = ks.create({ name: 'gone', scopes: ['query'] });
  ks.revoke(revoked.record.id);
  revokedKey = revoked.key;
  db.close();
});

const open: Client[] = [];
afterAll(async () => {
  await Promise.all(open.map((c) => c.close()));
  fs.rmSync(root, { recursive: true, force: true });
});

function childEnv(extra: Record<string, string> = {}): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env))
    if (v !== undefined && k !== 'QUARRY_STORE' && k !== 'QUARRY_API_KEY') env[k] = v;
  return { ...env, NO_COLOR: '1', ...extra };
}

async function connect(args: string[], env: Record<string, string> = {}): Promise<Client> {
  const transport = new StdioClientTransport({
    command: process.execPath,
    args: ['bin/quarry.js', 'mcp', ...args],
    cwd: REPO_ROOT,
    env: childEnv(env),
    stderr: 'pipe',
  });
  const client = new Client({ name: 'quarry-test', version: '1.0.0' });
  await client.connect(transport);
  open.push(client);
  return client;
}

const toolNames = async (c: Client) => (await c.listTools()).tools.map((t) => t.name).sort();
const resourceIds = async (c: Client) => (await c.listResources()).resources.map((r) => r.name).sort();
const hitIds = (r: ToolResult<SearchToolOutput>) => r.structuredContent!.hits.map((h) => h.docId);

describe('quarry mcp as the store owner', () => {
  it('offers every tool and every document', async () => {
    const c = await connect(['--store', store]);
    expect(await toolNames(c)).toEqual(['add_document', 'ask', 'get_document', 'search']);
    expect(await resourceIds(c)).toEqual(['ferry', 'merger', 'refunds', 'salaries']);
    const merger = await call(c, 'get_document', { id: 'merger' });
    expect(merger.structuredContent!.text).toContain('Bluebird');
  });

  it('reads as a user with --groups: the group documents, not the ones above its clearance', async () => {
    const c = await connect(['--store', store, '--groups', 'hr,exec']);
    expect(await resourceIds(c)).toEqual(['ferry', 'refunds', 'salaries']);
    const merger = await call(c, 'get_document', { id: 'merger' });
    expect(merger.isError).toBe(true);
    expect(merger._meta?.['quarry/error']?.code).toBe('NOT_FOUND');
  });

  it('on a store without a server database, serves the one collection "default"', async () => {
    const c = await connect(['--store', plain]);
    expect(hitIds(await call(c, 'search', { query: 'refunds to the original card' }))[0]).toBe('refunds');
    const other = await call(c, 'search', { query: 'refunds', collection: 'ops' });
    expect(other.isError).toBe(true);
    expect(other.content[0]!.text).toMatch(/^NOT_FOUND: .*no collection "ops"/);
    expect(fs.existsSync(path.join(plain, 'server.db'))).toBe(false);
  });
});

describe('quarry mcp with an API key', () => {
  it('a query key (from $QUARRY_API_KEY): no add_document, restricted documents invisible everywhere', async () => {
    const c = await connect(['--store', store], { QUARRY_API_KEY: keys.reader! });
    expect(await toolNames(c)).toEqual(['ask', 'get_document', 'search']);
    expect(hitIds(await call(c, 'search', { query: 'ferry to Islay from Kennacraig' }))[0]).toBe('ferry');
    expect(hitIds(await call(c, 'search', { query: 'senior engineer salary band' }))).not.toContain(
      'salaries',
    );
    const hidden = await call(c, 'get_document', { id: 'salaries' });
    expect(hidden.isError).toBe(true);
    expect(hidden.content[0]!.text).toBe('NOT_FOUND: Not found: no document with id "salaries"');
    expect(await resourceIds(c)).toEqual(['ferry', 'refunds']);
    const err = await c.readResource({ uri: 'quarry://documents/merger' }).catch((e: unknown) => e);
    expect((err as { code?: number }).code).toBe(-32002);
    const write = await call(c, 'add_document', { id: 'x', text: 'Not allowed to write this.' });
    expect(write.isError).toBe(true);
    expect(write.content[0]!.text).toMatch(/add_document not found/);
  });

  it('ask returns a cited answer whose citations point at real passages of real documents', async () => {
    const c = await connect(['--store', store, '--key', keys.reader!]);
    const r = await call(c, 'ask', {
      question: 'Within how many working days are refunds paid back to the card?',
    });
    const a = r.structuredContent!;
    expect(a.abstained).toBe(false);
    expect(a.citations.length).toBeGreaterThan(0);
    expect(a.citations[0]!.docId).toBe('refunds');
    for (const cit of a.citations) {
      const doc = await call(c, 'get_document', { id: cit.docId });
      expect(doc.structuredContent!.text.slice(cit.start, cit.end)).toBe(cit.passage);
    }
    expect(r.content[0]!.text).toMatch(/\[1\]/);
  });

  it('an ingest key adds a document that search finds, in this process and in another one', async () => {
    const writer = await connect(['--store', store, '--key', keys.writer!]);
    expect(await toolNames(writer)).toContain('add_document');
    const added = await call(writer, 'add_document', {
      id: 'lighthouse',
      text: '# Lighthouse tours\n\nThe lighthouse at Ardtornish opens for guided tours on Saturdays.',
      format: 'markdown',
    });
    expect(added.structuredContent).toMatchObject({ id: 'lighthouse', status: 'added' });
    const q = { query: 'guided lighthouse tours Ardtornish' };
    expect(hitIds(await call(writer, 'search', q))[0]).toBe('lighthouse');
    const reader = await connect(['--store', store], { QUARRY_API_KEY: keys.reader! });
    expect(hitIds(await call(reader, 'search', q))[0]).toBe('lighthouse');
  });

  it('a key revoked while connected stops working at the next call', async () => {
    const db = openServerDb(store);
    const ks = new KeyStore(db);
    const temp = ks.create({ name: 'temp', scopes: ['query'] });
    const c = await connect(['--store', store, '--key', temp.key]);
    expect((await call(c, 'search', { query: 'ferry' })).isError).toBeFalsy();
    ks.revoke(temp.record.id);
    db.close();
    const r = await call(c, 'search', { query: 'ferry' });
    expect(r.isError).toBe(true);
    expect(r._meta?.['quarry/error']?.code).toBe('UNAUTHORIZED');
  });
});

describe('refusals are clear errors with a non-zero exit, and nothing on stdout', () => {
  it('an unknown, malformed or revoked key', async () => {
    for (const key of [`${keys.reader!.slice(0, -4)}AAAA`, 'hunter2', revokedKey]) {
      const r = await runCli(['mcp', '--store', store, '--key', key], { timeoutMs: 20_000 });
      expect(r.code).toBe(2);
      expect(r.stdout).toBe('');
      expect(r.stderr).toMatch(
        /quarry: Missing or unknown API key: the API key is unknown, malformed or revoked/,
      );
    }
  });

  it('a key for a store without a server database, a key without the query scope, a missing store', async () => {
    const none = await runCli(['mcp', '--store', plain, '--key', keys.reader!], { timeoutMs: 20_000 });
    expect(none.code).toBe(2);
    expect(none.stderr).toMatch(/server\.db does not exist/);
    const noQuery = await runCli(['mcp', '--store', store, '--key', keys.ingestOnly!], { timeoutMs: 20_000 });
    expect(noQuery.code).toBe(2);
    expect(noQuery.stderr).toMatch(/lacks the "query" scope/);
    const missing = await runCli(['mcp', '--store', path.join(root, 'nothing-here')], { timeoutMs: 20_000 });
    expect(missing.code).toBe(4);
    expect(missing.stderr).toMatch(/no store at/);
    expect(fs.existsSync(path.join(root, 'nothing-here'))).toBe(false);
    const both = await runCli(['mcp', '--store', store, '--key', keys.reader!, '--groups', 'hr']);
    expect(both.code).toBe(2);
    expect(both.stderr).toMatch(/not both/);
  });
});

describe('the protocol stream', () => {
  it('stdout holds only JSON-RPC messages, and the server exits 0 when the client closes stdin', async () => {
    const child = spawn(process.execPath, ['bin/quarry.js', 'mcp', '--store', store], {
      cwd: REPO_ROOT,
      env: childEnv(),
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString('utf8')));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString('utf8')));
    const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
    const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
    const send = (m: unknown) => child.stdin.write(`${JSON.stringify(m)}\n`);
    send({
      jsonrpc: '2.0',
      id: 1,
      method: 'initialize',
      params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'raw', version: '1' } },
    });
    send({ jsonrpc: '2.0', method: 'notifications/initialized' });
    send({
      jsonrpc: '2.0',
      id: 2,
      method: 'tools/call',
      params: { name: 'search', arguments: { query: 'ferry' } },
    });
    while (stdout.split('\n').filter(Boolean).length < 2) await new Promise((r) => setTimeout(r, 20));
    child.stdin.end();
    const code = await exited;
    clearTimeout(timer);
    expect(code).toBe(0);
    const lines = stdout.split('\n').filter(Boolean);
    expect(lines).toHaveLength(2);
    const messages = lines.map((l) => JSON.parse(l) as { jsonrpc: string; id: number; result: unknown });
    expect(messages.map((m) => [m.jsonrpc, m.id])).toEqual([
      ['2.0', 1],
      ['2.0', 2],
    ]);
    expect(JSON.stringify(messages[1]!.result)).toContain('Ferry timetable');
    expect(stderr).toMatch(/quarry mcp: serving .* over stdio as the store owner/);
  });
});

describe('quarry mcp --help', () => {
  it('documents the key, the principal options and a client configuration', async () => {
    const r = await runCli(['mcp', '--help']);
    expect(r.code).toBe(0);
    for (const s of ['--store', '--key', 'QUARRY_API_KEY', '--groups', 'mcpServers', 'POST /mcp'])
      expect(r.stdout).toContain(s);
  });
});

/**
 * A real `quarry serve` on 127.0.0.1 (port 0) over a temporary store, for the server tests: documents are
 * added first as the store owner, keys created in the server database, then the server starts in-process
 * and the tests talk to it over real HTTP.
 */

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createParser } from 'eventsource-parser';
import type { QuarryConfigInput } from '../../src/config/config.js';
import type { DocumentInput } from '../../src/ingest/add-documents.js';
import { Quarry } from '../../src/pipeline/quarry.js';
import { loadServerConfig, type ServerConfigInput } from '../../src/server/config.js';
import { openServerDb } from '../../src/server/db.js';
import { KeyStore, type NewKey } from '../../src/server/keys.js';
import { type RunningServer, startServer } from '../../src/server/serve.js';

export interface TestServer {
  url: string;
  store: string;
  server: RunningServer;
  /** Secret of each created key, by key name. */
  keys: Record<string, string>;
  /** JSON request helper: status, headers and parsed body. */
  call(
    method: string,
    url: string,
    opts?: { key?: string; body?: unknown; raw?: string; headers?: Record<string, string> },
  ): Promise<{ status: number; headers: Headers; body: any }>;
  close(): Promise<void>;
}

export async function startTestServer(
  opts: {
    docs?: DocumentInput[];
    keys?: NewKey[];
    pipeline?: QuarryConfigInput;
    config?: ServerConfigInput;
    store?: string;
    watch?: string[];
  } = {},
): Promise<TestServer> {
  const store = opts.store ?? fs.mkdtempSync(path.join(os.tmpdir(), 'quarry-server-'));
  if (opts.docs !== undefined) {
    const q = Quarry.open({ store, config: opts.pipeline ?? {} });
    await q.addDocuments(opts.docs);
    q.close();
  }
  const keys: Record<string, string> = {};
  if (opts.keys !== undefined) {
    const db = openServerDb(store);
    const ks = new KeyStore(db);
    for (const k of opts.keys) keys[k.name] = ks.create(k).key;
    db.close();
  }
  const server = await startServer({
    store,
    config: loadServerConfig({ env: {}, flags: { port: 0, logLevel: 'silent', ...opts.config } }),
    ...(opts.pipeline === undefined ? {} : { pipeline: opts.pipeline }),
    version: 'test',
    ...(opts.watch === undefined ? {} : { watch: opts.watch }),
    announce: () => undefined,
  });
  return {
    url: server.url,
    store,
    server,
    keys,
    async call(method, url, o = {}) {
      const headers: Record<string, string> = { ...o.headers };
      if (o.key !== undefined) headers.authorization = `Bearer ${o.key}`;
      let body: string | undefined;
      if (o.raw !== undefined) body = o.raw;
      else if (o.body !== undefined) body = JSON.stringify(o.body);
      if (body !== undefined) headers['content-type'] ??= 'application/json';
      const r = await fetch(server.url + url, { method, headers, ...(body === undefined ? {} : { body }) });
      const text = await r.text();
      let parsed: unknown = text;
      try {
        parsed = JSON.parse(text);
      } catch {
        // not JSON (SSE, metrics): the text itself
      }
      return { status: r.status, headers: r.headers, body: parsed };
    },
    async close() {
      await server.close();
      if (opts.store === undefined) fs.rmSync(store, { recursive: true, force: true });
    },
  };
}

/** Parse an SSE body into events (`event:` name, JSON data when it parses). */
export function parseSse(text: string): Array<{ event: string | undefined; data: any }> {
  const out: Array<{ event: string | undefined; data: any }> = [];
  // The same SSE parser the LLM clients use (comments such as keep-alives are skipped by it).
  const parser = createParser({
    onEvent(m) {
      let parsed: unknown = m.data;
      try {
        parsed = JSON.parse(m.data);
      } catch {
        // `[DONE]`
      }
      out.push({ event: m.event, data: parsed });
    },
  });
  parser.feed(text);
  parser.reset({ consume: true });
  return out;
}

export const HANDBOOK: DocumentInput[] = [
  {
    id: 'ferry',
    markdown:
      '# Ferry timetable\n\nThe ferry to Islay leaves Kennacraig at 07:00 and 13:30 every day. Tickets cost 18 pounds.',
  },
  {
    id: 'refunds',
    markdown:
      '# Refund policy\n\nRefunds are paid back to the original card within five working days of the request.',
  },
  {
    id: 'salaries',
    markdown: '# Salary bands\n\nThe senior engineer salary band runs from 90,000 to 120,000 euros a year.',
    access: { groups: ['hr'] },
  },
  {
    id: 'merger',
    markdown: '# Merger plan\n\nThe merger with Northwind closes in March; the codename is Bluebird.',
    access: { groups: ['exec'], level: 3 },
  },
];

/**
 * The typed client (`quarry/client`) against a real `quarry serve`: every call the web UI makes, the
 * streams (ask, upload progress), errors with the server's codes, recorded eval runs with their traces, and
 * one check that every path of /openapi.json has a client method, so client and server cannot drift apart.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type AskStreamEvent,
  QuarryApiError,
  QuarryClient,
  type UploadEvent,
} from '../../src/client/index.js';
import { runEval } from '../../src/eval/run-eval.js';
import { HANDBOOK, startTestServer, type TestServer } from '../server/harness.js';

let srv: TestServer;
let admin: QuarryClient;
let reader: QuarryClient;
let evalRunId: string;

/** A tiny BEIR-layout set over the handbook topics, so an eval run can be recorded into the served store. */
function writeDataset(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'quarry-client-eval-'));
  const corpus = [
    { _id: 'd1', title: 'Ferry', text: 'The ferry to Islay leaves Kennacraig twice a day.' },
    { _id: 'd2', title: 'Refunds', text: 'Refunds go back to the original card within five days.' },
    { _id: 'd3', title: 'Trains', text: 'The night train to Inverness has sleeper cabins.' },
  ];
  fs.writeFileSync(path.join(dir, 'corpus.jsonl'), `${corpus.map((d) => JSON.stringify(d)).join('\n')}\n`);
  fs.writeFileSync(
    path.join(dir, 'queries.jsonl'),
    `${[
      { _id: 'q1', text: 'ferry to Islay' },
      { _id: 'q2', text: 'refund card' },
      { _id: 'q3', text: 'sleeper cabins on the ferry' },
    ]
      .map((q) => JSON.stringify(q))
      .join('\n')}\n`,
  );
  fs.mkdirSync(path.join(dir, 'qrels'));
  fs.writeFileSync(
    path.join(dir, 'qrels', 'test.tsv'),
    'query-id\tcorpus-id\tscore\nq1\td1\t1\nq2\td2\t1\nq3\td3\t1\n',
  );
  return dir;
}

beforeAll(async () => {
  srv = await startTestServer({
    docs: HANDBOOK,
    keys: [
      { name: 'admin', scopes: ['query', 'ingest', 'admin'], groups: ['hr', 'exec'], clearance: 5 },
      { name: 'reader', scopes: ['query'] },
    ],
  });
  admin = new QuarryClient({ baseUrl: srv.url, apiKey: srv.keys.admin! });
  reader = new QuarryClient({ baseUrl: srv.url, apiKey: srv.keys.reader! });
  const dataset = writeDataset();
  const report = await runEval({ dataset, record: srv.store, label: 'client test', keepTraces: 2 });
  evalRunId = report.recorded!.runId;
  fs.rmSync(dataset, { recursive: true, force: true });
});

afterAll(async () => {
  await srv?.close();
});

describe('QuarryClient', () => {
  it('whoami: the key, its tenant and scopes; anonymous without a key on a server that needs keys', async () => {
    const me = await reader.whoami();
    expect(me).toMatchObject({ kind: 'user', tenant: 'default', scopes: ['query'], authRequired: true });
    const nobody = await new QuarryClient({ baseUrl: srv.url }).whoami();
    expect(nobody).toMatchObject({ kind: 'anonymous', scopes: [], authRequired: true });
  });

  it('search and ask return typed results; a restricted document stays invisible to a reader', async () => {
    const s = await reader.search({ query: 'ferry Islay timetable', k: 3 });
    expect(s.hits[0]?.chunk.docId).toBe('ferry');
    expect(s.queryId).toMatch(/^[0-9a-f-]{36}$/);
    const hidden = await reader.search({ query: 'salary band senior engineer' });
    expect(hidden.hits.map((h) => h.chunk.docId)).not.toContain('salaries');
    const seen = await admin.search({ query: 'salary band senior engineer' });
    expect(seen.hits[0]?.chunk.docId).toBe('salaries');
    const a = await reader.ask({ question: 'When are refunds paid back?' });
    expect(a.citations[0]?.docId).toBe('refunds');
    expect(a.text).toMatch(/five working days/);
  });

  it('askStream yields meta first, deltas that make up the answer, the answer, then done', async () => {
    const events: AskStreamEvent[] = [];
    for await (const e of reader.askStream({ question: 'When does the ferry to Islay leave Kennacraig?' }))
      events.push(e);
    const names = events.map((e) => e.event);
    expect(names[0]).toBe('meta');
    expect(names.at(-1)).toBe('done');
    const answer = events.find((e) => e.event === 'answer');
    if (answer?.event !== 'answer') throw new Error('no answer event');
    const streamed = events.flatMap((e) => (e.event === 'delta' ? [e.data.text] : [])).join('');
    expect(streamed.length).toBeGreaterThan(0);
    expect(answer.data.text).toContain('07:00');
    expect(answer.data.citations[0]?.docId).toBe('ferry');
    // The trace of that query is readable by the key that asked, with its stages.
    const meta = events[0];
    if (meta?.event !== 'meta') throw new Error('no meta event');
    const trace = await reader.getTrace(meta.data.queryId);
    expect(trace.kind).toBe('ask');
    expect(trace.trace?.stages.map((st) => st.stage)).toContain('retrieve.bm25');
  });

  it('upload reports received, ingest progress and a per-document result; the file is then searchable', async () => {
    const events: UploadEvent[] = [];
    const text = '# Lighthouse keepers\n\nThe Ardnamurchan lighthouse keepers were withdrawn in 1988.\n';
    const result = await admin.upload(
      [
        { name: 'lighthouse.md', data: new Blob([text], { type: 'text/markdown' }) },
        { name: 'broken.pdf', data: new Blob(['not a pdf at all']) },
      ],
      { onProgress: (e) => events.push(e) },
    );
    expect(events[0]).toEqual({
      event: 'received',
      data: { files: ['lighthouse.md', 'broken.pdf'], bytes: Buffer.byteLength(text) + 16 },
    });
    const progress = events.filter((e) => e.event === 'progress');
    expect(progress.length).toBeGreaterThan(0);
    expect(progress.at(-1)?.data).toMatchObject({ phase: 'ingest', unit: 'records' });
    expect(events.at(-1)?.event).toBe('done');
    expect(result.added).toBe(1);
    expect(result.failed).toBe(1);
    const failed = result.documents.find((d) => d.status === 'failed');
    expect(failed).toMatchObject({ source: 'broken.pdf' });
    expect(failed?.message).toBeTruthy();
    // Named relative to the collection: nothing of the server's file system reaches the client.
    expect(result.documents.find((d) => d.status === 'added')?.id).toBe('uploads/lighthouse.md');
    expect(JSON.stringify(events)).not.toContain(srv.store);
    const hits = await reader.search({ query: 'Ardnamurchan lighthouse keepers' });
    expect(hits.hits[0]?.document.source).toBe('uploads/lighthouse.md');
  });

  it('documents: list, get with text, delete; a reader cannot delete', async () => {
    const list = await admin.listDocuments({ limit: 2 });
    expect(list.documents).toHaveLength(2);
    expect(list.nextOffset).toBe(2);
    const readerIds = (await reader.listDocuments({ limit: 100 })).documents.map((d) => d.id);
    expect(readerIds).toContain('ferry');
    expect(readerIds).not.toContain('merger');
    const doc = await admin.getDocument('refunds');
    expect(doc.text).toMatch(/original card/);
    const denied = await reader.deleteDocument('refunds').catch((e: unknown) => e);
    expect(denied).toBeInstanceOf(QuarryApiError);
    expect(denied).toMatchObject({ status: 403, code: 'FORBIDDEN' });
    await admin.upsertDocuments({ documents: [{ id: 'temp', text: 'A temporary note about kayaks.' }] });
    expect((await admin.deleteDocument('temp')).deleted).toEqual(['temp']);
    const gone = await admin.getDocument('temp').catch((e: unknown) => e);
    expect(gone).toMatchObject({ status: 404, code: 'NOT_FOUND' });
  });

  it('errors carry the server code, status and request id; a wrong key is UNAUTHORIZED', async () => {
    const bad = new QuarryClient({ baseUrl: srv.url, apiKey: 'qk_0000000000000000_nope' });
    const e = await bad.search({ query: 'ferry' }).catch((x: unknown) => x);
    expect(e).toMatchObject({ status: 401, code: 'UNAUTHORIZED' });
    expect((e as QuarryApiError).requestId).toBeTruthy();
    const invalid = await reader.search({ query: '' }).catch((x: unknown) => x);
    expect(invalid).toMatchObject({ status: 400, code: 'INVALID_ARGUMENT' });
    const down = await new QuarryClient({ baseUrl: 'http://127.0.0.1:9' }).whoami().catch((x: unknown) => x);
    expect(down).toMatchObject({ status: 0, code: 'NETWORK' });
  });

  it('eval runs: listed with metrics, one run with latencies and worst queries whose traces open', async () => {
    const { runs } = await admin.listEvalRuns();
    expect(runs[0]).toMatchObject({
      id: evalRunId,
      label: 'client test',
      dataset: expect.any(String),
      queries: 3,
    });
    expect(runs[0]?.metrics['ndcg@10']).toBeGreaterThan(0);
    const run = await admin.getEvalRun(evalRunId, { worst: 3 });
    expect(run.latencies_ms).toHaveLength(3);
    expect(run.worst).toHaveLength(3);
    // Ordered worst first; the two worst keep a trace (keepTraces: 2), the best does not.
    const ndcg = run.worst.map((w) => w.metrics['ndcg@10']!);
    expect([...ndcg].sort((a, b) => a - b)).toEqual(ndcg);
    expect(run.worst.map((w) => w.traceId !== null)).toEqual([true, true, false]);
    const trace = await admin.getTrace(run.worst[0]!.traceId!);
    expect(trace.kind).toBe('eval');
    expect(trace.query).toBe(run.worst[0]!.query);
    expect(trace.trace?.stages.length).toBeGreaterThan(0);
    // Eval runs measure the corpus as its owner: a query-only key may not read them.
    const denied = await reader.listEvalRuns().catch((x: unknown) => x);
    expect(denied).toMatchObject({ status: 403, code: 'FORBIDDEN' });
    const deniedTrace = await reader.getTrace(run.worst[0]!.traceId!).catch((x: unknown) => x);
    expect(deniedTrace).toMatchObject({ status: 403 });
  });

  it('has a method for every path of the OpenAPI document', async () => {
    const doc = (await (await fetch(`${srv.url}/openapi.json`)).json()) as { paths: Record<string, object> };
    const source = fs.readFileSync(path.join(import.meta.dirname, '../../src/client/index.ts'), 'utf8');
    // Paths the client leaves to other tools: Prometheus scrapes /metrics, probes call /readyz, MCP clients
    // speak /mcp, the OpenAPI document is this check's input.
    const elsewhere = new Set(['/metrics', '/readyz', '/openapi.json', '/mcp']);
    const missing = Object.keys(doc.paths)
      .filter((p) => !elsewhere.has(p))
      .filter(
        (p) =>
          !source.includes(`'${p.replace(/\{[^}]+\}/g, '')}`) &&
          !source.includes(`\`${p.replace(/\{[^}]+\}.*$/, '')}`),
      );
    expect(missing).toEqual([]);
  });
});

/**
 * Two `quarry serve` processes on one store and one Redis (the real service): a result cached through one
 * is served by the other, and a write through either one is seen by the other's next request — never a
 * stale cached result.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Quarry } from '../../src/pipeline/quarry.js';
import { redisKeys, uniquePrefix } from '../cache/peer.js';
import { REPO_ROOT } from '../cli/run-cli.js';
import { HANDBOOK } from './harness.js';

let store: string;
let prefix: string;
const children: Array<ReturnType<typeof spawn>> = [];

function serve(config: string): Promise<string> {
  const child = spawn(
    process.execPath,
    ['bin/quarry.js', 'serve', '--store', store, '--port', '0', '--config', config],
    {
      cwd: REPO_ROOT,
      env: { ...process.env, QUARRY_LOG_LEVEL: 'silent' },
    },
  );
  children.push(child);
  let stderr = '';
  return new Promise((resolve, reject) => {
    child.stderr!.on('data', (d: Buffer) => {
      stderr += d.toString();
      const m = /listening on (http:\/\/[^ ]+)/.exec(stderr);
      if (m) resolve(m[1]!);
    });
    child.on('close', () => reject(new Error(stderr)));
  });
}

async function post(url: string, body: unknown) {
  const r = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  return (await r.json()) as {
    strategy?: string;
    hits: Array<{ document: { id: string } }>;
    cached?: boolean;
    text?: string;
  };
}

let a: string;
let b: string;

beforeAll(async () => {
  store = fs.mkdtempSync(path.join(os.tmpdir(), 'quarry-two-servers-'));
  const q = Quarry.open({ store });
  await q.addDocuments(HANDBOOK.filter((d) => d.access === undefined));
  q.close();
  prefix = uniquePrefix();
  const config = path.join(store, 'pipeline.json');
  fs.writeFileSync(
    config,
    JSON.stringify({
      cache: { driver: 'redis', redis: { url: 'redis://127.0.0.1:6379', keyPrefix: prefix } },
    }),
  );
  [a, b] = await Promise.all([serve(config), serve(config)]);
});

afterAll(async () => {
  for (const c of children) c.kill('SIGTERM');
  await Promise.all(
    children.map((c) => new Promise((r) => (c.exitCode !== null ? r(null) : c.on('close', r)))),
  );
  await redisKeys(prefix, true);
  fs.rmSync(store, { recursive: true, force: true });
});

describe('two server processes, one store, one Redis', () => {
  it('a search cached through one server is served by the other', async () => {
    const first = await post(`${a}/v1/search`, { query: 'ferry timetable Kennacraig' });
    expect(first.strategy).not.toBe('cache');
    const second = await post(`${b}/v1/search`, { query: 'ferry timetable Kennacraig' });
    expect(second.strategy).toBe('cache');
    expect(second.hits.map((h) => h.document.id)).toEqual(first.hits.map((h) => h.document.id));
    const askA = await post(`${a}/v1/ask`, {
      question: 'Within how many working days are refunds paid back to the card?',
    });
    const askB = await post(`${b}/v1/ask`, {
      question: 'Within how many working days are refunds paid back to the card?',
    });
    expect(askB.cached).toBe(true);
    expect(askB.text).toBe(askA.text);
  });

  it('a write through one server is seen at once by the other (no stale cached result)', async () => {
    const before = await post(`${b}/v1/search`, { query: 'winter ferry timetable' });
    expect(before.hits.map((h) => h.document.id)).not.toContain('winter');
    await post(`${b}/v1/search`, { query: 'winter ferry timetable' }); // now cached in Redis and in b
    const w = await post(`${a}/v1/documents`, {
      documents: [
        { id: 'winter', markdown: '# Winter ferry timetable\n\nIn winter the ferry leaves at 08:00 only.' },
      ],
    });
    expect((w as unknown as { added: number }).added).toBe(1);
    const after = await post(`${b}/v1/search`, { query: 'winter ferry timetable' });
    expect(after.strategy).not.toBe('cache');
    expect(after.hits[0]!.document.id).toBe('winter');
    // And a delete through b is seen by a.
    await fetch(`${b}/v1/documents/winter`, { method: 'DELETE' });
    const gone = await post(`${a}/v1/search`, { query: 'winter ferry timetable' });
    expect(gone.hits.map((h) => h.document.id)).not.toContain('winter');
  });
});

/**
 * Two processes ingesting the same folder at the same moment: each document is added exactly once, the
 * other process reports it unchanged (never updated), and every stored version stays 1; ingesting the
 * folder again changes nothing. Real child processes on one real SQLite store.
 */
import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { IngestReport } from '../../src/ingest/ingest.js';
import { Quarry } from '../../src/pipeline/quarry.js';

const repo = path.resolve(import.meta.dirname, '../..');
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'quarry-concurrent-'));
afterAll(() => fs.rmSync(work, { recursive: true, force: true }));

const FILES = 400;

interface Child {
  proc: ChildProcessWithoutNullStreams;
  ready: Promise<void>;
  report: Promise<IngestReport>;
}

function startChild(store: string, folder: string): Child {
  const proc = spawn(
    process.execPath,
    ['--import', 'tsx', 'test/fixtures/concurrent-ingest-child.ts', store, folder],
    {
      cwd: repo,
    },
  );
  let out = '';
  let stderr = '';
  let onReady: () => void = () => {};
  const ready = new Promise<void>((r) => (onReady = r));
  proc.stderr.on('data', (d: Buffer) => (stderr += String(d)));
  proc.stdout.on('data', (d: Buffer) => {
    out += String(d);
    if (out.includes('ready\n')) onReady();
  });
  const timer = setTimeout(() => proc.kill('SIGKILL'), 50_000);
  const report = new Promise<IngestReport>((resolve, reject) => {
    proc.on('close', (code) => {
      clearTimeout(timer);
      const line = out.split('\n').find((l) => l.startsWith('report '));
      if (code !== 0 || line === undefined) reject(new Error(`child exited ${code}: ${stderr}`));
      else resolve(JSON.parse(line.slice('report '.length)) as IngestReport);
    });
  });
  return { proc, ready, report };
}

describe('concurrent ingest of one folder by two processes', () => {
  it('adds each document once; the other process reports it unchanged and no version is bumped', async () => {
    const folder = path.join(work, 'docs');
    fs.mkdirSync(folder);
    for (let i = 0; i < FILES; i++) {
      fs.writeFileSync(
        path.join(folder, `note-${String(i).padStart(3, '0')}.md`),
        `# Note ${i}\n\nShip ${i} docks at pier ${i % 13} every ${i % 7} days.\n`,
      );
    }
    const store = path.join(work, 'store');
    Quarry.open({ store }).close();

    const a = startChild(store, folder);
    const b = startChild(store, folder);
    await Promise.all([a.ready, b.ready]);
    a.proc.stdin.write('go\n');
    b.proc.stdin.write('go\n');
    const [ra, rb] = await Promise.all([a.report, b.report]);

    expect(ra.errors).toEqual([]);
    expect(rb.errors).toEqual([]);
    expect(ra.updated + rb.updated).toBe(0);
    expect(ra.added + rb.added).toBe(FILES);
    expect(ra.added + ra.unchanged).toBe(FILES);
    expect(rb.added + rb.unchanged).toBe(FILES);
    const addedTwice = ra.documents.added.filter((id) => rb.documents.added.includes(id));
    expect(addedTwice).toEqual([]);

    const q = Quarry.open({ store });
    try {
      const docs = q.listDocuments({ limit: FILES + 10 });
      expect(docs).toHaveLength(FILES);
      expect(docs.filter((d) => d.meta.version !== 1).map((d) => [d.id, d.meta.version])).toEqual([]);
      const again = await q.ingest([folder]);
      expect(again).toMatchObject({ added: 0, updated: 0, unchanged: FILES, removed: 0 });
    } finally {
      q.close();
    }
  }, 60_000);
});

import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Quarry } from '../../src/pipeline/quarry.js';

const repo = path.resolve(import.meta.dirname, '../..');
const TOTAL = 3000;
let work: string;
let corpus: string;
/** Chunk texts per document id from a clean, uninterrupted ingest. */
const reference = new Map<string, string[]>();

function record(i: number): string {
  const filler =
    'Stores keep documents durable across crashes. Each sentence adds some tokens to the record. ';
  const text = `Record uniq${i}x marks this document. ${filler.repeat(i % 5 === 0 ? 40 : 2)}`;
  return JSON.stringify({ _id: `doc-${i}`, title: `Record ${i}`, text });
}

beforeAll(async () => {
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'quarry-kill-'));
  corpus = path.join(work, 'corpus.jsonl');
  fs.writeFileSync(corpus, Array.from({ length: TOTAL }, (_, i) => record(i)).join('\n'));
  const ref = Quarry.open({ store: path.join(work, 'reference') });
  await ref.ingest([corpus]);
  for (const c of ref.store.iterateChunks()) {
    const list = reference.get(c.docId) ?? [];
    list.push(c.text);
    reference.set(c.docId, list);
  }
  ref.close();
  expect(reference.size).toBe(TOTAL);
});

afterAll(() => fs.rmSync(work, { recursive: true, force: true }));

/** Start an ingest in a child process and SIGKILL it once `afterDocs` documents are committed. */
function ingestAndKill(store: string, afterDocs: number): Promise<{ killedAt: number; finished: boolean }> {
  return new Promise((resolve, reject) => {
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', 'test/fixtures/ingest-child.ts', store, corpus],
      {
        cwd: repo,
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let seen = 0;
    let finished = false;
    let stderr = '';
    child.stderr.on('data', (d) => {
      stderr += String(d);
    });
    child.stdout.on('data', (d: Buffer) => {
      for (const line of String(d).split('\n')) {
        if (line === 'done') finished = true;
        const m = /^progress (\d+)/.exec(line);
        if (m) seen = Number(m[1]);
      }
      if (seen >= afterDocs && !child.killed) child.kill('SIGKILL');
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      if (signal !== 'SIGKILL' && code !== 0) reject(new Error(`child failed (${code}): ${stderr}`));
      else resolve({ killedAt: seen, finished });
    });
  });
}

describe('a process killed mid-ingest', () => {
  it.each([50, 900, 2200])(
    'leaves every document fully present or absent (kill after %i docs)',
    async (afterDocs) => {
      const store = path.join(work, `store-${afterDocs}`);
      const { finished } = await ingestAndKill(store, afterDocs);
      expect(finished).toBe(false);

      const quarry = Quarry.open({ store });
      try {
        // Every stored document has exactly the chunks a clean ingest gives it: nothing half-written.
        const stored = new Map<string, string[]>();
        for (const c of quarry.store.iterateChunks()) {
          const list = stored.get(c.docId) ?? [];
          list.push(c.text);
          stored.set(c.docId, list);
        }
        const docs = quarry.stats().documents;
        expect(docs).toBeGreaterThan(0);
        expect(docs).toBeLessThan(TOTAL);
        expect(stored.size).toBe(docs);
        for (const [id, chunks] of stored) expect(chunks).toEqual(reference.get(id));

        // The index agrees with the store (the stale snapshot was not trusted).
        expect(quarry.stats().index.chunks).toBe(quarry.stats().chunks);
        const present = [...stored.keys()][0]!;
        const presentN = present.slice(4);
        expect((await quarry.search(`uniq${presentN}x`)).hits.map((h) => h.chunk.docId)).toContain(present);
        const absent = Array.from({ length: TOTAL }, (_, i) => `doc-${i}`).find((id) => !stored.has(id))!;
        expect((await quarry.search(`uniq${absent.slice(4)}x`)).hits).toEqual([]);

        // Re-running the ingest completes the job: unchanged documents are skipped, the rest added.
        const report = await quarry.ingest([corpus]);
        expect(report.unchanged).toBe(docs);
        expect(report.added).toBe(TOTAL - docs);
        expect(quarry.stats().documents).toBe(TOTAL);
        expect(quarry.stats().index.chunks).toBe(quarry.stats().chunks);
      } finally {
        quarry.close();
      }
    },
  );
});

/**
 * `quarry check` against real stores damaged on purpose, one way at a time: each damage gives its exact
 * finding, `repair` fixes what is derived (snapshots, orphans) and leaves what is not (spans) failing, and
 * no document is ever deleted. The command line is run end to end from dist/.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type CheckReport, checkStoreDir } from '../../src/pipeline/check.js';
import { Quarry } from '../../src/pipeline/quarry.js';
import { runCli } from '../cli/run-cli.js';

let work: string;
let corpus: string;
let counter = 0;

beforeAll(() => {
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'quarry-check-'));
  corpus = path.join(work, 'docs');
  fs.mkdirSync(corpus);
  for (let i = 0; i < 24; i++)
    fs.writeFileSync(
      path.join(corpus, `d${i}.md`),
      `# Title ${i}\n\nTopic word${i} opens this note. ${'Durable stores keep their chunks in order. '.repeat(8 + i * 4)}\n\n## Part\n\nSection body ${i}.`,
    );
});

afterAll(() => fs.rmSync(work, { recursive: true, force: true }));

/** A fresh store with the corpus, its BM25 and dense snapshots written; returns its directory. */
async function freshStore(): Promise<string> {
  const dir = path.join(work, `store-${counter++}`);
  const q = Quarry.open({ store: dir });
  try {
    await q.ingest([corpus]);
    await q.search('durable stores', { retriever: 'dense' });
    expect(q.dense.ready).toBe(true);
  } finally {
    q.close();
  }
  return dir;
}

/** Run SQL on the store's database directly (foreign keys off, as a damaged or foreign writer would). */
function sql<T = unknown>(dir: string, fn: (db: Database.Database) => T): T {
  const db = new Database(path.join(dir, 'quarry.db'));
  try {
    db.pragma('foreign_keys = OFF');
    return fn(db);
  } finally {
    db.close();
  }
}

const codes = (r: CheckReport) => r.findings.map((f) => f.code).sort();
const errorCodes = (r: CheckReport) =>
  r.findings
    .filter((f) => f.severity === 'error')
    .map((f) => f.code)
    .sort();
const docCount = (dir: string) =>
  sql(dir, (db) => (db.prepare('SELECT count(*) AS n FROM documents').get() as { n: number }).n);

/** The `repair` of a store opened through the facade. */
function repair(dir: string): CheckReport {
  const q = Quarry.open({ store: dir, create: false });
  try {
    return q.check({ repair: true });
  } finally {
    q.close();
  }
}

/** A chunk of a document that has more than one. */
function chunkOfLongDocument(dir: string): { id: number; docKey: number } {
  return sql(
    dir,
    (db) =>
      db
        .prepare(
          `SELECT id, doc_key AS docKey FROM chunks WHERE doc_key IN
           (SELECT doc_key FROM chunks GROUP BY doc_key HAVING count(*) > 2) ORDER BY id LIMIT 1`,
        )
        .get() as { id: number; docKey: number },
  );
}

describe('quarry check', () => {
  it('passes on a clean store, with every index counted', async () => {
    const dir = await freshStore();
    const r = checkStoreDir(dir);
    expect(r.findings).toEqual([]);
    expect(r.ok).toBe(true);
    expect(r.counts.documents).toBe(24);
    expect(r.counts.chunks).toBeGreaterThan(24);
    expect(r.counts.bm25Snapshot).toBe(r.counts.chunks);
    expect(r.counts.denseSnapshot).toBe(r.counts.chunks);
  });

  it('finds a chunk row deleted behind the indexes, and repair rebuilds them', async () => {
    const dir = await freshStore();
    const { id } = chunkOfLongDocument(dir);
    sql(dir, (db) => db.prepare('DELETE FROM chunks WHERE id = ?').run(id));
    const r = checkStoreDir(dir);
    expect(r.ok).toBe(false);
    expect(codes(r)).toEqual(['BM25_EXTRA_CHUNK', 'DENSE_EXTRA_VECTORS']);
    expect(r.findings.find((f) => f.code === 'BM25_EXTRA_CHUNK')!.examples).toEqual([id]);
    expect(r.findings.find((f) => f.code === 'DENSE_EXTRA_VECTORS')!.count).toBe(1);

    const fixed = repair(dir);
    expect(fixed.findings).toEqual([]);
    expect(fixed.ok).toBe(true);
    expect(codes({ ...fixed, findings: fixed.before! })).toEqual(['BM25_EXTRA_CHUNK', 'DENSE_EXTRA_VECTORS']);
    expect(checkStoreDir(dir).findings).toEqual([]);
    expect(docCount(dir)).toBe(24);
  });

  it('finds a document left without chunks (not repairable: nothing is deleted)', async () => {
    const dir = await freshStore();
    const key = sql(dir, (db) => {
      const k = (db.prepare('SELECT key FROM documents ORDER BY key LIMIT 1').get() as { key: number }).key;
      db.prepare('DELETE FROM chunks WHERE doc_key = ?').run(k);
      return k;
    });
    const r = checkStoreDir(dir);
    expect(codes(r)).toEqual(['BM25_EXTRA_CHUNK', 'DENSE_EXTRA_VECTORS', 'DOCUMENT_WITHOUT_CHUNKS']);
    const after = repair(dir);
    expect(errorCodes(after)).toEqual(['DOCUMENT_WITHOUT_CHUNKS']);
    expect(after.ok).toBe(false);
    expect(docCount(dir)).toBe(24);
    expect(sql(dir, (db) => db.prepare('SELECT key FROM documents WHERE key = ?').get(key))).toBeDefined();
  });

  it('finds an orphan chunk, and repair removes it and says so', async () => {
    const dir = await freshStore();
    const orphan = sql(dir, (db) =>
      Number(
        db
          .prepare(
            'INSERT INTO chunks (doc_key, ordinal, section, start, "end", token_count, text) VALUES (999999, 0, 0, 0, 5, 1, ?)',
          )
          .run('ghost').lastInsertRowid,
      ),
    );
    const r = checkStoreDir(dir);
    expect(errorCodes(r)).toEqual(['ORPHAN_CHUNK', 'SQLITE_FOREIGN_KEY']);
    expect(r.findings.find((f) => f.code === 'ORPHAN_CHUNK')!.examples).toEqual([orphan]);
    const fixed = repair(dir);
    expect(fixed.findings).toEqual([]);
    expect(fixed.repaired.join('\n')).toContain(`removed 1 orphan chunks (${orphan})`);
    expect(docCount(dir)).toBe(24);
  });

  it('finds a truncated BM25 snapshot and a truncated dense snapshot', async () => {
    const dir = await freshStore();
    for (const name of ['bm25.snapshot', 'dense.snapshot']) {
      const file = path.join(dir, 'artifacts', name);
      fs.truncateSync(file, Math.floor(fs.statSync(file).size / 2));
    }
    const r = checkStoreDir(dir);
    expect(codes(r)).toEqual(['BM25_SNAPSHOT_CORRUPT', 'DENSE_SNAPSHOT_CORRUPT']);
    expect(r.counts.bm25Snapshot).toBeNull();
    // Opening rebuilds the BM25 snapshot; repair rebuilds the dense one too.
    const fixed = repair(dir);
    expect(fixed.findings).toEqual([]);
    const again = checkStoreDir(dir);
    expect(again.findings).toEqual([]);
    expect(again.counts.denseSnapshot).toBe(again.counts.chunks);
  });

  it('finds a BM25 snapshot whose header is garbage', async () => {
    const dir = await freshStore();
    const file = path.join(dir, 'artifacts', 'bm25.snapshot');
    const buf = fs.readFileSync(file);
    buf.fill(0x7a, 0, 16);
    fs.writeFileSync(file, buf);
    expect(codes(checkStoreDir(dir))).toEqual(['BM25_SNAPSHOT_CORRUPT']);
  });

  it('sees damage done after the store was opened, through the facade', async () => {
    const dir = await freshStore();
    const q = Quarry.open({ store: dir, create: false });
    try {
      expect(q.check().ok).toBe(true);
      const file = path.join(dir, 'artifacts', 'bm25.snapshot');
      fs.truncateSync(file, 100);
      expect(codes(q.check())).toEqual(['BM25_SNAPSHOT_CORRUPT']);
      const fixed = q.check({ repair: true });
      expect(fixed.ok).toBe(true);
      expect(fixed.findings).toEqual([]);
      expect((await q.search('word3')).hits.map((h) => h.chunk.docId)).toContain(
        q.store.listDocuments().find((d) => d.meta.title === 'Title 3')!.id,
      );
    } finally {
      q.close();
    }
  });

  it('reports a stale snapshot as a warning, not a failure (it is rebuilt on open)', async () => {
    const dir = await freshStore();
    sql(dir, (db) =>
      db.prepare("UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'index_version'").run(),
    );
    const r = checkStoreDir(dir);
    expect(r.ok).toBe(true);
    expect(r.findings.map((f) => [f.code, f.severity])).toEqual([
      ['BM25_SNAPSHOT_STALE', 'warning'],
      ['DENSE_SNAPSHOT_STALE', 'warning'],
    ]);
  });

  it('finds spans outside the text and chunk text that differs from its span; repair does not hide them', async () => {
    const dir = await freshStore();
    const [a, b] = sql(dir, (db) =>
      (db.prepare('SELECT id FROM chunks ORDER BY id LIMIT 2').all() as Array<{ id: number }>).map(
        (r) => r.id,
      ),
    );
    sql(dir, (db) => {
      db.prepare('UPDATE chunks SET "end" = 10000000 WHERE id = ?').run(a);
      db.prepare("UPDATE chunks SET text = text || ' tampered' WHERE id = ?").run(b);
    });
    const r = checkStoreDir(dir);
    expect(codes(r)).toEqual(['CHUNK_SPAN_OUTSIDE', 'CHUNK_SPAN_TEXT']);
    expect(r.findings.find((f) => f.code === 'CHUNK_SPAN_OUTSIDE')!.examples).toEqual([a]);
    expect(r.findings.find((f) => f.code === 'CHUNK_SPAN_TEXT')!.examples).toEqual([b]);
    const after = repair(dir);
    expect(errorCodes(after)).toEqual(['CHUNK_SPAN_OUTSIDE', 'CHUNK_SPAN_TEXT']);
    expect(docCount(dir)).toBe(24);
  });

  it('on a path without a store is STORE_NOT_FOUND and creates nothing', () => {
    const dir = path.join(work, 'nothing-here');
    expect(() => checkStoreDir(dir)).toThrow(expect.objectContaining({ code: 'STORE_NOT_FOUND' }));
    expect(fs.existsSync(dir)).toBe(false);
  });
});

describe('quarry check on the command line', () => {
  it('exits 0 on a clean store, 5 with the findings when damaged, 0 again after --repair', async () => {
    const dir = await freshStore();
    const clean = await runCli(['check', '--store', dir, '--json']);
    expect(clean.stderr).toBe('');
    expect(clean.code).toBe(0);
    expect(JSON.parse(clean.stdout)).toMatchObject({ ok: true, findings: [] });

    const { id } = chunkOfLongDocument(dir);
    sql(dir, (db) => db.prepare('DELETE FROM chunks WHERE id = ?').run(id));
    const damaged = await runCli(['check', '--store', dir]);
    expect(damaged.code).toBe(5);
    expect(damaged.stdout).toContain(
      `error BM25_EXTRA_CHUNK (1): chunks in the BM25 index but not in the store [${id}]`,
    );
    expect(damaged.stdout).toMatch(/^FAILED: 2 problems, 0 warnings; 24 documents/m);

    const repaired = await runCli(['check', '--store', dir, '--repair', '--json']);
    expect(repaired.code).toBe(0);
    const body = JSON.parse(repaired.stdout) as CheckReport;
    expect(body.ok).toBe(true);
    expect(body.before!.map((f) => f.code).sort()).toEqual(['BM25_EXTRA_CHUNK', 'DENSE_EXTRA_VECTORS']);
    expect(body.repaired.some((r) => r.startsWith('rebuilt the BM25 index'))).toBe(true);

    const after = await runCli(['check', '--store', dir]);
    expect(after.code).toBe(0);
    expect(after.stdout).toMatch(/^ok: 0 problems, 0 warnings; 24 documents/m);
  });

  it('exits 4 on a path without a store', async () => {
    const r = await runCli(['check', '--store', path.join(work, 'absent'), '--json']);
    expect(r.code).toBe(4);
    expect(JSON.parse(r.stdout).error.code).toBe('STORE_NOT_FOUND');
  });
});

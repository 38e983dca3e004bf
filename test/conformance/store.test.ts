/**
 * Every store passes the same suite: the embedded SQLite store (a real database in a temp dir) and a store a
 * library user writes with plain Maps. Then Quarry over the user's store is shown to answer exactly as
 * Quarry over SQLite does for the same documents: the same hits, citations, access and extractive answers.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type DocumentStore,
  Quarry,
  type SearchResult,
  TRUSTED_LOCAL,
  userPrincipal,
} from '../../src/index.js';
import { SqliteStore } from '../../src/store/sqlite/sqlite-store.js';
import { MemoryStore } from './memory-store.js';
import { storeConformance } from './store.js';

const dirs = new Map<DocumentStore, string>();
const tempDir = (prefix: string) => fs.mkdtempSync(path.join(os.tmpdir(), prefix));

storeConformance('embedded SQLite', {
  make() {
    const dir = tempDir('quarry-store-conf-');
    const s = SqliteStore.open(dir, { settings: { analyzer: {}, fields: 'multifield' } });
    dirs.set(s, dir);
    return s;
  },
  dispose(s) {
    fs.rmSync(dirs.get(s)!, { recursive: true, force: true });
    dirs.delete(s);
  },
});

storeConformance('user-written in-memory object', {
  make: () => new MemoryStore(`memory-${Math.random().toString(36).slice(2)}`),
});

const SAMPLES = path.resolve(import.meta.dirname, '../../samples/docs');
const QUERIES = [
  'how are documents chunked',
  'what does BM25 rank by',
  'metadata filters on tags',
  'how do citations work in answers',
  'evaluation metrics recall',
];

/** What a search result says, without what differs by construction (timings, the store's version counter). */
function ranked(r: SearchResult) {
  return r.hits.map((h) => ({
    doc: h.document.id,
    text: h.chunk.text,
    start: h.chunk.start,
    end: h.chunk.end,
    path: h.chunk.sectionPath,
    score: Number(h.score.toFixed(9)),
  }));
}

describe('Quarry over a user-written store answers as Quarry over SQLite', () => {
  let sqliteDir: string;
  let vaultDir: string;
  let memory: MemoryStore;
  let onSqlite: Quarry;
  let onMemory: Quarry;
  const restricted = {
    id: 'payroll',
    text: 'Payroll runs on the 25th. Chunked payroll exports are encrypted for the finance group only.',
    access: ['finance'],
  };

  beforeAll(async () => {
    sqliteDir = tempDir('quarry-store-e2e-');
    vaultDir = tempDir('quarry-store-side-');
    memory = new MemoryStore(vaultDir);
    onSqlite = Quarry.open({ store: sqliteDir });
    onMemory = Quarry.open({ components: { store: memory } });
    for (const q of [onSqlite, onMemory]) {
      const report = await q.ingest([SAMPLES]);
      expect(report.errors).toEqual([]);
      await q.addDocuments([restricted]);
    }
  });
  afterAll(() => {
    onSqlite.close();
    onMemory.close();
    fs.rmSync(sqliteDir, { recursive: true, force: true });
    fs.rmSync(vaultDir, { recursive: true, force: true });
  });

  it('ingests the samples into the user store', () => {
    const files = fs.readdirSync(SAMPLES).length;
    expect(memory.countDocuments()).toBe(files + 1);
    expect(onMemory.stats()).toMatchObject({
      documents: onSqlite.stats().documents,
      chunks: onSqlite.stats().chunks,
      storeDir: vaultDir,
    });
  });

  it('searches with the same hits, scores and citations', async () => {
    for (const q of QUERIES) {
      const [a, b] = [await onSqlite.search(q), await onMemory.search(q)];
      expect(b.hits.length, q).toBeGreaterThan(0);
      expect(ranked(b), q).toEqual(ranked(a));
      // Citations are exact slices of the stored text.
      for (const h of b.hits) {
        const doc = onMemory.getDocument(h.document.id, { principal: TRUSTED_LOCAL })!;
        expect(doc.text.slice(h.chunk.start, h.chunk.end)).toBe(h.chunk.text);
      }
    }
  });

  it('hides a restricted document from a principal without its group', async () => {
    const finance = userPrincipal({ groups: ['finance'] });
    const outsider = userPrincipal({ groups: ['support'] });
    const seen = async (p: ReturnType<typeof userPrincipal>) =>
      (await onMemory.search('payroll exports encrypted', { principal: p })).hits.map((h) => h.document.id);
    expect(await seen(finance)).toContain('payroll');
    expect(await seen(outsider)).not.toContain('payroll');
    expect(onMemory.getDocument('payroll', { principal: outsider })).toBeUndefined();
    expect(onMemory.listDocuments({ principal: outsider }).map((d) => d.id)).not.toContain('payroll');
    expect(onMemory.countDocuments({ principal: finance })).toBe(
      onMemory.countDocuments({ principal: outsider }) + 1,
    );
  });

  it('answers ask extractively with the same citations', async () => {
    for (const q of QUERIES.slice(0, 3)) {
      const [a, b] = [await onSqlite.ask(q), await onMemory.ask(q)];
      expect(b.text, q).toBe(a.text);
      expect(
        b.citations.map((c) => [c.docId, c.start, c.end]),
        q,
      ).toEqual(a.citations.map((c) => [c.docId, c.start, c.end]));
      expect(b.citations.length, q).toBeGreaterThan(0);
    }
  });

  it('deletes: the document leaves search and the store, the same way on both', async () => {
    const target = (await onMemory.search('what does BM25 rank by')).hits[0]!.document.id;
    expect(onMemory.deleteDocuments([target])).toEqual([target]);
    expect(onSqlite.deleteDocuments([target])).toEqual([target]);
    expect(memory.getDocument(target)).toBeUndefined();
    const [a, b] = [
      await onSqlite.search('what does BM25 rank by'),
      await onMemory.search('what does BM25 rank by'),
    ];
    expect(b.hits.map((h) => h.document.id)).not.toContain(target);
    expect(ranked(b)).toEqual(ranked(a));
  });
});

describe('components.store at open', () => {
  it('refuses an object without the store methods, naming them', () => {
    const partial = { dir: 'x', settings: { analyzer: {}, fields: 'flat' }, indexVersion: () => 0 };
    expect(() => Quarry.open({ components: { store: partial as unknown as DocumentStore } })).toThrow(
      /components\.store lacks documentStates\(\), documentsUnderSource\(\), write\(\)/,
    );
    const noDir = new MemoryStore('x');
    Object.defineProperty(noDir, 'dir', { value: '' });
    expect(() => Quarry.open({ components: { store: noDir } })).toThrow(
      /components\.store\.dir must be a non-empty/,
    );
  });

  it('refuses a store directory and a store object together', () => {
    expect(() =>
      Quarry.open({
        store: path.join(os.tmpdir(), 'quarry-never-created'),
        components: { store: new MemoryStore('m') },
      }),
    ).toThrow(
      expect.objectContaining({ code: 'INVALID_ARGUMENT', message: expect.stringMatching(/not both/) }),
    );
  });

  it('check names its SQLite limitation; close leaves the user store open', async () => {
    const s = new MemoryStore('m');
    const q = Quarry.open({ components: { store: s } });
    await q.addDocuments([{ id: 'a', text: 'Alpha beta gamma.' }]);
    expect(() => q.check()).toThrow(
      expect.objectContaining({
        code: 'INVALID_ARGUMENT',
        message: expect.stringMatching(/check needs the embedded SQLite store/),
      }),
    );
    q.close();
    expect(s.closed).toBe(false);
    expect(s.getDocument('a')?.text).toBe('Alpha beta gamma.');
  });
});

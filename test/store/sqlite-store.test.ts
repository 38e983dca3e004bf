import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { QuarryError } from '../../src/errors.js';
import { SCHEMA_VERSION } from '../../src/store/sqlite/migrations.js';
import { SqliteStore } from '../../src/store/sqlite/sqlite-store.js';
import type { DocumentDraft } from '../../src/types.js';

const SETTINGS = { analyzer: { stemmer: 'porter' }, fields: 'flat' as const };
const dirs: string[] = [];
function tmpStore(): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'quarry-store-'));
  dirs.push(d);
  return d;
}
afterEach(() => {
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

function draft(id: string, text: string, extra: Partial<DocumentDraft['meta']> = {}): DocumentDraft {
  const mid = Math.floor(text.length / 2);
  return {
    id,
    hash: `h-${id}-${text.length}`,
    text,
    meta: {
      source: `src/${id}.md`,
      title: id,
      doc_type: 'text',
      tags: [],
      access_groups: [],
      access_users: [],
      fields: {},
      ...extra,
    },
    sections: [{ ordinal: 0, path: ['Top'], start: 0, end: text.length }],
    chunks: [
      { ordinal: 0, section: 0, start: 0, end: mid, text: text.slice(0, mid), tokenCount: 3 },
      { ordinal: 1, section: 0, start: mid, end: text.length, text: text.slice(mid), tokenCount: 3 },
    ],
  };
}

describe('SqliteStore', () => {
  it('creates the schema at the current version and records settings', () => {
    const dir = tmpStore();
    const store = SqliteStore.open(dir, { settings: SETTINGS });
    expect(store.stats().schemaVersion).toBe(SCHEMA_VERSION);
    expect(store.indexVersion()).toBe(0);
    store.close();
    expect(SqliteStore.readSettings(dir)).toEqual(SETTINGS);
  });

  it('writes a batch atomically and bumps the index version once', () => {
    const store = SqliteStore.open(tmpStore(), { settings: SETTINGS });
    const out = store.write({
      upserts: [draft('a', 'alpha beta gamma'), draft('b', 'delta epsilon zeta')],
      deletes: [],
    });
    expect(out.indexVersion).toBe(1);
    expect(out.results.map((r) => [r.id, r.status, r.addedChunks.length])).toEqual([
      ['a', 'added', 2],
      ['b', 'added', 2],
    ]);
    const chunks = store.getChunks(out.results.flatMap((r) => r.addedChunks.map((c) => c.id)));
    expect([...chunks.values()].map((c) => c.text).join('|')).toBe('alpha be|ta gamma|delta eps|ilon zeta');
    expect([...chunks.values()][0]!.sectionPath).toEqual(['Top']);
    store.close();
  });

  it('rolls back the whole batch when one document fails: nothing half-written, old data intact', () => {
    const store = SqliteStore.open(tmpStore(), { settings: SETTINGS });
    store.write({ upserts: [draft('keep', 'original text here')], deletes: [] });
    const bad = draft('bad', 'this one fails');
    (bad.meta.fields as Record<string, unknown>).n = 10n; // BigInt: JSON.stringify throws inside the transaction
    expect(() =>
      store.write({
        upserts: [draft('keep', 'replacement text'), draft('new', 'brand new'), bad],
        deletes: [],
      }),
    ).toThrow();
    expect(store.indexVersion()).toBe(1);
    expect(store.getDocument('new')).toBeUndefined();
    expect(store.getDocument('keep')!.text).toBe('original text here');
    expect(store.getDocument('keep')!.meta.version).toBe(1);
    expect(store.stats().chunks).toBe(2);
    store.close();
  });

  it('replacing a document removes exactly its old chunks and never reuses chunk ids', () => {
    const store = SqliteStore.open(tmpStore(), { settings: SETTINGS });
    const first = store.write({
      upserts: [draft('a', 'one two three four'), draft('b', 'five six seven')],
      deletes: [],
    });
    const oldA = first.results[0]!.addedChunks.map((c) => c.id);
    const second = store.write({ upserts: [draft('a', 'eight nine ten eleven twelve')], deletes: [] });
    const r = second.results[0]!;
    expect(r.status).toBe('updated');
    expect(r.removedChunkIds).toEqual(oldA);
    expect(Math.min(...r.addedChunks.map((c) => c.id))).toBeGreaterThan(
      Math.max(...oldA, ...first.results[1]!.addedChunks.map((c) => c.id)),
    );
    expect(store.getChunks(oldA).size).toBe(0);
    expect(store.getDocument('a')!.meta.version).toBe(2);
    expect(store.getDocument('b')!.chunkCount).toBe(2);
    const del = store.write({ upserts: [], deletes: ['b', 'missing'] });
    expect(del.results.map((x) => [x.id, x.status])).toEqual([['b', 'deleted']]);
    expect([...store.iterateChunks()].every((c) => c.docId === 'a')).toBe(true);
    store.close();
  });

  it('finds documents by source prefix without matching sibling folders', () => {
    const store = SqliteStore.open(tmpStore(), { settings: SETTINGS });
    store.write({
      upserts: [
        draft('1', 'x y z', { source: 'docs/a.md' }),
        draft('2', 'x y z', { source: 'docs/sub/b.md' }),
        draft('3', 'x y z', { source: 'docs-old/c.md' }),
      ],
      deletes: [],
    });
    expect(store.documentsUnderSource('docs').map((d) => d.id)).toEqual(['1', '2']);
    expect(store.documentsUnderSource('docs/a.md').map((d) => d.id)).toEqual(['1']);
    store.close();
  });

  it('refuses a store whose schema is newer than this code', () => {
    const dir = tmpStore();
    SqliteStore.open(dir, { settings: SETTINGS }).close();
    const db = new Database(path.join(dir, 'quarry.db'));
    db.pragma(`user_version = ${SCHEMA_VERSION + 5}`);
    db.close();
    try {
      SqliteStore.open(dir, { settings: SETTINGS });
      expect.unreachable();
    } catch (e) {
      expect(e).toBeInstanceOf(QuarryError);
      expect((e as QuarryError).code).toBe('STORE_SCHEMA');
    }
  });

  it('writes artifacts atomically (no temp files left behind)', () => {
    const dir = tmpStore();
    const store = SqliteStore.open(dir, { settings: SETTINGS });
    store.writeArtifact('x.bin', [Buffer.from('abc'), Buffer.from('def')]);
    expect(store.readArtifact('x.bin')!.toString()).toBe('abcdef');
    expect(fs.readdirSync(path.join(dir, 'artifacts'))).toEqual(['x.bin']);
    expect(store.readArtifact('missing')).toBeUndefined();
    store.close();
  });
});

/**
 * The DocumentStore conformance suite: what every store — the embedded SQLite one or an object a library
 * user writes — must do for Quarry's indexes, citations and access control to be right. Call
 * `storeConformance(name, subject)` from a test file to register the tests for one implementation.
 *
 * The drafts written are not hand-made: they are what Quarry's own ingest (parse → chunk → hash, access
 * lifted from the input) hands its store, recorded on the way to a real SQLite store.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  type DocumentDraft,
  type DocumentInput,
  type DocumentStore,
  Quarry,
  type ReadGrant,
  type StoredChunk,
  userPrincipal,
} from '../../src/index.js';
import { SqliteStore } from '../../src/store/sqlite/sqlite-store.js';

export interface StoreSubject {
  /** A new, empty store. */
  make(): DocumentStore | Promise<DocumentStore>;
  /** Remove what `make` created (after `close`). */
  dispose?(store: DocumentStore): void | Promise<void>;
}

const GUIDE = [
  '# Operations guide',
  '',
  'This guide covers the store and its indexes. Read it before running Quarry in production.',
  '',
  '## Crash safety',
  '',
  'Every ingest batch is one transaction, so the store survives a crash. A document is either present or',
  'absent after a crash, never half written. Snapshots are written to a temporary file and renamed into',
  'place, so a reader sees the old snapshot or the new one. The write-ahead log is checkpointed after bulk',
  'ingests so that it does not grow as large as the data itself.',
  '',
  '## Key rotation',
  '',
  'Signing keys are rotated every ninety days by the vault operator. Old keys stay valid for seven days so',
  'that tokens issued just before a rotation keep working. Rotation is logged with the operator and the reason.',
].join('\n');

/** Documents with sections, several chunks, sources under one folder, and each kind of access restriction. */
export const STORE_CORPUS: DocumentInput[] = [
  { id: 'guide', markdown: GUIDE, source: 'kb/ops/guide.md', metadata: { tags: ['ops'], team: 'platform' } },
  {
    id: 'budget',
    text: 'The finance budget for next year grows by four percent. Travel is frozen until March.',
    source: 'kb/finance/budget.txt',
    access: ['finance'],
  },
  {
    id: 'review',
    text: 'Performance review notes for Alice: exceeded expectations on the storage migration.',
    source: 'kb/people/alice.txt',
    access: { users: ['alice'] },
  },
  {
    id: 'incident',
    text: 'Incident 4711: the vault was sealed for two hours after a failed key rotation.',
    source: 'kb/security/incident.txt',
    access: { level: 2 },
  },
  {
    id: 'lunch',
    text: 'The cafeteria serves lunch from noon until two. On Fridays there is a pizza buffet.',
    source: 'kbx/lunch.txt',
  },
];

/** The guide with its key-rotation section changed: an update of `guide`. */
export const GUIDE_V2: DocumentInput = {
  ...STORE_CORPUS[0]!,
  markdown: GUIDE.replace('ninety days', 'thirty days'),
};

/** A draft that no store may accept: two sections with one ordinal (the SQLite store's key refuses it). */
function malformed(d: DocumentDraft): DocumentDraft {
  return { ...d, id: 'malformed', sections: [...d.sections, ...d.sections] };
}

interface Drafts {
  byId: Map<string, DocumentDraft>;
  guideV2: DocumentDraft;
}

/** Records the drafts Quarry's ingest writes, on their way to a real SQLite store in a temp dir. */
async function recordDrafts(): Promise<Drafts> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'quarry-store-drafts-'));
  const sqlite = SqliteStore.open(dir, { settings: { analyzer: {}, fields: 'multifield' } });
  const written: DocumentDraft[] = [];
  const recorder = new Proxy(sqlite, {
    get(target, prop) {
      if (prop === 'write')
        return (batch: Parameters<DocumentStore['write']>[0]) => {
          written.push(...structuredClone(batch.upserts));
          return target.write(batch);
        };
      const v = Reflect.get(target, prop, target) as unknown;
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
    },
  });
  const quarry = Quarry.open({ components: { store: recorder }, config: { chunking: { maxTokens: 32 } } });
  try {
    await quarry.addDocuments(STORE_CORPUS);
    await quarry.addDocuments([GUIDE_V2]);
  } finally {
    quarry.close();
    sqlite.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
  const byId = new Map<string, DocumentDraft>();
  for (const d of written.slice(0, STORE_CORPUS.length)) byId.set(d.id, d);
  return { byId, guideV2: written[STORE_CORPUS.length]! };
}

let recorded: Promise<Drafts> | undefined;
/** Recorded once per test file and shared by every subject, so each store gets the very same drafts. */
export function storeDrafts(): Promise<Drafts> {
  recorded ??= recordDrafts();
  return recorded;
}

const ANON: ReadGrant = { groups: [], clearance: 0 };

export function storeConformance(name: string, subject: StoreSubject): void {
  let drafts: Drafts;
  const all = () => [...drafts.byId.values()];
  const draft = (id: string) => drafts.byId.get(id)!;

  const withStore = async (fn: (s: DocumentStore) => void | Promise<void>): Promise<void> => {
    const s = await subject.make();
    try {
      await fn(s);
    } finally {
      s.close();
      await subject.dispose?.(s);
    }
  };
  /** A store holding the whole corpus (one batch), and that batch's outcome. */
  const filled = (fn: (s: DocumentStore, out: ReturnType<DocumentStore['write']>) => void | Promise<void>) =>
    withStore(async (s) => fn(s, s.write({ upserts: all(), deletes: [] })));

  describe(`DocumentStore conformance: ${name}`, () => {
    beforeAll(async () => {
      drafts = await storeDrafts();
      // Realistic drafts: several sections and several chunks per section in the guide.
      expect(draft('guide').sections.length).toBeGreaterThanOrEqual(3);
      expect(draft('guide').chunks.length).toBeGreaterThan(draft('guide').sections.length);
    });

    it('starts empty', () =>
      withStore((s) => {
        expect(typeof s.dir).toBe('string');
        expect(s.settings).toMatchObject({ fields: expect.stringMatching(/^(flat|multifield)$/) });
        expect(s.countDocuments()).toBe(0);
        expect(s.listDocuments()).toEqual([]);
        expect([...s.catalog()]).toEqual([]);
        expect([...s.iterateChunks()]).toEqual([]);
        expect(s.stats()).toMatchObject({ documents: 0, chunks: 0, indexVersion: s.indexVersion() });
      }));

    it('adds documents: one result per draft, its chunks with store-wide ids, one version bump', () =>
      withStore((s) => {
        const before = s.indexVersion();
        const out = s.write({ upserts: all(), deletes: [] });
        expect(out.indexVersion).toBe(before + 1);
        expect(s.indexVersion()).toBe(before + 1);
        expect(out.results.map((r) => [r.id, r.status])).toEqual(all().map((d) => [d.id, 'added']));
        expect(new Set(out.results.map((r) => r.key)).size).toBe(all().length);
        const ids = out.results.flatMap((r) => r.addedChunks.map((c) => c.id));
        expect(new Set(ids).size).toBe(ids.length);
        for (const [i, r] of out.results.entries()) {
          const d = all()[i]!;
          expect(r.removedChunkIds).toEqual([]);
          expect(r.meta).toMatchObject({ ...d.meta, version: 1 });
          expect(Date.parse(r.meta!.created_at)).not.toBeNaN();
          expect(r.addedChunks.map(({ id: _, ...c }) => c)).toEqual(
            d.chunks.map((c) => ({
              docId: d.id,
              ordinal: c.ordinal,
              sectionOrdinal: c.section,
              sectionPath: d.sections[c.section]!.path,
              start: c.start,
              end: c.end,
              text: c.text,
              tokenCount: c.tokenCount,
              title: d.meta.title,
            })),
          );
        }
      }));

    it('an unchanged write changes nothing and keeps the version (same hash, empty batch, absent delete)', () =>
      filled((s, first) => {
        const v = s.indexVersion();
        const again = s.write({ upserts: [draft('guide')], deletes: [] });
        expect(again.results).toEqual([
          {
            id: 'guide',
            key: first.results[0]!.key,
            status: 'unchanged',
            removedChunkIds: [],
            addedChunks: [],
          },
        ]);
        expect(again.indexVersion).toBe(v);
        expect(s.write({ upserts: [], deletes: [] }).indexVersion).toBe(v);
        const absent = s.write({ upserts: [], deletes: ['no-such-document'] });
        expect(absent).toEqual({ results: [], indexVersion: v });
        expect(s.indexVersion()).toBe(v);
        expect(s.documentStates(['guide']).get('guide')!.version).toBe(1);
      }));

    it('updates: the old chunks are reported removed, the new ones get ids never used before', () =>
      filled((s, first) => {
        const old = first.results[0]!;
        const v = s.indexVersion();
        const created = s.getDocument('guide')!.meta.created_at;
        const out = s.write({ upserts: [drafts.guideV2], deletes: [] });
        expect(out.indexVersion).toBe(v + 1);
        const r = out.results[0]!;
        expect(r).toMatchObject({ id: 'guide', key: old.key, status: 'updated' });
        expect(r.removedChunkIds).toEqual(old.addedChunks.map((c) => c.id));
        const everUsed = new Set(first.results.flatMap((x) => x.addedChunks.map((c) => c.id)));
        expect(r.addedChunks.length).toBe(drafts.guideV2.chunks.length);
        for (const c of r.addedChunks) expect(everUsed.has(c.id)).toBe(false);
        expect(r.meta).toMatchObject({ version: 2, created_at: created });
        expect(s.getChunks(r.removedChunkIds).size).toBe(0);
        expect(s.getDocument('guide')!.text).toBe(drafts.guideV2.text);
        expect(s.getDocument('guide')!.hash).toBe(drafts.guideV2.hash);
      }));

    it('deletes: the document, its chunks and sections are gone; re-adding it gives new chunk ids', () =>
      filled((s, first) => {
        const lunch = first.results.find((r) => r.id === 'lunch')!;
        const v = s.indexVersion();
        const out = s.write({ upserts: [], deletes: ['lunch'] });
        expect(out.indexVersion).toBe(v + 1);
        expect(out.results).toEqual([
          {
            id: 'lunch',
            key: lunch.key,
            status: 'deleted',
            removedChunkIds: lunch.addedChunks.map((c) => c.id),
            addedChunks: [],
          },
        ]);
        expect(s.getDocument('lunch')).toBeUndefined();
        expect(s.documentStates(['lunch']).size).toBe(0);
        expect(s.getChunks(lunch.addedChunks.map((c) => c.id)).size).toBe(0);
        expect(s.getParentSection(lunch.addedChunks[0]!.id)).toBeUndefined();
        expect(s.sectionChunks('lunch', 0)).toEqual([]);
        expect(s.countDocuments()).toBe(all().length - 1);
        const back = s.write({ upserts: [draft('lunch')], deletes: [] }).results[0]!;
        expect(back.status).toBe('added');
        for (const c of back.addedChunks) expect(lunch.addedChunks.some((o) => o.id === c.id)).toBe(false);
      }));

    it('a write is all-or-nothing: a batch that fails halfway leaves every document as it was', () =>
      filled((s) => {
        const v = s.indexVersion();
        const stats = s.stats();
        const chunks = [...s.iterateChunks()];
        // A delete and a valid upsert first, then a draft the store must refuse.
        const fresh = { ...draft('lunch'), id: 'fresh' };
        expect(() =>
          s.write({ upserts: [drafts.guideV2, fresh, malformed(draft('guide'))], deletes: ['budget'] }),
        ).toThrow();
        expect(s.indexVersion()).toBe(v);
        expect(s.getDocument('fresh')).toBeUndefined();
        expect(s.getDocument('malformed')).toBeUndefined();
        expect(s.getDocument('budget')?.text).toBe(draft('budget').text);
        expect(s.getDocument('guide')!.hash).toBe(draft('guide').hash);
        expect([...s.iterateChunks()]).toEqual(chunks);
        expect(s.stats()).toMatchObject({ documents: stats.documents, chunks: stats.chunks });
        // And the store still takes writes.
        expect(s.write({ upserts: [fresh], deletes: [] }).results[0]!.status).toBe('added');
        expect(s.indexVersion()).toBe(v + 1);
      }));

    it('documentStates: only the ids that exist, with key, hash, source, version and creation time', () =>
      filled((s, out) => {
        const states = s.documentStates(['guide', 'missing', 'budget']);
        expect([...states.keys()].sort()).toEqual(['budget', 'guide']);
        const g = out.results[0]!;
        expect(states.get('guide')).toEqual({
          key: g.key,
          id: 'guide',
          hash: draft('guide').hash,
          source: 'kb/ops/guide.md',
          version: 1,
          created_at: g.meta!.created_at,
        });
        expect(s.documentStates([]).size).toBe(0);
      }));

    it('documentsUnderSource: the source itself or below it, never a sibling sharing its prefix, in key order', () =>
      filled((s) => {
        const under = (src: string) => s.documentsUnderSource(src).map((d) => d.id);
        expect(under('kb')).toEqual(['guide', 'budget', 'review', 'incident']);
        expect(under('kb/')).toEqual(under('kb'));
        expect(under('kb/ops/guide.md')).toEqual(['guide']);
        expect(under('kbx')).toEqual(['lunch']);
        expect(under('kb/op')).toEqual([]);
        const keys = s.documentsUnderSource('kb').map((d) => d.key);
        expect([...keys].sort((a, b) => a - b)).toEqual(keys);
      }));

    it('getChunks: the chunks asked for that exist, as written', () =>
      filled((s, out) => {
        const written = out.results.flatMap((r) => r.addedChunks);
        const got = s.getChunks([...written.map((c) => c.id), 987_654_321]);
        expect(got.size).toBe(written.length);
        for (const c of written) expect(got.get(c.id)).toEqual(c);
        expect(s.getChunks([]).size).toBe(0);
      }));

    it('getParentSection and sectionChunks: the section around a chunk, and its chunks in text order', () =>
      filled((s, out) => {
        const guide = out.results[0]!;
        const text = draft('guide').text;
        for (const c of guide.addedChunks) {
          const p = s.getParentSection(c.id)!;
          expect(p).toMatchObject({
            docId: 'guide',
            chunkId: c.id,
            ordinal: c.sectionOrdinal,
            path: c.sectionPath,
          });
          expect(p.text).toBe(text.slice(p.start, p.end));
          expect(p.start <= c.start && c.end <= p.end).toBe(true);
          const inSection = guide.addedChunks.filter((x) => x.sectionOrdinal === c.sectionOrdinal);
          expect(s.sectionChunks('guide', c.sectionOrdinal)).toEqual(
            inSection.map((x) => ({ id: x.id, start: x.start, end: x.end })),
          );
        }
        expect(s.getParentSection(987_654_321)).toBeUndefined();
        expect(s.sectionChunks('guide', 999)).toEqual([]);
        expect(s.sectionChunks('missing', 0)).toEqual([]);
      }));

    it('getDocument: text, hash, counts and metadata as written; undefined when absent', () =>
      filled((s, out) => {
        for (const r of out.results) {
          const d = draft(r.id);
          expect(s.getDocument(r.id)).toEqual({
            id: r.id,
            hash: d.hash,
            meta: r.meta,
            chunkCount: d.chunks.length,
            charCount: d.text.length,
            text: d.text,
          });
        }
        expect(s.getDocument('missing')).toBeUndefined();
      }));

    it('listDocuments and countDocuments: id order, paging, and only what `readableBy` may read', () =>
      filled((s) => {
        const ids = (o: Parameters<DocumentStore['listDocuments']>[0] = {}) =>
          s.listDocuments(o).map((d) => d.id);
        expect(ids()).toEqual(['budget', 'guide', 'incident', 'lunch', 'review']);
        expect(ids({ limit: 2 })).toEqual(['budget', 'guide']);
        expect(ids({ limit: 2, offset: 2 })).toEqual(['incident', 'lunch']);
        expect(ids({ offset: 4 })).toEqual(['review']);
        expect(s.listDocuments()[0]).toEqual({
          id: 'budget',
          hash: draft('budget').hash,
          meta: s.getDocument('budget')!.meta,
          chunkCount: draft('budget').chunks.length,
          charCount: draft('budget').text.length,
        });
        const grants: Array<[ReadGrant, string[]]> = [
          [ANON, ['guide', 'lunch']],
          [{ groups: ['finance'], clearance: 0 }, ['budget', 'guide', 'lunch']],
          [{ userId: 'alice', groups: [], clearance: 0 }, ['guide', 'lunch', 'review']],
          [{ groups: [], clearance: 2 }, ['guide', 'incident', 'lunch']],
          [{ userId: 'alice', groups: ['finance', 'ops'], clearance: 5 }, ids()],
        ];
        for (const [g, want] of grants) {
          expect(ids({ readableBy: g })).toEqual(want);
          expect(s.countDocuments({ readableBy: g })).toBe(want.length);
        }
        // Paging counts visible documents only.
        expect(ids({ readableBy: ANON, limit: 1, offset: 1 })).toEqual(['lunch']);
        expect(s.countDocuments()).toBe(5);
        expect(s.countDocuments({ readableBy: undefined })).toBe(5);
      }));

    it('catalog: every document with its key and metadata, in key order', () =>
      filled((s, out) => {
        expect([...s.catalog()]).toEqual(out.results.map((r) => ({ key: r.key, id: r.id, meta: r.meta })));
      }));

    it('iterateChunks: every chunk with its document key, in id order', () =>
      filled((s, out) => {
        s.write({ upserts: [drafts.guideV2], deletes: ['lunch'] });
        const keyOf = new Map(out.results.map((r) => [r.id, r.key]));
        const chunks = [...s.iterateChunks()];
        const ids = chunks.map((c) => c.id);
        expect([...ids].sort((a, b) => a - b)).toEqual(ids);
        for (const c of chunks) expect(c.docKey).toBe(keyOf.get(c.docId));
        const expected = new Map<number, StoredChunk>(s.getChunks(ids));
        for (const { docKey: _, ...c } of chunks) expect(c).toEqual(expected.get(c.id));
        expect(chunks.length).toBe(s.stats().chunks);
        expect(chunks.some((c) => c.docId === 'lunch')).toBe(false);
      }));

    it('artifacts: named blobs round-trip, parts are concatenated, a rewrite replaces, the head is a prefix', () =>
      withStore((s) => {
        expect(s.readArtifact('bm25.snapshot')).toBeUndefined();
        const blob = Buffer.from(Array.from({ length: 3000 }, (_, i) => i % 251));
        s.writeArtifact('bm25.snapshot', blob);
        expect(s.readArtifact('bm25.snapshot')!.equals(blob)).toBe(true);
        s.writeArtifact('parts', [Uint8Array.of(1, 2), Uint8Array.of(), Uint8Array.of(3)]);
        expect([...s.readArtifact('parts')!]).toEqual([1, 2, 3]);
        s.writeArtifact('parts', Buffer.from('new'));
        expect(s.readArtifact('parts')!.toString()).toBe('new');
        if (s.readArtifactHead !== undefined) {
          expect(s.readArtifactHead('bm25.snapshot', 16)!.equals(blob.subarray(0, 16))).toBe(true);
          expect(s.readArtifactHead('parts', 100)!.toString()).toBe('new');
          expect(s.readArtifactHead('absent', 16)).toBeUndefined();
        }
        // Artifacts are not documents: they never move the index version.
        expect(s.indexVersion()).toBe(s.stats().indexVersion);
      }));

    it('feedback: kept in order with its time, optional fields only when given, after the document goes', () =>
      filled((s) => {
        const a = s.addFeedback({
          query: 'key rotation',
          docId: 'guide',
          chunkId: 3,
          helpful: true,
          queryId: 'q1',
        });
        expect(Date.parse(a.at)).not.toBeNaN();
        const b = s.addFeedback({ query: 'lunch', docId: 'lunch', helpful: false });
        s.write({ upserts: [], deletes: ['lunch'] });
        expect(s.listFeedback()).toEqual([a, b]);
        expect(s.listFeedback()[1]).toEqual({ query: 'lunch', docId: 'lunch', helpful: false, at: b.at });
      }));

    it('stats: counts that agree with what was written, the index version and a creation time', () =>
      filled((s) => {
        const st = s.stats();
        expect(st).toMatchObject({
          documents: all().length,
          chunks: all().reduce((n, d) => n + d.chunks.length, 0),
          sections: all().reduce((n, d) => n + d.sections.length, 0),
          characters: all().reduce((n, d) => n + d.text.length, 0),
          tokens: all().reduce((n, d) => n + d.chunks.reduce((m, c) => m + c.tokenCount, 0), 0),
          indexVersion: s.indexVersion(),
        });
        expect(Date.parse(st.createdAt)).not.toBeNaN();
        expect(s.stats().createdAt).toBe(st.createdAt);
        s.checkpoint();
      }));

    it('close: may be called twice', async () => {
      const s = await subject.make();
      s.close();
      expect(() => s.close()).not.toThrow();
      await subject.dispose?.(s);
    });

    it('serves Quarry as components.store: search with access, snapshot reload, delete', () =>
      withStore(async (s) => {
        const open = () => Quarry.open({ components: { store: s }, config: { chunking: { maxTokens: 32 } } });
        const q = open();
        try {
          await q.addDocuments(STORE_CORPUS);
          const r = await q.search('vault key rotation', { principal: userPrincipal({ clearance: 2 }) });
          expect(r.hits.map((h) => h.document.id)).toContain('incident');
          const anon = await q.search('vault key rotation');
          expect(anon.hits.map((h) => h.document.id)).not.toContain('incident');
          expect(anon.hits[0]!.document.id).toBe('guide');
        } finally {
          q.close();
        }
        // Quarry left the store open; a second instance finds the BM25 snapshot among its artifacts.
        const again = open();
        try {
          expect(again.stats().index.loadedFrom).toBe('snapshot');
          expect(again.deleteDocuments(['guide'])).toEqual(['guide']);
          const r = await again.search('vault key rotation');
          expect(r.hits.map((h) => h.document.id)).not.toContain('guide');
          expect(s.getDocument('guide')).toBeUndefined();
        } finally {
          again.close();
        }
      }));
  });
}

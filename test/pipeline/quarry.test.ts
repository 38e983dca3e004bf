/**
 * Integration tests of the library API on real components: a real SQLite store in a temporary directory, real
 * files on disk, the real parsers, chunker, BM25 index, filters and extractive answerer. Nothing is mocked.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { TRUSTED_LOCAL } from '../../src/access/principal.js';
import { isQuarryError, type QuarryError } from '../../src/errors.js';
import { NOT_ENOUGH_INFORMATION } from '../../src/generate/extractive.js';
import {
  createQuarry,
  normalizeSource,
  Quarry,
  type QuarryOptions,
  type SearchOptions,
} from '../../src/pipeline/quarry.js';

const REPO_ROOT = path.resolve(import.meta.dirname, '../..');
const SAMPLE_DOCS = path.resolve(REPO_ROOT, 'samples/docs');

// ---------------------------------------------------------------------------------------------------------------
// Helpers: every test gets its own temporary store and its own temporary folder of files.

const tempDirs: string[] = [];
const openInstances: Quarry[] = [];

function tempDir(prefix: string): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `quarry-${prefix}-`));
  tempDirs.push(dir);
  return dir;
}

/** Opens a Quarry instance that is closed automatically after the test. */
function open(store: string, config?: QuarryOptions['config']): Quarry {
  const q = Quarry.open({ store, ...(config ? { config } : {}) });
  openInstances.push(q);
  return q;
}

/** Writes `files` (relative path → content) under `dir`, creating folders. */
function writeFiles(dir: string, files: Record<string, string | Uint8Array>): void {
  for (const [rel, content] of Object.entries(files)) {
    const abs = path.join(dir, rel);
    fs.mkdirSync(path.dirname(abs), { recursive: true });
    fs.writeFileSync(abs, content);
  }
}

/** The document id (= source) Quarry gives a file: its posix path relative to the cwd, or absolute outside it. */
function idOf(dir: string, rel: string): string {
  return normalizeSource(path.join(dir, rel));
}

/** Chunk ids and scores of a search, as a comparable value. */
async function ranking(q: Quarry, query: string, opts: SearchOptions = {}) {
  const r = await q.search(query, opts);
  return r.hits.map((h) => ({ chunk: h.chunk.id, doc: h.document.id, score: h.score, text: h.chunk.text }));
}

/** Distinct document ids among a search's hits. */
async function docIds(q: Quarry, query: string, opts: SearchOptions = {}): Promise<Set<string>> {
  const r = await q.search(query, { k: 1000, ...opts });
  return new Set(r.hits.map((h) => h.document.id));
}

/** Awaits `fn` and returns the QuarryError it throws/rejects with (fails the test if it succeeds). */
async function quarryError(fn: () => unknown): Promise<QuarryError> {
  let result: unknown;
  try {
    result = await fn();
  } catch (e) {
    if (isQuarryError(e)) return e;
    throw e;
  }
  throw new Error(`expected a QuarryError, got a result: ${JSON.stringify(result)?.slice(0, 300)}`);
}

function sha256File(file: string): string {
  return createHash('sha256').update(fs.readFileSync(file)).digest('hex');
}

afterEach(() => {
  for (const q of openInstances.splice(0)) q.close();
  for (const d of tempDirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

// ---------------------------------------------------------------------------------------------------------------
// Fixtures

const GUIDE_MD = `# Install Guide

This guide explains how to install the widget server on every supported platform.

## Linux

Linux machines use the system package manager.

### Debian

On Debian run the debianpkg installer, then enable the service with systemctl.

### Fedora

On Fedora the fedorarpm package provides the same service unit.

## Windows

Windows users download the msiwizard installer and follow the prompts.
`;

const NOTES_TXT = `Meeting notes from the planning session.

The team agreed to ship the lanternfish release next quarter.

Budget reviews happen every month with the finance group.
`;

const PAGE_HTML = `<!doctype html>
<html><head><title>Widget FAQ</title></head>
<body>
<h1>Widget FAQ</h1>
<p>The widget server listens on port 8080 by default and speaks the gossamerproto protocol.</p>
<h2>Troubleshooting</h2>
<p>If the server does not start, check the log file for errors.</p>
</body></html>
`;

// ---------------------------------------------------------------------------------------------------------------

describe('ingest a folder', () => {
  it('reports what it added, counts it in stats, and stores chunks that are exact slices of their documents', async () => {
    const store = tempDir('store');
    const docs = tempDir('docs');
    writeFiles(docs, { 'guide.md': GUIDE_MD, 'notes.txt': NOTES_TXT, 'page.html': PAGE_HTML });
    const q = await createQuarry({ store });

    const report = await q.ingest([docs]);
    expect(report.errors).toEqual([]);
    expect(report.files).toBe(3);
    expect(report.added).toBe(3);
    expect(report.updated + report.unchanged + report.removed + report.failed).toBe(0);
    expect(report.chunks).toBeGreaterThan(0);
    expect(new Set(report.documents.added)).toEqual(
      new Set(['guide.md', 'notes.txt', 'page.html'].map((f) => idOf(docs, f))),
    );

    const stats = q.stats();
    expect(stats.documents).toBe(3);
    expect(stats.chunks).toBe(report.chunks);
    expect(stats.index.chunks).toBe(report.chunks);
    expect(stats.indexVersion).toBe(report.indexVersion);
    expect(stats.index.version).toBe(report.indexVersion);
    expect(stats.tokens).toBeGreaterThan(0);
    const listed = q.listDocuments();
    expect(listed).toHaveLength(3);
    expect(listed.reduce((a, d) => a + d.chunkCount, 0)).toBe(stats.chunks);

    // Every stored chunk is an exact slice of its document's text.
    let checked = 0;
    for (const chunk of q.store.iterateChunks()) {
      const doc = q.getDocument(chunk.docId);
      expect(doc).toBeDefined();
      expect(doc!.text.slice(chunk.start, chunk.end)).toBe(chunk.text);
      checked++;
    }
    expect(checked).toBe(stats.chunks);

    // …and so is every search hit.
    for (const word of ['debianpkg', 'fedorarpm', 'msiwizard', 'lanternfish', 'gossamerproto']) {
      const { hits } = await q.search(word);
      expect(hits.length, word).toBeGreaterThan(0);
      for (const h of hits) {
        const doc = q.getDocument(h.chunk.docId)!;
        expect(doc.text.slice(h.chunk.start, h.chunk.end)).toBe(h.chunk.text);
        expect(h.document.id).toBe(h.chunk.docId);
      }
      expect(hits[0]!.chunk.text.toLowerCase()).toContain(word);
    }

    // Section paths follow the Markdown heading hierarchy.
    const sectionOf = async (word: string) => (await q.search(word, { k: 1 })).hits[0]!.chunk.sectionPath;
    expect(await sectionOf('debianpkg')).toEqual(['Install Guide', 'Linux', 'Debian']);
    expect(await sectionOf('fedorarpm')).toEqual(['Install Guide', 'Linux', 'Fedora']);
    expect(await sectionOf('msiwizard')).toEqual(['Install Guide', 'Windows']);
    expect((await q.search('debianpkg', { k: 1 })).hits[0]!.document).toMatchObject({
      id: idOf(docs, 'guide.md'),
      title: 'Install Guide',
      doc_type: 'markdown',
      version: 1,
    });
    expect((await q.search('lanternfish', { k: 1 })).hits[0]!.document.doc_type).toBe('text');
    expect((await q.search('gossamerproto', { k: 1 })).hits[0]!.document.doc_type).toBe('html');
  });
});

describe('incremental ingest', () => {
  it('skips unchanged files, versions changed ones, prunes deleted ones, and deletes leave nothing retrievable', async () => {
    const store = tempDir('store');
    const docs = tempDir('docs');
    writeFiles(docs, {
      'alpha.md': '# Alpha\n\nThe quixotrel ferry crosses the river twice a day.\n',
      'beta.md': '# Beta\n\nBeta describes the harbour lighthouse and its keeper.\n',
      'gamma.txt': 'Gamma talks about mountain trails and the snowmelt season.\n',
      'sub/one.md': '# One\n\nThe subfolder holds a note on the orchard plumtree harvest.\n',
      'sub/two.txt': 'Another subfolder note about the orchard plumtree pruning.\n',
    });
    const q = open(store);

    const first = await q.ingest([docs]);
    expect(first.added).toBe(5);
    expect(first.errors).toEqual([]);
    const v1 = q.stats().indexVersion;
    expect(first.indexVersion).toBe(v1);

    // Unchanged folder: a no-op.
    const again = await q.ingest([docs]);
    expect(again.unchanged).toBe(5);
    expect(again.added + again.updated + again.removed + again.failed + again.chunks).toBe(0);
    expect(again.indexVersion).toBe(v1);
    expect(q.stats().indexVersion).toBe(v1);
    expect(q.stats().index.version).toBe(v1);

    // Change one file: exactly that one is updated, its version bumps, the old text is gone from the index.
    const alpha = idOf(docs, 'alpha.md');
    expect(q.getDocument(alpha)!.meta.version).toBe(1);
    expect((await docIds(q, 'quixotrel')).has(alpha)).toBe(true);
    writeFiles(docs, { 'alpha.md': '# Alpha\n\nThe zorblaxian ferry now crosses the river hourly.\n' });
    const changed = await q.ingest([docs]);
    expect(changed.updated).toBe(1);
    expect(changed.documents.updated).toEqual([alpha]);
    expect(changed.added).toBe(0);
    expect(changed.unchanged).toBe(4);
    expect(changed.removed).toBe(0);
    expect(changed.indexVersion).toBeGreaterThan(v1);
    const alphaDoc = q.getDocument(alpha)!;
    expect(alphaDoc.meta.version).toBe(2);
    expect(alphaDoc.text).toContain('zorblaxian');
    expect((await q.search('quixotrel')).hits).toEqual([]);
    const zorb = await q.search('zorblaxian');
    expect(zorb.hits.map((h) => h.document.id)).toEqual([alpha]);
    expect(zorb.hits[0]!.document.version).toBe(2);

    // Delete a file from the folder: it is pruned and nothing of it stays retrievable.
    const gamma = idOf(docs, 'gamma.txt');
    expect((await docIds(q, 'snowmelt')).has(gamma)).toBe(true);
    fs.rmSync(path.join(docs, 'gamma.txt'));
    const pruned = await q.ingest([docs]);
    expect(pruned.removed).toBe(1);
    expect(pruned.documents.removed).toEqual([gamma]);
    expect(pruned.unchanged).toBe(4);
    expect((await q.search('snowmelt')).hits).toEqual([]);
    expect((await q.search('mountain trails')).hits.some((h) => h.document.id === gamma)).toBe(false);
    expect(q.getDocument(gamma)).toBeUndefined();
    expect(q.stats().documents).toBe(4);

    // Deleting nothing writes nothing: the index version (which other instances watch) stays put.
    const version = q.stats().indexVersion;
    expect(q.deleteDocuments(['no-such-document'])).toEqual([]);
    expect(q.deleteBySource(path.join(docs, 'no-such-folder'))).toEqual([]);
    expect(q.stats().indexVersion).toBe(version);

    // deleteDocuments: gone from search, from getDocument and from the counts.
    const beta = idOf(docs, 'beta.md');
    const before = q.stats();
    const betaChunks = q.getDocument(beta)!.chunkCount;
    expect(q.deleteDocuments([beta, 'no-such-document'])).toEqual([beta]);
    expect(q.getDocument(beta)).toBeUndefined();
    expect((await q.search('lighthouse keeper harbour')).hits).toEqual([]);
    const afterDelete = q.stats();
    expect(afterDelete.documents).toBe(before.documents - 1);
    expect(afterDelete.chunks).toBe(before.chunks - betaChunks);
    expect(afterDelete.index.chunks).toBe(afterDelete.chunks);

    // deleteBySource on a folder: everything under it goes.
    const subIds = [idOf(docs, 'sub/one.md'), idOf(docs, 'sub/two.txt')];
    expect(await docIds(q, 'plumtree')).toEqual(new Set(subIds));
    expect(new Set(q.deleteBySource(path.join(docs, 'sub')))).toEqual(new Set(subIds));
    expect((await q.search('plumtree orchard subfolder')).hits).toEqual([]);
    for (const id of subIds) expect(q.getDocument(id)).toBeUndefined();
    const end = q.stats();
    expect(end.documents).toBe(1);
    expect(end.chunks).toBe(q.getDocument(alpha)!.chunkCount);
    expect(end.index.chunks).toBe(end.chunks);
    expect(q.listDocuments().map((d) => d.id)).toEqual([alpha]);

    // The deletions survive a reopen (they were committed, and the snapshot matches).
    q.close();
    const reopened = open(store);
    expect(reopened.stats().documents).toBe(1);
    expect((await reopened.search('plumtree')).hits).toEqual([]);
    expect((await reopened.search('lighthouse')).hits).toEqual([]);
    expect((await reopened.search('zorblaxian')).hits).toHaveLength(1);
  });
});

describe('ingest inputs that overlap', () => {
  it('ingests a file reached twice once, and rejects a record id supplied by two files', async () => {
    const store = tempDir('store');
    const docs = tempDir('docs');
    writeFiles(docs, {
      'a.md': '# A\n\nThe amberlynx note.\n',
      'sub/b.md': '# B\n\nThe birchquill note.\n',
      'r1.jsonl':
        '{"_id":"shared","text":"The first copy of the shared record."}\n{"_id":"only1","text":"one"}\n',
      'r2.jsonl':
        '{"_id":"shared","text":"The second copy of the shared record."}\n{"_id":"only2","text":"two"}\n',
    });
    const q = open(store);
    const inputs = [docs, path.join(docs, 'a.md'), path.join(docs, 'sub')];

    const first = await q.ingest(inputs);
    expect(first.files).toBe(4);
    expect(new Set(first.documents.added)).toEqual(
      new Set([idOf(docs, 'a.md'), idOf(docs, 'sub/b.md'), 'shared', 'only1', 'only2']),
    );
    expect(first.updated).toBe(0);
    expect(q.getDocument(idOf(docs, 'a.md'))!.meta.version).toBe(1);
    expect(first.errors).toHaveLength(1);
    expect(first.errors[0]).toMatchObject({
      path: idOf(docs, 'r2.jsonl'),
      record: 'shared',
      code: 'INVALID_RECORD',
    });
    expect(first.errors[0]!.message).toContain(idOf(docs, 'r1.jsonl'));
    const shared = q.getDocument('shared')!;
    expect(shared.text).toBe('The first copy of the shared record.');

    // Runs converge: nothing flips between the two files, nothing is written again.
    for (let i = 0; i < 2; i++) {
      const again = await q.ingest(inputs);
      expect(again.files).toBe(4);
      expect(again.added + again.updated + again.removed).toBe(0);
      expect(again.unchanged).toBe(5);
      expect(again.errors.map((e) => e.record)).toEqual(['shared']);
    }
    expect(q.getDocument('shared')!.meta.version).toBe(1);
    expect(q.stats().indexVersion).toBe(first.indexVersion);
  });
});

describe('persistence', () => {
  const QUERIES = ['installer service', 'widget server port', 'lanternfish release', 'orchard'];

  async function setup() {
    const store = tempDir('store');
    const docs = tempDir('docs');
    writeFiles(docs, { 'guide.md': GUIDE_MD, 'notes.txt': NOTES_TXT, 'page.html': PAGE_HTML });
    const q = open(store);
    await q.ingest([docs]);
    const expected = await Promise.all(QUERIES.map((t) => ranking(q, t)));
    expect(expected.slice(0, 3).every((r) => r.length > 0)).toBe(true);
    q.close();
    return { store, docs, expected };
  }

  it('reopens from the snapshot with identical results', async () => {
    const { store, expected } = await setup();
    const q = open(store);
    expect(q.stats().index.loadedFrom).toBe('snapshot');
    expect(await Promise.all(QUERIES.map((t) => ranking(q, t)))).toEqual(expected);
  });

  it('rebuilds from the store when the snapshot is missing or corrupt, with identical results', async () => {
    const { store, expected } = await setup();
    const snapshot = path.join(store, 'artifacts', 'bm25.snapshot');
    expect(fs.existsSync(snapshot)).toBe(true);

    fs.rmSync(snapshot);
    const q1 = open(store);
    expect(q1.stats().index.loadedFrom).toBe('rebuild');
    expect(await Promise.all(QUERIES.map((t) => ranking(q1, t)))).toEqual(expected);
    q1.close();
    // The rebuild wrote a fresh snapshot that the next open uses.
    expect(fs.existsSync(snapshot)).toBe(true);
    const q2 = open(store);
    expect(q2.stats().index.loadedFrom).toBe('snapshot');
    expect(await Promise.all(QUERIES.map((t) => ranking(q2, t)))).toEqual(expected);
    q2.close();

    fs.writeFileSync(snapshot, Buffer.from('this is not a snapshot \u0000\u0001\u0002 garbage'.repeat(50)));
    const q3 = open(store);
    expect(q3.stats().index.loadedFrom).toBe('rebuild');
    expect(await Promise.all(QUERIES.map((t) => ranking(q3, t)))).toEqual(expected);
    q3.close();

    // A valid magic header followed by junk is also just a cache miss.
    fs.writeFileSync(snapshot, Buffer.concat([Buffer.from('QBM25v1\n'), Buffer.alloc(64, 0xff)]));
    const q4 = open(store);
    expect(q4.stats().index.loadedFrom).toBe('rebuild');
    expect(await Promise.all(QUERIES.map((t) => ranking(q4, t)))).toEqual(expected);
  });

  it('an instance sees writes made through another instance on the same store', async () => {
    const { store, docs } = await setup();
    const one = open(store);
    const two = open(store);
    expect((await one.search('zorblaxian')).hits).toEqual([]);

    writeFiles(docs, {
      'late.md': '# Late\n\nA zorblaxian comet was spotted after the first instance opened.\n',
    });
    const report = await two.ingest([path.join(docs, 'late.md')]);
    expect(report.added).toBe(1);

    // Stats of the other instance describe the index it will search with: the current one.
    const stats = one.stats();
    expect(stats.indexVersion).toBe(report.indexVersion);
    expect(stats.index.version).toBe(stats.indexVersion);
    expect(stats.index.chunks).toBe(stats.chunks);

    const seen = await one.search('zorblaxian');
    expect(seen.hits.map((h) => h.document.id)).toEqual([idOf(docs, 'late.md')]);
    expect(seen.indexVersion).toBe(report.indexVersion);
    expect(one.stats().documents).toBe(4);

    // And deletions the other way round.
    expect(one.deleteDocuments([idOf(docs, 'notes.txt')])).toEqual([idOf(docs, 'notes.txt')]);
    expect((await two.search('lanternfish')).hits).toEqual([]);
    expect(two.getDocument(idOf(docs, 'notes.txt'))).toBeUndefined();

    // Writes interleaved from both instances keep both indexes complete.
    writeFiles(docs, { 'later.md': '# Later\n\nThe quasarbloom nebula is visible tonight.\n' });
    await one.ingest([path.join(docs, 'later.md')]);
    expect((await two.search('quasarbloom')).hits).toHaveLength(1);
    expect((await two.search('zorblaxian')).hits).toHaveLength(1);
    expect((await one.search('zorblaxian')).hits).toHaveLength(1);
  });

  it('concurrent ingests through two instances lose nothing, in memory or in the persisted snapshot', async () => {
    const store = tempDir('store');
    const a = tempDir('docs-a');
    const b = tempDir('docs-b');
    for (let i = 0; i < 24; i++)
      writeFiles(a, { [`a${i}.md`]: `# A${i}\n\nApple orchard note number ${i}.\n` });
    for (let i = 0; i < 8; i++)
      writeFiles(b, { [`b${i}.md`]: `# B${i}\n\nA zorblaxian comet sighting, entry ${i}.\n` });
    // Small batches make the two instances' commits interleave.
    const one = open(store, { ingest: { batchSize: 1 } });
    const two = open(store, { ingest: { batchSize: 1 } });
    const [ra, rb] = await Promise.all([one.ingest([a]), two.ingest([b])]);
    expect(ra.added).toBe(24);
    expect(rb.added).toBe(8);

    for (const q of [one, two]) {
      expect((await q.search('zorblaxian', { k: 100 })).hits).toHaveLength(8);
      expect((await q.search('apple orchard', { k: 100 })).hits).toHaveLength(24);
      expect((await q.search('zorblaxian', { k: 100, filter: { doc_type: 'markdown' } })).hits).toHaveLength(
        8,
      );
      expect(q.stats().index.chunks).toBe(q.stats().chunks);
    }
    one.close();
    two.close();
    const reopened = open(store);
    expect(reopened.stats().documents).toBe(32);
    expect((await reopened.search('zorblaxian', { k: 100 })).hits).toHaveLength(8);
    expect((await reopened.search('apple orchard', { k: 100 })).hits).toHaveLength(24);
  });
});

describe('metadata filters and access scope inside retrieval', () => {
  const WORD = 'telemetry';
  const FILLER =
    'This record covers ordinary operational matters such as rotas, meeting rooms, coffee supplies, parking ' +
    'permits, holiday calendars, onboarding checklists, laptop refresh cycles, travel bookings, expense ' +
    'approvals, badge access, printer maintenance, desk moves, fire drills, plant watering, newsletter ' +
    'drafts, quarterly offsites, recycling schedules, kitchen cleaning, visitor registration and the like.';

  interface Rec {
    _id: string;
    title: string;
    text: string;
    metadata: Record<string, unknown>;
  }

  /** 60 records, all containing WORD; the 12 with team=search mention it once in long text (lowest scores). */
  function records(): Rec[] {
    const out: Rec[] = [];
    for (let i = 0; i < 60; i++) {
      const isSearch = i % 5 === 0;
      const tags = i % 3 === 0 ? ['alpha'] : i % 3 === 1 ? ['beta'] : ['alpha', 'gamma'];
      const metadata: Record<string, unknown> = {
        team: isSearch ? 'search' : i % 2 === 0 ? 'infra' : 'web',
        tags,
        doc_type: i % 4 === 0 ? 'runbook' : 'note',
        created_at: new Date(Date.UTC(2024, i % 12, 1 + (i % 28))).toISOString(),
        n: i,
      };
      if (i % 7 === 0) metadata.priority = i % 2 === 0 ? 'high' : null;
      out.push({
        _id: `rec-${String(i).padStart(2, '0')}`,
        title: `Record ${i}`,
        text: isSearch
          ? `${FILLER} It also mentions ${WORD} once. ${FILLER}`
          : `${WORD} ${WORD} ${WORD} report.`,
        metadata,
      });
    }
    return out;
  }

  let store: string;
  let dir: string;
  let q: Quarry;
  let recs: Rec[];
  const ids = (pred: (r: Rec) => boolean) => new Set(recs.filter(pred).map((r) => r._id));

  beforeAll(async () => {
    store = fs.mkdtempSync(path.join(os.tmpdir(), 'quarry-filter-store-'));
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'quarry-filter-docs-'));
    recs = records();
    const access = [
      {
        _id: 'acl-hr',
        title: 'HR',
        text: 'The salaryband table for the hr team.',
        metadata: { access_groups: ['hr'] },
      },
      {
        _id: 'acl-eng',
        title: 'Eng',
        text: 'The salaryband ladder for engineers.',
        metadata: { access_groups: ['eng', 'leads'] },
      },
      { _id: 'acl-public', title: 'Public', text: 'A public salaryband overview.', metadata: {} },
    ];
    writeFiles(dir, {
      'records.jsonl': `${recs.map((r) => JSON.stringify(r)).join('\n')}\n`,
      'access.jsonl': `${access.map((r) => JSON.stringify(r)).join('\n')}\n`,
    });
    q = Quarry.open({ store });
    const report = await q.ingest([dir]);
    expect(report.errors).toEqual([]);
    expect(report.added).toBe(63);
  });

  afterAll(() => {
    q?.close();
    fs.rmSync(store, { recursive: true, force: true });
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('lifts tags, doc_type and created_at out of record metadata', () => {
    const d = q.getDocument('rec-05')!;
    expect(d.meta.tags).toEqual(['alpha', 'gamma']);
    expect(d.meta.doc_type).toBe('note');
    expect(d.meta.created_at).toBe('2024-06-06T00:00:00.000Z');
    expect(d.meta.fields).toMatchObject({ team: 'search', n: 5 });
    expect(d.meta.fields).not.toHaveProperty('tags');
    expect(q.getDocument('acl-hr', { principal: TRUSTED_LOCAL })!.meta.access_groups).toEqual(['hr']);
  });

  it('filters before top-k truncation: k filtered hits even when every match ranks below the others', async () => {
    const unfiltered = await q.search(WORD, { k: 10 });
    expect(unfiltered.hits).toHaveLength(10);
    // The setup really puts the team=search documents at the bottom of the unfiltered ranking.
    expect(unfiltered.hits.some((h) => h.document.fields.team === 'search')).toBe(false);
    const all = await q.search(WORD, { k: 100 });
    expect(all.hits).toHaveLength(60);
    expect(all.hits.slice(48).every((h) => h.document.fields.team === 'search')).toBe(true);

    const filtered = await q.search(WORD, { k: 10, filter: { team: 'search' } });
    expect(filtered.hits).toHaveLength(10);
    expect(filtered.hits.every((h) => h.document.fields.team === 'search')).toBe(true);
    expect(filtered.hits.map((h) => h.rank)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    const scores = filtered.hits.map((h) => h.score);
    expect([...scores].sort((a, b) => b - a)).toEqual(scores);

    const everything = await docIds(q, WORD, { k: 50, filter: { team: 'search' } });
    expect(everything).toEqual(ids((r) => r.metadata.team === 'search'));
    expect(everything.size).toBe(12);
    // The string form of a filter works the same.
    expect(await docIds(q, WORD, { filter: '{"fields.team": "search"}' })).toEqual(everything);
  });

  it('supports $in, date ranges, $not, $or, $exists and combinations', async () => {
    const tagsIn = await docIds(q, WORD, { filter: { tags: { $in: ['gamma', 'beta'] } } });
    expect(tagsIn).toEqual(
      ids((r) => (r.metadata.tags as string[]).some((t) => t === 'gamma' || t === 'beta')),
    );
    expect(tagsIn.size).toBe(40);

    const range = await docIds(q, WORD, {
      filter: { created_at: { $gte: '2024-03-01', $lt: '2024-06-01T00:00:00Z' } },
    });
    const inRange = ids((r) => {
      const t = Date.parse(r.metadata.created_at as string);
      return t >= Date.parse('2024-03-01T00:00:00Z') && t < Date.parse('2024-06-01T00:00:00Z');
    });
    expect(inRange.size).toBeGreaterThan(0);
    expect(range).toEqual(inRange);

    const not = await docIds(q, WORD, { filter: { $not: { team: 'search' } } });
    expect(not).toEqual(ids((r) => r.metadata.team !== 'search'));
    expect(not.size).toBe(48);

    const or = await docIds(q, WORD, { filter: { $or: [{ team: 'search' }, { doc_type: 'runbook' }] } });
    expect(or).toEqual(ids((r) => r.metadata.team === 'search' || r.metadata.doc_type === 'runbook'));

    const exists = await docIds(q, WORD, { filter: { priority: { $exists: true } } });
    expect(exists).toEqual(ids((r) => 'priority' in r.metadata));
    expect(exists.size).toBe(9);
    const missing = await docIds(q, WORD, { filter: { priority: { $exists: false } } });
    expect(missing.size).toBe(51);

    const combined = await docIds(q, WORD, {
      filter: { tags: 'alpha', n: { $gte: 30 }, team: { $ne: 'search' } },
    });
    expect(combined).toEqual(
      ids(
        (r) =>
          (r.metadata.tags as string[]).includes('alpha') &&
          (r.metadata.n as number) >= 30 &&
          r.metadata.team !== 'search',
      ),
    );

    expect((await q.search(WORD, { filter: { team: 'nobody' } })).hits).toEqual([]);
  });

  it('rejects invalid filters with INVALID_FILTER instead of returning results', async () => {
    for (const filter of [{ year: { $foo: 1 } }, { $and: 5 }, '{"team": "search"', 'not json', [1, 2], 42]) {
      const e = await quarryError(() => q.search(WORD, { filter }));
      expect(e.code, JSON.stringify(filter)).toBe('INVALID_FILTER');
      const a = await quarryError(() => q.ask(`what about ${WORD}?`, { filter }));
      expect(a.code, JSON.stringify(filter)).toBe('INVALID_FILTER');
    }
    expect((await quarryError(() => q.search(WORD, { filter: { year: { $foo: 1 } } }))).message).toContain(
      '$foo',
    );
  });

  it('hides documents outside the caller’s access groups', async () => {
    // No principal is anonymous (never the owner): only the unrestricted document. The owner sees all.
    expect(await docIds(q, 'salaryband')).toEqual(new Set(['acl-public']));
    expect(await docIds(q, 'salaryband', { principal: TRUSTED_LOCAL })).toEqual(
      new Set(['acl-hr', 'acl-eng', 'acl-public']),
    );
    expect(await docIds(q, 'salaryband', { scope: { groups: ['eng'] } })).toEqual(
      new Set(['acl-eng', 'acl-public']),
    );
    expect(await docIds(q, 'salaryband', { scope: { groups: ['hr'] } })).toEqual(
      new Set(['acl-hr', 'acl-public']),
    );
    expect(await docIds(q, 'salaryband', { scope: { groups: ['leads', 'hr'] } })).toEqual(
      new Set(['acl-hr', 'acl-eng', 'acl-public']),
    );
    expect(await docIds(q, 'salaryband', { scope: { groups: [] } })).toEqual(new Set(['acl-public']));
    // Scope and filter combine; documents without groups stay visible to everyone.
    expect(await docIds(q, WORD, { scope: { groups: ['eng'] }, filter: { team: 'search' } })).toEqual(
      ids((r) => r.metadata.team === 'search'),
    );
    const answer = await q.ask('What is the salaryband table for the hr team?', {
      scope: { groups: ['eng'] },
    });
    expect(answer.hits.some((h) => h.document.id === 'acl-hr')).toBe(false);
    expect(answer.citations.some((c) => c.docId === 'acl-hr')).toBe(false);
  });
});

describe('bad input in a batch', () => {
  it('reports each bad file with its code and path, ingests the good ones, and keeps stored versions of files that turn bad', async () => {
    const store = tempDir('store');
    const docs = tempDir('docs');
    writeFiles(docs, {
      'good.md': '# Good\n\nThe pelicanweave method is documented here.\n',
      'good.txt': 'Plain notes about the marigoldvane procedure.\n',
      'other.md': '# Other\n\nThe tessellix routine lives in this file.\n',
      'empty.txt': '',
      'x.md': Buffer.from([0x23, 0x20, 0x41, 0x0a, 0x00, 0x01, 0x02, 0x03, 0x41, 0x42, 0x00, 0x0a]),
      'latin1.txt': Buffer.concat([Buffer.from('caf'), Buffer.from([0xe9]), Buffer.from(' au lait\n')]),
      'corrupt.pdf': Buffer.from(Array.from({ length: 700 }, (_, i) => (i * 7919 + 13) % 256)),
      'big.txt': `${'oversized '.repeat(300)}\n`,
    });
    const q = open(store, { ingest: { maxFileBytes: 2000 } });

    const report = await q.ingest([docs]);
    const errors = new Map(report.errors.map((e) => [e.path, e]));
    const expected: Record<string, string> = {
      'empty.txt': 'EMPTY_DOCUMENT',
      'x.md': 'BINARY_FILE',
      'latin1.txt': 'INVALID_UTF8',
      'corrupt.pdf': 'PARSE_FAILED',
      'big.txt': 'FILE_TOO_LARGE',
    };
    expect(report.errors).toHaveLength(5);
    for (const [file, code] of Object.entries(expected)) {
      const e = errors.get(idOf(docs, file));
      expect(e, file).toBeDefined();
      expect(e!.code, file).toBe(code);
      expect(e!.message.length, file).toBeGreaterThan(0);
    }
    expect(report.failed).toBe(5);
    expect(report.added).toBe(3);
    expect(new Set(report.documents.added)).toEqual(
      new Set(['good.md', 'good.txt', 'other.md'].map((f) => idOf(docs, f))),
    );
    expect(q.stats().documents).toBe(3);
    for (const file of Object.keys(expected)) expect(q.getDocument(idOf(docs, file)), file).toBeUndefined();
    expect((await q.search('oversized')).hits).toEqual([]);
    expect((await q.search('pelicanweave')).hits.map((h) => h.document.id)).toEqual([idOf(docs, 'good.md')]);

    // A stored file turns bad: the error is reported, the stored version stays (not updated, not pruned).
    const good = idOf(docs, 'good.md');
    const goodTxt = idOf(docs, 'good.txt');
    const before = q.getDocument(good)!;
    writeFiles(docs, {
      'good.md': Buffer.concat([
        Buffer.from('# Good\n\nBroken '),
        Buffer.from([0xc3, 0x28, 0xff]),
        Buffer.from('\n'),
      ]),
      'good.txt': 'x'.repeat(2500),
    });
    const second = await q.ingest([docs]);
    const secondErrors = new Map(second.errors.map((e) => [e.path, e.code]));
    expect(secondErrors.get(good)).toBe('INVALID_UTF8');
    expect(secondErrors.get(goodTxt)).toBe('FILE_TOO_LARGE');
    expect(second.removed).toBe(0);
    expect(second.documents.removed).toEqual([]);
    expect(second.updated).toBe(0);
    expect(second.unchanged).toBe(1);
    const after = q.getDocument(good)!;
    expect(after.text).toBe(before.text);
    expect(after.meta.version).toBe(1);
    expect(after.hash).toBe(before.hash);
    expect((await q.search('pelicanweave')).hits.map((h) => h.document.id)).toEqual([good]);
    expect((await q.search('marigoldvane')).hits.map((h) => h.document.id)).toEqual([goodTxt]);
    expect(q.stats().documents).toBe(3);

    // A record file whose line turns unreadable (so its id is unknown) keeps that record's stored version.
    writeFiles(docs, {
      'records.jsonl': [
        '{"_id":"r1","text":"The cobaltfinch record."}',
        '{"_id":"r2","text":"The vermilionoak record."}',
        '{"_id":"r3","text":"The saffronkite record."}',
      ].join('\n'),
    });
    const withRecords = await q.ingest([docs]);
    expect(withRecords.documents.added).toEqual(['r1', 'r2', 'r3']);
    writeFiles(docs, {
      'records.jsonl': Buffer.concat([
        Buffer.from('{"_id":"r1","text":"The cobaltfinch record."}\n'),
        Buffer.from([0x7b, 0x22, 0xff, 0xfe, 0x22, 0x7d]),
        Buffer.from('\n{"_id":"r3","text":"The saffronkite record, revised."}\n'),
      ]),
    });
    const badLine = await q.ingest([docs]);
    expect(badLine.errors.find((e) => e.path === idOf(docs, 'records.jsonl'))).toMatchObject({
      code: 'INVALID_UTF8',
      record: 'line 2',
    });
    expect(badLine.documents.updated).toEqual(['r3']);
    expect(badLine.removed).toBe(0);
    expect((await q.search('vermilionoak')).hits.map((h) => h.document.id)).toEqual(['r2']);
    // Once the line is gone for good, the record is pruned.
    writeFiles(docs, { 'records.jsonl': '{"_id":"r1","text":"The cobaltfinch record."}\n' });
    const fixed = await q.ingest([docs]);
    expect(new Set(fixed.documents.removed)).toEqual(new Set(['r2', 'r3']));
    expect((await q.search('vermilionoak')).hits).toEqual([]);

    // Also when the bad file is ingested on its own rather than through its folder.
    const single = await q.ingest([path.join(docs, 'good.md')]);
    expect(single.errors.map((e) => e.code)).toEqual(['INVALID_UTF8']);
    expect(single.removed).toBe(0);
    expect(q.getDocument(good)!.text).toBe(before.text);
  });
});

describe('CJK text', () => {
  it('finds Chinese and Japanese documents by a word of their text', async () => {
    const store = tempDir('store');
    const docs = tempDir('docs');
    writeFiles(docs, {
      'zh.md':
        '# 检索系统\n\n数据库中的检索系统支持全文搜索，用户可以快速找到相关的文档。索引在后台自动更新。\n',
      'ja.txt': '東京の図書館では新しい蔵書管理システムを導入しました。利用者は本を簡単に探せます。\n',
      'en.md': '# English\n\nAn English document about databases and full text search.\n',
    });
    const q = open(store);
    const report = await q.ingest([docs]);
    expect(report.errors).toEqual([]);
    expect(report.added).toBe(3);

    const zh = await q.search('检索');
    expect(zh.hits.length).toBeGreaterThan(0);
    expect(zh.hits[0]!.document.id).toBe(idOf(docs, 'zh.md'));
    expect(zh.hits.every((h) => h.document.id === idOf(docs, 'zh.md'))).toBe(true);
    expect((await q.search('全文搜索')).hits[0]?.document.id).toBe(idOf(docs, 'zh.md'));

    const ja = await q.search('図書館');
    expect(ja.hits.map((h) => h.document.id)).toEqual([idOf(docs, 'ja.txt')]);
    expect((await q.search('システム')).hits[0]?.document.id).toBe(idOf(docs, 'ja.txt'));

    const zhAnswer = await q.ask('检索系统支持什么？');
    expect(zhAnswer.hits[0]?.document.id).toBe(idOf(docs, 'zh.md'));
  });

  it('finds Thai documents by a word of their text, and answers from them with a citation', async () => {
    const store = tempDir('store');
    const docs = tempDir('docs');
    writeFiles(docs, {
      'th.md':
        '# กรุงเทพมหานคร\n\nกรุงเทพมหานครเป็นเมืองหลวงของประเทศไทย มีประชากรมากกว่าสิบล้านคน\n\nแม่น้ำเจ้าพระยาไหลผ่านกรุงเทพมหานคร\n',
      'en.md': '# Weather\n\nIt rains a lot in Bergen, on the west coast of Norway.\n',
    });
    const q = open(store);
    expect((await q.ingest([docs])).added).toBe(2);
    for (const word of ['เมืองหลวง', 'ประเทศไทย', 'แม่น้ำเจ้าพระยา']) {
      const r = await q.search(word);
      expect(
        r.hits.map((h) => h.document.id),
        word,
      ).toEqual([idOf(docs, 'th.md')]);
    }
    // "the capital of Thailand": content words only. With the question words (คืออะไร, "is what") the
    // extractive answerer abstains: Thai has no stopword list, so they count against the support.
    const answer = await q.ask('เมืองหลวงของประเทศไทย');
    expect(answer.abstained).toBe(false);
    expect(answer.text).toContain('เมืองหลวงของประเทศไทย');
    expect(answer.citations[0]?.docId).toBe(idOf(docs, 'th.md'));
    q.close();
  });
});

describe('ask with citations on samples/docs', () => {
  let store: string;
  let q: Quarry;

  beforeAll(async () => {
    store = fs.mkdtempSync(path.join(os.tmpdir(), 'quarry-ask-store-'));
    q = Quarry.open({ store });
    const report = await q.ingest([SAMPLE_DOCS]);
    expect(report.errors).toEqual([]);
    expect(report.added).toBe(fs.readdirSync(SAMPLE_DOCS).length);
  });

  afterAll(() => {
    q?.close();
    fs.rmSync(store, { recursive: true, force: true });
  });

  it('answers a covered question with citations whose spans are verbatim in the document and chunk', async () => {
    const a = await q.ask('What is the default chunk size?');
    expect(a.abstained).toBe(false);
    expect(a.text).toContain('256');
    expect(a.text).not.toBe(NOT_ENOUGH_INFORMATION);
    expect(a.confidence).toBeGreaterThan(0);
    expect(a.citations.length).toBeGreaterThan(0);
    for (const c of a.citations) {
      const doc = q.getDocument(c.docId);
      expect(doc, c.docId).toBeDefined();
      expect(doc!.text.slice(c.start, c.end)).toBe(c.quote);
      expect(c.quote.length).toBeGreaterThan(0);
      const hit = a.hits.find((h) => h.chunk.id === c.chunkId);
      expect(hit, `chunk ${c.chunkId}`).toBeDefined();
      expect(hit!.chunk.text.slice(c.chunkStart, c.chunkEnd)).toBe(c.quote);
      expect(hit!.chunk.start + c.chunkStart).toBe(c.start);
      expect(hit!.document.id).toBe(c.docId);
      expect(c.source).toBe(hit!.document.source);
      expect(c.title).toBe(hit!.document.title);
      expect(c.sectionPath).toEqual(hit!.chunk.sectionPath);
      expect(a.text).toContain(`${c.quote} [${c.marker}]`);
    }
    // The figure the answer states comes from a cited quote.
    expect(a.citations.some((c) => c.quote.includes('256'))).toBe(true);
  });

  it('abstains on a question the documents do not cover', async () => {
    const a = await q.ask('What is the capital of Mongolia?');
    expect(a.abstained).toBe(true);
    expect(a.citations).toEqual([]);
    expect(a.text).toBe(NOT_ENOUGH_INFORMATION);
    expect(a.confidence).toBe(0);
  });

  it('reports a per-stage trace with timings and scored candidates', async () => {
    // The question was answered above: bypass the response cache to see every stage run.
    const a = await q.ask('What is the default chunk size?', { trace: true, cache: false });
    const trace = a.trace;
    expect(trace).toBeDefined();
    expect(trace!.query).toBe('What is the default chunk size?');
    expect(trace!.totalMs).toBeGreaterThanOrEqual(0);
    const names = trace!.stages.map((s) => s.stage);
    const expected = [
      'filter.compile',
      'query.analyze',
      'retrieve.bm25',
      'hits.load',
      'answer.extractive',
      'answer.validate',
    ];
    expect(names.filter((n) => expected.includes(n))).toEqual(expected);
    for (const s of trace!.stages) {
      expect(s.durationMs, s.stage).toBeGreaterThanOrEqual(0);
      expect(s.offsetMs, s.stage).toBeGreaterThanOrEqual(0);
    }
    const bm25 = trace!.stages.find((s) => s.stage === 'retrieve.bm25')!;
    const candidates = bm25.detail.candidates as Array<{ chunkId: number; rank: number; score: number }>;
    expect(candidates.length).toBeGreaterThan(0);
    for (const c of candidates) expect(c.score).toBeGreaterThan(0);
    expect(candidates.map((c) => c.rank)).toEqual(candidates.map((_, i) => i + 1));
    expect(candidates.map((c) => c.chunkId)).toEqual(a.hits.map((h) => h.chunk.id));
    const validate = trace!.stages.find((s) => s.stage === 'answer.validate')!;
    expect(validate.detail).toMatchObject({ ok: true, checked: a.citations.length });

    // Without trace: no trace.
    expect((await q.ask('What is the default chunk size?')).trace).toBeUndefined();
    expect((await q.search('chunk size', { trace: true })).trace?.stages.map((s) => s.stage)).toEqual([
      'cache',
      'filter.compile',
      'query.analyze',
      'retrieve.bm25',
      'hits.load',
    ]);
    // The query stage shows what understanding did: intent and typo corrections against the vocabulary.
    const qa = (await q.search('what is the defualt chunk size', { trace: true })).trace!.stages.find(
      (s) => s.stage === 'query.analyze',
    )!;
    expect(qa.detail).toMatchObject({
      intent: { intent: 'factual' },
      corrections: [{ from: 'defualt', to: 'default' }],
    });
  });
});

describe('store settings', () => {
  it('refuses to open a store with different analyzer settings and leaves it unchanged', async () => {
    const store = tempDir('store');
    const docs = tempDir('docs');
    writeFiles(docs, { 'guide.md': GUIDE_MD, 'notes.txt': NOTES_TXT });
    const q = open(store);
    await q.ingest([docs]);
    const before = await ranking(q, 'installing services');
    expect(before.length).toBeGreaterThan(0);
    const statsBefore = q.stats();
    q.close();
    const snapshot = path.join(store, 'artifacts', 'bm25.snapshot');
    const snapshotHash = sha256File(snapshot);

    const e = await quarryError(() => Quarry.open({ store, config: { analyzer: { stemmer: 'none' } } }));
    expect(e.code).toBe('STORE_CONFIG_MISMATCH');
    expect(e.exitCode).toBe(5);
    const e2 = await quarryError(() => createQuarry({ store, config: { bm25: { fields: 'multifield' } } }));
    expect(e2.code).toBe('STORE_CONFIG_MISMATCH');

    expect(sha256File(snapshot)).toBe(snapshotHash);
    const again = open(store);
    const statsAfter = again.stats();
    expect(statsAfter.index.loadedFrom).toBe('snapshot');
    expect(statsAfter.documents).toBe(statsBefore.documents);
    expect(statsAfter.chunks).toBe(statsBefore.chunks);
    expect(statsAfter.indexVersion).toBe(statsBefore.indexVersion);
    expect(await ranking(again, 'installing services')).toEqual(before);
    // Query-time BM25 parameters are not store settings.
    again.close();
    const tuned = open(store, { bm25: { k1: 1.2, b: 0.75 } });
    expect(tuned.stats().index.loadedFrom).toBe('snapshot');
    expect((await ranking(tuned, 'installing services')).map((r) => r.chunk).sort()).toEqual(
      before.map((r) => r.chunk).sort(),
    );
  });
});

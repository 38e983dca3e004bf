/**
 * In-memory ingest through the public API on real components: a real SQLite store in a temp dir, the real
 * parsers, chunker, BM25 and built-in dense index, the real extractive answerer. Documents given as strings
 * must behave exactly like files: same chunks, incremental by content hash, found by search and ask.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { isQuarryError, type QuarryError } from '../../src/errors.js';
import { NOT_ENOUGH_INFORMATION } from '../../src/generate/extractive.js';
import { type DocumentInput, Quarry, TRUSTED_LOCAL } from '../../src/index.js';
import { normalizeSource } from '../../src/pipeline/quarry.js';

const SAMPLES = path.resolve(import.meta.dirname, '../../samples/docs');

const cleanup: Array<() => void> = [];
afterEach(() => {
  for (const c of cleanup.splice(0).reverse()) c();
});

function tempDir(prefix: string): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), `quarry-${prefix}-`));
  cleanup.push(() => fs.rmSync(d, { recursive: true, force: true }));
  return d;
}

function open(store = tempDir('mem')): Quarry {
  const q = Quarry.open({
    store,
    config: { chunking: { maxTokens: 40, overlapTokens: 8, parentMaxTokens: 200 } },
  });
  cleanup.push(() => q.close());
  return q;
}

async function quarryError(fn: () => unknown): Promise<QuarryError> {
  try {
    await fn();
  } catch (e) {
    if (isQuarryError(e)) return e;
    throw e;
  }
  throw new Error('expected a QuarryError');
}

const GUIDE = `---
tags: [ops, security]
---
# Key rotation guide

Signing keys are rotated every ninety days by the vault operator. The old key stays valid for a grace period of seven days so that tokens issued just before the rotation keep working.

## Emergency rotation

When a key leaks, run the emergency rotation playbook: revoke the key, issue a new one and notify every service owner through the incident channel within one hour.
`;

const DOCS: DocumentInput[] = [
  { id: 'guide', markdown: GUIDE, metadata: { team: 'platform' } },
  {
    id: 'refunds',
    html: '<html><head><title>Refund policy</title></head><body><h1>Refunds</h1><p>Refunds for annual plans are paid back within fourteen business days after the cancellation request.</p></body></html>',
  },
  {
    id: 'lunch',
    text: 'The cafeteria serves lunch from noon until two.\n\nOn Fridays there is a pizza buffet.',
    title: 'Cafeteria',
    access: ['staff'],
  },
];

describe('addDocuments: in-memory ingest', () => {
  it('parses, chunks and indexes text, Markdown and HTML so search and ask find them with citations', async () => {
    const q = open();
    const report = await q.addDocuments(DOCS);
    expect(report).toMatchObject({ files: 3, added: 3, updated: 0, unchanged: 0, failed: 0 });
    expect(report.chunks).toBeGreaterThanOrEqual(4);

    const guide = q.getDocument('guide')!;
    expect(guide.meta).toMatchObject({
      title: 'Key rotation guide',
      doc_type: 'markdown',
      source: 'memory:guide',
      tags: ['ops', 'security'],
      fields: { team: 'platform' },
    });
    expect(q.getDocument('refunds')!.meta).toMatchObject({ title: 'Refund policy', doc_type: 'html' });
    // A restricted document is there for its readers only (here, the store's owner).
    expect(q.getDocument('lunch')).toBeUndefined();
    expect(q.getDocument('lunch', { principal: TRUSTED_LOCAL })!.meta).toMatchObject({
      title: 'Cafeteria',
      access_groups: ['staff'],
    });

    const hits = (await q.search('emergency rotation playbook leaked key')).hits;
    expect(hits[0]!.document.id).toBe('guide');
    expect(hits[0]!.chunk.sectionPath).toEqual(['Key rotation guide', 'Emergency rotation']);
    expect(
      (await q.search('refund annual plan', { filter: { doc_type: 'html' } })).hits[0]!.document.id,
    ).toBe('refunds');
    // Access groups given as `access` are enforced like any other document's.
    expect((await q.search('pizza buffet', { scope: { groups: ['other'] } })).hits).toEqual([]);
    expect((await q.search('pizza buffet', { scope: { groups: ['staff'] } })).hits[0]!.document.id).toBe(
      'lunch',
    );
    const answer = await q.ask('When are signing keys rotated by the vault operator?');
    expect(answer.text).not.toBe(NOT_ENOUGH_INFORMATION);
    expect(answer.text).toContain('every ninety days');
    expect(answer.citations.length).toBeGreaterThan(0);
    for (const c of answer.citations) {
      expect(c.docId).toBe('guide');
      expect(c.source).toBe('memory:guide');
      expect(q.getDocument(c.docId)!.text.slice(c.start, c.end)).toBe(c.quote);
    }
  });

  it('is incremental by content hash: identical is unchanged, changed text updates, the same id replaces', async () => {
    const q = open();
    await q.addDocuments(DOCS);
    const version = q.stats().index.version;

    const again = await q.addDocuments(
      DOCS.map((d) => ({ ...d, metadata: d.metadata && { ...d.metadata } })),
    );
    expect(again).toMatchObject({ added: 0, updated: 0, unchanged: 3, chunks: 0 });
    expect(again.documents.unchanged.sort()).toEqual(['guide', 'lunch', 'refunds']);
    expect(q.stats().index.version).toBe(version); // nothing written

    const changed = await q.addDocuments([
      {
        id: 'lunch',
        text: 'The cafeteria now serves a vegetarian curry on Tuesdays.',
        title: 'Cafeteria',
        access: ['staff'],
      },
      // Metadata is part of the content: a new value is an update, too.
      { ...DOCS[1]!, metadata: { owner: 'finance' } },
    ]);
    expect(changed).toMatchObject({ added: 0, updated: 2, unchanged: 0 });
    expect(q.getDocument('lunch', { principal: TRUSTED_LOCAL })!.meta.version).toBe(2);
    expect(q.getDocument('refunds')!.meta.fields).toEqual({ owner: 'finance' });
    const staff = { scope: { groups: ['staff'] } };
    expect((await q.search('pizza buffet', staff)).hits).toEqual([]);
    expect((await q.search('vegetarian curry', staff)).hits[0]!.document.id).toBe('lunch');

    // The same id with another format replaces the document and every chunk of it.
    await q.addDocuments([{ id: 'guide', text: 'Rotation is now automatic and needs no playbook at all.' }]);
    expect(q.getDocument('guide')!.meta.doc_type).toBe('text');
    expect((await q.search('incident channel service owner')).hits.map((h) => h.document.id)).not.toContain(
      'guide',
    );
    expect(q.stats().documents).toBe(3);
  });

  it('embeds them for dense retrieval like ingested files', async () => {
    const q = open();
    await q.ingest([SAMPLES]); // the built-in embedder needs a corpus to train on
    await q.addDocuments(DOCS);
    const dense = await q.search('emergency rotation playbook for a leaked key', {
      retriever: 'dense',
      k: 3,
    });
    expect(dense.degraded, JSON.stringify(dense.degraded)).toEqual([]);
    expect(dense.hits.map((h) => h.document.id)).toContain('guide');
  });

  it('gives the same chunks as the same content ingested from a file', async () => {
    const dir = tempDir('mem-files');
    fs.writeFileSync(path.join(dir, 'guide.md'), GUIDE);
    fs.writeFileSync(path.join(dir, 'refunds.html'), DOCS[1]!.html!);
    const fromFiles = open();
    await fromFiles.ingest([dir]);
    const fromMemory = open();
    await fromMemory.addDocuments([DOCS[0]!, DOCS[1]!]);

    for (const [file, id] of [
      ['guide.md', 'guide'],
      ['refunds.html', 'refunds'],
    ] as const) {
      const fileDoc = fromFiles.getDocument(normalizeSource(path.join(dir, file)))!;
      const memDoc = fromMemory.getDocument(id)!;
      expect(memDoc.text).toBe(fileDoc.text);
      expect(memDoc.meta.title).toBe(fileDoc.meta.title);
      expect(memDoc.meta.doc_type).toBe(fileDoc.meta.doc_type);
      const chunksOf = (q: Quarry, docId: string) =>
        [...q.store.iterateChunks()]
          .filter((c) => c.docId === docId)
          .map((c) => ({
            text: c.text,
            start: c.start,
            end: c.end,
            path: c.sectionPath,
            tokens: c.tokenCount,
          }));
      const memChunks = chunksOf(fromMemory, id);
      expect(memChunks.length).toBeGreaterThan(id === 'guide' ? 1 : 0);
      expect(memChunks).toEqual(chunksOf(fromFiles, fileDoc.id));
    }
  });

  it('rejects bad input with an error naming the document and field, and changes nothing stored', async () => {
    const q = open();
    await q.addDocuments(DOCS);
    const before = JSON.stringify(q.listDocuments());
    const version = q.stats().index.version;
    const good = { id: 'new', text: 'A perfectly fine new document about glaciers.' };
    const cases: Array<[unknown[], RegExp, Record<string, unknown>]> = [
      [[good, { text: 'no id' }], /document 1: "id" must be a non-empty string/, { index: 1, field: 'id' }],
      [[good, { id: 'x' }], /document 1 \(id "x"\): no content/, { index: 1, field: 'text' }],
      [
        [good, { id: 'x', text: 'a', markdown: '# a' }],
        /document 1 \(id "x"\): give exactly one of "text", "markdown" or "html", not "text" and "markdown"/,
        { index: 1, field: 'markdown' },
      ],
      [
        [good, { id: 'x', html: 42 }],
        /document 1 \(id "x"\): "html" must be a string, got number 42/,
        { field: 'html' },
      ],
      [
        [good, { id: 'x', text: 'a', title: ['t'] }],
        /"title" must be a string, got an array/,
        { field: 'title' },
      ],
      [[good, { id: 'x', text: 'a', access: 'staff' }], /"access" must be a list/, { field: 'access' }],
      [[good, { id: 'x', text: 'a', metadata: [] }], /"metadata" must be an object/, { field: 'metadata' }],
      [
        [good, { id: 'x', text: 'a', metadata: { tags: 5 } }],
        /metadata "tags" must be a list/,
        { field: 'metadata' },
      ],
      [[good, { id: 'x', text: 'a', hash: 'h' }], /unknown field "hash"/, { field: 'hash' }],
      [
        [good, { id: 'new', text: 'b' }],
        /document 1 \(id "new"\): duplicate id "new" \(also document 0\)/,
        { field: 'id' },
      ],
      [[good, null], /document 1: expected an object/, { index: 1 }],
      [
        [good, { id: 'x', markdown: '   \n\n  ' }],
        /document 1 \(id "x"\): markdown has no text/,
        { field: 'markdown' },
      ],
    ];
    for (const [input, message, details] of cases) {
      const e = await quarryError(() => q.addDocuments(input as DocumentInput[]));
      expect(e.message).toMatch(message);
      expect(e.details).toMatchObject(details);
    }
    expect((await quarryError(() => q.addDocuments('nope' as never))).code).toBe('INVALID_ARGUMENT');
    expect(JSON.stringify(q.listDocuments())).toBe(before);
    expect(q.stats().index.version).toBe(version);
    expect(q.getDocument('new')).toBeUndefined();
  });
});

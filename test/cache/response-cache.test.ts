/**
 * The response and retrieval caches never outlive a write made elsewhere: another instance on the same
 * store, or another process, deletes a document or changes who may read it, and this instance's next
 * identical search or ask must not serve the cached result. Real SQLite stores, real files, real child
 * processes.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { TRUSTED_LOCAL } from '../../src/access/principal.js';
import { normalizeSource, Quarry } from '../../src/pipeline/quarry.js';

const REPO = path.resolve(import.meta.dirname, '../..');
const dirs: string[] = [];
const open: Quarry[] = [];

afterEach(() => {
  for (const q of open.splice(0)) q.close();
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

function tempDir(prefix: string): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), `quarry-${prefix}-`));
  dirs.push(d);
  return d;
}

/** A store with a public and a staff-only document that both mention "zorblaxian". */
async function setup(): Promise<{
  store: string;
  docs: string;
  a: Quarry;
  publicId: string;
  staffId: string;
}> {
  const store = tempDir('store');
  const docs = tempDir('docs');
  fs.writeFileSync(path.join(docs, 'public.md'), '# Comets\n\nA zorblaxian comet is visible to everyone.\n');
  fs.writeFileSync(path.join(docs, 'staff.md'), '# Staff\n\nThe zorblaxian launch plan is for staff only.\n');
  const a = Quarry.open({ store });
  open.push(a);
  await a.ingest([path.join(docs, 'public.md')]);
  await a.ingest([path.join(docs, 'staff.md')], { accessGroups: ['staff'] });
  return {
    store,
    docs,
    a,
    publicId: normalizeSource(path.join(docs, 'public.md')),
    staffId: normalizeSource(path.join(docs, 'staff.md')),
  };
}

/** Run one write in a separate Node process (see test/fixtures/store-writer-child.ts). */
function inChild(...args: string[]): void {
  const out = execFileSync(
    process.execPath,
    ['--import', 'tsx', 'test/fixtures/store-writer-child.ts', ...args],
    { cwd: REPO, encoding: 'utf8' },
  );
  expect(out).toContain('done');
}

/** The store's owner: these tests are about deletes, not visibility, so they read every document. */
const owner = { principal: TRUSTED_LOCAL };

const docIds = (r: { hits: Array<{ document: { id: string } }> }): string[] =>
  r.hits.map((h) => h.document.id).sort();

describe('search cache and writes from elsewhere', () => {
  it('a document deleted by another instance is not served from the cache', async () => {
    const { store, a, publicId, staffId } = await setup();
    expect(docIds(await a.search('zorblaxian', owner))).toEqual([publicId, staffId].sort());
    // Served from the cache the second time: the entry exists.
    expect((await a.search('zorblaxian', owner)).strategy).toBe('cache');

    const b = Quarry.open({ store });
    open.push(b);
    expect(b.deleteDocuments([publicId])).toEqual([publicId]);

    const after = await a.search('zorblaxian', owner);
    expect(docIds(after)).toEqual([staffId]);
    expect(after.strategy).not.toBe('cache');
  });

  it('a document deleted by another process is not served from the cache', async () => {
    const { store, a, publicId, staffId } = await setup();
    expect(docIds(await a.search('zorblaxian', owner))).toEqual([publicId, staffId].sort());
    inChild('delete', store, publicId);
    expect(docIds(await a.search('zorblaxian', owner))).toEqual([staffId]);
  });

  it('access groups changed by another process take effect on the next identical search', async () => {
    const { store, docs, a, publicId, staffId } = await setup();
    const staff = { scope: { groups: ['staff'] } };
    expect(docIds(await a.search('zorblaxian', staff))).toEqual([publicId, staffId].sort());
    expect((await a.search('zorblaxian', staff)).strategy).toBe('cache');

    // The staff document is now for admins only: a staff caller must no longer see it.
    inChild('ingest', store, path.join(docs, 'staff.md'), 'admins');
    expect(docIds(await a.search('zorblaxian', staff))).toEqual([publicId]);
    expect(docIds(await a.search('zorblaxian', { scope: { groups: ['admins'] } }))).toEqual(
      [publicId, staffId].sort(),
    );
  });

  it('ask does not answer from a document deleted by another process', async () => {
    const { store, a, publicId, staffId } = await setup();
    const first = await a.ask('zorblaxian comet');
    expect(first.hits.map((h) => h.document.id)).toContain(publicId);
    inChild('delete', store, publicId);
    const second = await a.ask('zorblaxian comet');
    expect(second.cached).toBeUndefined();
    expect(second.hits.map((h) => h.document.id)).not.toContain(publicId);
    expect(second.hits.map((h) => h.document.id).every((id) => id === staffId)).toBe(true);
  });
});

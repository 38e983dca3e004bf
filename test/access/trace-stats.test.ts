/**
 * A trace is no side channel. Under `bm25.statistics: 'visible'` (the default) the BM25 stage shows the
 * statistics it scored with, and those are taken over the documents the caller may read, so they say nothing
 * about the others. Under `'store'` the counts over the whole store (document frequencies, chunks matched,
 * chunks filtered out), which would reveal that a hidden document contains the query's words, are shown to
 * the store owner only.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { TRUSTED_LOCAL, userPrincipal } from '../../src/access/principal.js';
import { Quarry } from '../../src/pipeline/quarry.js';

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
});

async function open(statistics: 'visible' | 'store'): Promise<Quarry> {
  const store = fs.mkdtempSync(path.join(os.tmpdir(), 'quarry-trace-stats-'));
  dirs.push(store);
  const q = Quarry.open({ store, config: { bm25: { statistics } } });
  await q.addDocuments([
    { id: 'public', text: 'The canteen opens at noon for the senior staff.' },
    { id: 'salaries', text: 'The senior engineer salary band is confidential.', access: ['hr'] },
  ]);
  return q;
}

const bm25 = (r: Awaited<ReturnType<Quarry['search']>>) =>
  r.trace!.stages.find((s) => s.stage === 'retrieve.bm25')!.detail;
const QUERY = 'senior engineer salary band';

describe('trace counts of the BM25 stage', () => {
  it('show a user only statistics over what it may read (visible statistics)', async () => {
    const q = await open('visible');
    const asUser = await q.search(QUERY, {
      principal: userPrincipal({ groups: ['staff'] }),
      trace: true,
      cache: false,
    });
    expect(asUser.hits.map((h) => h.document.id)).toEqual(['public']);
    const seen = bm25(asUser);
    expect(seen.statistics).toBe('visible');
    expect(seen.documents).toBe(1);
    // Only "senior" is in a document the user may read; the hidden one's words have no entry at all.
    expect((seen.termStats as Array<{ term: string; df: number }>).map((t) => [t.term, t.df])).toEqual([
      ['senior', 1],
    ]);
    expect(seen.matchedChunks).toBe(1);
    expect(seen.filteredOut).toBe(0);
    expect(JSON.stringify(asUser.trace)).not.toContain('salaries');

    const owner = bm25(await q.search(QUERY, { principal: TRUSTED_LOCAL, trace: true, cache: false }));
    expect(owner.statistics).toBe('store');
    expect(owner.documents).toBe(2);
    expect(owner.matchedChunks).toBe(2);
    expect((owner.termStats as unknown[]).length).toBe(4);
    q.close();
  });

  it('withhold store-wide counts from a user and keep them for the owner (store statistics)', async () => {
    const q = await open('store');
    const asUser = await q.search(QUERY, {
      principal: userPrincipal({ groups: ['staff'] }),
      trace: true,
      cache: false,
    });
    const seen = bm25(asUser);
    expect(seen).not.toHaveProperty('termStats');
    expect(seen).not.toHaveProperty('matchedChunks');
    expect(seen).not.toHaveProperty('filteredOut');
    expect(seen).not.toHaveProperty('documents');
    expect(seen.storeStats).toMatch(/withheld/);
    expect(JSON.stringify(asUser.trace)).not.toContain('salaries');

    const owner = bm25(await q.search(QUERY, { principal: TRUSTED_LOCAL, trace: true, cache: false }));
    expect(owner.matchedChunks).toBe(2);
    expect(owner.filteredOut).toBe(0);
    expect(owner.termStats).toBeDefined();
    q.close();
  });
});

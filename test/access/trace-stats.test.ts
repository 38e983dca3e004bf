/**
 * A trace is no side channel: for anyone but the store owner, the BM25 stage leaves out the counts taken over
 * the whole store (document frequencies, chunks matched, chunks filtered out), which would reveal that a
 * document the caller may not read contains the query's words. The owner's trace keeps them.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { TRUSTED_LOCAL, userPrincipal } from '../../src/access/principal.js';
import { Quarry } from '../../src/pipeline/quarry.js';

const store = fs.mkdtempSync(path.join(os.tmpdir(), 'quarry-trace-stats-'));
afterAll(() => fs.rmSync(store, { recursive: true, force: true }));

describe('trace counts over the whole store', () => {
  it('are withheld from a user and kept for the owner', async () => {
    const q = Quarry.open({ store });
    await q.addDocuments([
      { id: 'public', text: 'The canteen opens at noon.' },
      { id: 'salaries', text: 'The senior engineer salary band is confidential.', access: ['hr'] },
    ]);
    const bm25 = (r: Awaited<ReturnType<Quarry['search']>>) =>
      r.trace!.stages.find((s) => s.stage === 'retrieve.bm25')!.detail;
    const asUser = await q.search('senior engineer salary band', {
      principal: userPrincipal({ groups: ['staff'] }),
      trace: true,
      cache: false,
    });
    expect(asUser.hits).toEqual([]);
    const seen = bm25(asUser);
    expect(seen).not.toHaveProperty('termStats');
    expect(seen).not.toHaveProperty('matchedChunks');
    expect(seen).not.toHaveProperty('filteredOut');
    expect(seen.storeStats).toMatch(/withheld/);
    expect(JSON.stringify(asUser.trace)).not.toContain('salaries');

    const owner = bm25(
      await q.search('senior engineer salary band', { principal: TRUSTED_LOCAL, trace: true, cache: false }),
    );
    expect(owner.matchedChunks).toBe(1);
    expect(owner.filteredOut).toBe(0);
    expect(owner.termStats).toBeDefined();
    q.close();
  });
});

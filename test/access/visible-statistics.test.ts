/**
 * BM25 scores are no side channel. A document a caller may not read must not shift the scores it sees: with
 * store-wide statistics, the idf of a rare word drops (and avgdl moves) as soon as hidden documents use it,
 * which tells an outsider that they do. Under `bm25.statistics: 'visible'` (the default) a caller's scores
 * equal those of a store that never held the documents hidden from it; the owner, and anyone who may read
 * everything, keep the store-wide scores exactly. Writes (new or deleted hidden documents, access changes)
 * move the statistics at once: the cached view of each hidden set is per index and catalog generation.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { type Principal, TRUSTED_LOCAL, userPrincipal } from '../../src/access/principal.js';
import { Bm25Index, type IndexableChunk } from '../../src/indexes/lexical/bm25-index.js';
import type { DocumentInput } from '../../src/ingest/add-documents.js';
import { Quarry } from '../../src/pipeline/quarry.js';

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
});

const PUBLIC: DocumentInput[] = [
  { id: 'p-ore', text: 'Zephyrite ore is mined in the northern valley and shipped by rail.' },
  { id: 'p-rail', text: 'The rail line to the valley carries ore, grain and timber twice a week.' },
  { id: 'p-lab', text: 'The lab tests samples of zephyrite for purity; error ZX-4410 means a bad sample.' },
  { id: 'p-grain', text: 'Grain prices rose this spring after a dry winter in the valley.' },
  { id: 'p-timber', text: 'Timber from the northern forest is cut in winter and floated down river.' },
];

// Long, and full of the rare word: with them counted, "zephyrite" stops being rare and avgdl doubles.
const HIDDEN: DocumentInput[] = [1, 2, 3, 4].map((i) => ({
  id: `h-${i}`,
  text:
    `Confidential zephyrite assay ${i}: zephyrite reserves under the valley exceed estimates; ` +
    'zephyrite grade, zephyrite tonnage and the ZX-4410 failures are reported to the board only. ' +
    'The northern valley survey, the rail contract and the grain levy stay confidential until the vote.',
  access: { groups: ['lab'] },
}));

const OUTSIDER = userPrincipal({ userId: 'olga', groups: ['staff'] });
const INSIDER = userPrincipal({ userId: 'ines', groups: ['lab', 'staff'] });
const QUERIES = [
  'zephyrite ore valley',
  'rail grain timber',
  'northern valley zephyrite purity',
  'error "ZX-4410" sample',
];

function open(statistics: 'visible' | 'store', prf = false): Quarry {
  const store = fs.mkdtempSync(path.join(os.tmpdir(), 'quarry-visible-stats-'));
  dirs.push(store);
  return Quarry.open({ store, config: { bm25: { statistics }, query: { prf } } });
}

/** Document id → score, in rank order. */
async function scores(q: Quarry, query: string, principal: Principal): Promise<Array<[string, number]>> {
  const r = await q.search(query, { principal, retriever: 'bm25', k: 50, cache: false });
  return r.hits.map((h) => [h.document.id, h.score]);
}

function expectSameScores(a: Array<[string, number]>, b: Array<[string, number]>): void {
  expect(a.map(([id]) => id)).toEqual(b.map(([id]) => id));
  for (const [i, [, s]] of a.entries()) expect(Math.abs(s - b[i]![1])).toBeLessThan(1e-9);
}

function differs(a: Array<[string, number]>, b: Array<[string, number]>): boolean {
  return a.length !== b.length || a.some(([id, s], i) => id !== b[i]![0] || Math.abs(s - b[i]![1]) > 1e-6);
}

describe('BM25 statistics over the documents a caller may read', () => {
  it('give an outsider the scores of a store that never held the hidden documents', async () => {
    const withHidden = open('visible');
    await withHidden.addDocuments([...PUBLIC, ...HIDDEN]);
    const without = open('visible');
    await without.addDocuments(PUBLIC);
    for (const query of QUERIES) {
      const seen = await scores(withHidden, query, OUTSIDER);
      expect(seen.length).toBeGreaterThan(0);
      expectSameScores(seen, await scores(without, query, TRUSTED_LOCAL));
      // Asked again (the view is cached now): the same.
      expectSameScores(await scores(withHidden, query, OUTSIDER), seen);
    }
    // The owner and a member of the group read everything: store-wide statistics, so their scores differ.
    const owner = await scores(withHidden, QUERIES[0]!, TRUSTED_LOCAL);
    expect(differs(owner, await scores(without, QUERIES[0]!, TRUSTED_LOCAL))).toBe(true);
    expectSameScores(
      (await scores(withHidden, QUERIES[0]!, INSIDER)).filter(([id]) => id.startsWith('p-')),
      owner.filter(([id]) => id.startsWith('p-')),
    );
    withHidden.close();
    without.close();
  });

  it("under 'store' statistics the hidden documents shift the outsider's scores (the old behaviour)", async () => {
    const withHidden = open('store');
    await withHidden.addDocuments([...PUBLIC, ...HIDDEN]);
    const without = open('store');
    await without.addDocuments(PUBLIC);
    const seen = await scores(withHidden, QUERIES[0]!, OUTSIDER);
    expect(seen.every(([id]) => id.startsWith('p-'))).toBe(true);
    expect(differs(seen, await scores(without, QUERIES[0]!, TRUSTED_LOCAL))).toBe(true);
    withHidden.close();
    without.close();
  });

  it("leave the scores of whoever may read everything exactly as under 'store'", async () => {
    const visible = open('visible');
    const store = open('store');
    for (const q of [visible, store]) await q.addDocuments([...PUBLIC, ...HIDDEN]);
    for (const query of QUERIES) {
      for (const who of [TRUSTED_LOCAL, INSIDER]) {
        const a = await scores(visible, query, who);
        const b = await scores(store, query, who);
        expect(a).toEqual(b); // bit-identical: the fast path is untouched
      }
    }
    visible.close();
    store.close();
  });

  it("weigh the extractive answer's sentences with the caller's statistics too", async () => {
    const withHidden = open('visible');
    await withHidden.addDocuments([...PUBLIC, ...HIDDEN]);
    const without = open('visible');
    await without.addDocuments(PUBLIC);
    for (const query of QUERIES) {
      const seen = await withHidden.ask(query, { principal: OUTSIDER, cache: false });
      const expected = await without.ask(query, { principal: TRUSTED_LOCAL, cache: false });
      expect(seen.text).toBe(expected.text);
      expect(seen.citations.map((c) => c.docId)).toEqual(expected.citations.map((c) => c.docId));
    }
    withHidden.close();
    without.close();
  });

  it('hold for the learning-to-rank reranker, whose features read idf and average lengths', async () => {
    const withHidden = open('visible');
    await withHidden.addDocuments([...PUBLIC, ...HIDDEN]);
    const without = open('visible');
    await without.addDocuments(PUBLIC);
    const reranked = async (q: Quarry, query: string, principal: Principal) =>
      (await q.search(query, { principal, reranker: 'ltr', k: 10, cache: false })).hits.map(
        (h) => [h.document.id, h.score] as [string, number],
      );
    let compared = 0;
    for (const query of QUERIES) {
      const seen = await reranked(withHidden, query, OUTSIDER);
      if (seen.length > 1) compared++;
      expectSameScores(seen, await reranked(without, query, TRUSTED_LOCAL));
    }
    expect(compared).toBeGreaterThan(1);
    withHidden.close();
    without.close();
  });

  it('hold for query expansion (RM3) and exact matching too', async () => {
    const withHidden = open('visible', true);
    await withHidden.addDocuments([...PUBLIC, ...HIDDEN]);
    const without = open('visible', true);
    await without.addDocuments(PUBLIC);
    for (const query of QUERIES)
      expectSameScores(
        await scores(withHidden, query, OUTSIDER),
        await scores(without, query, TRUSTED_LOCAL),
      );
    withHidden.close();
    without.close();
  });

  it('follow writes: new, deleted and re-permissioned hidden documents move the statistics at once', async () => {
    const withHidden = open('visible');
    await withHidden.addDocuments([...PUBLIC, ...HIDDEN]);
    const without = open('visible');
    await without.addDocuments(PUBLIC);
    const query = QUERIES[2]!;
    const same = async () =>
      expectSameScores(
        await scores(withHidden, query, OUTSIDER),
        await scores(without, query, TRUSTED_LOCAL),
      );
    await same(); // warms the outsider's cached view
    const insiderBefore = await scores(withHidden, query, INSIDER);

    // Another hidden document: the insider's scores move, the outsider's do not.
    await withHidden.addDocuments([{ ...HIDDEN[0]!, id: 'h-5' }]);
    expect(differs(await scores(withHidden, query, INSIDER), insiderBefore)).toBe(true);
    await same();

    // A public document added to both: a stale cached view would keep the old N, df and avgdl.
    const extra = { id: 'p-new', text: 'A zephyrite museum opened in the northern valley town.' };
    await withHidden.addDocuments([extra]);
    await without.addDocuments([extra]);
    await same();

    // A hidden document deleted; then one made public (same id, no restriction) — the outsider now reads it.
    withHidden.deleteDocuments(['h-1']);
    await same();
    const opened = { id: 'h-2', text: HIDDEN[1]!.text };
    await withHidden.addDocuments([opened]);
    await without.addDocuments([opened]);
    await same();
    withHidden.close();
    without.close();
  });
});

describe('Bm25Index with visible statistics', () => {
  const doc = (chunkId: number, group: number, text: string): IndexableChunk => ({
    chunkId,
    group,
    fields: { contents: text.split(' ') },
  });
  const params = { k1: 0.9, b: 0.4, lengthNorm: 'lucene' as const };

  it('scores as an index without the hidden groups, and as before when nothing is hidden', () => {
    const visibleDocs = [doc(1, 1, 'a b c'), doc(2, 2, 'a d'), doc(3, 3, 'b d e f')];
    const hiddenDocs = [doc(4, 4, 'a a a x y z w'), doc(5, 5, 'a e e e e')];
    const full = new Bm25Index(params, [{ name: 'contents', weight: 1 }]);
    for (const d of [...visibleDocs, ...hiddenDocs]) full.add(d);
    const only = new Bm25Index(params, [{ name: 'contents', weight: 1 }]);
    for (const d of visibleDocs) only.add(d);
    const q = { contents: ['a', 'e', 'd'] };
    const hidden = { key: 'k', hiddenGroups: new Set([4, 5]) };
    const seen = full.search(q, { k: 10, statistics: hidden });
    const expected = only.search(q, { k: 10 });
    expect(seen.map((s) => s.chunkId)).toEqual(expected.map((s) => s.chunkId));
    for (const [i, s] of seen.entries()) expect(Math.abs(s.score - expected[i]!.score)).toBeLessThan(1e-12);
    // Nothing hidden (an empty set) is the store-wide path, bit for bit.
    expect(full.search(q, { k: 10, statistics: { key: 'none', hiddenGroups: new Set() } })).toEqual(
      full.search(q, { k: 10 }),
    );
    // A removal bumps the generation: the cached view is rebuilt.
    const before = full.generation;
    full.remove(3);
    only.remove(3);
    expect(full.generation).toBeGreaterThan(before);
    const after = full.search(q, { k: 10, statistics: hidden });
    const expectedAfter = only.search(q, { k: 10 });
    for (const [i, s] of after.entries())
      expect(Math.abs(s.score - expectedAfter[i]!.score)).toBeLessThan(1e-12);
    expect(full.visibleDocumentFrequency('contents', 'a', hidden)).toBe(2);
    expect(full.documentFrequency('contents', 'a')).toBe(4);
  });
});

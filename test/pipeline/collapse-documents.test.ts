/**
 * `collapseDocuments` (one hit per document, as `quarry eval` ranks) on real components: a corpus of
 * multi-chunk records in a real SQLite store. The collapsed ranking must be exactly the uncollapsed ranking
 * with every document's weaker chunks dropped.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Quarry, type SearchOptions } from '../../src/pipeline/quarry.js';

const VOCAB = [
  'granite',
  'basalt',
  'quarry',
  'chisel',
  'limestone',
  'marble',
  'slate',
  'sandstone',
  'gravel',
  'boulder',
  'pebble',
  'cobble',
  'mortar',
  'lintel',
  'mason',
  'kiln',
];

function seeded(seed: number): () => number {
  let s = seed;
  return () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

let store: string;
let dir: string;
let quarry: Quarry;

beforeAll(async () => {
  store = fs.mkdtempSync(path.join(os.tmpdir(), 'quarry-collapse-store-'));
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'quarry-collapse-docs-'));
  const rand = seeded(7);
  const lines: string[] = [];
  for (let d = 0; d < 60; d++) {
    // 2–8 paragraphs of 30–60 words: several chunks per document at 48-token chunks.
    const paragraphs = Array.from({ length: 2 + Math.floor(rand() * 7) }, () =>
      Array.from(
        { length: 30 + Math.floor(rand() * 30) },
        () => VOCAB[Math.floor(rand() * VOCAB.length)],
      ).join(' '),
    );
    lines.push(
      JSON.stringify({
        _id: `doc-${d}`,
        title: `Stone notes ${d}`,
        text: paragraphs.join('\n\n'),
        metadata: { shelf: d % 3 === 0 ? 'a' : 'b' },
      }),
    );
  }
  fs.writeFileSync(path.join(dir, 'stones.jsonl'), `${lines.join('\n')}\n`);
  quarry = Quarry.open({
    store,
    config: {
      chunking: { maxTokens: 48, overlapTokens: 0, parentMaxTokens: 192 },
      cache: { responses: false, retrievals: false },
    },
  });
  await quarry.ingest([dir]);
});

afterAll(() => {
  quarry.close();
  fs.rmSync(store, { recursive: true, force: true });
  fs.rmSync(dir, { recursive: true, force: true });
});

/** Every matching chunk in rank order, then the first (best) chunk of each document. */
async function collapsedByHand(query: string, k: number, opts: SearchOptions = {}) {
  const all = await quarry.search(query, { ...opts, k: 10_000 });
  const seen = new Set<string>();
  return all.hits
    .filter((h) => !seen.has(h.chunk.docId) && seen.add(h.chunk.docId) !== undefined)
    .slice(0, k)
    .map((h) => [h.chunk.docId, h.chunk.id, h.score]);
}

describe('search with collapseDocuments', () => {
  it('the corpus has documents with many matching chunks', async () => {
    expect(quarry.stats().chunks).toBeGreaterThan(3 * quarry.stats().documents);
    const all = await quarry.search('granite chisel', { k: 10_000 });
    const perDoc = new Map<string, number>();
    for (const h of all.hits) perDoc.set(h.chunk.docId, (perDoc.get(h.chunk.docId) ?? 0) + 1);
    expect(Math.max(...perDoc.values())).toBeGreaterThan(3);
  });

  it('returns each document once, at its best chunk, in the uncollapsed order', async () => {
    for (const query of ['granite chisel', 'mason mortar lintel', 'kiln', 'slate pebble cobble boulder']) {
      for (const k of [1, 5, 10, 50]) {
        const r = await quarry.search(query, { k, collapseDocuments: true });
        const got = r.hits.map((h) => [h.chunk.docId, h.chunk.id, h.score]);
        expect(got, `${query} k=${k}`).toEqual(await collapsedByHand(query, k));
        expect(new Set(r.hits.map((h) => h.chunk.docId)).size).toBe(r.hits.length);
      }
    }
  });

  it('collapses the same way under a metadata filter', async () => {
    const filter = { shelf: 'a' };
    const r = await quarry.search('granite chisel', { k: 10, collapseDocuments: true, filter });
    expect(r.hits.length).toBe(10);
    expect(r.hits.every((h) => h.document.fields.shelf === 'a')).toBe(true);
    expect(r.hits.map((h) => [h.chunk.docId, h.chunk.id, h.score])).toEqual(
      await collapsedByHand('granite chisel', 10, { filter }),
    );
  });
});

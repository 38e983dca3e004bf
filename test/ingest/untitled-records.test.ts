/**
 * A record without a title has no title: its id is a key, not words about the record, so it must not be
 * indexed as a title term (it skewed BM25 lengths, grew the vocabulary by one term per record and let a query
 * for the id match the record).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Quarry } from '../../src/pipeline/quarry.js';

let store: string;
let docs: string;
let quarry: Quarry;

beforeAll(async () => {
  store = fs.mkdtempSync(path.join(os.tmpdir(), 'quarry-untitled-store-'));
  docs = fs.mkdtempSync(path.join(os.tmpdir(), 'quarry-untitled-docs-'));
  const rows = [
    { _id: 'zebracrossing', text: 'Granite setts pave the old market square.' },
    { _id: 'titled', title: 'Basalt columns', text: 'Granite and basalt both cool from magma.' },
  ];
  fs.writeFileSync(path.join(docs, 'stones.jsonl'), rows.map((r) => JSON.stringify(r)).join('\n'));
  quarry = Quarry.open({ store, config: { cache: { responses: false, retrievals: false } } });
  await quarry.ingest([docs]);
});

afterAll(() => {
  quarry.close();
  fs.rmSync(store, { recursive: true, force: true });
  fs.rmSync(docs, { recursive: true, force: true });
});

describe('records without a title', () => {
  it('are not found by their id as a word, and have an empty title', async () => {
    const r = await quarry.search('zebracrossing', { k: 5 });
    expect(r.hits).toEqual([]);
    expect(quarry.lexical.bm25.documentFrequency('contents', 'zebracross')).toBe(0);
    const untitled = (await quarry.search('market square', { k: 5 })).hits[0]!;
    expect(untitled.document.id).toBe('zebracrossing');
    expect(untitled.document.title).toBe('');
    expect(untitled.chunk.title).toBe('');
  });

  it('index only their text: the chunk length counts no id term', () => {
    const field = 'contents';
    // "Granite setts pave the old market square." → granit sett pave old market squar (6 terms; "the" is a stop-word)
    // "Basalt columns" + "Granite and basalt both cool from magma." → 2 + 6 terms ("and" is a stop-word)
    expect(quarry.lexical.bm25.averageLength(field)).toBe((6 + 8) / 2);
  });

  it('keep their title when they have one', async () => {
    const r = await quarry.search('columns', { k: 5 });
    expect(r.hits[0]?.document.title).toBe('Basalt columns');
  });
});

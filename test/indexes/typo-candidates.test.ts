/**
 * Typo candidates come from the index's own dictionary (the unknown term's one-edit neighbourhood looked up
 * in it), not from a side index built on the first query: they must be exactly the vocabulary terms a full
 * scan finds, follow the index as it grows and shrinks, and cover characters beyond ASCII.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import fc from 'fast-check';
import { afterEach, describe, expect, it } from 'vitest';
import { DeletionIndex } from '../../src/indexes/lexical/deletion-index.js';
import { Quarry } from '../../src/pipeline/quarry.js';
import { editDistance } from '../../src/query/understand.js';

describe('one-edit candidates', () => {
  it('are exactly the terms a full vocabulary scan finds within one edit', () => {
    const word = fc.string({
      unit: fc.constantFrom('a', 'b', 'c', 'é', 'ß', 'ж'),
      minLength: 1,
      maxLength: 7,
    });
    fc.assert(
      fc.property(fc.uniqueArray(word, { minLength: 1, maxLength: 60 }), word, (terms, q) => {
        const scan = terms.filter((t) => editDistance(q, t, 1) <= 1).sort();
        const found = [...new Set(new DeletionIndex(terms).candidates(q, 1))]
          .filter((t) => editDistance(q, t, 1) <= 1)
          .sort();
        expect(found).toEqual(scan);
      }),
      { numRuns: 500 },
    );
  });
});

describe('typo correction against a live index', () => {
  const dirs: string[] = [];
  const open: Quarry[] = [];
  afterEach(() => {
    for (const q of open.splice(0)) q.close();
    for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
  });

  function corrections(q: Quarry, query: string): unknown {
    const trace = q.searchSync(query, { k: 5, trace: true }).trace!;
    return trace.stages.find((s) => s.stage === 'query.analyze')?.detail.corrections;
  }

  it('corrects to terms added after the first query, including new characters, and not to deleted ones', async () => {
    const store = fs.mkdtempSync(path.join(os.tmpdir(), 'quarry-typo-store-'));
    const docs = fs.mkdtempSync(path.join(os.tmpdir(), 'quarry-typo-docs-'));
    dirs.push(store, docs);
    const write = (name: string, rows: Array<Record<string, string>>): string => {
      const file = path.join(docs, name);
      fs.writeFileSync(file, rows.map((r) => JSON.stringify(r)).join('\n'));
      return file;
    };
    const q = Quarry.open({ store, config: { cache: { responses: false, retrievals: false } } });
    open.push(q);
    await q.ingest([
      write('a.jsonl', [{ _id: 'a', title: 'Granite', text: 'granite quarries and chisels' }]),
    ]);
    expect(corrections(q, 'granute')).toEqual([{ from: 'granut', to: 'granit', distance: 1 }]);
    // Added after the first correction: a word with a character the vocabulary did not have yet.
    await q.ingest([write('b.jsonl', [{ _id: 'b', title: 'Smørrebrød', text: 'smørrebrød with herring' }])]);
    expect(corrections(q, 'smarrebrød')).toEqual([{ from: 'smarrebrød', to: 'smørrebrød', distance: 1 }]);
    expect(corrections(q, 'smørebrød')).toEqual([{ from: 'smørebrød', to: 'smørrebrød', distance: 1 }]);
    q.deleteDocuments(['b']);
    expect(corrections(q, 'smarrebrød')).toEqual([]);
  });
});

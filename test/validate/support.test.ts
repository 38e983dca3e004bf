import { describe, expect, it } from 'vitest';
import {
  analyzeClaim,
  CRITICAL_MISMATCH_FACTOR,
  extractFacts,
  prepareSource,
  scoreSupport,
} from '../../src/validate/support.js';
import { chunk, chunkingDoc, deps, makeSource, storageDoc } from './fixtures.js';

const versions = makeSource(1, storageDoc, [{ chunk: chunk(storageDoc, 'unchanged document') }]);
const snapshots = makeSource(2, storageDoc, [{ chunk: chunk(storageDoc, 'stale snapshot') }]);
// A parent-style source: two pieces of the chunking guide joined by " … ".
const chunking = makeSource(3, chunkingDoc, [
  { chunk: chunk(chunkingDoc, '256 tokens') },
  { chunk: chunk(chunkingDoc, 'whole section') },
]);

function support(claim: string, ...sources: (typeof versions)[]) {
  return scoreSupport(
    analyzeClaim(claim, deps),
    sources.map((s) => prepareSource(s, deps)),
    { windowSentences: 2 },
  );
}

describe('facts that must agree', () => {
  it('normalizes numbers, spelled-out counts and dates', () => {
    const a = extractFacts(
      'About 4 seconds for 100,000 chunks, three times, version 1.2.3, since 2024-03-05.',
    );
    expect([...a.numbers].sort()).toEqual(['1.2.3', '100000', '2024', '3', '4', '5'].sort());
    expect([...a.months]).toEqual([3]);
    const b = extractFacts('Introduced on March 5, 2024.');
    expect([...b.numbers].sort()).toEqual(['2024', '5']);
    expect([...b.months]).toEqual([3]);
    // "may" the verb is not a month; "May 2024" is.
    expect([...extractFacts('Snapshots may be rebuilt.').months]).toEqual([]);
    expect([...extractFacts('Rebuilt in May 2024.').months]).toEqual([5]);
  });
});

describe('support of a claim by its cited source', () => {
  it('supports a faithful paraphrase, and quotes the sentence it rests on', () => {
    const r = support('A stale snapshot is rebuilt from the store at startup.', snapshots);
    expect(r.support).toBeGreaterThan(0.8);
    expect(r.mismatches).toEqual([]);
    expect(r.matches[0]!.quote!.text).toMatch(/^A stale snapshot is rebuilt from the store on startup/);
  });

  it('does not support a claim with a wrong number, however well worded', () => {
    const right = support('Rebuilding a stale snapshot takes about 4 seconds for 100,000 chunks.', snapshots);
    const wrong = support(
      'Rebuilding a stale snapshot takes about 40 seconds for 100,000 chunks.',
      snapshots,
    );
    expect(right.support).toBeGreaterThan(0.7);
    expect(wrong.mismatches).toEqual([{ kind: 'number', value: '40' }]);
    expect(wrong.support).toBeLessThan(0.35);
  });

  it('checks dates across formats', () => {
    expect(support('Snapshots were introduced on March 15, 2024.', snapshots).mismatches).toEqual([]);
    expect(support('Snapshots were introduced in April 2024.', snapshots).mismatches).toEqual([
      { kind: 'date', value: '4' },
    ]);
  });

  it('catches a negation the source does not make, and a negation the claim drops', () => {
    const added = support('A stale snapshot is not rebuilt from the store on startup.', snapshots);
    expect(added.mismatches.map((m) => m.kind)).toEqual(['negation']);
    expect(added.support).toBeLessThan(0.35);
    // The source's own negation, in other words.
    expect(support('Chunk ids are not reused for new text.', versions).mismatches).toEqual([]);

    const dropped = support('Re-ingesting an unchanged document creates a new version.', versions);
    expect(dropped.coverage).toBeGreaterThan(0.9);
    expect(dropped.mismatches.map((m) => m.kind)).toEqual(['polarity']);
    expect(dropped.support).toBeCloseTo(dropped.coverage * CRITICAL_MISMATCH_FACTOR, 6);

    // Keeping the negation, in other words, is fine.
    const kept = support(
      "Re-ingesting a document that hasn't changed does not create a new version.",
      versions,
    );
    expect(kept.mismatches).toEqual([]);
    expect(kept.support).toBeGreaterThan(0.6);
  });

  it('does not call a claim about another clause of a negated sentence a contradiction', () => {
    // "…does not create a new version" is in the source; this claim is about the other sentence.
    const r = support('When the content hash changes, the old chunks are deleted.', versions);
    expect(r.mismatches).toEqual([]);
    expect(r.support).toBeGreaterThan(0.7);
  });

  it('finds little support for a claim about something the source does not discuss', () => {
    const r = support('Quarry encrypts the SQLite database at rest with AES-256.', versions);
    expect(r.support).toBeLessThan(0.3);
    expect(r.missing).toEqual(expect.arrayContaining(['encrypt', 'ae']));
  });

  it('reads a claim spanning two adjacent source sentences as one window', () => {
    const claim = 'The document version is bumped when its hash changes, and chunk ids are never reused.';
    const wide = scoreSupport(analyzeClaim(claim, deps), [prepareSource(versions, deps)], {
      windowSentences: 2,
    });
    const narrow = scoreSupport(analyzeClaim(claim, deps), [prepareSource(versions, deps)], {
      windowSentences: 1,
    });
    expect(wide.support).toBeGreaterThan(0.85);
    expect(narrow.support).toBeLessThan(wide.support - 0.2);
  });

  it('combines the sources a sentence cites together', () => {
    const claim = 'Chunks are at most 256 tokens, and a stale snapshot is rebuilt on startup.';
    expect(support(claim, chunking).support).toBeLessThan(0.5);
    expect(support(claim, snapshots).support).toBeLessThan(0.5);
    expect(support(claim, chunking, snapshots).support).toBeGreaterThan(0.85);
  });

  it('never quotes across a " … " join and maps every quote to exact document text', () => {
    const prepared = prepareSource(chunking, deps);
    expect(prepared.sentences.length).toBeGreaterThan(3);
    for (const s of prepared.sentences) {
      expect(s.text).not.toContain('…');
      const seg = s.segment!;
      const docStart = seg.docStart + (s.start - seg.textStart);
      expect(chunkingDoc.text.slice(docStart, docStart + s.text.length)).toBe(s.text);
      expect(chunking.text.slice(s.start, s.end)).toBe(s.text);
    }
    const r = support('Parent expansion never crosses a heading of the same level.', chunking);
    expect(r.matches[0]!.quote!.segment).toBe(chunking.segments[1]);
  });
});

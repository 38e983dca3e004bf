/**
 * Context assembly on real parsed and chunked markdown: deduplication, overlap merging, parent expansion,
 * sentence compression and trimming, orderings, the budget and the exact segment mapping.
 */
import { describe, expect, it } from 'vitest';
import { type AssembleOptions, assembleContext, ContextConfigSchema } from '../../src/assemble/context.js';
import { tokenizerFor } from '../../src/assemble/tokenizer.js';
import { buildPrompt, DEFAULT_PROMPT_TEMPLATE } from '../../src/generate/prompt.js';
import type { SearchHit } from '../../src/types.js';
import { thrownBy as quarryError } from '../fixtures/rejection.js';
import { buildCorpus, expectExactSegments } from './corpus.js';

const STORAGE = `# Storage

## Durability

Every ingest batch is written in one SQLite transaction. A process killed during ingest leaves each document fully present or fully absent. The write-ahead log keeps readers going while a batch commits. Checkpoints move committed pages into the main database file. Nothing else in the storage layer needs manual care.

## Layout

The store is one directory. It holds the database file, the write-ahead log and index snapshots. Snapshots are tagged with the index version they were built from. A stale snapshot is rebuilt from the store on open.
`;

const RETRIEVAL = `# Retrieval

## BM25

BM25 scores each chunk by term frequency and inverse document frequency. The default parameters are k1 0.9 and b 0.4. Length norms use Lucene's one-byte encoding so scores match Anserini. Stop-words are removed before scoring.

## Hybrid

Hybrid retrieval fuses BM25 with a dense index. Min-max fusion weighs the two lists. Near-duplicates are collapsed after fusion.
`;

const COOKING = `# Bread

## Dough

Flour, water, salt and yeast make a basic dough. Knead it for ten minutes until it is smooth. Let it rise for an hour in a warm place. Shape the loaf gently so the gas stays inside.
`;

const corpus = buildCorpus({ storage: STORAGE, retrieval: RETRIEVAL, cooking: COOKING });
const docText = (id: string): string => corpus.docs.get(id)!.text;
const chunkStart = (id: number): number | undefined => corpus.chunks.get(id)?.start;
const chunksOf = (docId: string, section?: string) =>
  corpus.docs.get(docId)!.chunks.filter((c) => section === undefined || c.sectionPath.includes(section));
const TODAY = '2025-03-01';

function assemble(question: string, hits: SearchHit[], options: AssembleOptions = {}) {
  const window = assembleContext(
    question,
    hits,
    { today: TODAY, window: 4096, reservedOutput: 512, ...options },
    corpus.deps,
  );
  expectExactSegments(window, docText, chunkStart);
  expect(window.tokens).toBeLessThanOrEqual(window.budget.available);
  const prompt = buildPrompt(DEFAULT_PROMPT_TEMPLATE, question, window);
  expect(tokenizerFor('gpt-4o').countMessages(prompt)).toBeLessThanOrEqual(
    window.budget.window - window.budget.reservedOutput,
  );
  return window;
}

describe('the corpus has the structure these tests rely on', () => {
  it('sections with several overlapping chunks', () => {
    const durability = chunksOf('storage', 'Durability');
    expect(durability.length).toBeGreaterThanOrEqual(3);
    expect(durability[1]!.start).toBeLessThan(durability[0]!.end); // overlap
  });
});

describe('assembleContext', () => {
  it('drops a chunk retrieved twice and identical text from another document', () => {
    const [a] = chunksOf('cooking', 'Dough');
    const copy = { ...corpus.hit(a!.id, 0.5), chunk: { ...a!, id: 9999, docId: 'copy' } };
    copy.document = { ...copy.document, id: 'copy' };
    const w = assemble('how long to knead dough', [corpus.hit(a!.id, 0.9), corpus.hit(a!.id, 0.8), copy], {
      parentExpansion: { enabled: false },
    });
    expect(w.sources).toHaveLength(1);
    expect(w.dropped).toEqual([
      { chunkId: a!.id, reason: 'duplicate' },
      { chunkId: 9999, reason: 'duplicate' },
    ]);
  });

  it('merges overlapping chunks of one document into one contiguous source', () => {
    const [c0, c1] = chunksOf('storage', 'Durability');
    const w = assemble('transaction killed process', [corpus.hit(c1!.id, 0.9), corpus.hit(c0!.id, 0.7)], {
      parentExpansion: { enabled: false },
    });
    expect(w.sources).toHaveLength(1);
    const s = w.sources[0]!;
    expect(s.kind).toBe('chunk');
    expect(s.text).toBe(docText('storage').slice(c0!.start, c1!.end));
    expect(s.chunkIds.sort()).toEqual([c0!.id, c1!.id].sort());
    expect(s.segments.map((g) => g.chunkId)).toEqual([c0!.id, c1!.id]);
    expect(s.score).toBe(0.9);
  });

  it('uses the parent section when enough of its children were retrieved', () => {
    const [c0, , c2] = chunksOf('storage', 'Durability');
    const hits = [corpus.hit(c0!.id, 0.9), corpus.hit(c2!.id, 0.8)];
    const w = assemble('durability of ingest', hits);
    expect(w.sources).toHaveLength(1);
    const s = w.sources[0]!;
    const section = corpus.deps.getParentSection(c0!.id)!;
    expect(s.kind).toBe('parent');
    expect(s.text).toBe(section.text);
    expect(s.sectionPath).toEqual(['Storage', 'Durability']);
    expect(
      w.dropped
        .filter((d) => d.reason === 'merged-into-parent')
        .map((d) => d.chunkId)
        .sort(),
    ).toEqual([c0!.id, c2!.id].sort());
    // Parent text is attributed to the section's own chunks, each segment inside its chunk (only the
    // whitespace between two chunks belongs to none).
    for (const seg of s.segments) {
      const chunk = corpus.chunks.get(seg.chunkId)!;
      const inside = seg.docStart >= chunk.start && seg.docStart + seg.length <= chunk.end;
      expect(inside || /^\s+$/.test(s.text.slice(seg.textStart, seg.textStart + seg.length))).toBe(true);
    }
    expect(new Set(s.segments.map((g) => g.chunkId)).size).toBeGreaterThanOrEqual(3);

    // Below the configured threshold the children stay chunks.
    const strict = assemble('durability of ingest', hits, { parentExpansion: { minChildren: 3 } });
    expect(strict.sources.every((x) => x.kind === 'chunk')).toBe(true);
    expect(strict.sources).toHaveLength(2);
  });

  it('keeps the children when the parent does not fit', () => {
    const [c0, c1] = chunksOf('storage', 'Durability');
    const hits = [corpus.hit(c0!.id, 0.9), corpus.hit(c1!.id, 0.8)];
    const roomy = assemble('durability', hits, { compression: 'off' });
    const parentTokens = roomy.sources[0]!.tokens;
    const childCost = assemble('durability', hits, {
      compression: 'off',
      parentExpansion: { enabled: false },
    });
    const sumChildren = childCost.tokens;
    expect(sumChildren).toBeLessThan(parentTokens);
    const window = roomy.budget.promptOverhead + roomy.budget.reservedOutput + sumChildren + 2;
    const w = assemble('durability', hits, { compression: 'off', window });
    expect(w.budget.available).toBeLessThan(parentTokens);
    expect(w.sources.map((s) => s.kind)).toEqual(['chunk']);
    expect(w.sources[0]!.chunkIds).toEqual([c0!.id, c1!.id]);
  });

  it('compresses a source that does not fit to the sentences that match the query', () => {
    const [, , c2, c3] = chunksOf('storage', 'Durability');
    const hits = [corpus.hit(c2!.id, 0.9), corpus.hit(c3!.id, 0.8)];
    const question = 'does the storage layer need manual care?';
    const opts = { parentExpansion: { enabled: false } };
    const roomy = assemble(question, hits, opts);
    const full = roomy.sources[0]!;
    expect(full.text).toBe(docText('storage').slice(c2!.start, c3!.end));
    const window = roomy.budget.promptOverhead + roomy.budget.reservedOutput + Math.floor(full.tokens * 0.75);
    const w = assemble(question, hits, { ...opts, window });
    expect(w.sources).toHaveLength(1);
    const s = w.sources[0]!;
    expect(s.text).toContain('Nothing else in the storage layer needs manual care.');
    expect(s.text).not.toContain('The write-ahead log keeps readers going');
    expect(w.compressedSentences).toBeGreaterThan(0);
    expect(s.tokens).toBeLessThan(full.tokens);

    // With compression off the same budget trims at a sentence boundary instead: the opening survives.
    const off = assemble(question, hits, { ...opts, window, compression: 'off' });
    const t = off.sources[0]!.text;
    expect(t.startsWith('The write-ahead log keeps readers going')).toBe(true);
    expect(t).not.toContain('Nothing else');
    expect(t.endsWith('.')).toBe(true);
    expect(off.compressedSentences).toBe(0);
  });

  it("a parent that fits only compressed is used under 'always' and left for its children under 'auto'", () => {
    const durability = chunksOf('storage', 'Durability');
    const hits = durability.map((c, i) => corpus.hit(c.id, 1 - i / 10));
    const question = 'what does the write-ahead log do for readers?';
    const roomy = assemble(question, hits, { compression: 'off' });
    const parent = roomy.sources[0]!;
    expect(parent.kind).toBe('parent');
    const window =
      roomy.budget.promptOverhead + roomy.budget.reservedOutput + Math.floor(parent.tokens * 0.8);
    const always = assemble(question, hits, { window, compression: 'always' });
    expect(always.sources[0]!.kind).toBe('parent');
    expect(always.sources[0]!.text).toContain(
      'The write-ahead log keeps readers going while a batch commits.',
    );
    expect(always.sources[0]!.text).not.toContain('Every ingest batch');
    expect(always.compressedSentences).toBeGreaterThan(0);
    const auto = assemble(question, hits, { window, compression: 'auto' });
    expect(auto.sources.every((s) => s.kind === 'chunk')).toBe(true);
  });

  it("'always' compresses even sources that would fit; 'auto' leaves them whole", () => {
    const kneadAndRise = chunksOf('cooking', 'Dough')[1]!;
    expect(kneadAndRise.text).toBe(
      'Knead it for ten minutes until it is smooth. Let it rise for an hour in a warm place.',
    );
    const question = 'where should it rise?';
    const opts = { parentExpansion: { enabled: false } };
    const auto = assemble(question, [corpus.hit(kneadAndRise.id)], opts);
    expect(auto.sources[0]!.text).toBe(kneadAndRise.text);
    expect(auto.compressedSentences).toBe(0);
    // The sentence before a strong hit is kept when cheap…
    const always = assemble(question, [corpus.hit(kneadAndRise.id)], { ...opts, compression: 'always' });
    expect(always.sources[0]!.text).toBe(kneadAndRise.text);
    // …and dropped when neighbours are not allowed to cost anything.
    const strict = assemble(question, [corpus.hit(kneadAndRise.id)], {
      ...opts,
      compression: 'always',
      compressionTuning: { neighbourMaxTokens: 0 },
    });
    expect(strict.sources[0]!.text).toBe('Let it rise for an hour in a warm place.');
    expect(strict.compressedSentences).toBe(1);
    expect(strict.sources[0]!.segments).toEqual([
      {
        textStart: 0,
        docStart: kneadAndRise.start + 45,
        length: 40,
        chunkId: kneadAndRise.id,
        chunkStart: kneadAndRise.start,
      },
    ]);
  });

  it('drops what cannot fit and records why', () => {
    const hits = [...corpus.chunks.values()].map((c, i) => corpus.hit(c.id, 1 - i / 100));
    const probe = assemble('bm25 parameters', hits.slice(0, 1), { parentExpansion: { enabled: false } });
    const window = probe.budget.promptOverhead + probe.budget.reservedOutput + 60;
    const w = assemble('bm25 parameters', hits, { window, parentExpansion: { enabled: false } });
    expect(w.tokens).toBeLessThanOrEqual(60);
    expect(w.dropped.some((d) => d.reason === 'budget')).toBe(true);
    const represented = new Set([
      ...w.sources.flatMap((s) => s.chunkIds),
      ...w.dropped.map((d) => d.chunkId),
    ]);
    for (const h of hits) expect(represented.has(h.chunk.id)).toBe(true);

    const capped = assemble('bm25 parameters', hits, { maxSources: 2, parentExpansion: { enabled: false } });
    expect(capped.sources).toHaveLength(2);
    expect(capped.dropped.some((d) => d.reason === 'max-sources')).toBe(true);
  });

  it('orders by relevance, by document in text order, or strongest at both edges', () => {
    const picks = [
      chunksOf('retrieval', 'Hybrid')[0]!,
      chunksOf('storage', 'Layout')[0]!,
      chunksOf('retrieval', 'BM25')[0]!,
      chunksOf('cooking')[0]!,
      chunksOf('storage', 'Durability')[0]!,
    ];
    const hits = picks.map((c, i) => corpus.hit(c.id, 1 - i / 10));
    const opts = { parentExpansion: { enabled: false }, compression: 'off' as const };
    const ids = (w: ReturnType<typeof assemble>) => w.sources.map((s) => s.chunkIds[0]);
    const byRel = assemble('q', hits, { ...opts, ordering: 'relevance' });
    expect(ids(byRel)).toEqual(picks.map((c) => c.id));
    expect(byRel.sources.map((s) => s.n)).toEqual([1, 2, 3, 4, 5]);

    const edges = assemble('q', hits, { ...opts, ordering: 'edges' });
    expect(ids(edges)).toEqual([picks[0], picks[2], picks[4], picks[3], picks[1]].map((c) => c!.id));
    expect(edges.sources.map((s) => s.n)).toEqual([1, 2, 3, 4, 5]);

    const byDoc = assemble('q', hits, { ...opts, ordering: 'document' });
    const retrievalBm25 = picks[2]!;
    expect(ids(byDoc)).toEqual([retrievalBm25, picks[0], picks[4], picks[1], picks[3]].map((c) => c!.id));
  });

  it('fails clearly when the prompt alone does not fit, and rejects invalid configuration', () => {
    const long = 'why '.repeat(3000);
    const e = quarryError(() =>
      assembleContext(long, [], { window: 2048, reservedOutput: 512 }, corpus.deps),
    );
    expect(e.code).toBe('CONTEXT_BUDGET');
    expect(e.details.promptOverhead).toBeGreaterThan(1536);
    expect(
      quarryError(() => assembleContext('q', [], { window: 100, reservedOutput: 100 }, corpus.deps)).code,
    ).toBe('CONTEXT_BUDGET');
    const bad = quarryError(() =>
      assembleContext('q', [], { ordering: 'random' as unknown as 'edges' }, corpus.deps),
    );
    expect(bad.code).toBe('INVALID_CONFIG');
    expect(bad.message).toContain('ordering');
  });

  it('an empty hit list gives an empty window that still carries its budget', () => {
    const w = assemble('anything', []);
    expect(w.sources).toEqual([]);
    expect(w.tokens).toBe(0);
    expect(w.budget.available).toBe(4096 - 512 - w.budget.promptOverhead);
    expect(w.today).toBe(TODAY);
  });

  it('counts each distinct text once per assembly (fitting measures a source, then builds it)', () => {
    const counted = new Map<string, number>();
    const deps = {
      ...corpus.deps,
      countTokens: (t: string) => {
        counted.set(t, (counted.get(t) ?? 0) + 1);
        return corpus.deps.countTokens(t);
      },
    };
    const hits = [...chunksOf('storage'), ...chunksOf('retrieval')].map((c, i) =>
      corpus.hit(c.id, 1 - i / 20),
    );
    const options = { today: TODAY, window: 4096, reservedOutput: 512 };
    const w = assembleContext('how does ingest stay durable', hits, options, deps);
    expect(w.sources.length).toBeGreaterThan(1);
    expect(Math.max(...counted.values())).toBe(1);
    // Same window as with the caller's counter used directly.
    expect(assembleContext('how does ingest stay durable', hits, options, corpus.deps)).toEqual(w);
  });

  it('config defaults are the documented ones', () => {
    expect(ContextConfigSchema.parse({})).toMatchObject({
      window: 8192,
      reservedOutput: 1024,
      ordering: 'relevance',
      compression: 'auto',
      parentExpansion: { enabled: true, minChildren: 2 },
    });
  });
});

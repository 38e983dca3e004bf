import { describe, expect, it } from 'vitest';
import { createAnalyzer } from '../../src/indexes/lexical/analyzer.js';
import {
  classifyIntent,
  correctTypos,
  editDistance,
  extractEntities,
  normalizeQuery,
  understandQuery,
  type Vocabulary,
} from '../../src/query/understand.js';

function vocab(dfs: Record<string, number>): Vocabulary {
  return {
    df: (t) => dfs[t] ?? 0,
    termsOfLength: (n) => Object.keys(dfs).filter((t) => t.length === n),
  };
}

describe('normalizeQuery', () => {
  it('applies NFKC, drops control characters and collapses whitespace', () => {
    expect(normalizeQuery('  ｑｕａｒｒｙ\u200b  ﬁle\t\nsize ')).toBe('quarry file size');
  });
});

describe('extractEntities', () => {
  it('finds quoted phrases, error codes, versions, identifiers and paths', () => {
    const e = extractEntities(
      'Why does "parent section" fail with ERR_CONNECTION_RESET and E1234 after v2.3.1 on ABC-42 in src/ingest/chunker.ts?',
    );
    expect(e).toEqual([
      { kind: 'quoted', text: 'parent section', exact: true },
      { kind: 'error-code', text: 'ERR_CONNECTION_RESET', exact: true },
      { kind: 'error-code', text: 'E1234', exact: false },
      { kind: 'version', text: 'v2.3.1', exact: false },
      { kind: 'identifier', text: 'ABC-42', exact: false },
      { kind: 'path', text: 'src/ingest/chunker.ts', exact: true },
    ]);
  });

  it('finds nothing in a plain question, and decimals are not versions', () => {
    expect(extractEntities('what is the default chunk size')).toEqual([]);
    expect(extractEntities('2.5 mg of vitamin D lowers risk by 0.3 in type-2 diabetes')).toEqual([]);
    expect(extractEntities('upgrade from 1.2.3 to v2.0')).toEqual([
      { kind: 'version', text: '1.2.3', exact: false },
      { kind: 'version', text: 'v2.0', exact: false },
    ]);
    // Gene and residue names look like ids; they are extracted but not routed to verbatim matching.
    expect(extractEntities('PD-1 triggering reduces IL-10 at K164').every((x) => !x.exact)).toBe(true);
  });
});

describe('classifyIntent', () => {
  it.each([
    ['how do I delete a document by source path', 'procedural'],
    ['ingest fails with INVALID_UTF8', 'troubleshooting'],
    ['what is the default chunk size?', 'factual'],
    ['BM25 versus dense retrieval for code search', 'comparison'],
    ['where is the storage documentation', 'navigational'],
    ['retrieval augmented generation overview', 'exploratory'],
  ])('%s → %s', (q, intent) => {
    expect(classifyIntent(q, extractEntities(q)).intent).toBe(intent);
  });

  it('gives troubleshooting more BM25 weight than exploratory queries', () => {
    const t = classifyIntent('ERR_SSL_PROTOCOL_ERROR', extractEntities('ERR_SSL_PROTOCOL_ERROR'));
    const x = classifyIntent('ideas about search quality');
    expect(t.weights.bm25).toBeGreaterThan(x.weights.bm25);
    expect(x.k).toBeGreaterThan(t.k);
  });
});

describe('typo correction', () => {
  it('computes optimal-string-alignment distance with an early exit', () => {
    expect(editDistance('retriev', 'retreiv', 2)).toBe(1); // adjacent transposition
    expect(editDistance('kitten', 'sitting', 5)).toBe(3);
    expect(editDistance('abc', 'abcdefgh', 2)).toBe(3);
  });

  it('replaces unknown terms with the most frequent close indexed term, and leaves known ones', () => {
    const v = vocab({ retriev: 50, retri: 1, chunk: 80, chuck: 2, token: 30 });
    const { terms, corrections } = correctTypos(['retreiv', 'chunk', 'tokne', 'zzzzzz', 'ab', 'v2'], v);
    expect(terms).toEqual(['retriev', 'chunk', 'token', 'zzzzzz', 'ab', 'v2']);
    expect(corrections).toEqual([
      { from: 'retreiv', to: 'retriev', distance: 1 },
      { from: 'tokne', to: 'token', distance: 1 },
    ]);
  });

  it('runs every step through understandQuery, each switchable', () => {
    const a = createAnalyzer();
    const v = vocab({ default: 10, chunk: 20, size: 5 });
    const plan = understandQuery('What is the default chunck size?', {
      analyze: (t) => a.analyze(t),
      vocabulary: v,
    });
    expect(plan.terms).toEqual(['what', 'default', 'chunk', 'size']); // 'what' is not a Lucene stop-word
    expect(plan.corrections).toEqual([{ from: 'chunck', to: 'chunk', distance: 1 }]);
    expect(plan.intent?.intent).toBe('factual');
    const off = understandQuery(
      'What is the default chunck size?',
      { analyze: (t) => a.analyze(t), vocabulary: v },
      { typos: false, intent: false },
    );
    expect(off.terms).toEqual(['what', 'default', 'chunck', 'size']);
    expect(off.intent).toBeNull();
  });
});

describe('deletion index', () => {
  it('finds every vocabulary term one edit away that a full scan finds', async () => {
    const { DeletionIndex } = await import('../../src/indexes/lexical/deletion-index.js');
    const terms = [
      'retriev',
      'retri',
      'chunk',
      'chuck',
      'token',
      'tokens',
      'stem',
      'stemmer',
      'overlap',
      'overlay',
      'budget',
    ];
    const idx = new DeletionIndex(terms);
    for (const q of ['retreiv', 'chnk', 'tokne', 'stemer', 'ovrlap', 'budgte', 'xyzzy', 'overlaps']) {
      const scan = terms.filter((t) => editDistance(q, t, 1) <= 1).sort();
      const found = [...new Set(idx.candidates(q, 1))].filter((t) => editDistance(q, t, 1) <= 1).sort();
      expect(found, q).toEqual(scan);
    }
  });
});

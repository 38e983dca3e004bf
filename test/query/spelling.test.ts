import { describe, expect, it } from 'vitest';
import { createAnalyzer } from '../../src/indexes/lexical/analyzer.js';
import { englishWords, englishWordsLoads } from '../../src/query/dictionary.js';
import { extractEntities, understandQuery, type Vocabulary } from '../../src/query/understand.js';

const analyzer = createAnalyzer();
const analyze = (t: string): string[] => analyzer.analyze(t);

/** A vocabulary of analyzed terms built from real text, as the index would hold it. */
function vocabOf(text: string): Vocabulary {
  const df = new Map<string, number>();
  for (const t of analyze(text)) df.set(t, (df.get(t) ?? 0) + 1);
  return {
    df: (t) => df.get(t) ?? 0,
    termsOfLength: (n) => [...df.keys()].filter((t) => t.length === n),
  };
}

const CORPUS = vocabOf(
  'printer professor inject default chunk chunks size retrieval printers settings tray paper the what is how cant wouldnt',
);

describe('typo correction consults the English dictionary', () => {
  it('leaves valid English words alone even when the corpus lacks them', () => {
    for (const [query, word] of [
      ['null pointer exception', 'pointer'],
      ['which processor is fastest', 'processor'],
      ['insect bite treatment', 'insect'],
      ["why can't the wing stall", 'stall'],
      ["it wouldn't print", 'print'],
    ] as const) {
      const plan = understandQuery(query, { analyze, vocabulary: CORPUS });
      expect(plan.corrections, query).toEqual([]);
      expect(plan.rewrite, query).toBeUndefined();
      expect(plan.terms, query).toContain(analyze(word)[0]);
    }
  });

  it('corrects words unknown to both, and says so in the words the user wrote', () => {
    const plan = understandQuery('What is the defualt chunck size?', { analyze, vocabulary: CORPUS });
    expect(plan.terms).toEqual(['what', 'default', 'chunk', 'size']);
    expect(plan.rewrite).toEqual({
      original: 'What is the defualt chunck size?',
      searched: 'What is the default chunk size?',
      corrections: [
        { from: 'defualt', to: 'default' },
        { from: 'chunck', to: 'chunk' },
      ],
    });
    // A stemmed correction is shown as a dictionary word, not as the stem ("retriev").
    const r = understandQuery('Retreival quality', { analyze, vocabulary: CORPUS });
    expect(r.rewrite?.corrections).toEqual([{ from: 'Retreival', to: 'retrieval' }]);
    expect(r.rewrite?.searched).toBe('retrieval quality');
  });

  it('never corrects a quoted word, and can be switched off per call', () => {
    const quoted = understandQuery('the "chunck" setting', { analyze, vocabulary: CORPUS });
    expect(quoted.corrections).toEqual([]);
    const off = understandQuery('defualt size', { analyze, vocabulary: CORPUS }, { typos: false });
    expect(off.rewrite).toBeUndefined();
    expect(off.terms).toEqual(['defualt', 'size']);
  });

  it('fetches the dictionary only when a term is unknown to the corpus', () => {
    let fetched = 0;
    const dictionary = () => {
      fetched++;
      return englishWords();
    };
    understandQuery('default chunk size 42 ab', { analyze, vocabulary: CORPUS, dictionary });
    expect(fetched).toBe(0);
    understandQuery('defualt chunk size', { analyze, vocabulary: CORPUS, dictionary });
    expect(fetched).toBe(1);
    // The list itself is parsed once per process, however often it is asked for.
    englishWords();
    englishWords();
    expect(englishWordsLoads()).toBe(1);
    expect(englishWords().has('pointer')).toBe(true);
    expect(englishWords().has('defualt')).toBe(false);
  });
});

describe('quoted words', () => {
  it('keeps verbatim matching for phrases, codes and identifiers, and boosts a quoted plain word', () => {
    const e = extractEntities(
      'What does it mean when "float" and "getUserById" or "TGIF" and "x_y" and "signing key rotation" appear?',
    );
    expect(e).toEqual([
      { kind: 'quoted', text: 'float', exact: false, boost: 2 },
      { kind: 'quoted', text: 'getUserById', exact: true },
      { kind: 'quoted', text: 'TGIF', exact: true },
      { kind: 'quoted', text: 'x_y', exact: true },
      { kind: 'quoted', text: 'signing key rotation', exact: true },
    ]);
    const plan = understandQuery('what happens to currencies left to "float"?', { analyze });
    expect(plan.terms).toEqual(['what', 'happen', 'currenc', 'left', 'float']);
    expect(plan.weights).toEqual([1, 1, 1, 1, 2]);
    expect(understandQuery('what happens to currencies', { analyze }).weights).toBeUndefined();
  });
});

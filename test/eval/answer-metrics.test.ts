/**
 * Answer metrics against hand-computed values: SQuAD normalisation (case, punctuation, articles, spaces),
 * exact match and token F1 (max over gold answers), citation precision/recall, and the relevance scorer's
 * answer-type and new-content rules.
 */
import { describe, expect, it } from 'vitest';
import {
  answerProse,
  citationScore,
  exactMatch,
  normalizeSquad,
  tokenF1,
} from '../../src/eval/answer-metrics.js';
import { answerRelevance, expectedAnswerType, hasAnswerType } from '../../src/validate/relevance.js';

describe('SQuAD normalisation, exact match and token F1', () => {
  it('lower-cases, strips punctuation and the articles a/an/the, collapses whitespace', () => {
    expect(normalizeSquad('  The  Eiffel-Tower, in PARIS! ')).toBe('eiffeltower in paris');
    expect(normalizeSquad('An apple a day')).toBe('apple day');
    // Articles only as whole words: "theatre" and "Anna" keep their letters.
    expect(normalizeSquad('the theatre of Anna')).toBe('theatre of anna');
    expect(normalizeSquad('“Paris”')).toBe('paris');
  });

  it('exact match ignores case, punctuation and articles, and takes any gold answer', () => {
    expect(exactMatch('The Denver Broncos.', ['Denver Broncos'])).toBe(1);
    expect(exactMatch('Denver', ['Denver Broncos', 'Broncos'])).toBe(0);
    expect(exactMatch('broncos', ['Denver Broncos', 'the Broncos'])).toBe(1);
  });

  it('token F1 is the multiset overlap, maximum over gold answers', () => {
    // pred {denver, broncos, won}, gold {denver, broncos}: P 2/3, R 1, F1 0.8.
    expect(tokenF1('Denver Broncos won', ['Denver Broncos'])).toBeCloseTo(0.8, 10);
    // Best of two golds: vs "Broncos" P 1/3 R 1 → 0.5; vs "the Denver Broncos" → 0.8.
    expect(tokenF1('Denver Broncos won', ['Broncos', 'the Denver Broncos'])).toBeCloseTo(0.8, 10);
    // Repeated tokens count once per occurrence in gold: pred {a1 a1 b}, gold {a1 b}: common 2, P 2/3, R 1.
    expect(tokenF1('x x y', ['x y'])).toBeCloseTo(0.8, 10);
    expect(tokenF1('nothing shared', ['other words'])).toBe(0);
    // Only articles on both sides normalise to empty: equal empties count as a match, as in SQuAD.
    expect(tokenF1('the', ['a'])).toBe(1);
    expect(tokenF1('the', ['Paris'])).toBe(0);
    expect(tokenF1('anything', [])).toBe(0);
  });

  it('answer prose drops citation markers before comparing', () => {
    expect(answerProse('Paris is the capital [1]. It is big [2, 3].')).toBe(
      'Paris is the capital. It is big.',
    );
    expect(exactMatch(answerProse('Paris [1]'), ['paris'])).toBe(1);
  });
});

describe('citation precision and recall', () => {
  it('counts distinct documents', () => {
    expect(citationScore(['a', 'b', 'b'], ['a', 'c'])).toEqual({ precision: 0.5, recall: 0.5 });
    expect(citationScore(['a'], ['a', 'b', 'c', 'd'])).toEqual({ precision: 1, recall: 0.25 });
    expect(citationScore([], ['a'])).toEqual({ precision: undefined, recall: 0 });
    expect(citationScore(['a'], [])).toEqual({ precision: 0, recall: undefined });
  });
});

describe('answer relevance', () => {
  const deps = {
    analyze: (t: string) =>
      t
        .toLowerCase()
        .split(/[^a-z0-9]+/)
        .filter((w) => w.length > 0 && !['the', 'a', 'of', 'in', 'is', 'was'].includes(w)),
    idf: () => 1,
  };

  it('reads the kind of answer a wh-question asks for', () => {
    expect(expectedAnswerType('When did the oil crisis begin?')).toBe('time');
    expect(expectedAnswerType('In what year was it founded?')).toBe('time');
    expect(expectedAnswerType('How many lineages are there?')).toBe('quantity');
    expect(expectedAnswerType('How long ago did it happen?')).toBe('time');
    expect(expectedAnswerType('Who wrote Hamlet?')).toBe('person');
    expect(expectedAnswerType('Where is the ferry terminal?')).toBe('place');
    expect(expectedAnswerType('What does the chunker do?')).toBeNull();
  });

  it('a type counts only when the answer adds it: a number the question already has does not', () => {
    expect(
      hasAnswerType('The crisis began in October 1973.', 'time', 'When did the 1973 crisis begin?'),
    ).toBe(true);
    expect(hasAnswerType('The 1973 crisis changed policy.', 'time', 'When did the 1973 crisis begin?')).toBe(
      false,
    );
    expect(hasAnswerType('There are many lineages.', 'quantity', 'How many lineages are there?')).toBe(false);
    expect(hasAnswerType('There are three lineages.', 'quantity', 'How many lineages are there?')).toBe(true);
    expect(hasAnswerType('Hamlet was written by Shakespeare.', 'person', 'Who wrote Hamlet?')).toBe(true);
  });

  it('score = coverage × type factor × new-content factor (hand-computed)', () => {
    // Question terms without wh-words: {ferry, leave} (idf 1 each).
    const q = 'When does the ferry leave?';
    const good = answerRelevance(q, 'The ferry leave schedule starts at 07:00 daily.', deps);
    expect(good).toMatchObject({ coverage: 1, expectedType: 'time', typeMatch: true, novel: true, score: 1 });
    // On topic, no time in it: coverage 1 × 0.5.
    expect(answerRelevance(q, 'The ferry leave policy is strict.', deps).score).toBe(0.5);
    // Only half the question's terms, and a time: 0.5.
    expect(answerRelevance(q, 'The ferry departs at 07:00.', deps).score).toBe(0.5);
    // Restating the question: no time (0.5) and nothing new (0.5).
    expect(answerRelevance(q, 'The ferry does leave.', deps).score).toBe(0.25);
  });
});

/**
 * Answer relevance: does an answer address the question, not merely repeat text about its topic? Support
 * scoring checks an answer against its sources; this checks it against the question, with two rule-based
 * signals: how much of the question's (idf-weighted) content the answer speaks about, and whether it holds
 * the kind of thing a wh-question asks for (a time for "when", a quantity for "how many", a name for "who"
 * or "where") that the question itself did not already contain. The extractive answerer folds it into its
 * confidence; `quarry eval` reports it as `answer_relevance`.
 */
import { tokenize } from '../indexes/lexical/analyzer.js';
import { extractFacts } from './support.js';

export interface RelevanceDeps {
  analyze(text: string): string[];
  idf(term: string): number;
}

/** What a wh-question asks for; null when its wording does not say (what, which, why, how…). */
export type AnswerType = 'time' | 'quantity' | 'person' | 'place';

const TIME_Q =
  /\b(?:when|what (?:year|years|century|decade|date|day|month|time|period|era|season)|which (?:year|century|decade|date|day|month)|in what (?:year|century|decade)|how long ago|since when)\b/i;
const QUANTITY_Q =
  /\b(?:how (?:many|much|long|far|old|big|large|tall|high|wide|deep|heavy|often|fast)|what (?:percentage|percent|proportion|share|number|amount|fraction|size|population|length|distance|speed|rate|temperature|cost|price))\b/i;
const PERSON_Q = /^(?:\W*)(?:who|whom|whose)\b|\b(?:who|whom|whose) (?:was|is|were|are|did|does|had|has)\b/i;
const PLACE_Q =
  /\bwhere\b|\b(?:in|to|from) (?:what|which) (?:country|city|state|region|town|place|continent)\b/i;

/** The kind of answer the question's wording asks for (quantity before time: "how long ago" is time). */
export function expectedAnswerType(question: string): AnswerType | null {
  if (/\bhow long ago\b/i.test(question)) return 'time';
  if (QUANTITY_Q.test(question)) return 'quantity';
  if (TIME_Q.test(question)) return 'time';
  if (PERSON_Q.test(question)) return 'person';
  if (PLACE_Q.test(question)) return 'place';
  return null;
}

const YEAR = /\b(?:1\d{3}|20\d{2})s?\b|\b\d{1,2}(?:st|nd|rd|th) century\b|\b(?:BC|BCE|AD|CE)\b/g;
const TIME_WORDS =
  /^(?:century|centuries|decade|decades|year|years|month|months|week|weeks|day|days|today|yesterday|ago|monday|tuesday|wednesday|thursday|friday|saturday|sunday|spring|summer|autumn|fall|winter|morning|evening|night|dynasty|era|period|age|war|reign)$/i;
// Words that state an amount; vague ones ("many", "most") do not answer "how many".
const NUMBER_WORDS = new Set(
  'one two three four five six seven eight nine ten eleven twelve dozen dozens hundred hundreds thousand thousands million millions billion billions half quarter single double twice once percent'.split(
    ' ',
  ),
);

/** Capitalised words (not sentence-initial) that the question does not contain: candidate names. */
function newNames(text: string, questionWords: ReadonlySet<string>): boolean {
  const words = tokenize(text);
  return words.some(
    (w, i) => i > 0 && /^\p{Lu}/u.test(w) && !questionWords.has(w.toLowerCase()) && w.length > 1,
  );
}

/** Does `text` hold an answer of `type` that is not already in the question? */
export function hasAnswerType(text: string, type: AnswerType, question: string): boolean {
  const q = extractFacts(question);
  const a = extractFacts(text);
  const newNumber = [...a.numbers].some((n) => !q.numbers.has(n));
  const newMonth = [...a.months].some((m) => !q.months.has(m));
  const questionWords = new Set(tokenize(question).map((w) => w.toLowerCase()));
  const newWords = tokenize(text)
    .map((w) => w.toLowerCase())
    .filter((w) => !questionWords.has(w));
  switch (type) {
    case 'time':
      return (
        newNumber ||
        newMonth ||
        [...text.matchAll(YEAR)].some((m) => !question.includes(m[0])) ||
        newWords.some((w) => TIME_WORDS.test(w))
      );
    case 'quantity':
      return newNumber || newWords.some((w) => NUMBER_WORDS.has(w));
    case 'person':
    case 'place':
      return newNames(text, questionWords);
  }
}

// Question words and auxiliaries: they say what kind of question it is, not what it is about.
const QUESTION_WORDS = new Set(
  'what which who whom whose when where why how many much did does do done was were is are am be been being has have had can could would should will shall may might must name kind type'.split(
    ' ',
  ),
);

export interface Relevance {
  /** 0–1: coverage × (1 when the expected type is present or none is expected, else TYPE_MISS_FACTOR) × (1 when the answer says something the question did not, else NO_NEW_CONTENT_FACTOR). */
  score: number;
  /** Idf-weighted share of the question's content terms found in the answer. */
  coverage: number;
  expectedType: AnswerType | null;
  /** The expected type is present (true when none is expected). */
  typeMatch: boolean;
  /** The answer has content terms or numbers the question does not. */
  novel: boolean;
}

/** Relevance is halved when a wh-question's expected kind of answer is missing. */
export const TYPE_MISS_FACTOR = 0.5;
/** …and halved when the answer only restates the question's own terms. */
export const NO_NEW_CONTENT_FACTOR = 0.5;

/** The content terms of a question that carry its topic (wh-words and auxiliaries removed). */
export function questionTerms(question: string, deps: RelevanceDeps): string[] {
  const skip = new Set(deps.analyze([...QUESTION_WORDS].join(' ')));
  return [...new Set(deps.analyze(question))].filter((t) => !skip.has(t));
}

/** How well `answer` addresses `question` (see {@link Relevance}). */
export function answerRelevance(question: string, answer: string, deps: RelevanceDeps): Relevance {
  const terms = questionTerms(question, deps);
  const answerTerms = new Set(deps.analyze(answer));
  let total = 0;
  let found = 0;
  for (const t of terms) {
    const w = Math.max(deps.idf(t), 0.05);
    total += w;
    if (answerTerms.has(t)) found += w;
  }
  const coverage = total === 0 ? 0 : found / total;
  const expectedType = expectedAnswerType(question);
  const typeMatch = expectedType === null || hasAnswerType(answer, expectedType, question);
  const questionSet = new Set(deps.analyze(question));
  const qFacts = extractFacts(question);
  const novel =
    [...answerTerms].some((t) => !questionSet.has(t)) ||
    [...extractFacts(answer).numbers].some((n) => !qFacts.numbers.has(n));
  const score = coverage * (typeMatch ? 1 : TYPE_MISS_FACTOR) * (novel ? 1 : NO_NEW_CONTENT_FACTOR);
  return { score: Math.round(score * 1000) / 1000, coverage, expectedType, typeMatch, novel };
}

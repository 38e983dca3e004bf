/**
 * Support scoring for answer validation: how well the sources a sentence cites back up what it says. Lexical
 * overlap finds the passage a claim rests on; the facts a paraphrase cannot change (numbers, dates, negations)
 * must then agree exactly, because that is where fluent but wrong answers usually go wrong.
 */
import type { ContextSource, SourceSegment } from '../assemble/types.js';
import { splitSentences } from '../generate/extractive.js';
import { tokenize } from '../indexes/lexical/analyzer.js';

export interface SupportDeps {
  /** The index's analysis chain: text → normalized content terms (stop-words dropped, stemmed). */
  analyze(text: string): string[];
  /** Inverse document frequency of an analyzed term (rare terms carry a claim). */
  idf(term: string): number;
}

export interface SupportOptions {
  /** Consecutive source sentences a claim may draw on (a fact and its qualifier often sit side by side). */
  windowSentences: number;
}

/** Support of a claim whose number, date or negation disagrees with its source is multiplied by this. */
export const CRITICAL_MISMATCH_FACTOR = 0.3;
/** Floor on term weights so that very common terms still count for something. */
const MIN_WEIGHT = 0.05;
/** Windows this close to the best coverage count as the passage a claim is about. */
const COVERAGE_SLACK = 0.15;
/** Share of a negated source clause's terms a claim must repeat (without negating) to contradict it. */
const POLARITY_OVERLAP = 0.6;

export interface ClaimFacts {
  text: string;
  /** Distinct content terms with their weights (idf). */
  weights: Map<string, number>;
  totalWeight: number;
  /** Normalized numbers (`1,000` → `1000`, `03` → `3`). */
  numbers: Set<string>;
  /** Months named or written in dates (1–12). */
  months: Set<number>;
  negated: boolean;
  /** Content terms of each negated clause of the claim. */
  negatedClauses: string[][];
}

export interface SourceSentence {
  /** Offsets in the source's `text` (end exclusive); never across a " … " join. */
  start: number;
  end: number;
  text: string;
  /** The segment it lies in, which maps it to document offsets; undefined if the source has no segments. */
  segment: SourceSegment | undefined;
  terms: Set<string>;
  numbers: Set<string>;
  months: Set<number>;
  /** Content terms of each negated clause. */
  negatedClauses: string[][];
}

export interface PreparedSource {
  source: ContextSource;
  sentences: SourceSentence[];
}

export type MismatchKind = 'number' | 'date' | 'negation' | 'polarity';

export interface Mismatch {
  kind: MismatchKind;
  /** The claim's number or month, or the terms of the negated clause (the claim's, or the source's). */
  value: string;
}

export interface SourceMatch {
  source: PreparedSource;
  /** Sentence range [from, to) of the best window. */
  from: number;
  to: number;
  /** Idf-weighted share of the claim's terms found in the window. */
  coverage: number;
  /** The window sentence that supports the claim best: the citation's quote. */
  quote: SourceSentence | undefined;
}

export interface SupportResult {
  /** 0–1: coverage, times CRITICAL_MISMATCH_FACTOR when anything critical disagrees. */
  support: number;
  coverage: number;
  matched: string[];
  missing: string[];
  mismatches: Mismatch[];
  /** Best window per cited source, in the order given. */
  matches: SourceMatch[];
}

const NEGATIONS = new Set([
  'not',
  'no',
  'never',
  'none',
  'nothing',
  'nobody',
  'neither',
  'nor',
  'without',
  'cannot',
  'nowhere',
]);
const NEGATION_WORDS =
  /\b(?:not|no|never|none|nothing|nobody|neither|nor|without|cannot|nowhere|\w+n['’]t)\b/giu;
const CLAUSE_BREAK = /[,;:()—–]|\b(?:but|while|whereas|although|though|however|unless|except)\b/i;

const MONTHS: Record<string, number> = {
  january: 1,
  february: 2,
  march: 3,
  april: 4,
  may: 5,
  june: 6,
  july: 7,
  august: 8,
  september: 9,
  october: 10,
  november: 11,
  december: 12,
  jan: 1,
  feb: 2,
  mar: 3,
  apr: 4,
  jun: 6,
  jul: 7,
  aug: 8,
  sep: 9,
  sept: 9,
  oct: 10,
  nov: 11,
  dec: 12,
};
// Spelled-out counts are read as numbers; "one" and "half" are not (pronoun, idiom far more often).
const NUMBER_WORDS: Record<string, string> = {
  two: '2',
  three: '3',
  four: '4',
  five: '5',
  six: '6',
  seven: '7',
  eight: '8',
  nine: '9',
  ten: '10',
  eleven: '11',
  twelve: '12',
  twenty: '20',
};
const ISO_DATE = /\b(\d{4})-(\d{1,2})(?:-(\d{1,2}))?\b/g;
const NUMBER = /\d+(?:[.,]\d+)*/g;
// Full month names anywhere; short forms only capitalised; "May" only next to a number (else the verb).
const MONTH_NAME =
  /\b(?:(January|February|March|April|June|July|August|September|October|November|December)|(Jan|Feb|Mar|Apr|Jun|Jul|Aug|Sept?|Oct|Nov|Dec)\.?(?=\s+\d)|(May)(?=\s+\d)|(?<=\d\s+)(May))\b/gi;

function normalizeNumber(raw: string): string[] {
  // `1,000,000` groups thousands; any other comma separates numbers (`1,5` in a list).
  const grouped = /^\d{1,3}(?:,\d{3})+(?:\.\d+)?$/.test(raw) ? raw.replace(/,/g, '') : raw;
  return grouped
    .split(',')
    .filter((p) => p.length > 0)
    .map((p) => (/^\d+(?:\.\d+)?$/.test(p) ? String(Number(p)) : p));
}

/** Numbers and months a text states, dates decomposed so `2024-03-01` and `March 1, 2024` agree. */
export function extractFacts(text: string): { numbers: Set<string>; months: Set<number> } {
  const numbers = new Set<string>();
  const months = new Set<number>();
  const rest = text.replace(ISO_DATE, (_m, y: string, mo: string, d: string | undefined) => {
    const month = Number(mo);
    if (month >= 1 && month <= 12) months.add(month);
    else numbers.add(String(month));
    numbers.add(String(Number(y)));
    if (d !== undefined) numbers.add(String(Number(d)));
    return ' ';
  });
  for (const m of rest.matchAll(MONTH_NAME)) {
    const name = (m[1] ?? m[2] ?? m[3] ?? m[4] ?? '').toLowerCase().replace(/\.$/, '');
    const month = MONTHS[name];
    if (month !== undefined) months.add(month);
  }
  for (const m of rest.matchAll(NUMBER)) for (const n of normalizeNumber(m[0])) numbers.add(n);
  for (const token of tokenize(rest)) {
    const n = NUMBER_WORDS[token.toLowerCase()];
    if (n !== undefined) numbers.add(n);
  }
  return { numbers, months };
}

function isNegation(token: string): boolean {
  const t = token.toLowerCase();
  return NEGATIONS.has(t) || t.endsWith("n't") || t.endsWith('n’t');
}

export function hasNegation(text: string): boolean {
  return tokenize(text).some(isNegation);
}

function weightOf(deps: SupportDeps, term: string): number {
  const w = deps.idf(term);
  return Number.isFinite(w) ? Math.max(w, MIN_WEIGHT) : MIN_WEIGHT;
}

export function analyzeClaim(text: string, deps: SupportDeps): ClaimFacts {
  const weights = new Map<string, number>();
  for (const t of deps.analyze(text)) if (!weights.has(t)) weights.set(t, weightOf(deps, t));
  let totalWeight = 0;
  for (const w of weights.values()) totalWeight += w;
  return {
    text,
    weights,
    totalWeight,
    ...extractFacts(text),
    negated: hasNegation(text),
    negatedClauses: negatedClauses(text, deps),
  };
}

function negatedClauses(text: string, deps: SupportDeps): string[][] {
  const out: string[][] = [];
  for (const clause of text.split(CLAUSE_BREAK)) {
    if (clause === undefined || !hasNegation(clause)) continue;
    const terms = [...new Set(deps.analyze(clause.replace(NEGATION_WORDS, ' ')))];
    if (terms.length > 0) out.push(terms);
  }
  return out;
}

/**
 * Sentences of a source with their terms and facts. Sentences are cut inside each segment so that a quote
 * never spans a " … " join and always maps to one exact document span.
 */
export function prepareSource(source: ContextSource, deps: SupportDeps): PreparedSource {
  const pieces: Array<{ start: number; end: number; segment: SourceSegment | undefined }> =
    source.segments.length > 0
      ? [...source.segments]
          .sort((a, b) => a.textStart - b.textStart)
          .map((s) => ({ start: s.textStart, end: s.textStart + s.length, segment: s }))
      : [{ start: 0, end: source.text.length, segment: undefined }];
  const sentences: SourceSentence[] = [];
  for (const piece of pieces) {
    for (const s of splitSentences(source.text.slice(piece.start, piece.end))) {
      sentences.push({
        start: piece.start + s.start,
        end: piece.start + s.end,
        text: s.text,
        segment: piece.segment,
        terms: new Set(deps.analyze(s.text)),
        ...extractFacts(s.text),
        negatedClauses: negatedClauses(s.text, deps),
      });
    }
  }
  return { source, sentences };
}

function coverageOf(claim: ClaimFacts, has: (t: string) => boolean): number {
  if (claim.totalWeight === 0) return 0;
  let found = 0;
  for (const [t, w] of claim.weights) if (has(t)) found += w;
  return found / claim.totalWeight;
}

/**
 * The window of consecutive sentences of one source that the claim rests on: among the windows sharing
 * nearly the most of its terms (within COVERAGE_SLACK), the one whose numbers, dates and negations agree.
 * A claim is judged by the passage it is about: if that passage contradicts it, a loosely related sentence
 * elsewhere does not rescue it.
 */
export function bestWindow(claim: ClaimFacts, source: PreparedSource, opts: SupportOptions): SourceMatch {
  const sents = source.sentences;
  const single = sents.map((s) => coverageOf(claim, (t) => s.terms.has(t)));
  const windows: Array<{ from: number; to: number; coverage: number }> = [];
  let maxCoverage = 0;
  for (let from = 0; from < sents.length; from++) {
    for (let to = from + 1; to <= Math.min(sents.length, from + opts.windowSentences); to++) {
      const window = sents.slice(from, to);
      const coverage = coverageOf(claim, (t) => window.some((s) => s.terms.has(t)));
      windows.push({ from, to, coverage });
      maxCoverage = Math.max(maxCoverage, coverage);
    }
  }
  let best: SourceMatch = { source, from: 0, to: 0, coverage: 0, quote: undefined };
  let bestScore = -1;
  for (const w of windows) {
    if (w.coverage < maxCoverage - COVERAGE_SLACK) continue;
    const mismatched = mismatchesIn(claim, sents.slice(w.from, w.to)).length > 0;
    const score = w.coverage * (mismatched ? CRITICAL_MISMATCH_FACTOR : 1);
    // Strictly better only: on ties the shorter, earlier window stays.
    if (score > bestScore + 1e-12) {
      let q = w.from;
      for (let k = w.from + 1; k < w.to; k++) if (single[k]! > single[q]!) q = k;
      best = { source, from: w.from, to: w.to, coverage: w.coverage, quote: sents[q] };
      bestScore = score;
    }
  }
  return best;
}

function mismatchesIn(claim: ClaimFacts, window: readonly SourceSentence[]): Mismatch[] {
  const out: Mismatch[] = [];
  for (const n of claim.numbers)
    if (!window.some((s) => s.numbers.has(n))) out.push({ kind: 'number', value: n });
  for (const m of claim.months)
    if (!window.some((s) => s.months.has(m))) out.push({ kind: 'date', value: String(m) });
  // Negated clauses must pair up: one in the claim needs a negated source clause about the same thing, and
  // a negated source clause the claim repeats needs a negation in the claim. "X does not need a server"
  // contradicts "X needs a server" but not "X stores data in SQLite".
  const sameTopic = (a: string[], b: string[]) =>
    a.filter((t) => b.includes(t)).length >= Math.min(2, a.length, b.length);
  for (const clause of claim.negatedClauses)
    if (!window.some((s) => s.negatedClauses.some((n) => sameTopic(clause, n))))
      out.push({ kind: 'negation', value: clause.join(' ') });
  for (const s of window)
    for (const clause of s.negatedClauses) {
      const shared = clause.filter((t) => claim.weights.has(t)).length;
      if (shared < Math.min(2, clause.length) || shared / clause.length < POLARITY_OVERLAP) continue;
      if (!claim.negatedClauses.some((c) => sameTopic(c, clause)))
        out.push({ kind: 'polarity', value: clause.join(' ') });
    }
  return out;
}

/** Support of a claim by the sources it cites, taken together (a sentence may combine two sources). */
export function scoreSupport(
  claim: ClaimFacts,
  sources: readonly PreparedSource[],
  opts: SupportOptions,
): SupportResult {
  const matches = sources.map((s) => bestWindow(claim, s, opts));
  const window = matches.flatMap((m) => m.source.sentences.slice(m.from, m.to));
  const matched: string[] = [];
  const missing: string[] = [];
  for (const t of claim.weights.keys()) (window.some((s) => s.terms.has(t)) ? matched : missing).push(t);
  const coverage = coverageOf(claim, (t) => matched.includes(t));
  const mismatches = window.length === 0 ? [] : mismatchesIn(claim, window);
  const support = mismatches.length > 0 ? coverage * CRITICAL_MISMATCH_FACTOR : coverage;
  return { support, coverage, matched, missing, mismatches, matches };
}

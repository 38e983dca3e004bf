/**
 * Typo correction for query understanding. A query term is corrected only when neither the corpus nor the
 * English dictionary knows it: a valid word that merely does not occur in the corpus ("pointer" in a corpus
 * about printers) is searched as written, a misspelling ("defualt") becomes the most frequent indexed term
 * one edit away. Quoted words are never corrected. Every correction is reported in the words the user wrote
 * ("searched for … instead of …"), so the rewrite is never silent and can be undone (`typos: false`).
 */
import type { QueryRewrite } from '../types.js';
import type { WordList } from './dictionary.js';

export interface TypoCorrection {
  /** Analyzed (stemmed) term of the query. */
  from: string;
  /** Indexed term searched instead. */
  to: string;
  distance: number;
}

/** What typo correction needs from the lexical index. */
export interface Vocabulary {
  /** Document frequency of an analyzed term (0 = unknown). */
  df(term: string): number;
  /** All indexed terms of a given length. */
  termsOfLength(length: number): readonly string[];
  /** Indexed terms that may lie within `maxDistance` edits of `term` (a superset; verified by the caller). */
  candidates?(term: string, maxDistance: number): Iterable<string>;
}

/** How a query was rewritten before searching, in the user's words. */
export type { QueryRewrite };

export interface SpellingDeps {
  analyze(text: string): string[];
  vocabulary: Vocabulary;
  /** The dictionary, fetched only when some term is unknown to the corpus (it is costly to load). */
  dictionary: () => WordList;
}

/** Optimal-string-alignment distance (Levenshtein + adjacent transposition), giving up above `max`. */
export function editDistance(a: string, b: string, max: number): number {
  if (Math.abs(a.length - b.length) > max) return max + 1;
  const n = b.length;
  let prev2 = new Array<number>(n + 1).fill(0);
  let prev = Array.from({ length: n + 1 }, (_, j) => j);
  let cur = new Array<number>(n + 1).fill(0);
  for (let i = 1; i <= a.length; i++) {
    cur[0] = i;
    let rowMin = i;
    for (let j = 1; j <= n; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let v = Math.min(prev[j]! + 1, cur[j - 1]! + 1, prev[j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1])
        v = Math.min(v, prev2[j - 2]! + 1);
      cur[j] = v;
      if (v < rowMin) rowMin = v;
    }
    if (rowMin > max) return max + 1;
    [prev2, prev, cur] = [prev, cur, prev2];
  }
  return prev[n]!;
}

/** Whether a term is one typo correction looks at: long enough, no digits, unknown to the index. */
function correctable(t: string, vocab: Vocabulary): boolean {
  return t.length >= 4 && !/\d/.test(t) && vocab.df(t) === 0;
}

/**
 * Replace analyzed terms the index has never seen with the most frequent indexed term one edit away.
 * Known terms, numbers, very short terms and terms in `keep` are left alone.
 */
export function correctTypos(
  terms: string[],
  vocab: Vocabulary,
  keep: ReadonlySet<string> = new Set(),
): { terms: string[]; corrections: TypoCorrection[] } {
  const corrections: TypoCorrection[] = [];
  const out = terms.map((t) => {
    if (keep.has(t) || !correctable(t, vocab)) return t;
    // One edit (insert, delete, substitute or swap adjacent letters): the deletion index finds every such
    // neighbour exactly; two edits would need the vocabulary's two-letter deletions too (~30 per term).
    const max = 1;
    let best: { term: string; distance: number; df: number } | undefined;
    const consider = (cand: string): void => {
      const d = editDistance(t, cand, max);
      if (d > max || d === 0) return;
      const df = vocab.df(cand);
      // 0: not a word of any document this search may return (see LexicalIndex.vocabulary).
      if (df === 0) return;
      if (best === undefined || d < best.distance || (d === best.distance && df > best.df)) {
        best = { term: cand, distance: d, df };
      }
    };
    if (vocab.candidates !== undefined) {
      for (const cand of vocab.candidates(t, max)) consider(cand);
    } else {
      for (let len = t.length - max; len <= t.length + max; len++)
        for (const cand of vocab.termsOfLength(len)) consider(cand);
    }
    if (best === undefined) return t;
    corrections.push({ from: t, to: best.term, distance: best.distance });
    return best.term;
  });
  return { terms: out, corrections };
}

// Words as the analyzer's tokenizer sees them in Latin-script text (letters, joined across apostrophes).
const WORD = /[\p{L}\p{M}]+(?:['’][\p{L}\p{M}]+)*/gu;

interface SurfaceWord {
  text: string;
  /** Lowercase, possessive stripped: the dictionary form to look up. */
  lookup: string;
  terms: string[];
}

function surfaceWords(text: string, analyze: (t: string) => string[]): SurfaceWord[] {
  return (text.match(WORD) ?? []).map((w) => ({
    text: w,
    lookup: w.toLowerCase().replace(/['’]s$/, ''),
    terms: analyze(w),
  }));
}

/**
 * Whether the dictionary knows a word. Its entries have no apostrophes: a contraction or elision is known
 * when its letters run together ("cant"), its part before the apostrophe ("can't", "o'clock") or its base
 * without "n't" ("wouldn't") is.
 */
function known(word: string, dict: WordList): boolean {
  if (dict.has(word)) return true;
  const apostrophe = word.search(/['’]/);
  if (apostrophe < 0) return false;
  return (
    dict.has(word.replace(/['’]/g, '')) ||
    dict.has(word.slice(0, apostrophe)) ||
    dict.has(word.replace(/n['’]t$/, ''))
  );
}

const LETTERS = 'abcdefghijklmnopqrstuvwxyz';

/** Dictionary words one edit from `word` whose analysis is exactly `[term]`: a readable form of a stem. */
function readableForm(word: string, term: string, dict: WordList, analyze: (t: string) => string[]): string {
  const edits: string[] = [];
  for (let i = 0; i <= word.length; i++) {
    const a = word.slice(0, i);
    const b = word.slice(i);
    if (b.length > 0) edits.push(a + b.slice(1));
    if (b.length > 1) edits.push(a + b[1] + b[0] + b.slice(2));
    for (const c of LETTERS) {
      if (b.length > 0 && c !== b[0]) edits.push(a + c + b.slice(1));
      edits.push(a + c + b);
    }
  }
  for (const e of edits) {
    if (!dict.has(e)) continue;
    const t = analyze(e);
    if (t.length === 1 && t[0] === term) return e;
  }
  return term;
}

const escapeRe = (s: string): string => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** The searched query: each corrected word replaced where it stands as a whole word. */
function applyCorrections(text: string, corrections: Array<{ from: string; to: string }>): string {
  let out = text;
  for (const c of corrections)
    out = out.replace(new RegExp(`(?<![\\p{L}\\p{M}])${escapeRe(c.from)}(?![\\p{L}\\p{M}])`, 'gu'), c.to);
  return out;
}

/**
 * Correct the analyzed `terms` of `text` (the normalized query): only terms unknown to the corpus whose
 * word is not in the dictionary and not quoted (`quoted`: the quoted entities' texts). The dictionary is
 * loaded only if some term is unknown to the corpus.
 */
export function correctQuery(
  original: string,
  text: string,
  terms: string[],
  quoted: string[],
  deps: SpellingDeps,
): { terms: string[]; corrections: TypoCorrection[]; rewrite?: QueryRewrite } {
  if (!terms.some((t) => correctable(t, deps.vocabulary))) return { terms, corrections: [] };
  const dict = deps.dictionary();
  const words = surfaceWords(text, deps.analyze);
  const keep = new Set<string>(quoted.flatMap((q) => deps.analyze(q)));
  for (const w of words) if (known(w.lookup, dict)) for (const t of w.terms) keep.add(t);
  const corrected = correctTypos(terms, deps.vocabulary, keep);
  if (corrected.corrections.length === 0) return corrected;
  const shown: Array<{ from: string; to: string }> = [];
  for (const c of corrected.corrections) {
    const w = words.find((x) => x.terms.length === 1 && x.terms[0] === c.from);
    const pair =
      w === undefined
        ? { from: c.from, to: c.to }
        : { from: w.text, to: readableForm(w.lookup, c.to, dict, deps.analyze) };
    if (!shown.some((s) => s.from === pair.from)) shown.push(pair);
  }
  return {
    ...corrected,
    rewrite: { original, searched: applyCorrections(text, shown), corrections: shown },
  };
}

/**
 * The English word list typo correction consults: a query word the corpus does not contain is corrected
 * only when it is not an English word either ("pointer" stays "pointer" in a corpus about printers).
 * an-array-of-english-words holds ~275k lowercase word forms (inflections included) as one sorted JSON
 * array; parsing it takes ~100–300 ms, so it is loaded on first use, once per process, and searched by
 * binary search instead of being copied into a Set.
 */
import { lazyModule } from '../lazy.js';

const wordArray = lazyModule<string[]>('an-array-of-english-words');

export interface WordList {
  /** Whether `word` (lowercase) is a word of the list. */
  has(word: string): boolean;
  readonly size: number;
}

/** A word list over a sorted array of distinct lowercase words. */
export function sortedWordList(words: readonly string[]): WordList {
  return {
    size: words.length,
    has(word) {
      let lo = 0;
      let hi = words.length - 1;
      while (lo <= hi) {
        const mid = (lo + hi) >>> 1;
        const w = words[mid]!;
        if (w === word) return true;
        if (w < word) lo = mid + 1;
        else hi = mid - 1;
      }
      return false;
    },
  };
}

let english: WordList | undefined;
let loads = 0;

/** The English word list, loaded on the first call. */
export function englishWords(): WordList {
  if (english !== undefined) return english;
  const words = wordArray();
  // Binary search needs code-unit order; the package ships it sorted, but never trust that silently.
  let sorted = true;
  for (let i = 1; i < words.length && sorted; i++) sorted = words[i - 1]! < words[i]!;
  english = sortedWordList(sorted ? words : [...new Set(words)].sort());
  loads++;
  return english;
}

/** How many times the list has been loaded in this process (0 or 1): lets tests see that it is lazy. */
export function englishWordsLoads(): number {
  return loads;
}

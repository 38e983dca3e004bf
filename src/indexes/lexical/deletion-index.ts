/**
 * Typo-candidate lookup over the index vocabulary. Query understanding corrects terms the index has never
 * seen; scanning a large vocabulary per unknown term costs milliseconds. Instead the unknown term's one-edit
 * neighbourhood is generated and each neighbour looked up in the index's own term dictionary: nothing is built
 * ahead and nothing is held per term, so a 500k-passage index pays no build time and no memory for it.
 */

/** Every string obtained by deleting one character. */
export function deletions(term: string): string[] {
  const out: string[] = [];
  for (let i = 0; i < term.length; i++) out.push(term.slice(0, i) + term.slice(i + 1));
  return out;
}

/** What candidate generation needs: membership in the vocabulary and the characters its terms use. */
export interface TermLookup {
  has(term: string): boolean;
  /** Every character (UTF-16 code unit) that occurs in some term; substitutions and insertions draw on it. */
  alphabet(): readonly string[];
}

/**
 * Vocabulary terms exactly one edit (insertion, deletion, substitution or adjacent swap) from `term`, and
 * `term` itself if indexed. Complete for one edit: every such term is found. Costs about
 * (2·|alphabet| + 2)·|term| dictionary lookups, only for a term the index does not know.
 */
export function* oneEditNeighbours(term: string, lookup: TermLookup): Generator<string> {
  if (lookup.has(term)) yield term;
  const n = term.length;
  for (let i = 0; i < n; i++) {
    const head = term.slice(0, i);
    const tail = term.slice(i + 1);
    const del = head + tail;
    if (lookup.has(del)) yield del;
    if (i + 1 < n && term[i] !== term[i + 1]) {
      const swap = head + term[i + 1] + term[i] + term.slice(i + 2);
      if (lookup.has(swap)) yield swap;
    }
  }
  const alphabet = lookup.alphabet();
  for (let i = 0; i <= n; i++) {
    const head = term.slice(0, i);
    const at = term.slice(i);
    const after = term.slice(i + 1);
    for (const c of alphabet) {
      const ins = head + c + at;
      if (lookup.has(ins)) yield ins;
      if (i < n && c !== term[i]) {
        const sub = head + c + after;
        if (lookup.has(sub)) yield sub;
      }
    }
  }
}

/**
 * The index's dictionary as a {@link TermLookup}: membership is the dictionary's own map, and the alphabet
 * is gathered incrementally from terms added since the last call (the dictionary only ever appends).
 */
export class VocabularyAlphabet implements TermLookup {
  private readonly chars = new Set<string>();
  private list: string[] = [];
  private scanned = 0;

  constructor(
    private readonly terms: readonly string[],
    private readonly contains: (term: string) => boolean,
  ) {}

  has(term: string): boolean {
    return this.contains(term);
  }

  alphabet(): readonly string[] {
    if (this.scanned < this.terms.length) {
      const before = this.chars.size;
      for (let t = this.scanned; t < this.terms.length; t++) {
        const term = this.terms[t]!;
        for (let i = 0; i < term.length; i++) this.chars.add(term[i]!);
      }
      this.scanned = this.terms.length;
      if (this.chars.size !== before) this.list = [...this.chars];
    }
    return this.list;
  }
}

/**
 * Candidate lookup over a fixed list of terms (for callers that hold a word list rather than an index).
 * For one edit the result is complete; for two edits only the terms two deletions away are added (a subset).
 */
export class DeletionIndex {
  private readonly terms: Set<string>;
  private readonly lookup: VocabularyAlphabet;

  constructor(terms: Iterable<string>) {
    this.terms = new Set(terms);
    this.lookup = new VocabularyAlphabet([...this.terms], (t) => this.terms.has(t));
  }

  *candidates(term: string, maxDistance: number): Iterable<string> {
    yield* candidatesWithin(term, maxDistance, this.lookup);
  }
}

/** One-edit neighbours, plus (for `maxDistance` ≥ 2) terms two deletions away. Callers verify distances. */
export function* candidatesWithin(term: string, maxDistance: number, lookup: TermLookup): Generator<string> {
  yield* oneEditNeighbours(term, lookup);
  if (maxDistance >= 2)
    for (const d of deletions(term)) for (const dd of deletions(d)) if (lookup.has(dd)) yield dd;
}

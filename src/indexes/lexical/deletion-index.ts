/**
 * Typo-candidate lookup over the index vocabulary. Query understanding corrects terms the index has never
 * seen; scanning a large vocabulary per unknown term costs milliseconds, this costs a few hash lookups.
 */

/** Every string obtained by deleting one character. */
export function deletions(term: string): string[] {
  const out: string[] = [];
  for (let i = 0; i < term.length; i++) out.push(term.slice(0, i) + term.slice(i + 1));
  return out;
}

/**
 * Symmetric-delete candidate index (as in SymSpell): each indexed term is stored under its one-character
 * deletions, so a misspelling finds its neighbours by a few hash lookups instead of a vocabulary scan.
 */
export class DeletionIndex {
  private readonly byDeletion = new Map<string, string[]>();
  private readonly terms: Set<string>;

  constructor(terms: Iterable<string>) {
    this.terms = new Set(terms);
    for (const t of this.terms) {
      if (t.length < 3) continue;
      for (const d of deletions(t)) {
        const list = this.byDeletion.get(d);
        if (list === undefined) this.byDeletion.set(d, [t]);
        else if (list[list.length - 1] !== t) list.push(t);
      }
    }
  }

  /**
   * Terms that may be within `maxDistance` edits: complete for one edit (any term one insertion, deletion,
   * substitution or adjacent swap away is returned); for two edits only a subset. Callers verify distances.
   */
  *candidates(term: string, maxDistance: number): Iterable<string> {
    const probe = (key: string): Iterable<string> => {
      const out: string[] = [];
      if (this.terms.has(key)) out.push(key);
      const near = this.byDeletion.get(key);
      if (near !== undefined) out.push(...near);
      return out;
    };
    yield* probe(term);
    const first = deletions(term);
    for (const d of first) yield* probe(d);
    if (maxDistance >= 2) for (const d of first) for (const dd of deletions(d)) yield* probe(dd);
  }
}

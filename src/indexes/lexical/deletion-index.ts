/**
 * Typo-candidate lookup over the index vocabulary. Query understanding corrects terms the index has never
 * seen. Instead of a symmetric-delete index (every one-character deletion of every term, seconds to build and
 * ~1 KB per passage at 500k passages), an unknown term's whole one-edit neighbourhood is enumerated by rolling
 * hash against a compact set of the vocabulary's term hashes (4 bytes a slot), so no candidate string is built
 * unless its hash is present; hits are then confirmed in the index's own dictionary. The hash set follows the
 * append-only dictionary incrementally.
 */

/** Every string obtained by deleting one character. */
export function deletions(term: string): string[] {
  const out: string[] = [];
  for (let i = 0; i < term.length; i++) out.push(term.slice(0, i) + term.slice(i + 1));
  return out;
}

const P = 0x01000193;

/** Polynomial hash over UTF-16 code units, mod 2^32: hash(x + y) = hash(x)·P^|y| + hash(y). */
function hashOf(s: string, from = 0, to = s.length): number {
  let h = 0;
  for (let i = from; i < to; i++) h = (Math.imul(h, P) + s.charCodeAt(i)) | 0;
  return h;
}

/** Open-addressing set of 32-bit hashes (0 marks an empty slot, so hash 0 is stored as 1). */
class HashSet32 {
  private table = new Int32Array(1024);
  private count = 0;

  add(h: number): void {
    if ((this.count + 1) * 2 > this.table.length) this.grow();
    if (this.insert(this.table, h === 0 ? 1 : h)) this.count++;
  }

  has(h: number): boolean {
    const key = h === 0 ? 1 : h;
    const t = this.table;
    const mask = t.length - 1;
    for (let i = (key ^ (key >>> 15)) & mask; ; i = (i + 1) & mask) {
      const v = t[i]!;
      if (v === key) return true;
      if (v === 0) return false;
    }
  }

  get bytes(): number {
    return this.table.byteLength;
  }

  private insert(t: Int32Array, key: number): boolean {
    const mask = t.length - 1;
    for (let i = (key ^ (key >>> 15)) & mask; ; i = (i + 1) & mask) {
      const v = t[i]!;
      if (v === key) return false;
      if (v === 0) {
        t[i] = key;
        return true;
      }
    }
  }

  private grow(): void {
    const next = new Int32Array(this.table.length * 2);
    for (const v of this.table) if (v !== 0) this.insert(next, v);
    this.table = next;
  }
}

/**
 * One-edit neighbourhoods over an append-only term list (the index's dictionary). `has` confirms a term
 * (e.g. that it still has live documents); the term hashes and the alphabet are brought up to date with the
 * terms appended since the last call.
 */
export class TypoNeighbourhood {
  private readonly hashes = new HashSet32();
  private readonly chars = new Set<number>();
  private alphabet: number[] = [];
  private scanned = 0;
  private pow = new Int32Array([1]);

  constructor(
    private readonly terms: readonly string[],
    private readonly has: (term: string) => boolean,
  ) {}

  /** Bytes held (the hash table); nothing is held per term beyond it. */
  get memoryBytes(): number {
    return this.hashes.bytes + this.alphabet.length * 8;
  }

  private catchUp(): void {
    if (this.scanned === this.terms.length) return;
    const before = this.chars.size;
    for (let t = this.scanned; t < this.terms.length; t++) {
      const term = this.terms[t]!;
      this.hashes.add(hashOf(term));
      for (let i = 0; i < term.length; i++) this.chars.add(term.charCodeAt(i));
    }
    this.scanned = this.terms.length;
    if (this.chars.size !== before) this.alphabet = [...this.chars];
  }

  private powers(n: number): Int32Array {
    if (this.pow.length <= n) {
      const pow = new Int32Array(n + 1);
      pow[0] = 1;
      for (let i = 1; i <= n; i++) pow[i] = Math.imul(pow[i - 1]!, P);
      this.pow = pow;
    }
    return this.pow;
  }

  /**
   * Terms exactly one edit (insertion, deletion, substitution or adjacent swap) from `term`, and `term` itself
   * if present. Complete for one edit; about 2·|alphabet|·|term| hash probes, no string built per probe.
   */
  neighbours(term: string): string[] {
    this.catchUp();
    const n = term.length;
    const pow = this.powers(n + 1);
    // prefix[i] = hash(term[0..i)), suffix[i] = hash(term[i..n)).
    const prefix = new Int32Array(n + 1);
    const suffix = new Int32Array(n + 1);
    for (let i = 0; i < n; i++) prefix[i + 1] = (Math.imul(prefix[i]!, P) + term.charCodeAt(i)) | 0;
    for (let i = n - 1; i >= 0; i--)
      suffix[i] = (Math.imul(term.charCodeAt(i), pow[n - 1 - i]!) + suffix[i + 1]!) | 0;
    const out = new Set<string>();
    const hashes = this.hashes;
    // Hash first; a candidate string is built only for a hash present in the vocabulary.
    const keep = (s: string): void => {
      if (this.has(s)) out.add(s);
    };
    if (hashes.has(prefix[n]!)) keep(term);
    for (let i = 0; i < n; i++) {
      // Deletion of term[i].
      if (hashes.has((Math.imul(prefix[i]!, pow[n - i - 1]!) + suffix[i + 1]!) | 0))
        keep(term.slice(0, i) + term.slice(i + 1));
      if (i + 1 < n && term.charCodeAt(i) !== term.charCodeAt(i + 1)) {
        const swapped =
          (Math.imul(Math.imul(prefix[i]!, P) + term.charCodeAt(i + 1), P) + term.charCodeAt(i)) | 0;
        if (hashes.has((Math.imul(swapped, pow[n - i - 2]!) + suffix[i + 2]!) | 0))
          keep(term.slice(0, i) + term[i + 1] + term[i] + term.slice(i + 2));
      }
    }
    const alphabet = this.alphabet;
    for (let i = 0; i <= n; i++) {
      const head = Math.imul(prefix[i]!, P);
      const cur = i < n ? term.charCodeAt(i) : -1;
      const insertTail = suffix[i]!;
      const insertPow = pow[n - i]!;
      const substTail = i < n ? suffix[i + 1]! : 0;
      const substPow = i < n ? pow[n - i - 1]! : 0;
      for (let a = 0; a < alphabet.length; a++) {
        const c = alphabet[a]!;
        // Insertion of c before term[i], and substitution of term[i] by c.
        if (hashes.has((Math.imul((head + c) | 0, insertPow) + insertTail) | 0))
          keep(term.slice(0, i) + String.fromCharCode(c) + term.slice(i));
        if (i < n && c !== cur && hashes.has((Math.imul((head + c) | 0, substPow) + substTail) | 0))
          keep(term.slice(0, i) + String.fromCharCode(c) + term.slice(i + 1));
      }
    }
    return [...out];
  }

  /** One-edit neighbours, plus (for `maxDistance` ≥ 2) terms two deletions away (a subset of two edits). */
  candidates(term: string, maxDistance: number): string[] {
    const out = this.neighbours(term);
    if (maxDistance >= 2) {
      for (const d of deletions(term))
        for (const dd of deletions(d)) if (this.hashes.has(hashOf(dd)) && this.has(dd)) out.push(dd);
    }
    return out;
  }
}

/**
 * Candidate lookup over a fixed word list (for callers holding a list rather than an index). Complete for one
 * edit; for two edits only terms two deletions away are added. Callers verify distances.
 */
export class DeletionIndex {
  private readonly neighbourhood: TypoNeighbourhood;

  constructor(terms: Iterable<string>) {
    const set = new Set(terms);
    this.neighbourhood = new TypoNeighbourhood([...set], (t) => set.has(t));
  }

  candidates(term: string, maxDistance: number): Iterable<string> {
    return this.neighbourhood.candidates(term, maxDistance);
  }
}

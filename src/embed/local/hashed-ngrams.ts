/**
 * Hashed character n-gram TF-IDF vectors (feature hashing with signed buckets, Weinberger et al. 2009).
 * Every word, lowercased and wrapped as `<word>`, contributes its character n-grams (default 3–5); n-grams
 * are hashed (FNV-1a over UTF-16 units), weighted by sublinear tf × an idf learned from the corpus, and
 * folded into `dimension` signed buckets, then L2-normalized. Shared n-grams survive typos and inflection
 * (`retrieval` / `retreival` / `retrieving`), which whole-word models miss.
 *
 * Document frequencies are kept per n-gram hash in a table of 2^idfBits slots (default 2^18), so the
 * idf stays sharp even though the output dimension is small.
 */
import { QuarryError } from '../../errors.js';
import { LUCENE_ENGLISH_STOPWORDS, tokenize } from '../../indexes/lexical/analyzer.js';
import { decodeModel, encodeModel, modelHash } from './codec.js';

export interface HashedNgramOptions {
  /** Output dimension. Default 1024. */
  dimension?: number;
  minN?: number;
  maxN?: number;
  /** log2 of the idf table size. Default 18. */
  idfBits?: number;
  /** Hash seed (changes the bucket assignment). Default 0. */
  seed?: number;
  /** Skip Lucene's 33 English stop-words before taking n-grams. Default true. */
  skipStopwords?: boolean;
}

export type ResolvedHashedNgramOptions = Required<HashedNgramOptions>;

export function resolveHashedNgramOptions(o: HashedNgramOptions = {}): ResolvedHashedNgramOptions {
  const r = {
    dimension: o.dimension ?? 1024,
    minN: o.minN ?? 3,
    maxN: o.maxN ?? 5,
    idfBits: o.idfBits ?? 18,
    seed: o.seed ?? 0,
    skipStopwords: o.skipStopwords ?? true,
  };
  const bad = (what: string): never => {
    throw new QuarryError('INVALID_ARGUMENT', `hashed n-gram option ${what}`, { options: o });
  };
  if (!Number.isInteger(r.dimension) || r.dimension < 8 || r.dimension > 65_536)
    bad('dimension must be 8–65536');
  if (
    !Number.isInteger(r.minN) ||
    r.minN < 1 ||
    !Number.isInteger(r.maxN) ||
    r.maxN < r.minN ||
    r.maxN > 12
  ) {
    bad('minN/maxN must satisfy 1 ≤ minN ≤ maxN ≤ 12');
  }
  if (!Number.isInteger(r.idfBits) || r.idfBits < 8 || r.idfBits > 24) bad('idfBits must be 8–24');
  if (!Number.isInteger(r.seed)) bad('seed must be an integer');
  return r;
}

const STOP = new Set(LUCENE_ENGLISH_STOPWORDS);

/** murmur3's 32-bit finalizer: spreads FNV's weak low bits before they pick buckets. */
function fmix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/**
 * Calls `emit(hash)` for every character n-gram of every word of `text`. Words are the analyzer's raw
 * tokens, lowercased (stop-words skipped unless disabled), with `<` and `>` marking their boundaries; words
 * shorter than minN − 2 still emit their whole bracketed form.
 */
export function forEachNgramHash(
  text: string,
  opts: ResolvedHashedNgramOptions,
  emit: (h: number) => void,
): void {
  const { minN, maxN, seed } = opts;
  const basis = (0x811c9dc5 ^ seed) >>> 0;
  for (const token of tokenize(text)) {
    const lower = token.toLowerCase();
    if (opts.skipStopwords && STOP.has(lower)) continue;
    const w = `<${lower}>`;
    const len = w.length;
    if (len < minN) {
      let h = basis;
      for (let i = 0; i < len; i++) h = Math.imul(h ^ w.charCodeAt(i), 0x01000193);
      emit(fmix32(h));
      continue;
    }
    for (let s = 0; s + minN <= len; s++) {
      let h = basis;
      const end = Math.min(len, s + maxN);
      for (let i = s; i < end; i++) {
        h = Math.imul(h ^ w.charCodeAt(i), 0x01000193);
        if (i - s + 1 >= minN) emit(fmix32(h ^ (i - s + 1)));
      }
    }
  }
}

interface NgramHeader {
  kind: 'hashed-ngrams';
  options: ResolvedHashedNgramOptions;
  documents: number;
}

const MAGIC = 'QHNG';
const FORMAT = 1;

export class HashedNgramModel {
  readonly options: ResolvedHashedNgramOptions;
  readonly dimension: number;
  readonly documents: number;
  /** idf per hash slot: ln((1 + N) / (1 + df)) + 1; unseen slots get the maximum. */
  readonly idf: Float32Array;
  private readonly mask: number;
  private bytesCache?: Uint8Array;
  private hashCache?: string;
  // Scratch for embedding: the per-text frequency table (grows to fit the longest text seen, up to 64 K).
  private keys = new Int32Array(4096);
  private tfs = new Int32Array(4096);
  private filled = new Int32Array(2049);

  private constructor(options: ResolvedHashedNgramOptions, documents: number, idf: Float32Array) {
    this.options = options;
    this.dimension = options.dimension;
    this.documents = documents;
    this.idf = idf;
    this.mask = (1 << options.idfBits) - 1;
  }

  static train(texts: Iterable<string>, opts: HashedNgramOptions = {}): HashedNgramModel {
    const options = resolveHashedNgramOptions(opts);
    const size = 1 << options.idfBits;
    const mask = size - 1;
    const df = new Uint32Array(size);
    const seen = new Uint32Array(size);
    let n = 0;
    for (const text of texts) {
      n++;
      forEachNgramHash(text, options, (h) => {
        const slot = h & mask;
        if (seen[slot] !== n) {
          seen[slot] = n;
          df[slot]!++;
        }
      });
    }
    const idf = new Float32Array(size);
    for (let i = 0; i < size; i++) idf[i] = Math.log((1 + n) / (1 + df[i]!)) + 1;
    return new HashedNgramModel(options, n, idf);
  }

  /** Normalized vector written into `out[offset … offset+dimension)`, times `scale`. */
  embedInto(text: string, out: Float32Array, offset = 0, scale = 1): void {
    const { dimension, idf } = this;
    const mask = this.mask;
    // Term frequencies per idf slot in a small open-addressing table (keys are slot + 1; 0 = empty) that stays
    // in cache, instead of scattering over the 2^idfBits-sized tables; `filled` lists the used positions.
    let cap = this.keys.length;
    let keys = this.keys;
    let tfs = this.tfs;
    let filled = this.filled;
    let used = 0;
    const count = (h: number): void => {
      const key = (h & mask) + 1;
      let i = (Math.imul(key, 0x9e3779b1) >>> 0) & (cap - 1);
      for (;;) {
        const k = keys[i]!;
        if (k === key) {
          tfs[i]!++;
          return;
        }
        if (k === 0) break;
        i = (i + 1) & (cap - 1);
      }
      keys[i] = key;
      tfs[i] = 1;
      filled[used++] = i;
      if (used * 2 > cap) {
        // Grow ×2 and rehash.
        const oldKeys = keys;
        const oldTfs = tfs;
        const oldFilled = filled;
        cap *= 2;
        keys = new Int32Array(cap);
        tfs = new Int32Array(cap);
        filled = new Int32Array(cap / 2 + 1);
        for (let p = 0; p < used; p++) {
          const at = oldFilled[p]!;
          const k = oldKeys[at]!;
          let j = (Math.imul(k, 0x9e3779b1) >>> 0) & (cap - 1);
          while (keys[j] !== 0) j = (j + 1) & (cap - 1);
          keys[j] = k;
          tfs[j] = oldTfs[at]!;
          filled[p] = j;
        }
        oldKeys.fill(0); // the instance's table must stay empty if the grown one is not kept
      }
    };
    forEachNgramHash(text, this.options, count);
    const acc = new Float64Array(dimension);
    for (let p = 0; p < used; p++) {
      const at = filled[p]!;
      const slot = keys[at]! - 1;
      keys[at] = 0; // leave the table empty for the next text
      const w = (1 + Math.log(tfs[at]!)) * idf[slot]!;
      const g = fmix32(slot ^ 0x9e3779b9);
      acc[g % dimension]! += g & 0x80000000 ? -w : w;
    }
    if (cap > this.keys.length && cap <= 1 << 16) {
      // Keep the grown (now empty) table for the next text.
      this.keys = keys;
      this.tfs = tfs;
      this.filled = filled;
    }
    let norm = 0;
    for (let i = 0; i < dimension; i++) norm += acc[i]! * acc[i]!;
    const f = norm > 0 ? scale / Math.sqrt(norm) : 0;
    for (let i = 0; i < dimension; i++) out[offset + i] = acc[i]! * f;
  }

  embed(text: string): Float32Array {
    const out = new Float32Array(this.dimension);
    this.embedInto(text, out);
    return out;
  }

  serialize(): Uint8Array {
    this.bytesCache ??= encodeModel<NgramHeader>(
      MAGIC,
      FORMAT,
      { kind: 'hashed-ngrams', options: this.options, documents: this.documents },
      [this.idf],
    );
    return this.bytesCache;
  }

  static deserialize(bytes: Uint8Array): HashedNgramModel {
    const { header, sections } = decodeModel<NgramHeader>(bytes, MAGIC, FORMAT);
    const options = resolveHashedNgramOptions(header.options);
    const idf = sections[0];
    if (
      header.kind !== 'hashed-ngrams' ||
      !(idf instanceof Float32Array) ||
      idf.length !== 1 << options.idfBits
    ) {
      throw new QuarryError('INVALID_ARGUMENT', 'not a valid QHNG model: inconsistent sections');
    }
    const model = new HashedNgramModel(options, header.documents, idf);
    model.bytesCache = bytes;
    return model;
  }

  get hash(): string {
    this.hashCache ??= modelHash(this.serialize());
    return this.hashCache;
  }
}

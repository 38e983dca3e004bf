/**
 * The in-memory BM25 inverted index — Quarry's hot retrieval path. Postings live in typed arrays (a packed
 * CSR "base" segment plus a small append-only "delta" for recent writes), deletes are tombstones, and scoring
 * is exhaustive term-at-a-time with a reused accumulator, so results are exactly BM25's top-k.
 *
 * Scoring follows Lucene's BM25Similarity (which Anserini's published BEIR baselines use):
 *   idf = ln(1 + (N − df + 0.5) / (df + 0.5)),  score = Σ qtf · idf · tf / (tf + k1 · (1 − b + b · dl / avgdl))
 * with dl taken from Lucene's one-byte length encoding by default (`lengthNorm: 'lucene'`).
 *
 * Documents of this index are chunks; each carries a numeric `group` (its document's key) so filters and
 * access checks can be evaluated per document, inside top-k selection rather than after it.
 */
import { LENGTH_TABLE, lengthToByte } from './lucene-norms.js';

export interface Bm25Params {
  k1: number;
  b: number;
  /** `lucene`: one-byte lossy lengths, as Lucene/Anserini; `exact`: true token counts. */
  lengthNorm: 'lucene' | 'exact';
}

export interface FieldSpec {
  name: string;
  /** Weight of this field's BM25 score in the sum (multi-field BM25). */
  weight: number;
}

/** Analyzed chunk ready for indexing: terms per field, in text order. */
export interface IndexableChunk {
  chunkId: number;
  group: number;
  fields: Record<string, string[]>;
}

export interface ScoredChunk {
  chunkId: number;
  group: number;
  score: number;
}

/** Decides per document group whether its chunks may be returned (metadata filter ∧ access scope). */
export type GroupPredicate = (group: number) => boolean;

/**
 * The documents a caller may not read, for BM25 statistics: with them counted, N, document frequencies and
 * the average length would let a caller measure how often hidden documents use a term (a score side
 * channel). `key` names the hidden set; equal keys must mean equal sets (the index caches per key).
 */
export interface VisibleStatistics {
  key: string;
  /** Document groups hidden from the caller: left out of N, df and avgdl (and never scored). */
  hiddenGroups: ReadonlySet<number>;
}

export interface SearchOptions {
  k: number;
  /**
   * Per-occurrence weights parallel to each field's query terms (default 1 each): how query expansion gives
   * expansion terms less say than the user's own words.
   */
  termWeights?: Record<string, number[]>;
  allowGroup?: GroupPredicate;
  /** Collapse to the best chunk per group (a document scores by its best chunk). */
  collapseGroups?: boolean;
  /** Score with statistics over the documents the caller may read; absent = over the whole index. */
  statistics?: VisibleStatistics | undefined;
}

export interface SearchStats {
  /** Query terms that exist in the index, with their document frequency and idf. */
  terms: Array<{ term: string; df: number; idf: number; field: string }>;
  /** Chunks with a non-zero score (before filtering and top-k). */
  matched: number;
  /** Matched chunks rejected by the group predicate. */
  filteredOut: number;
  /** The N the idf used: live chunks, or only the caller's visible ones. */
  documents?: number;
  /** avgdl per field the scores used. */
  averageLengths?: Record<string, number>;
  /** Whether documents hidden from the caller were left out of the statistics. */
  statistics?: 'visible' | 'store';
}

/** One field's statistics over the chunks a caller may read. */
interface VisibleFieldStats {
  totalLength: number;
  avgdl: number;
  normCache: Float64Array;
  /** Visible document frequency per term id, filled as queries ask for terms. */
  df: Map<number, number>;
}

/** BM25 statistics for one hidden set at one index generation. */
interface StatisticsView {
  generation: number;
  /** 1 for chunks alive and visible to the caller; stands in for `alive` while scoring. */
  visible: Uint8Array;
  liveCount: number;
  fields: VisibleFieldStats[];
}

/** Hidden sets whose statistics are kept: one per distinct group combination in recent use. */
const VIEW_CACHE_SIZE = 16;

const INITIAL_CAPACITY = 1024;

function grow<T extends Uint32Array | Uint16Array | Uint8Array | Float64Array>(a: T, need: number): T {
  if (need <= a.length) return a;
  let cap = Math.max(a.length * 2, INITIAL_CAPACITY);
  while (cap < need) cap *= 2;
  const b = new (a.constructor as new (n: number) => T)(cap);
  b.set(a);
  return b;
}

/** One field's postings. Internal doc numbers are shared with the owning index. */
class FieldPostings {
  readonly terms: string[] = [];
  readonly termIds = new Map<string, number>();
  /** Live document frequency per term. */
  df = new Uint32Array(INITIAL_CAPACITY);
  // Packed base segment (CSR): postings of term t are [offsets[t], offsets[t+1]) in docs/tfs.
  offsets: Uint32Array<ArrayBufferLike> = new Uint32Array(1);
  docs: Uint32Array<ArrayBufferLike> = new Uint32Array(0);
  tfs: Uint16Array<ArrayBufferLike> = new Uint16Array(0);
  // Delta segment: postings appended since the last merge, per term.
  delta = new Map<number, { docs: number[]; tfs: number[] }>();
  deltaPostings = 0;
  /** Field length per internal doc (token count) and its Lucene byte. */
  lengths = new Uint32Array(INITIAL_CAPACITY);
  normBytes = new Uint8Array(INITIAL_CAPACITY);
  totalLength = 0;
  /** k1·(1 − b + b·len/avgdl) for each of the 256 length bytes; recomputed when avgdl changes. */
  readonly normCache = new Float64Array(256);

  constructor(readonly spec: FieldSpec) {}

  termId(term: string): number {
    let id = this.termIds.get(term);
    if (id === undefined) {
      id = this.terms.length;
      this.terms.push(term);
      this.termIds.set(term, id);
      this.df = grow(this.df, id + 1);
    }
    return id;
  }

  add(doc: number, terms: readonly string[]): void {
    const counts = new Map<number, number>();
    for (const t of terms) {
      const id = this.termId(t);
      counts.set(id, (counts.get(id) ?? 0) + 1);
    }
    for (const [id, tf] of counts) {
      let p = this.delta.get(id);
      if (p === undefined) {
        p = { docs: [], tfs: [] };
        this.delta.set(id, p);
      }
      p.docs.push(doc);
      p.tfs.push(Math.min(tf, 0xffff));
      this.df[id]! += 1;
    }
    this.deltaPostings += counts.size;
    this.lengths = grow(this.lengths, doc + 1);
    this.normBytes = grow(this.normBytes, doc + 1);
    this.lengths[doc] = terms.length;
    this.normBytes[doc] = lengthToByte(terms.length);
    this.totalLength += terms.length;
  }

  /** Undo a doc's contribution to df and length statistics (its postings become dead weight until merge). */
  remove(doc: number): void {
    const forEachPosting = (fn: (termId: number) => void): void => {
      const nBase = this.offsets.length - 1;
      for (let t = 0; t < nBase; t++) {
        const from = this.offsets[t]!;
        const to = this.offsets[t + 1]!;
        if (from === to || this.docs[from]! > doc || this.docs[to - 1]! < doc) continue;
        if (binarySearch(this.docs, from, to, doc) >= 0) fn(t);
      }
      for (const [t, p] of this.delta) if (p.docs.includes(doc)) fn(t);
    };
    forEachPosting((t) => {
      this.df[t]! -= 1;
    });
    this.totalLength -= this.lengths[doc]!;
  }

  /** Fold the delta into the packed base, dropping postings of dead docs and renumbering with `remap`. */
  rebuild(remap: Int32Array | null, alive: Uint8Array): void {
    const nTerms = this.terms.length;
    const counts = new Uint32Array(nTerms + 1);
    const nBase = this.offsets.length - 1;
    const live = (d: number): boolean => alive[d] === 1;
    for (let t = 0; t < nBase; t++) {
      for (let i = this.offsets[t]!; i < this.offsets[t + 1]!; i++) if (live(this.docs[i]!)) counts[t]! += 1;
    }
    for (const [t, p] of this.delta) for (const d of p.docs) if (live(d)) counts[t]! += 1;
    const offsets = new Uint32Array(nTerms + 1);
    for (let t = 0; t < nTerms; t++) offsets[t + 1] = offsets[t]! + counts[t]!;
    const total = offsets[nTerms]!;
    const docs = new Uint32Array(total);
    const tfs = new Uint16Array(total);
    const mapDoc = (d: number): number => (remap === null ? d : remap[d]!);
    for (let t = 0; t < nTerms; t++) {
      let w = offsets[t]!;
      if (t < nBase) {
        for (let i = this.offsets[t]!; i < this.offsets[t + 1]!; i++) {
          const d = this.docs[i]!;
          if (!live(d)) continue;
          docs[w] = mapDoc(d);
          tfs[w++] = this.tfs[i]!;
        }
      }
      const p = this.delta.get(t);
      if (p !== undefined) {
        for (let i = 0; i < p.docs.length; i++) {
          const d = p.docs[i]!;
          if (!live(d)) continue;
          docs[w] = mapDoc(d);
          tfs[w++] = p.tfs[i]!;
        }
      }
    }
    this.offsets = offsets;
    this.docs = docs;
    this.tfs = tfs;
    this.delta.clear();
    this.deltaPostings = 0;
    if (remap !== null) {
      const lengths = new Uint32Array(Math.max(this.lengths.length, INITIAL_CAPACITY));
      const normBytes = new Uint8Array(lengths.length);
      for (let d = 0; d < remap.length; d++) {
        const to = remap[d]!;
        if (to < 0) continue;
        lengths[to] = this.lengths[d]!;
        normBytes[to] = this.normBytes[d]!;
      }
      this.lengths = lengths;
      this.normBytes = normBytes;
    }
  }
}

/** Min-heap of (score, internal doc) for top-k; the root is the weakest kept result. */
interface Heap {
  score: Float64Array;
  doc: Uint32Array;
  size: number;
}

/** Ranking order: higher score first; ties go to the earlier-indexed chunk so results are deterministic. */
function beats(s1: number, d1: number, s2: number, d2: number): boolean {
  return s1 > s2 || (s1 === s2 && d1 < d2);
}

/**
 * Heap moves. With `slotOfGroup` (collapsing), every entry's group records where the entry sits, so a group's
 * entry can be found and strengthened in place; without it the bookkeeping is skipped.
 */
function place(
  h: Heap,
  at: number,
  s: number,
  d: number,
  groups: Uint32Array | null,
  slotOfGroup: Map<number, number> | null,
): void {
  h.score[at] = s;
  h.doc[at] = d;
  if (slotOfGroup !== null && groups !== null) slotOfGroup.set(groups[d]!, at);
}

function heapPush(
  h: Heap,
  s: number,
  d: number,
  groups: Uint32Array,
  slotOfGroup: Map<number, number> | null,
): void {
  let c = h.size++;
  while (c > 0) {
    const parent = (c - 1) >> 1;
    if (!beats(h.score[parent]!, h.doc[parent]!, s, d)) break;
    place(h, c, h.score[parent]!, h.doc[parent]!, groups, slotOfGroup);
    c = parent;
  }
  place(h, c, s, d, groups, slotOfGroup);
}

/** Put (s, d) at slot `i` (it must be at least as strong as what was there) and move it towards the leaves. */
function siftDown(
  h: Heap,
  i: number,
  s: number,
  d: number,
  groups: Uint32Array | null,
  slotOfGroup: Map<number, number> | null,
): void {
  const n = h.size;
  for (;;) {
    const l = 2 * i + 1;
    if (l >= n) break;
    const r = l + 1;
    // Pick the weaker child; move it up if it is weaker than the inserted entry.
    let m = l;
    if (r < n && beats(h.score[l]!, h.doc[l]!, h.score[r]!, h.doc[r]!)) m = r;
    if (!beats(s, d, h.score[m]!, h.doc[m]!)) break;
    place(h, i, h.score[m]!, h.doc[m]!, groups, slotOfGroup);
    i = m;
  }
  place(h, i, s, d, groups, slotOfGroup);
}

function heapPopTop(h: Heap): void {
  h.size--;
  if (h.size === 0) return;
  siftDown(h, 0, h.score[h.size]!, h.doc[h.size]!, null, null);
}

/** avgdl as scoring uses it: 1 for an empty index or field (never a division by zero). */
function meanLength(totalLength: number, liveCount: number): number {
  return liveCount > 0 ? totalLength / liveCount || 1 : 1;
}

/** k1·(1 − b + b·len/avgdl) for each of the 256 Lucene length bytes. */
function fillNorms(out: Float64Array, params: Bm25Params, totalLength: number, liveCount: number): void {
  const { k1, b } = params;
  const avgdl = liveCount > 0 ? totalLength / liveCount : 1;
  const safeAvg = avgdl > 0 ? avgdl : 1;
  for (let i = 0; i < 256; i++) out[i] = k1 * (1 - b + (b * LENGTH_TABLE[i]!) / safeAvg);
}

function binarySearch(a: Uint32Array, from: number, to: number, x: number): number {
  let lo = from;
  let hi = to - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >>> 1;
    const v = a[mid]!;
    if (v < x) lo = mid + 1;
    else if (v > x) hi = mid - 1;
    else return mid;
  }
  return -1;
}

export interface Bm25IndexSnapshot {
  params: Bm25Params;
  fields: FieldSpec[];
  count: number;
  chunkIds: Uint32Array;
  groups: Uint32Array;
  perField: Array<{
    terms: string[];
    df: Uint32Array;
    offsets: Uint32Array;
    docs: Uint32Array;
    tfs: Uint16Array;
    lengths: Uint32Array;
    normBytes: Uint8Array;
    totalLength: number;
  }>;
}

export class Bm25Index {
  private readonly fieldPostings: FieldPostings[];
  /** Internal doc number → store chunk id / document group; `alive` marks undeleted docs. */
  private chunkIds = new Uint32Array(INITIAL_CAPACITY);
  private groups = new Uint32Array(INITIAL_CAPACITY);
  private alive = new Uint8Array(INITIAL_CAPACITY);
  private readonly internalOf = new Map<number, number>();
  /** Internal docs allocated so far (live + dead). */
  private count = 0;
  private liveCount = 0;
  private normsDirty = true;
  /** Bumped by every change to postings, liveness, numbering or parameters: a statistics view is valid for one. */
  private mutations = 0;
  /** Visible-statistics views by hidden-set key, least recently used first. */
  private readonly views = new Map<string, StatisticsView>();
  // Per-query scratch, reused across queries to keep the hot path allocation-free.
  private acc = new Float64Array(INITIAL_CAPACITY);
  private touched = new Uint32Array(INITIAL_CAPACITY);
  private heapScore = new Float64Array(16);
  private heapDoc = new Uint32Array(16);

  constructor(
    private bm25Params: Bm25Params,
    readonly fields: FieldSpec[],
  ) {
    if (fields.length === 0) throw new Error('Bm25Index needs at least one field');
    this.fieldPostings = fields.map((f) => new FieldPostings(f));
  }

  get params(): Bm25Params {
    return this.bm25Params;
  }

  /** k1, b and the length norm are query-time parameters: changing them needs no re-index. */
  setParams(params: Bm25Params): void {
    this.bm25Params = { ...params };
    this.normsDirty = true;
    this.mutations++;
  }

  /** Changes with every add, remove, compaction and parameter change (cached statistics are per generation). */
  get generation(): number {
    return this.mutations;
  }

  get size(): number {
    return this.liveCount;
  }

  has(chunkId: number): boolean {
    return this.internalOf.has(chunkId);
  }

  add(chunk: IndexableChunk): void {
    if (this.internalOf.has(chunk.chunkId)) this.remove(chunk.chunkId);
    const doc = this.count++;
    this.chunkIds = grow(this.chunkIds, doc + 1);
    this.groups = grow(this.groups, doc + 1);
    this.alive = grow(this.alive, doc + 1);
    this.chunkIds[doc] = chunk.chunkId;
    this.groups[doc] = chunk.group;
    this.alive[doc] = 1;
    this.internalOf.set(chunk.chunkId, doc);
    for (const fp of this.fieldPostings) fp.add(doc, chunk.fields[fp.spec.name] ?? []);
    this.liveCount++;
    this.normsDirty = true;
    this.mutations++;
    this.maybeMerge();
  }

  /** Remove a chunk; returns false if it was not indexed. */
  remove(chunkId: number): boolean {
    const doc = this.internalOf.get(chunkId);
    if (doc === undefined) return false;
    for (const fp of this.fieldPostings) fp.remove(doc);
    this.alive[doc] = 0;
    this.internalOf.delete(chunkId);
    this.liveCount--;
    this.normsDirty = true;
    this.mutations++;
    return true;
  }

  /** Remove many chunks at once (one pass over the postings instead of one per chunk). */
  removeMany(chunkIds: Iterable<number>): number {
    const docs: number[] = [];
    for (const id of chunkIds) {
      const doc = this.internalOf.get(id);
      if (doc !== undefined) docs.push(doc);
    }
    if (docs.length === 0) return 0;
    if (docs.length < 8) {
      let n = 0;
      for (const id of chunkIds) if (this.remove(id)) n++;
      return n;
    }
    // Bulk path: decrement df/lengths by scanning postings once.
    const dead = new Uint8Array(this.count);
    for (const d of docs) dead[d] = 1;
    for (const fp of this.fieldPostings) {
      const nBase = fp.offsets.length - 1;
      for (let t = 0; t < nBase; t++) {
        for (let i = fp.offsets[t]!; i < fp.offsets[t + 1]!; i++) if (dead[fp.docs[i]!] === 1) fp.df[t]! -= 1;
      }
      for (const [t, p] of fp.delta) for (const d of p.docs) if (dead[d] === 1) fp.df[t]! -= 1;
      for (const d of docs) fp.totalLength -= fp.lengths[d]!;
    }
    for (const d of docs) {
      this.alive[d] = 0;
      this.internalOf.delete(this.chunkIds[d]!);
    }
    this.liveCount -= docs.length;
    this.normsDirty = true;
    this.mutations++;
    return docs.length;
  }

  private maybeMerge(): void {
    for (const fp of this.fieldPostings) {
      if (fp.deltaPostings > 50_000 && fp.deltaPostings > fp.docs.length / 4) {
        this.compact();
        return;
      }
    }
  }

  /** Pack every field into CSR form and drop dead docs, renumbering internal ids densely. */
  compact(): void {
    const remap = new Int32Array(this.count).fill(-1);
    let next = 0;
    for (let d = 0; d < this.count; d++) if (this.alive[d] === 1) remap[d] = next++;
    for (const fp of this.fieldPostings) fp.rebuild(remap, this.alive);
    const chunkIds = new Uint32Array(Math.max(next, INITIAL_CAPACITY));
    const groups = new Uint32Array(chunkIds.length);
    for (let d = 0; d < this.count; d++) {
      const to = remap[d]!;
      if (to < 0) continue;
      chunkIds[to] = this.chunkIds[d]!;
      groups[to] = this.groups[d]!;
    }
    this.chunkIds = chunkIds;
    this.groups = groups;
    this.alive = new Uint8Array(chunkIds.length);
    this.alive.fill(1, 0, next);
    this.count = next;
    this.internalOf.clear();
    for (let d = 0; d < next; d++) this.internalOf.set(chunkIds[d]!, d);
    this.normsDirty = true;
    // Internal numbers changed: every view's bitset is void.
    this.mutations++;
    this.views.clear();
  }

  private refreshNorms(): void {
    for (const fp of this.fieldPostings) fillNorms(fp.normCache, this.params, fp.totalLength, this.liveCount);
    if (this.acc.length < this.count) {
      this.acc = new Float64Array(this.chunkIds.length);
      this.touched = new Uint32Array(this.chunkIds.length);
    }
    this.normsDirty = false;
  }

  /** The field's term dictionary (indexed terms, including ones whose documents were all deleted). */
  dictionary(field: string): readonly string[] {
    return this.fieldPostings.find((f) => f.spec.name === field)?.terms ?? [];
  }

  /** Live document frequency of `term` in `field` (0 when absent). */
  documentFrequency(field: string, term: string): number {
    const fp = this.fieldPostings.find((f) => f.spec.name === field);
    const id = fp?.termIds.get(term);
    return fp === undefined || id === undefined ? 0 : fp.df[id]!;
  }

  /** `documentFrequency` bound to one field, for callers that look up many terms (typo correction). */
  frequencyLookup(field: string): (term: string) => number {
    const fp = this.fieldPostings.find((f) => f.spec.name === field);
    if (fp === undefined) return () => 0;
    return (term) => {
      const id = fp.termIds.get(term);
      return id === undefined ? 0 : fp.df[id]!;
    };
  }

  /**
   * Mean analyzed length of a field over live documents (BM25's avgdl), or over those `statistics`' caller
   * may read; 0 for an unknown field.
   */
  averageLength(field: string, statistics?: VisibleStatistics): number {
    const f = this.fieldPostings.findIndex((x) => x.spec.name === field);
    const fp = this.fieldPostings[f];
    if (fp === undefined) return 0;
    const view = this.view(statistics);
    if (view !== undefined) return view.fields[f]!.avgdl;
    return this.liveCount === 0 ? 0 : fp.totalLength / this.liveCount;
  }

  /** Inverse document frequency of a term in a field, Lucene's formula (N: live chunks unless given). */
  idf(df: number, n: number = this.liveCount): number {
    return Math.log(1 + (n - df + 0.5) / (df + 0.5));
  }

  /**
   * The statistics view for a hidden set, built on first use after a change (one pass over the chunks) and
   * kept for the next searches of anyone with the same hidden set. Undefined when nothing is hidden: the
   * store-wide statistics are then the visible ones.
   */
  private view(s: VisibleStatistics | undefined): StatisticsView | undefined {
    if (s === undefined || s.hiddenGroups.size === 0) return undefined;
    const known = this.views.get(s.key);
    if (known !== undefined) {
      this.views.delete(s.key);
      if (known.generation === this.mutations) {
        this.views.set(s.key, known);
        return known;
      }
    }
    const visible = this.alive.slice(0, this.count);
    const hidden = s.hiddenGroups;
    const groups = this.groups;
    let liveCount = this.liveCount;
    const totals = this.fieldPostings.map((fp) => fp.totalLength);
    const lengths = this.fieldPostings.map((fp) => fp.lengths);
    // Chunks of one document are contiguous mostly: remember the last group's verdict.
    let lastGroup = -1;
    let lastHidden = false;
    for (let d = 0; d < this.count; d++) {
      if (visible[d] === 0) continue;
      const g = groups[d]!;
      if (g !== lastGroup) {
        lastGroup = g;
        lastHidden = hidden.has(g);
      }
      if (!lastHidden) continue;
      visible[d] = 0;
      liveCount--;
      for (let f = 0; f < totals.length; f++) totals[f]! -= lengths[f]![d]!;
    }
    const view: StatisticsView = {
      generation: this.mutations,
      visible,
      liveCount,
      fields: totals.map((totalLength) => {
        const normCache = new Float64Array(256);
        fillNorms(normCache, this.params, totalLength, liveCount);
        return { totalLength, avgdl: meanLength(totalLength, liveCount), normCache, df: new Map() };
      }),
    };
    this.views.set(s.key, view);
    if (this.views.size > VIEW_CACHE_SIZE) this.views.delete(this.views.keys().next().value!);
    return view;
  }

  /** Chunks visible in `view` that hold the term (counted over its postings once, then cached). */
  private visibleDf(fp: FieldPostings, fv: VisibleFieldStats, termId: number, visible: Uint8Array): number {
    let df = fv.df.get(termId);
    if (df !== undefined) return df;
    df = 0;
    if (termId < fp.offsets.length - 1) {
      const to = fp.offsets[termId + 1]!;
      for (let i = fp.offsets[termId]!; i < to; i++) df += visible[fp.docs[i]!]!;
    }
    const p = fp.delta.get(termId);
    if (p !== undefined) for (const d of p.docs) df += visible[d]!;
    fv.df.set(termId, df);
    return df;
  }

  /** idf of `term` in `field` over the chunks `statistics`' caller may read (store-wide when nothing is hidden). */
  visibleIdf(field: string, term: string, statistics: VisibleStatistics | undefined): number {
    const view = this.view(statistics);
    const df = this.visibleDocumentFrequency(field, term, statistics);
    return this.idf(df, view?.liveCount ?? this.liveCount);
  }

  /**
   * Live document frequency of `term` in `field` as `statistics`' caller sees it (store-wide when nothing is
   * hidden from it).
   */
  visibleDocumentFrequency(field: string, term: string, statistics: VisibleStatistics | undefined): number {
    const view = this.view(statistics);
    if (view === undefined) return this.documentFrequency(field, term);
    const f = this.fieldPostings.findIndex((x) => x.spec.name === field);
    const fp = this.fieldPostings[f];
    const id = fp?.termIds.get(term);
    return fp === undefined || id === undefined ? 0 : this.visibleDf(fp, view.fields[f]!, id, view.visible);
  }

  /**
   * Exact BM25 top-k. `queryTerms` are analyzed terms per field (duplicates weight the term, as Anserini's
   * bag-of-words queries do). Only chunks whose group passes `allowGroup` can enter the top-k.
   */
  search(queryTerms: Record<string, string[]>, opts: SearchOptions, stats?: SearchStats): ScoredChunk[] {
    if (this.normsDirty) this.refreshNorms();
    const acc = this.acc;
    const touched = this.touched;
    // With documents hidden from the caller, their chunks are neither counted nor scored: `alive` becomes
    // the caller's visible set, and N, df and avgdl are taken over it.
    const view = this.view(opts.statistics);
    const alive = view?.visible ?? this.alive;
    const n = view?.liveCount ?? this.liveCount;
    let nTouched = 0;
    const exact = this.params.lengthNorm === 'exact';
    const { k1, b } = this.params;
    if (stats) {
      stats.documents = n;
      stats.statistics = view === undefined ? 'store' : 'visible';
      stats.averageLengths = {};
    }

    for (let f = 0; f < this.fieldPostings.length; f++) {
      const fp = this.fieldPostings[f]!;
      const fv = view?.fields[f];
      const terms = queryTerms[fp.spec.name];
      if (terms === undefined || terms.length === 0 || fp.spec.weight === 0) continue;
      const tw = opts.termWeights?.[fp.spec.name];
      const normCache = fv?.normCache ?? fp.normCache;
      const normBytes = fp.normBytes;
      const lengths = fp.lengths;
      const avgdl = fv?.avgdl ?? meanLength(fp.totalLength, this.liveCount);
      if (stats?.averageLengths) stats.averageLengths[fp.spec.name] = avgdl;
      const nBase = fp.offsets.length - 1;
      for (let qi = 0; qi < terms.length; qi++) {
        const term = terms[qi]!;
        // Each distinct term once, weighted by its count in the query (Anserini's bag-of-words boost).
        let seenBefore = false;
        let count = tw === undefined ? 1 : (tw[qi] ?? 1);
        for (let j = 0; j < terms.length; j++) {
          if (terms[j] !== term) continue;
          if (j < qi) {
            seenBefore = true;
            break;
          }
          if (j > qi) count += tw === undefined ? 1 : (tw[j] ?? 1);
        }
        if (seenBefore) continue;
        const termId = fp.termIds.get(term);
        if (termId === undefined) continue;
        const df = fv === undefined ? fp.df[termId]! : this.visibleDf(fp, fv, termId, alive);
        if (df === 0) continue;
        const idf = this.idf(df, n);
        stats?.terms.push({ term, df, idf, field: fp.spec.name });
        const w = fp.spec.weight * count * idf;
        if (termId < nBase) {
          const docs = fp.docs;
          const tfs = fp.tfs;
          const to = fp.offsets[termId + 1]!;
          for (let i = fp.offsets[termId]!; i < to; i++) {
            const d = docs[i]!;
            if (alive[d] === 0) continue;
            const tf = tfs[i]!;
            const norm = exact ? k1 * (1 - b + (b * lengths[d]!) / avgdl) : normCache[normBytes[d]!]!;
            if (acc[d] === 0) touched[nTouched++] = d;
            acc[d]! += (w * tf) / (tf + norm);
          }
        }
        const p = fp.delta.get(termId);
        if (p !== undefined) {
          const docs = p.docs;
          const tfs = p.tfs;
          for (let i = 0; i < docs.length; i++) {
            const d = docs[i]!;
            if (alive[d] === 0) continue;
            const tf = tfs[i]!;
            const norm = exact ? k1 * (1 - b + (b * lengths[d]!) / avgdl) : normCache[normBytes[d]!]!;
            if (acc[d] === 0) touched[nTouched++] = d;
            acc[d]! += (w * tf) / (tf + norm);
          }
        }
      }
    }
    if (stats) stats.matched = nTouched;
    const result = this.selectTopK(nTouched, opts, stats);
    for (let i = 0; i < nTouched; i++) acc[touched[i]!] = 0;
    return result;
  }

  private selectTopK(nTouched: number, opts: SearchOptions, stats?: SearchStats): ScoredChunk[] {
    const k = Math.max(0, Math.floor(opts.k));
    if (k === 0 || nTouched === 0) return [];
    const acc = this.acc;
    const groups = this.groups;
    const touched = this.touched;
    const allow = opts.allowGroup;
    const verdicts = allow ? new Map<number, boolean>() : null;
    if (this.heapScore.length < k) {
      this.heapScore = new Float64Array(k);
      this.heapDoc = new Uint32Array(k);
    }
    const heap: Heap = { score: this.heapScore, doc: this.heapDoc, size: 0 };
    // Collapsing keeps one (best) chunk per group: the heap then holds at most one entry per group, and
    // `slotOfGroup` (at most k entries) finds a group's entry. No per-query structure over every match.
    const slotOfGroup = opts.collapseGroups ? new Map<number, number>() : null;
    let filteredOut = 0;
    for (let i = 0; i < nTouched; i++) {
      const d = touched[i]!;
      const s = acc[d]!;
      if (heap.size === k && !beats(s, d, heap.score[0]!, heap.doc[0]!)) continue;
      const g = groups[d]!;
      if (slotOfGroup !== null) {
        const slot = slotOfGroup.get(g);
        if (slot !== undefined) {
          // The group is already in: keep its better chunk (a stronger entry moves away from the root).
          if (beats(s, d, heap.score[slot]!, heap.doc[slot]!))
            siftDown(heap, slot, s, d, groups, slotOfGroup);
          continue;
        }
      }
      if (verdicts !== null && allow !== undefined) {
        let ok = verdicts.get(g);
        if (ok === undefined) {
          ok = allow(g);
          verdicts.set(g, ok);
        }
        if (!ok) {
          filteredOut++;
          continue;
        }
      }
      if (heap.size < k) heapPush(heap, s, d, groups, slotOfGroup);
      else {
        slotOfGroup?.delete(groups[heap.doc[0]!]!);
        siftDown(heap, 0, s, d, groups, slotOfGroup);
      }
    }
    if (stats) stats.filteredOut = filteredOut;
    const out: ScoredChunk[] = new Array(heap.size);
    for (let i = heap.size - 1; i >= 0; i--) {
      const d = heap.doc[0]!;
      out[i] = { chunkId: this.chunkIds[d]!, group: groups[d]!, score: heap.score[0]! };
      heapPopTop(heap);
    }
    return out;
  }

  /** Packed, dead-free arrays for persistence (compacts first). */
  snapshot(): Bm25IndexSnapshot {
    this.compact();
    return {
      params: this.params,
      fields: this.fields,
      count: this.count,
      chunkIds: this.chunkIds.subarray(0, this.count),
      groups: this.groups.subarray(0, this.count),
      perField: this.fieldPostings.map((fp) => ({
        terms: fp.terms,
        df: fp.df.subarray(0, fp.terms.length),
        offsets: fp.offsets,
        docs: fp.docs,
        tfs: fp.tfs,
        lengths: fp.lengths.subarray(0, this.count),
        normBytes: fp.normBytes.subarray(0, this.count),
        totalLength: fp.totalLength,
      })),
    };
  }

  static fromSnapshot(s: Bm25IndexSnapshot): Bm25Index {
    const index = new Bm25Index(s.params, s.fields);
    const cap = Math.max(s.count, INITIAL_CAPACITY);
    index.count = s.count;
    index.liveCount = s.count;
    index.chunkIds = new Uint32Array(cap);
    index.chunkIds.set(s.chunkIds);
    index.groups = new Uint32Array(cap);
    index.groups.set(s.groups);
    index.alive = new Uint8Array(cap);
    index.alive.fill(1, 0, s.count);
    for (let d = 0; d < s.count; d++) index.internalOf.set(s.chunkIds[d]!, d);
    s.perField.forEach((f, i) => {
      const fp = index.fieldPostings[i]!;
      for (const t of f.terms) fp.termId(t);
      fp.df.set(f.df);
      fp.offsets = f.offsets;
      fp.docs = f.docs;
      fp.tfs = f.tfs;
      fp.lengths = new Uint32Array(cap);
      fp.lengths.set(f.lengths);
      fp.normBytes = new Uint8Array(cap);
      fp.normBytes.set(f.normBytes);
      fp.totalLength = f.totalLength;
    });
    index.acc = new Float64Array(cap);
    index.touched = new Uint32Array(cap);
    return index;
  }

  /** Approximate heap bytes held by the index's arrays (for stats and benchmarks). */
  memoryBytes(): number {
    let bytes = this.chunkIds.byteLength + this.groups.byteLength + this.alive.byteLength;
    bytes += this.acc.byteLength + this.touched.byteLength + this.internalOf.size * 16;
    for (const fp of this.fieldPostings) {
      bytes += fp.offsets.byteLength + fp.docs.byteLength + fp.tfs.byteLength + fp.df.byteLength;
      bytes += fp.lengths.byteLength + fp.normBytes.byteLength + fp.deltaPostings * 16;
      for (const t of fp.terms) bytes += 40 + t.length * 2;
    }
    return bytes;
  }
}

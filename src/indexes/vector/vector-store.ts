/**
 * Flat vector storage shared by the exact and HNSW indexes: one contiguous growable Float32Array of
 * (prepared) vectors plus typed arrays for chunk id, document group and liveness per slot, and the exact
 * top-k scan with in-selection group filtering that both indexes use.
 */
import { QuarryError } from '../../errors.js';
import { assertChunkId, prepareVector, type VectorHit, type VectorIndexInfo } from './types.js';

const INITIAL_CAPACITY = 256;
/** Rough V8 cost of one Map entry (hash table slot, key, value, chain) for memory estimates. */
export const MAP_ENTRY_BYTES = 40;

/** Per-query memo of a group predicate over dense group ordinals (generation-stamped, no clearing). */
export class GroupFilter {
  private stamp = new Uint32Array(0);
  private value = new Uint8Array(0);
  private gen = 0;
  private pred: ((group: number) => boolean) | undefined;
  /** Distinct groups evaluated in the current query. */
  evaluated = 0;

  constructor(private readonly groupValues: number[]) {}

  begin(pred: (group: number) => boolean): void {
    const n = this.groupValues.length;
    if (this.stamp.length < n) {
      const cap = Math.max(n, this.stamp.length * 2, 64);
      this.stamp = new Uint32Array(cap);
      this.value = new Uint8Array(cap);
      this.gen = 0;
    }
    this.gen++;
    if (this.gen === 0xffff_ffff) {
      this.stamp.fill(0);
      this.gen = 1;
    }
    this.pred = pred;
    this.evaluated = 0;
  }

  allowed(ord: number): boolean {
    if (this.stamp[ord] === this.gen) return this.value[ord] === 1;
    const ok = this.pred!(this.groupValues[ord]!) === true;
    this.stamp[ord] = this.gen;
    this.value[ord] = ok ? 1 : 0;
    this.evaluated++;
    return ok;
  }
}

/** Bounded min-heap of (score, slot) whose root is the weakest kept entry; ties broken by chunk id. */
export class TopK {
  score = new Float64Array(16);
  slot = new Uint32Array(16);
  size = 0;
  k = 0;

  constructor(private readonly chunkIds: () => Uint32Array) {}

  reset(k: number): void {
    if (this.score.length < k) {
      this.score = new Float64Array(k);
      this.slot = new Uint32Array(k);
    }
    this.size = 0;
    this.k = k;
  }

  /** Lowest score that can still enter (−Infinity while not full). */
  get threshold(): number {
    return this.size < this.k ? Number.NEGATIVE_INFINITY : this.score[0]!;
  }

  /** a ranks above b: higher score, then lower chunk id (deterministic across compactions). */
  private beats(s1: number, slot1: number, s2: number, slot2: number): boolean {
    if (s1 !== s2) return s1 > s2;
    const ids = this.chunkIds();
    return ids[slot1]! < ids[slot2]!;
  }

  offer(s: number, slot: number): void {
    if (this.k === 0) return;
    if (this.size < this.k) {
      let c = this.size++;
      while (c > 0) {
        const p = (c - 1) >> 1;
        if (!this.beats(this.score[p]!, this.slot[p]!, s, slot)) break;
        this.score[c] = this.score[p]!;
        this.slot[c] = this.slot[p]!;
        c = p;
      }
      this.score[c] = s;
      this.slot[c] = slot;
      return;
    }
    if (!this.beats(s, slot, this.score[0]!, this.slot[0]!)) return;
    this.siftDown(s, slot);
  }

  private siftDown(s: number, slot: number): void {
    let i = 0;
    const n = this.size;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= n) break;
      const r = l + 1;
      let m = l;
      if (r < n && this.beats(this.score[l]!, this.slot[l]!, this.score[r]!, this.slot[r]!)) m = r;
      if (!this.beats(s, slot, this.score[m]!, this.slot[m]!)) break;
      this.score[i] = this.score[m]!;
      this.slot[i] = this.slot[m]!;
      i = m;
    }
    this.score[i] = s;
    this.slot[i] = slot;
  }

  /** Empties the heap into slots/scores, best first. */
  drain(): { slots: Uint32Array; scores: Float64Array } {
    const n = this.size;
    const slots = new Uint32Array(n);
    const scores = new Float64Array(n);
    for (let i = n - 1; i >= 0; i--) {
      slots[i] = this.slot[0]!;
      scores[i] = this.score[0]!;
      this.size--;
      if (this.size > 0) this.siftDown(this.score[this.size]!, this.slot[this.size]!);
    }
    return { slots, scores };
  }
}

/** Dot product of a[aOff..aOff+dim) and b[bOff..bOff+dim), 4-way unrolled, accumulated in doubles. */
export function dot(a: Float32Array, aOff: number, b: Float32Array, bOff: number, dim: number): number {
  let s0 = 0;
  let s1 = 0;
  let s2 = 0;
  let s3 = 0;
  let i = 0;
  const end4 = dim - (dim & 3);
  for (; i < end4; i += 4) {
    s0 += a[aOff + i]! * b[bOff + i]!;
    s1 += a[aOff + i + 1]! * b[bOff + i + 1]!;
    s2 += a[aOff + i + 2]! * b[bOff + i + 2]!;
    s3 += a[aOff + i + 3]! * b[bOff + i + 3]!;
  }
  for (; i < dim; i++) s0 += a[aOff + i]! * b[bOff + i]!;
  return s0 + s1 + (s2 + s3);
}

function grow<T extends Float32Array | Float64Array | Uint32Array | Uint8Array | Int8Array>(
  a: T,
  need: number,
): T {
  if (need <= a.length) return a;
  let cap = Math.max(a.length * 2, 16);
  while (cap < need) cap *= 2;
  const b = new (a.constructor as new (n: number) => T)(cap);
  b.set(a);
  return b;
}

/** A prepared query: the vector as stored vectors are (normalized for cosine) and its squared norm. */
export interface PreparedQuery {
  vector: Float32Array;
  sqNorm: number;
}

export class VectorStore {
  readonly dim: number;
  /** Slot-major vectors: slot s occupies [s·dim, (s+1)·dim). */
  vectors: Float32Array;
  chunkIds: Uint32Array;
  /** Dense ordinal of the slot's group (see `groupValues`). */
  groupOrd: Uint32Array;
  /** Squared norms (used by the l2 metric: ‖q−x‖² = ‖q‖² + ‖x‖² − 2q·x). */
  sqNorms: Float32Array;
  alive: Uint8Array;
  /** Slots allocated so far (live + dead). */
  count = 0;
  live = 0;
  readonly slotOf = new Map<number, number>();
  /** Group value per ordinal, and the reverse map. */
  readonly groupValues: number[] = [];
  private readonly groupOrdOf = new Map<number, number>();
  /** Dead slots available for reuse (only when `reuseSlots`; the HNSW index reuses graph nodes). */
  private readonly freeSlots: number[] = [];
  private readonly queryBuf: Float32Array;
  readonly heap: TopK;
  readonly filter: GroupFilter;

  constructor(
    readonly info: VectorIndexInfo,
    private readonly reuseSlots: boolean,
    capacity = INITIAL_CAPACITY,
  ) {
    this.dim = info.dimension;
    const cap = Math.max(1, capacity);
    this.vectors = new Float32Array(cap * this.dim);
    this.chunkIds = new Uint32Array(cap);
    this.groupOrd = new Uint32Array(cap);
    this.sqNorms = new Float32Array(cap);
    this.alive = new Uint8Array(cap);
    this.queryBuf = new Float32Array(this.dim);
    this.heap = new TopK(() => this.chunkIds);
    this.filter = new GroupFilter(this.groupValues);
  }

  get capacity(): number {
    return this.chunkIds.length;
  }

  get dead(): number {
    return this.count - this.live;
  }

  private ordOf(group: number): number {
    if (typeof group !== 'number' || Number.isNaN(group)) {
      throw new QuarryError('INVALID_ARGUMENT', `group must be a number, got ${String(group)}`, { group });
    }
    let ord = this.groupOrdOf.get(group);
    if (ord === undefined) {
      ord = this.groupValues.length;
      this.groupValues.push(group);
      this.groupOrdOf.set(group, ord);
    }
    return ord;
  }

  /** Throws as `insert` would on an invalid chunk id or vector, without storing anything. */
  validate(chunkId: number, vector: Float32Array): void {
    assertChunkId(chunkId);
    prepareVector(this.info, vector, `chunk ${chunkId}`, this.queryBuf);
  }

  /**
   * Validates and stores a vector; returns its slot. The caller must have removed an existing entry for
   * the chunk id first. Throws (storing nothing) on an invalid vector.
   */
  insert(chunkId: number, group: number, vector: Float32Array): number {
    assertChunkId(chunkId);
    // Validate into scratch first so a bad vector leaves no trace.
    prepareVector(this.info, vector, `chunk ${chunkId}`, this.queryBuf);
    const ord = this.ordOf(group);
    let slot: number;
    if (this.reuseSlots && this.freeSlots.length > 0) {
      slot = this.freeSlots.pop()!;
    } else {
      slot = this.count++;
      this.ensureCapacity(slot + 1);
    }
    this.vectors.set(this.queryBuf, slot * this.dim);
    this.sqNorms[slot] = dot(this.vectors, slot * this.dim, this.vectors, slot * this.dim, this.dim);
    this.chunkIds[slot] = chunkId;
    this.groupOrd[slot] = ord;
    this.alive[slot] = 1;
    this.slotOf.set(chunkId, slot);
    this.live++;
    return slot;
  }

  ensureCapacity(need: number): void {
    if (need <= this.capacity) return;
    let cap = Math.max(this.capacity * 2, INITIAL_CAPACITY);
    while (cap < need) cap *= 2;
    this.vectors = grow(this.vectors, cap * this.dim);
    this.chunkIds = grow(this.chunkIds, cap);
    this.groupOrd = grow(this.groupOrd, cap);
    this.sqNorms = grow(this.sqNorms, cap);
    this.alive = grow(this.alive, cap);
  }

  /** Marks a chunk's slot dead; returns the slot, or -1 when the chunk is not stored. */
  delete(chunkId: number): number {
    const slot = this.slotOf.get(chunkId);
    if (slot === undefined) return -1;
    this.slotOf.delete(chunkId);
    this.alive[slot] = 0;
    this.live--;
    if (this.reuseSlots) this.freeSlots.push(slot);
    return slot;
  }

  /**
   * Drops dead slots, moving live ones down in order. Returns the old→new slot map (−1 = dropped).
   * Only for stores that do not reuse slots (an HNSW graph's labels are slots).
   */
  compact(): Int32Array {
    const remap = new Int32Array(this.count).fill(-1);
    const dim = this.dim;
    let w = 0;
    for (let s = 0; s < this.count; s++) {
      if (this.alive[s] !== 1) continue;
      remap[s] = w;
      if (w !== s) {
        this.vectors.copyWithin(w * dim, s * dim, (s + 1) * dim);
        this.chunkIds[w] = this.chunkIds[s]!;
        this.groupOrd[w] = this.groupOrd[s]!;
        this.sqNorms[w] = this.sqNorms[s]!;
        this.slotOf.set(this.chunkIds[w]!, w);
      }
      w++;
    }
    this.alive.fill(1, 0, w);
    this.alive.fill(0, w, this.count);
    this.count = w;
    return remap;
  }

  /** Validates a query and prepares it like stored vectors (into a reused buffer). */
  prepareQuery(query: Float32Array): PreparedQuery {
    prepareVector(this.info, query, 'query', this.queryBuf);
    const sq = dot(this.queryBuf, 0, this.queryBuf, 0, this.dim);
    return { vector: this.queryBuf, sqNorm: sq };
  }

  /** Exact score of slot against a prepared query. */
  score(q: PreparedQuery, slot: number): number {
    const d = dot(q.vector, 0, this.vectors, slot * this.dim, this.dim);
    return this.info.metric === 'l2' ? 2 * d - this.sqNorms[slot]! - q.sqNorm : d;
  }

  /**
   * Exact top-k over live slots; with a predicate, only slots of admissible groups are scored, so k results
   * come back whenever k admissible vectors exist. Call `filter.begin` before passing `filtered: true`.
   */
  scanTopK(q: PreparedQuery, k: number, filtered: boolean): VectorHit[] {
    const heap = this.heap;
    heap.reset(k);
    if (k === 0) return [];
    const { dim, vectors, alive, groupOrd, sqNorms, filter } = this;
    const qv = q.vector;
    const l2 = this.info.metric === 'l2';
    for (let s = 0, off = 0; s < this.count; s++, off += dim) {
      if (alive[s] !== 1) continue;
      if (filtered && !filter.allowed(groupOrd[s]!)) continue;
      const d = dot(qv, 0, vectors, off, dim);
      const score = l2 ? 2 * d - sqNorms[s]! - q.sqNorm : d;
      if (score >= heap.threshold) heap.offer(score, s);
    }
    return this.hitsFromHeap();
  }

  /** Rescores candidate slots exactly and returns the best k. */
  rescore(q: PreparedQuery, slots: ArrayLike<number>, n: number, k: number): VectorHit[] {
    const heap = this.heap;
    heap.reset(k);
    for (let i = 0; i < n; i++) {
      const s = slots[i]!;
      heap.offer(this.score(q, s), s);
    }
    return this.hitsFromHeap();
  }

  hitsFromHeap(): VectorHit[] {
    const { slots, scores } = this.heap.drain();
    const out: VectorHit[] = new Array(slots.length);
    for (let i = 0; i < slots.length; i++) {
      const s = slots[i]!;
      out[i] = { chunkId: this.chunkIds[s]!, group: this.groupValues[this.groupOrd[s]!]!, score: scores[i]! };
    }
    return out;
  }

  group(slot: number): number {
    return this.groupValues[this.groupOrd[slot]!]!;
  }

  /** Bytes held: typed arrays at capacity plus estimated lookup-table entries. */
  memoryBytes(): number {
    return (
      this.vectors.byteLength +
      this.chunkIds.byteLength +
      this.groupOrd.byteLength +
      this.sqNorms.byteLength +
      this.alive.byteLength +
      this.slotOf.size * MAP_ENTRY_BYTES +
      this.groupValues.length * (MAP_ENTRY_BYTES + 8) +
      this.freeSlots.length * 8
    );
  }

  /** Live slots in slot order (for building another index from this one). */
  *liveSlots(): Generator<number> {
    for (let s = 0; s < this.count; s++) if (this.alive[s] === 1) yield s;
  }

  /** Raw (prepared) vector of a slot, as a view. */
  vectorView(slot: number): Float32Array {
    return this.vectors.subarray(slot * this.dim, (slot + 1) * this.dim);
  }

  /** Restores a store from persisted arrays (slots in order; dead slots keep their place when reusing). */
  static restore(
    info: VectorIndexInfo,
    reuseSlots: boolean,
    data: { chunkIds: Uint32Array; groups: Float64Array; alive: Uint8Array; vectors: Float32Array },
  ): VectorStore {
    const n = data.chunkIds.length;
    const store = new VectorStore(info, reuseSlots, Math.max(n, INITIAL_CAPACITY));
    const dim = info.dimension;
    if (data.groups.length !== n || data.alive.length !== n || data.vectors.length !== n * dim) {
      throw new Error('vector store arrays disagree in length');
    }
    store.vectors.set(data.vectors);
    store.chunkIds.set(data.chunkIds);
    store.count = n;
    for (let s = 0; s < n; s++) {
      store.groupOrd[s] = store.ordOf(data.groups[s]!);
      store.sqNorms[s] = dot(store.vectors, s * dim, store.vectors, s * dim, dim);
      if (data.alive[s] === 1) {
        const id = data.chunkIds[s]!;
        if (store.slotOf.has(id)) throw new Error(`chunk ${id} stored twice`);
        store.alive[s] = 1;
        store.slotOf.set(id, s);
        store.live++;
      } else if (reuseSlots) {
        store.freeSlots.push(s);
      }
    }
    return store;
  }

  /** Persistable copies of the used part of the arrays. */
  exportArrays(): { chunkIds: Uint32Array; groups: Float64Array; alive: Uint8Array; vectors: Float32Array } {
    const n = this.count;
    const groups = new Float64Array(n);
    for (let s = 0; s < n; s++) groups[s] = this.groupValues[this.groupOrd[s]!]!;
    return {
      chunkIds: this.chunkIds.slice(0, n),
      groups,
      alive: this.alive.slice(0, n),
      vectors: this.vectors.slice(0, n * this.dim),
    };
  }
}

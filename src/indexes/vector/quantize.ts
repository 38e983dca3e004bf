/**
 * Compressed codes for the exact index's candidate pass: int8 (per-vector scale) or binary (sign bits).
 * The float vectors stay in the store; codes only pick a candidate pool that is then rescored exactly, so
 * quantization trades memory for speed and never changes a returned score.
 */
import type { GroupFilter, PreparedQuery, VectorStore } from './vector-store.js';

export type Quantization = 'none' | 'int8' | 'binary';

export interface Quantizer {
  readonly kind: Exclude<Quantization, 'none'>;
  /** Encode the (prepared) vector stored at `slot`. */
  encode(store: VectorStore, slot: number): void;
  /** Follow a store compaction (old slot → new slot, −1 = dropped). */
  compact(remap: Int32Array, newCount: number): void;
  /**
   * Up to `pool` candidate slots with the best approximate scores among live (and, when `filter` is given,
   * admissible) slots. Returns the buffer and how many entries are valid.
   */
  candidates(
    store: VectorStore,
    q: PreparedQuery,
    pool: number,
    filter: GroupFilter | null,
  ): { slots: Uint32Array; n: number };
  memoryBytes(): number;
}

function growTo<T extends Int8Array | Float32Array | Uint32Array>(a: T, need: number): T {
  if (need <= a.length) return a;
  let cap = Math.max(a.length * 2, 256);
  while (cap < need) cap *= 2;
  const b = new (a.constructor as new (n: number) => T)(cap);
  b.set(a);
  return b;
}

/** Symmetric int8: x ≈ scale · code, scale = max|x| / 127 per vector. */
export class Int8Quantizer implements Quantizer {
  readonly kind = 'int8' as const;
  private codes = new Int8Array(0);
  private scales = new Float32Array(0);
  private readonly qCodes: Int32Array;
  private poolScore = new Float64Array(0);
  private poolSlot = new Uint32Array(0);

  constructor(private readonly dim: number) {
    this.qCodes = new Int32Array(dim);
  }

  encode(store: VectorStore, slot: number): void {
    const dim = this.dim;
    this.codes = growTo(this.codes, (slot + 1) * dim);
    this.scales = growTo(this.scales, slot + 1);
    const v = store.vectors;
    const off = slot * dim;
    let max = 0;
    for (let i = 0; i < dim; i++) max = Math.max(max, Math.abs(v[off + i]!));
    const scale = max / 127;
    const inv = scale > 0 ? 1 / scale : 0;
    for (let i = 0; i < dim; i++) this.codes[off + i] = Math.round(v[off + i]! * inv);
    this.scales[slot] = scale;
  }

  compact(remap: Int32Array): void {
    const dim = this.dim;
    for (let s = 0; s < remap.length; s++) {
      const to = remap[s]!;
      if (to < 0 || to === s) continue;
      this.codes.copyWithin(to * dim, s * dim, (s + 1) * dim);
      this.scales[to] = this.scales[s]!;
    }
  }

  candidates(
    store: VectorStore,
    q: PreparedQuery,
    pool: number,
    filter: GroupFilter | null,
  ): { slots: Uint32Array; n: number } {
    const dim = this.dim;
    const qv = q.vector;
    let max = 0;
    for (let i = 0; i < dim; i++) max = Math.max(max, Math.abs(qv[i]!));
    const qInv = max > 0 ? 127 / max : 0;
    const qScale = max / 127;
    const qc = this.qCodes;
    for (let i = 0; i < dim; i++) qc[i] = Math.round(qv[i]! * qInv);
    if (this.poolScore.length < pool) {
      this.poolScore = new Float64Array(pool);
      this.poolSlot = new Uint32Array(pool);
    }
    // Min-heap on approximate score (ties need no determinism here: the pool is rescored exactly).
    const hs = this.poolScore;
    const hSlot = this.poolSlot;
    let size = 0;
    const { alive, groupOrd, sqNorms } = store;
    const codes = this.codes;
    const scales = this.scales;
    const l2 = store.info.metric === 'l2';
    const end4 = dim - (dim & 3);
    for (let s = 0, off = 0; s < store.count; s++, off += dim) {
      if (alive[s] !== 1) continue;
      if (filter !== null && !filter.allowed(groupOrd[s]!)) continue;
      let a0 = 0;
      let a1 = 0;
      let i = 0;
      for (; i < end4; i += 4) {
        a0 += qc[i]! * codes[off + i]! + qc[i + 1]! * codes[off + i + 1]!;
        a1 += qc[i + 2]! * codes[off + i + 2]! + qc[i + 3]! * codes[off + i + 3]!;
      }
      for (; i < dim; i++) a0 += qc[i]! * codes[off + i]!;
      const d = (a0 + a1) * qScale * scales[s]!;
      const score = l2 ? 2 * d - sqNorms[s]! : d;
      if (size < pool) {
        let c = size++;
        while (c > 0) {
          const p = (c - 1) >> 1;
          if (hs[p]! <= score) break;
          hs[c] = hs[p]!;
          hSlot[c] = hSlot[p]!;
          c = p;
        }
        hs[c] = score;
        hSlot[c] = s;
      } else if (score > hs[0]!) {
        let i2 = 0;
        for (;;) {
          const l = 2 * i2 + 1;
          if (l >= size) break;
          const r = l + 1;
          const m = r < size && hs[r]! < hs[l]! ? r : l;
          if (hs[m]! >= score) break;
          hs[i2] = hs[m]!;
          hSlot[i2] = hSlot[m]!;
          i2 = m;
        }
        hs[i2] = score;
        hSlot[i2] = s;
      }
    }
    return { slots: hSlot, n: size };
  }

  memoryBytes(): number {
    return (
      this.codes.byteLength + this.scales.byteLength + this.poolScore.byteLength + this.poolSlot.byteLength
    );
  }
}

function popcount32(x: number): number {
  let v = x - ((x >>> 1) & 0x55555555);
  v = (v & 0x33333333) + ((v >>> 2) & 0x33333333);
  v = (v + (v >>> 4)) & 0x0f0f0f0f;
  return Math.imul(v, 0x01010101) >>> 24;
}

/** One bit per dimension (x > 0); candidates by Hamming distance, selected with a histogram (no heap). */
export class BinaryQuantizer implements Quantizer {
  readonly kind = 'binary' as const;
  private readonly words: number;
  private bits = new Uint32Array(0);
  private readonly qBits: Uint32Array;
  private dist = new Uint32Array(0);
  private out = new Uint32Array(0);
  private readonly hist: Uint32Array;

  constructor(private readonly dim: number) {
    this.words = Math.ceil(dim / 32);
    this.qBits = new Uint32Array(this.words);
    this.hist = new Uint32Array(dim + 2);
  }

  private static pack(
    src: Float32Array,
    off: number,
    dim: number,
    out: Uint32Array,
    outOff: number,
    w: number,
  ): void {
    for (let j = 0; j < w; j++) {
      let word = 0;
      const base = off + j * 32;
      const end = Math.min(32, dim - j * 32);
      for (let b = 0; b < end; b++) if (src[base + b]! > 0) word |= 1 << b;
      out[outOff + j] = word >>> 0;
    }
  }

  encode(store: VectorStore, slot: number): void {
    this.bits = growTo(this.bits, (slot + 1) * this.words);
    BinaryQuantizer.pack(store.vectors, slot * this.dim, this.dim, this.bits, slot * this.words, this.words);
  }

  compact(remap: Int32Array): void {
    const w = this.words;
    for (let s = 0; s < remap.length; s++) {
      const to = remap[s]!;
      if (to < 0 || to === s) continue;
      this.bits.copyWithin(to * w, s * w, (s + 1) * w);
    }
  }

  candidates(
    store: VectorStore,
    q: PreparedQuery,
    pool: number,
    filter: GroupFilter | null,
  ): { slots: Uint32Array; n: number } {
    const w = this.words;
    BinaryQuantizer.pack(q.vector, 0, this.dim, this.qBits, 0, w);
    const n = store.count;
    if (this.dist.length < n) this.dist = new Uint32Array(store.capacity);
    const dist = this.dist;
    const hist = this.hist;
    hist.fill(0);
    const { alive, groupOrd } = store;
    const bits = this.bits;
    const qb = this.qBits;
    const NONE = this.dim + 1;
    for (let s = 0, off = 0; s < n; s++, off += w) {
      if (alive[s] !== 1 || (filter !== null && !filter.allowed(groupOrd[s]!))) {
        dist[s] = NONE;
        continue;
      }
      let h = 0;
      for (let j = 0; j < w; j++) h += popcount32(qb[j]! ^ bits[off + j]!);
      dist[s] = h;
      hist[h]!++;
    }
    // A filter leaves few admissible vectors, and those are farther from the query, where Hamming ranks
    // worst: when at most 8 pools' worth are admissible, rescore them all (cheap, and exact).
    let admissible = 0;
    for (let h = 0; h <= this.dim; h++) admissible += hist[h]!;
    const take = filter !== null && admissible <= 8 * pool ? admissible : pool;
    // Smallest cutoff c with |{dist ≤ c}| ≥ take; take all below c and as many at c as fit.
    let cut = 0;
    let below = 0;
    while (cut <= this.dim && below + hist[cut]! < take) below += hist[cut++]!;
    if (this.out.length < take) this.out = new Uint32Array(take);
    const out = this.out;
    let m = 0;
    // cut > dim: fewer admissible slots than the pool; take them all (and never the NONE markers).
    let atCut = cut > this.dim ? 0 : take - below;
    for (let s = 0; s < n && m < take; s++) {
      const d = dist[s]!;
      if (d < cut) out[m++] = s;
      else if (d === cut && atCut > 0) {
        out[m++] = s;
        atCut--;
      }
    }
    return { slots: out, n: m };
  }

  memoryBytes(): number {
    return this.bits.byteLength + this.dist.byteLength + this.out.byteLength;
  }
}

export function createQuantizer(kind: Quantization, dim: number): Quantizer | null {
  if (kind === 'int8') return new Int8Quantizer(dim);
  if (kind === 'binary') return new BinaryQuantizer(dim);
  return null;
}

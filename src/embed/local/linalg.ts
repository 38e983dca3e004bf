/**
 * The linear algebra behind the built-in embedders, written for this hot path instead of pulled in as a
 * dependency: a seeded PRNG, a sparse matrix in CSR typed arrays, sparse × dense products, orthonormalization,
 * a symmetric eigensolver and randomized truncated SVD (Halko, Martinsson & Tropp 2011, algorithms 4.4 + 5.1).
 *
 * Dense matrices are row-major Float64Arrays (`rows × cols`). Row-major keeps every inner loop of the
 * sparse products contiguous: `A·X` adds scaled rows of X, `Aᵀ·Y` scatters scaled rows of Y.
 */

/** A dense row-major matrix. */
export interface DenseMatrix {
  rows: number;
  cols: number;
  data: Float64Array;
}

/** A sparse matrix in compressed sparse row form. Column indices within a row need not be sorted. */
export interface CsrMatrix {
  rows: number;
  cols: number;
  /** `rows + 1` offsets into `indices`/`values`. */
  indptr: Int32Array;
  indices: Int32Array;
  values: Float32Array;
}

/** SplitMix64-quality 32-bit generator (mulberry32): fast, tiny state, fully determined by the seed. */
export class Prng {
  private state: number;
  private spare: number | undefined;

  constructor(seed: number) {
    this.state = seed >>> 0;
  }

  /** Uniform in [0, 1). */
  next(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  /** Standard normal (Box–Muller, both values used). */
  gaussian(): number {
    if (this.spare !== undefined) {
      const s = this.spare;
      this.spare = undefined;
      return s;
    }
    let u = 0;
    while (u === 0) u = this.next();
    const v = this.next();
    const r = Math.sqrt(-2 * Math.log(u));
    this.spare = r * Math.sin(2 * Math.PI * v);
    return r * Math.cos(2 * Math.PI * v);
  }
}

export function dense(rows: number, cols: number, data?: Float64Array): DenseMatrix {
  return { rows, cols, data: data ?? new Float64Array(rows * cols) };
}

/**
 * `A · X` for CSR `A` (m×n) and dense `X` (n×l): m×l. Each output row gathers rows of X; four non-zeros
 * are folded per pass so the output row is loaded and stored a quarter as often.
 */
export function csrTimesDense(a: CsrMatrix, x: DenseMatrix): DenseMatrix {
  if (x.rows !== a.cols) throw new Error(`shape mismatch: ${a.rows}×${a.cols} · ${x.rows}×${x.cols}`);
  const l = x.cols;
  const out = new Float64Array(a.rows * l);
  const xd = x.data;
  const { indptr, indices, values } = a;
  for (let i = 0; i < a.rows; i++) {
    const o = i * l;
    const end = indptr[i + 1]!;
    let p = indptr[i]!;
    for (; p + 4 <= end; p += 4) {
      const v0 = values[p]!;
      const v1 = values[p + 1]!;
      const v2 = values[p + 2]!;
      const v3 = values[p + 3]!;
      const s0 = indices[p]! * l;
      const s1 = indices[p + 1]! * l;
      const s2 = indices[p + 2]! * l;
      const s3 = indices[p + 3]! * l;
      for (let c = 0; c < l; c++) {
        out[o + c]! += v0 * xd[s0 + c]! + v1 * xd[s1 + c]! + v2 * xd[s2 + c]! + v3 * xd[s3 + c]!;
      }
    }
    for (; p < end; p++) {
      const v = values[p]!;
      const src = indices[p]! * l;
      for (let c = 0; c < l; c++) out[o + c]! += v * xd[src + c]!;
    }
  }
  return dense(a.rows, l, out);
}

/** The transpose of a CSR matrix, as CSR (a counting sort by column: O(nnz)). */
export function csrTranspose(a: CsrMatrix): CsrMatrix {
  const nnz = a.indptr[a.rows]!;
  const indptr = new Int32Array(a.cols + 1);
  for (let p = 0; p < nnz; p++) indptr[a.indices[p]! + 1]!++;
  for (let j = 0; j < a.cols; j++) indptr[j + 1]! += indptr[j]!;
  const next = indptr.slice(0, a.cols);
  const indices = new Int32Array(nnz);
  const values = new Float32Array(nnz);
  for (let i = 0; i < a.rows; i++) {
    for (let p = a.indptr[i]!; p < a.indptr[i + 1]!; p++) {
      const q = next[a.indices[p]!]!++;
      indices[q] = i;
      values[q] = a.values[p]!;
    }
  }
  return { rows: a.cols, cols: a.rows, indptr, indices, values };
}

/** `Aᵀ · Y` for CSR `A` (m×n) and dense `Y` (m×l): n×l (scatter form; {@link randomizedSvd} gathers via the transpose). */
export function csrTransposeTimesDense(a: CsrMatrix, y: DenseMatrix): DenseMatrix {
  if (y.rows !== a.rows) throw new Error(`shape mismatch: (${a.rows}×${a.cols})ᵀ · ${y.rows}×${y.cols}`);
  const l = y.cols;
  const out = new Float64Array(a.cols * l);
  const yd = y.data;
  for (let i = 0; i < a.rows; i++) {
    const src = i * l;
    for (let p = a.indptr[i]!; p < a.indptr[i + 1]!; p++) {
      const v = a.values[p]!;
      const o = a.indices[p]! * l;
      for (let c = 0; c < l; c++) out[o + c]! += v * yd[src + c]!;
    }
  }
  return dense(a.cols, l, out);
}

/** `Xᵀ · X` (l×l, symmetric, both triangles filled). Rows are taken four at a time to cut traffic on G. */
export function gram(x: DenseMatrix): Float64Array {
  const l = x.cols;
  const g = new Float64Array(l * l);
  const d = x.data;
  const rows = x.rows;
  let r = 0;
  for (; r + 4 <= rows; r += 4) {
    const o0 = r * l;
    const o1 = o0 + l;
    const o2 = o1 + l;
    const o3 = o2 + l;
    for (let a = 0; a < l; a++) {
      const a0 = d[o0 + a]!;
      const a1 = d[o1 + a]!;
      const a2 = d[o2 + a]!;
      const a3 = d[o3 + a]!;
      if (a0 === 0 && a1 === 0 && a2 === 0 && a3 === 0) continue;
      const ga = a * l;
      for (let b = a; b < l; b++) {
        g[ga + b]! += a0 * d[o0 + b]! + a1 * d[o1 + b]! + a2 * d[o2 + b]! + a3 * d[o3 + b]!;
      }
    }
  }
  for (; r < rows; r++) {
    const o = r * l;
    for (let a = 0; a < l; a++) {
      const va = d[o + a]!;
      if (va === 0) continue;
      const ga = a * l;
      for (let b = a; b < l; b++) g[ga + b]! += va * d[o + b]!;
    }
  }
  for (let a = 0; a < l; a++) for (let b = 0; b < a; b++) g[a * l + b] = g[b * l + a]!;
  return g;
}

/** `Xᵀ · Y` for X (m×l) and Y (m×c): l×c. */
export function crossGram(x: DenseMatrix, y: DenseMatrix): Float64Array {
  if (x.rows !== y.rows) throw new Error(`shape mismatch: (${x.rows}×${x.cols})ᵀ · ${y.rows}×${y.cols}`);
  const l = x.cols;
  const c = y.cols;
  const g = new Float64Array(l * c);
  const xd = x.data;
  const yd = y.data;
  for (let r = 0; r < x.rows; r++) {
    const ox = r * l;
    const oy = r * c;
    for (let a = 0; a < l; a++) {
      const va = xd[ox + a]!;
      if (va === 0) continue;
      const ga = a * c;
      for (let b = 0; b < c; b++) g[ga + b]! += va * yd[oy + b]!;
    }
  }
  return g;
}

/** `X · M` for dense X (m×l) and a row-major l×c matrix M: m×c. Rows four at a time (one load of M feeds four). */
export function timesSmall(x: DenseMatrix, m: Float64Array, c: number): DenseMatrix {
  const l = x.cols;
  if (m.length !== l * c) throw new Error(`shape mismatch: ${x.rows}×${l} · ${m.length / c}×${c}`);
  const rows = x.rows;
  const out = new Float64Array(rows * c);
  const d = x.data;
  let r = 0;
  for (; r + 4 <= rows; r += 4) {
    const i0 = r * l;
    const w0 = r * c;
    const w1 = w0 + c;
    const w2 = w1 + c;
    const w3 = w2 + c;
    for (let a = 0; a < l; a++) {
      const v0 = d[i0 + a]!;
      const v1 = d[i0 + l + a]!;
      const v2 = d[i0 + 2 * l + a]!;
      const v3 = d[i0 + 3 * l + a]!;
      const ma = a * c;
      for (let b = 0; b < c; b++) {
        const mb = m[ma + b]!;
        out[w0 + b]! += v0 * mb;
        out[w1 + b]! += v1 * mb;
        out[w2 + b]! += v2 * mb;
        out[w3 + b]! += v3 * mb;
      }
    }
  }
  for (; r < rows; r++) {
    const o = r * l;
    const w = r * c;
    for (let a = 0; a < l; a++) {
      const va = d[o + a]!;
      if (va === 0) continue;
      const ma = a * c;
      for (let b = 0; b < c; b++) out[w + b]! += va * m[ma + b]!;
    }
  }
  return dense(rows, c, out);
}

export interface SymmetricEigen {
  /** Eigenvalues, descending. */
  values: Float64Array;
  /** Eigenvectors as the columns of a row-major n×n matrix, in the order of `values`. */
  vectors: Float64Array;
}

/**
 * Eigen-decomposition of a symmetric n×n matrix (row-major; only symmetry is assumed, not definiteness):
 * Householder tridiagonalization then the implicit QL algorithm (EISPACK tred2/tql2, as in JAMA).
 * O(n³) with a small constant; for the l ≈ k + 10 sized problems of randomized SVD.
 */
export function symmetricEigen(matrix: Float64Array, n: number): SymmetricEigen {
  if (matrix.length !== n * n) throw new Error(`expected ${n}×${n} values, got ${matrix.length}`);
  const V = Float64Array.from(matrix);
  const d = new Float64Array(n);
  const e = new Float64Array(n);
  if (n === 0) return { values: d, vectors: V };
  tred2(V, d, e, n);
  tql2(V, d, e, n);
  // Sort descending.
  const order = Array.from({ length: n }, (_, i) => i).sort((a, b) => d[b]! - d[a]!);
  const values = new Float64Array(n);
  const vectors = new Float64Array(n * n);
  order.forEach((src, dst) => {
    values[dst] = d[src]!;
    for (let r = 0; r < n; r++) vectors[r * n + dst] = V[r * n + src]!;
  });
  return { values, vectors };
}

function tred2(V: Float64Array, d: Float64Array, e: Float64Array, n: number): void {
  for (let j = 0; j < n; j++) d[j] = V[(n - 1) * n + j]!;
  for (let i = n - 1; i > 0; i--) {
    let scale = 0;
    let h = 0;
    for (let k = 0; k < i; k++) scale += Math.abs(d[k]!);
    if (scale === 0) {
      e[i] = d[i - 1]!;
      for (let j = 0; j < i; j++) {
        d[j] = V[(i - 1) * n + j]!;
        V[i * n + j] = 0;
        V[j * n + i] = 0;
      }
    } else {
      for (let k = 0; k < i; k++) {
        d[k]! /= scale;
        h += d[k]! * d[k]!;
      }
      let f = d[i - 1]!;
      let g = Math.sqrt(h);
      if (f > 0) g = -g;
      e[i] = scale * g;
      h -= f * g;
      d[i - 1] = f - g;
      for (let j = 0; j < i; j++) e[j] = 0;
      for (let j = 0; j < i; j++) {
        f = d[j]!;
        V[j * n + i] = f;
        g = e[j]! + V[j * n + j]! * f;
        for (let k = j + 1; k <= i - 1; k++) {
          g += V[k * n + j]! * d[k]!;
          e[k]! += V[k * n + j]! * f;
        }
        e[j] = g;
      }
      f = 0;
      for (let j = 0; j < i; j++) {
        e[j]! /= h;
        f += e[j]! * d[j]!;
      }
      const hh = f / (h + h);
      for (let j = 0; j < i; j++) e[j]! -= hh * d[j]!;
      for (let j = 0; j < i; j++) {
        f = d[j]!;
        g = e[j]!;
        for (let k = j; k <= i - 1; k++) V[k * n + j]! -= f * e[k]! + g * d[k]!;
        d[j] = V[(i - 1) * n + j]!;
        V[i * n + j] = 0;
      }
    }
    d[i] = h;
  }
  for (let i = 0; i < n - 1; i++) {
    V[(n - 1) * n + i] = V[i * n + i]!;
    V[i * n + i] = 1;
    const h = d[i + 1]!;
    if (h !== 0) {
      for (let k = 0; k <= i; k++) d[k] = V[k * n + i + 1]! / h;
      for (let j = 0; j <= i; j++) {
        let g = 0;
        for (let k = 0; k <= i; k++) g += V[k * n + i + 1]! * V[k * n + j]!;
        for (let k = 0; k <= i; k++) V[k * n + j]! -= g * d[k]!;
      }
    }
    for (let k = 0; k <= i; k++) V[k * n + i + 1] = 0;
  }
  for (let j = 0; j < n; j++) {
    d[j] = V[(n - 1) * n + j]!;
    V[(n - 1) * n + j] = 0;
  }
  V[(n - 1) * n + n - 1] = 1;
  e[0] = 0;
}

function tql2(V: Float64Array, d: Float64Array, e: Float64Array, n: number): void {
  for (let i = 1; i < n; i++) e[i - 1] = e[i]!;
  e[n - 1] = 0;
  let f = 0;
  let tst1 = 0;
  const eps = 2 ** -52;
  for (let l = 0; l < n; l++) {
    tst1 = Math.max(tst1, Math.abs(d[l]!) + Math.abs(e[l]!));
    let m = l;
    while (m < n) {
      if (Math.abs(e[m]!) <= eps * tst1) break;
      m++;
    }
    if (m > l) {
      let iter = 0;
      do {
        if (++iter > 200) throw new Error('symmetricEigen: QL iteration did not converge');
        let g = d[l]!;
        let p = (d[l + 1]! - g) / (2 * e[l]!);
        let r = Math.hypot(p, 1);
        if (p < 0) r = -r;
        d[l] = e[l]! / (p + r);
        d[l + 1] = e[l]! * (p + r);
        const dl1 = d[l + 1]!;
        let h = g - d[l]!;
        for (let i = l + 2; i < n; i++) d[i]! -= h;
        f += h;
        p = d[m]!;
        let c = 1;
        let c2 = c;
        let c3 = c;
        const el1 = e[l + 1]!;
        let s = 0;
        let s2 = 0;
        for (let i = m - 1; i >= l; i--) {
          c3 = c2;
          c2 = c;
          s2 = s;
          g = c * e[i]!;
          h = c * p;
          r = Math.hypot(p, e[i]!);
          e[i + 1] = s * r;
          s = e[i]! / r;
          c = p / r;
          p = c * d[i]! - s * g;
          d[i + 1] = h + s * (c * g + s * d[i]!);
          for (let k = 0; k < n; k++) {
            const row = k * n;
            h = V[row + i + 1]!;
            V[row + i + 1] = s * V[row + i]! + c * h;
            V[row + i] = c * V[row + i]! - s * h;
          }
        }
        p = (-s * s2 * c3 * el1 * e[l]!) / dl1;
        e[l] = s * p;
        d[l] = c * p;
      } while (Math.abs(e[l]!) > eps * tst1);
    }
    d[l]! += f;
    e[l] = 0;
  }
}

/**
 * Orthonormalizes the columns of X in place of a QR factorization, by SVQB: with XᵀX = W Λ Wᵀ,
 * Q = X · W · Λ^(-1/2). Directions with λ ≤ tol · λ_max (numerically dependent columns) become zero
 * columns instead of amplified noise, so rank-deficient inputs are safe. Columns of Q span range(X).
 * Cost: one Gram (m·l²/2), one l×l eigensolve, one m×l by l×l product.
 */
export function orthonormalize(x: DenseMatrix, tol = 1e-12): DenseMatrix {
  const l = x.cols;
  const eig = symmetricEigen(gram(x), l);
  const lmax = Math.max(eig.values[0] ?? 0, 0);
  const m = new Float64Array(l * l);
  for (let j = 0; j < l; j++) {
    const lambda = eig.values[j]!;
    if (!(lambda > tol * lmax) || lambda <= 0) continue;
    const s = 1 / Math.sqrt(lambda);
    for (let r = 0; r < l; r++) m[r * l + j] = eig.vectors[r * l + j]! * s;
  }
  return timesSmall(x, m, l);
}

export interface SvdOptions {
  /** Extra random directions beyond k (Halko's p). Default 10. */
  oversampling?: number;
  /** Power (subspace) iterations, each re-orthonormalized. Default 2. */
  powerIterations?: number;
  seed?: number;
  /** Also return U (m×k); LSA only needs Σ and V. Default false. */
  computeU?: boolean;
}

export interface TruncatedSvd {
  /** Number of singular triplets returned (≤ requested k when the matrix is smaller or rank-deficient). */
  k: number;
  /** Singular values, descending. */
  s: Float64Array;
  /** Right singular vectors, n×k row-major (row j = term j). */
  v: DenseMatrix;
  /** Left singular vectors, m×k row-major, when requested. */
  u?: DenseMatrix;
}

/** A linear operator given by its products with dense blocks: `A·X` and `Aᵀ·Y`. */
interface Operator {
  rows: number;
  cols: number;
  times(x: DenseMatrix): DenseMatrix;
  transposeTimes(y: DenseMatrix): DenseMatrix;
}

/**
 * Randomized truncated SVD of a sparse m×n matrix: A ≈ U·diag(s)·Vᵀ with the top k triplets.
 *
 * Range finder (Halko et al. 2011, alg. 4.4): a seeded Gaussian test matrix, then `powerIterations` rounds of
 * Q ← orth(A·Aᵀ·Q). The basis lives on the smaller side of A (A is transposed internally when it has more
 * rows than columns), so every dense orthonormalization is min(m, n) × l and no dense product touches the
 * larger side. Skipping the half-step orthonormalization is safe in double precision for the spectra of
 * text matrices (it only loses directions below σ₁·ε^(1/(2q+1))).
 *
 * Small problem (alg. 5.1 via the Gram matrix): with Y = A·Aᵀ·Q, C = Qᵀ·Y = B·Bᵀ (l×l, B = Qᵀ·A), and
 * C = W·Σ²·Wᵀ gives U = Q·W and V = Aᵀ·Q·W·Σ⁻¹.
 */
export function randomizedSvd(a: CsrMatrix, k: number, opts: SvdOptions = {}): TruncatedSvd {
  const oversampling = opts.oversampling ?? 10;
  const q = opts.powerIterations ?? 2;
  const rng = new Prng(opts.seed ?? 0x5eed);
  const maxRank = Math.min(a.rows, a.cols);
  const kk = Math.max(0, Math.min(k, maxRank));
  const l = Math.min(kk + oversampling, maxRank);
  if (kk === 0 || l === 0) {
    return {
      k: 0,
      s: new Float64Array(0),
      v: dense(a.cols, 0),
      ...(opts.computeU ? { u: dense(a.rows, 0) } : {}),
    };
  }
  // Both products as row gathers: Aᵀ is materialized once (nnz extra memory) instead of scattering.
  const at = csrTranspose(a);
  const direct: Operator = {
    rows: a.rows,
    cols: a.cols,
    times: (x) => csrTimesDense(a, x),
    transposeTimes: (y) => csrTimesDense(at, y),
  };
  const swapped = a.rows > a.cols;
  const op: Operator = swapped
    ? { rows: a.cols, cols: a.rows, times: direct.transposeTimes, transposeTimes: direct.times }
    : direct;

  const omega = dense(op.cols, l);
  for (let i = 0; i < omega.data.length; i++) omega.data[i] = rng.gaussian();
  let qm = orthonormalize(op.times(omega));
  for (let it = 0; it < q; it++) qm = orthonormalize(op.times(op.transposeTimes(qm)));
  const y = op.times(op.transposeTimes(qm));
  const c = crossGram(qm, y);
  for (let i = 0; i < l; i++) {
    for (let j = 0; j < i; j++) {
      const avg = (c[i * l + j]! + c[j * l + i]!) / 2;
      c[i * l + j] = avg;
      c[j * l + i] = avg;
    }
  }
  const eig = symmetricEigen(c, l);
  // Keep the numerically non-zero singular values among the top k.
  const smax = Math.sqrt(Math.max(eig.values[0]!, 0));
  let rank = 0;
  const s = new Float64Array(kk);
  for (let j = 0; j < kk; j++) {
    const sv = Math.sqrt(Math.max(eig.values[j]!, 0));
    if (!(sv > smax * 1e-7) || sv === 0) break;
    s[j] = sv;
    rank++;
  }
  const w = new Float64Array(l * rank); // W[:, :rank]
  const ws = new Float64Array(l * rank); // W[:, :rank] · Σ⁻¹
  for (let r = 0; r < l; r++) {
    for (let j = 0; j < rank; j++) {
      w[r * rank + j] = eig.vectors[r * l + j]!;
      ws[r * rank + j] = eig.vectors[r * l + j]! / s[j]!;
    }
  }
  // Left vectors of op: Q·W; right vectors of op: opᵀ·Q·W·Σ⁻¹.
  const left = (): DenseMatrix => timesSmall(qm, w, rank);
  const right = (): DenseMatrix => op.transposeTimes(timesSmall(qm, ws, rank));
  const out: TruncatedSvd = { k: rank, s: s.slice(0, rank), v: swapped ? left() : right() };
  if (opts.computeU) out.u = swapped ? right() : left();
  return out;
}

/** Builds a CSR matrix from per-row (column, value) lists. */
export function csrFromRows(
  rows: ReadonlyArray<{ cols: ArrayLike<number>; vals: ArrayLike<number> }>,
  cols: number,
): CsrMatrix {
  let nnz = 0;
  for (const r of rows) nnz += r.cols.length;
  const indptr = new Int32Array(rows.length + 1);
  const indices = new Int32Array(nnz);
  const values = new Float32Array(nnz);
  let p = 0;
  rows.forEach((r, i) => {
    for (let j = 0; j < r.cols.length; j++) {
      indices[p] = r.cols[j]!;
      values[p] = r.vals[j]!;
      p++;
    }
    indptr[i + 1] = p;
  });
  return { rows: rows.length, cols, indptr, indices, values };
}

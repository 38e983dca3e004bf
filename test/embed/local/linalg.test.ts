import { describe, expect, it } from 'vitest';
import {
  type CsrMatrix,
  csrFromRows,
  csrTimesDense,
  csrTranspose,
  csrTransposeTimesDense,
  dense,
  orthonormalize,
  Prng,
  randomizedSvd,
  symmetricEigen,
} from '../../../src/embed/local/linalg.js';

function toDense(a: CsrMatrix): number[][] {
  const out = Array.from({ length: a.rows }, () => new Array<number>(a.cols).fill(0));
  for (let i = 0; i < a.rows; i++) {
    for (let p = a.indptr[i]!; p < a.indptr[i + 1]!; p++) out[i]![a.indices[p]!]! += a.values[p]!;
  }
  return out;
}

function fromDense(m: number[][]): CsrMatrix {
  const cols = m[0]!.length;
  return csrFromRows(
    m.map((row) => {
      const c: number[] = [];
      const v: number[] = [];
      row.forEach((x, j) => {
        if (x !== 0) {
          c.push(j);
          v.push(x);
        }
      });
      return { cols: c, vals: v };
    }),
    cols,
  );
}

/** max |XᵀX − I| over the first `k` columns of a row-major matrix. */
function orthError(data: Float64Array, rows: number, cols: number): number {
  let worst = 0;
  for (let a = 0; a < cols; a++) {
    for (let b = a; b < cols; b++) {
      let s = 0;
      for (let r = 0; r < rows; r++) s += data[r * cols + a]! * data[r * cols + b]!;
      worst = Math.max(worst, Math.abs(s - (a === b ? 1 : 0)));
    }
  }
  return worst;
}

describe('sparse products', () => {
  it('A·X, Aᵀ·Y (scatter) and (Aᵀ as CSR)·Y agree with dense arithmetic', () => {
    const rng = new Prng(21);
    const m = 9;
    const n = 7;
    const full = Array.from({ length: m }, () =>
      Array.from({ length: n }, () => (rng.next() < 0.4 ? rng.gaussian() : 0)),
    );
    const a = fromDense(full);
    const dA = toDense(a);
    const x = dense(n, 5);
    const y = dense(m, 5);
    for (let i = 0; i < x.data.length; i++) x.data[i] = rng.gaussian();
    for (let i = 0; i < y.data.length; i++) y.data[i] = rng.gaussian();
    const ax = csrTimesDense(a, x);
    const aty = csrTransposeTimesDense(a, y);
    const aty2 = csrTimesDense(csrTranspose(a), y);
    for (let i = 0; i < m; i++) {
      for (let c = 0; c < 5; c++) {
        let s = 0;
        for (let j = 0; j < n; j++) s += dA[i]![j]! * x.data[j * 5 + c]!;
        expect(ax.data[i * 5 + c]!).toBeCloseTo(s, 10);
      }
    }
    for (let j = 0; j < n; j++) {
      for (let c = 0; c < 5; c++) {
        let s = 0;
        for (let i = 0; i < m; i++) s += dA[i]![j]! * y.data[i * 5 + c]!;
        expect(aty.data[j * 5 + c]!).toBeCloseTo(s, 10);
        expect(aty2.data[j * 5 + c]!).toBeCloseTo(s, 10);
      }
    }
  });
});

describe('symmetricEigen', () => {
  it('decomposes a known matrix', () => {
    // [[2,1],[1,2]] has eigenvalues 3 (1,1)/√2 and 1 (1,−1)/√2.
    const { values, vectors } = symmetricEigen(Float64Array.from([2, 1, 1, 2]), 2);
    expect(values[0]).toBeCloseTo(3, 12);
    expect(values[1]).toBeCloseTo(1, 12);
    expect(Math.abs(vectors[0]!)).toBeCloseTo(Math.SQRT1_2, 12);
    expect(vectors[0]! * vectors[2]!).toBeGreaterThan(0); // (1,1) direction
  });

  it('satisfies A·v = λ·v with orthonormal vectors on a random symmetric matrix', () => {
    const n = 40;
    const rng = new Prng(7);
    const a = new Float64Array(n * n);
    for (let i = 0; i < n; i++) {
      for (let j = i; j < n; j++) {
        const x = rng.gaussian();
        a[i * n + j] = x;
        a[j * n + i] = x;
      }
    }
    const { values, vectors } = symmetricEigen(a, n);
    for (let i = 1; i < n; i++) expect(values[i]!).toBeLessThanOrEqual(values[i - 1]!);
    expect(orthError(vectors, n, n)).toBeLessThan(1e-12);
    let worst = 0;
    for (let j = 0; j < n; j++) {
      for (let r = 0; r < n; r++) {
        let s = 0;
        for (let c = 0; c < n; c++) s += a[r * n + c]! * vectors[c * n + j]!;
        worst = Math.max(worst, Math.abs(s - values[j]! * vectors[r * n + j]!));
      }
    }
    expect(worst).toBeLessThan(1e-10);
  });
});

describe('orthonormalize', () => {
  it('returns orthonormal columns spanning the input, and zero columns for dependent ones', () => {
    const rng = new Prng(3);
    const x = dense(50, 6);
    for (let r = 0; r < 50; r++) {
      for (let c = 0; c < 5; c++) x.data[r * 6 + c] = rng.gaussian();
      x.data[r * 6 + 5] = x.data[r * 6]! + 2 * x.data[r * 6 + 1]!; // dependent column
    }
    const q = orthonormalize(x);
    // Five orthonormal columns, one zero column.
    let zero = 0;
    const keep: number[] = [];
    for (let c = 0; c < 6; c++) {
      let s = 0;
      for (let r = 0; r < 50; r++) s += q.data[r * 6 + c]! ** 2;
      if (s < 1e-20) zero++;
      else keep.push(c);
    }
    expect(zero).toBe(1);
    const sub = new Float64Array(50 * 5);
    for (let r = 0; r < 50; r++) {
      keep.forEach((c, i) => {
        sub[r * 5 + i] = q.data[r * 6 + c]!;
      });
    }
    expect(orthError(sub, 50, 5)).toBeLessThan(1e-10);
  });
});

describe('randomizedSvd', () => {
  it('recovers a known decomposition exactly when k covers the rank', () => {
    // A = diag-like matrix with singular values 5, 3, 1 (rows/cols permuted).
    const a = fromDense([
      [0, 5, 0, 0],
      [3, 0, 0, 0],
      [0, 0, 0, 1],
      [0, 0, 0, 0],
      [0, 0, 0, 0],
    ]);
    const svd = randomizedSvd(a, 3, { computeU: true, seed: 1 });
    expect(svd.k).toBe(3);
    expect([...svd.s].map((x) => Number(x.toFixed(10)))).toEqual([5, 3, 1]);
    // v₁ = ±e₂, u₁ = ±e₁
    expect(Math.abs(svd.v.data[1 * 3 + 0]!)).toBeCloseTo(1, 10);
    expect(Math.abs(svd.u!.data[0 * 3 + 0]!)).toBeCloseTo(1, 10);
  });

  it.each([
    [120, 80],
    [80, 120],
  ])('reconstructs a low-rank sparse %i×%i matrix with orthonormal U and V', (m, n) => {
    const rng = new Prng(11);
    const rank = 6;
    // Sparse-ish low-rank: product of sparse factors.
    const left = Array.from({ length: m }, () =>
      Array.from({ length: rank }, () => (rng.next() < 0.5 ? rng.gaussian() : 0)),
    );
    const right = Array.from({ length: rank }, () =>
      Array.from({ length: n }, () => (rng.next() < 0.4 ? rng.gaussian() : 0)),
    );
    const full = left.map((row) =>
      Array.from({ length: n }, (_, j) => row.reduce((s, x, t) => s + x * right[t]![j]!, 0)),
    );
    const a = fromDense(full);
    const svd = randomizedSvd(a, rank, { computeU: true, seed: 5, powerIterations: 2 });
    expect(svd.k).toBe(rank);
    expect(orthError(svd.u!.data, m, svd.k)).toBeLessThan(1e-6);
    expect(orthError(svd.v.data, n, svd.k)).toBeLessThan(1e-6);
    const dA = toDense(a); // values are Float32 in CSR: compare against those
    let err = 0;
    let norm = 0;
    for (let i = 0; i < m; i++) {
      for (let j = 0; j < n; j++) {
        let s = 0;
        for (let t = 0; t < svd.k; t++)
          s += svd.u!.data[i * svd.k + t]! * svd.s[t]! * svd.v.data[j * svd.k + t]!;
        err += (s - dA[i]![j]!) ** 2;
        norm += dA[i]![j]! ** 2;
      }
    }
    expect(Math.sqrt(err / norm)).toBeLessThan(1e-6);
  });

  it('matches the optimal rank-k error (Eckart–Young) on a full-rank matrix', () => {
    const rng = new Prng(2);
    const m = 60;
    const n = 40;
    const full = Array.from({ length: m }, () =>
      Array.from({ length: n }, () => (rng.next() < 0.3 ? rng.gaussian() : 0)),
    );
    const a = fromDense(full);
    const k = 5;
    const exact = randomizedSvd(a, n, { seed: 9 }); // k = n: the whole spectrum
    const approx = randomizedSvd(a, k, { seed: 9, powerIterations: 4 });
    for (let t = 0; t < k; t++) expect(approx.s[t]! / exact.s[t]!).toBeGreaterThan(0.999);
  });

  it('is deterministic for a seed', () => {
    const rng = new Prng(4);
    const a = fromDense(
      Array.from({ length: 30 }, () => Array.from({ length: 20 }, () => (rng.next() < 0.3 ? rng.next() : 0))),
    );
    const x = randomizedSvd(a, 4, { seed: 42 });
    const y = randomizedSvd(a, 4, { seed: 42 });
    expect([...x.v.data]).toEqual([...y.v.data]);
  });
});

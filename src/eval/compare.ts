/**
 * A/B comparison: `quarry eval compare <configA> <configB> <dataset>` evaluates two configurations on the
 * same judged queries and reports, per metric, the paired difference B − A with a 95 % confidence interval
 * (paired bootstrap over queries) and a two-sided p-value (paired randomisation test: each query's
 * difference keeps or flips its sign at random), plus the queries whose primary metric changed most.
 * Both tests are seeded, so the same runs give the same figures. With a gate (`--max-drop`), B is the
 * candidate and A the current configuration: the drift check before a model, chunking or ranker swap.
 */
import type { QuarryConfigInput } from '../config/config.js';
import { QuarryError } from '../errors.js';
import { loadBeirDataset } from './beir.js';
import { checkGate, type GateResult, type Tolerance } from './gate.js';
import { type EvalOptions, type EvalReport, runEval } from './run-eval.js';
import { primaryMetric } from './runs.js';

export interface CompareSide {
  label: string;
  config: QuarryConfigInput;
}

export interface CompareOptions
  extends Omit<EvalOptions, 'config' | 'perQuery' | 'record' | 'store' | 'k1' | 'b'> {
  a: CompareSide;
  b: CompareSide;
  /** Resamples of the bootstrap and permutations of the randomisation test (default 10,000). */
  iterations?: number;
  seed?: number;
  /** Gate B (candidate) against A (current). */
  maxDrop?: Tolerance[];
  /** How many most-changed queries to list (default 10). */
  changed?: number;
  /** Called before each side runs. */
  onSide?: (label: string) => void;
}

export interface MetricComparison {
  metric: string;
  a: number;
  b: number;
  /** Mean paired difference b − a (equals b − a over the same queries). */
  delta: number;
  /** 95 % paired-bootstrap interval of the mean difference. */
  ci95: [number, number];
  /** Two-sided paired randomisation test. */
  pValue: number;
  significant: boolean;
}

export interface CompareReport {
  version: 1;
  kind: 'compare';
  dataset: string;
  split: string;
  queries: number;
  method: { ci: string; test: string; iterations: number; seed: number; alpha: number };
  a: { label: string; report: EvalReport };
  b: { label: string; report: EvalReport };
  metrics: MetricComparison[];
  /** The queries whose primary metric changed most (largest |b − a| first). */
  changed: Array<{ queryId: string; query: string; metric: string; a: number; b: number; delta: number }>;
  gate?: GateResult;
}

const ALPHA = 0.05;

/** A small seeded PRNG (mulberry32): the tests' figures are reproducible run to run. */
export function seededRandom(seed: number): () => number {
  let t = seed >>> 0;
  return () => {
    t = (t + 0x6d2b79f5) >>> 0;
    let r = Math.imul(t ^ (t >>> 15), 1 | t);
    r = (r + Math.imul(r ^ (r >>> 7), 61 | r)) ^ r;
    return ((r ^ (r >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * Paired significance of `b − a` over the same items: the bootstrap interval of the mean difference and
 * the randomisation test's two-sided p-value ((hits + 1) / (iterations + 1), never 0).
 */
export function pairedSignificance(
  a: readonly number[],
  b: readonly number[],
  opts: { iterations?: number; seed?: number } = {},
): { delta: number; ci95: [number, number]; pValue: number } {
  if (a.length !== b.length) throw new QuarryError('INVALID_ARGUMENT', 'paired samples differ in length');
  const n = a.length;
  if (n === 0) return { delta: 0, ci95: [0, 0], pValue: 1 };
  const d = new Float64Array(n);
  let sum = 0;
  for (let i = 0; i < n; i++) {
    d[i] = b[i]! - a[i]!;
    sum += d[i]!;
  }
  const observed = sum / n;
  const iterations = opts.iterations ?? 10_000;
  const rand = seededRandom(opts.seed ?? 42);
  const means = new Float64Array(iterations);
  let hits = 0;
  const eps = 1e-12;
  for (let it = 0; it < iterations; it++) {
    let boot = 0;
    let flip = 0;
    for (let i = 0; i < n; i++) {
      boot += d[Math.floor(rand() * n)]!;
      flip += rand() < 0.5 ? -d[i]! : d[i]!;
    }
    means[it] = boot / n;
    if (Math.abs(flip / n) >= Math.abs(observed) - eps) hits++;
  }
  means.sort();
  const at = (q: number) => means[Math.min(iterations - 1, Math.max(0, Math.floor(q * iterations)))]!;
  return { delta: observed, ci95: [at(0.025), at(0.975)], pValue: (hits + 1) / (iterations + 1) };
}

/** Compare two evaluated runs that carry `perQuery` (from `runEval({ perQuery: true })`). */
export function compareReports(
  a: { label: string; report: EvalReport },
  b: { label: string; report: EvalReport },
  queryText: ReadonlyMap<string, string>,
  opts: Pick<CompareOptions, 'iterations' | 'seed' | 'maxDrop' | 'changed'> = {},
): CompareReport {
  const pa = a.report.perQuery;
  const pb = b.report.perQuery;
  if (pa === undefined || pb === undefined)
    throw new QuarryError('INVALID_ARGUMENT', 'compare needs reports with perQuery metrics');
  const ids = Object.keys(pa).filter((id) => pb[id] !== undefined);
  const names = Object.keys(a.report.metrics).filter(
    (m) => typeof b.report.metrics[m] === 'number' && ids.every((id) => pa[id]![m] !== undefined),
  );
  const iterations = opts.iterations ?? 10_000;
  const seed = opts.seed ?? 42;
  const metrics = names.map((metric) => {
    const xs = ids.map((id) => pa[id]![metric]!);
    const ys = ids.map((id) => pb[id]![metric]!);
    const s = pairedSignificance(xs, ys, { iterations, seed });
    return {
      metric,
      a: mean(xs),
      b: mean(ys),
      delta: s.delta,
      ci95: s.ci95,
      pValue: s.pValue,
      significant: s.pValue < ALPHA,
    };
  });
  const primary = primaryMetric(a.report.metrics) ?? names[0] ?? '';
  const changed = ids
    .map((id) => {
      const x = pa[id]![primary] ?? 0;
      const y = pb[id]![primary] ?? 0;
      return { queryId: id, query: queryText.get(id) ?? '', metric: primary, a: x, b: y, delta: y - x };
    })
    .filter((c) => c.delta !== 0)
    .sort((p, q) => Math.abs(q.delta) - Math.abs(p.delta))
    .slice(0, opts.changed ?? 10);
  return {
    version: 1,
    kind: 'compare',
    dataset: a.report.dataset,
    split: a.report.split,
    queries: ids.length,
    method: {
      ci: 'paired bootstrap over queries, 95 % percentile interval of the mean difference',
      test: 'paired randomisation (sign-flip) test, two-sided',
      iterations,
      seed,
      alpha: ALPHA,
    },
    a,
    b,
    metrics,
    changed,
    ...(opts.maxDrop === undefined ? {} : { gate: checkGate(a.report, b.report, opts.maxDrop) }),
  };
}

/** Evaluate both configurations on the same judged queries (each into its own temporary store) and compare. */
export async function runCompare(opts: CompareOptions): Promise<CompareReport> {
  const { a, b, iterations, seed, maxDrop, changed, onSide, ...evalOpts } = opts;
  const dataset = await loadBeirDataset(opts.dataset, opts.split ?? 'test');
  const text = new Map(dataset.queries.map((q) => [q.id, q.text]));
  const run = async (side: CompareSide) => {
    onSide?.(side.label);
    return { label: side.label, report: await runEval({ ...evalOpts, config: side.config, perQuery: true }) };
  };
  const ra = await run(a);
  const rb = await run(b);
  return compareReports(ra, rb, text, {
    ...(iterations === undefined ? {} : { iterations }),
    ...(seed === undefined ? {} : { seed }),
    ...(maxDrop === undefined ? {} : { maxDrop }),
    ...(changed === undefined ? {} : { changed }),
  });
}

function mean(xs: readonly number[]): number {
  let s = 0;
  for (const x of xs) s += x;
  return xs.length === 0 ? 0 : s / xs.length;
}

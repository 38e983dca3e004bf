/**
 * Regression gates: `quarry eval <set> --baseline <report.json> --max-drop ndcg@10=0.01,faithfulness=0.02`
 * compares this run's metrics with a stored report's and fails (exit 3) when a metric dropped by more than
 * its tolerance. Metrics are "higher is better"; latency gates use `latency_ms.p95=<ms>` and fail when the
 * run got slower by more than that many milliseconds. Used in CI before a config, prompt, model or index
 * change ships, and by `quarry eval compare` to gate a candidate against the current configuration.
 */
import fs from 'node:fs';
import { QuarryError } from '../errors.js';
import type { EvalReport } from './run-eval.js';

export const GATE_FAILED_EXIT = 3;

export interface Tolerance {
  metric: string;
  /** Largest allowed drop (absolute; milliseconds for latency_ms.*). */
  maxDrop: number;
}

export interface GateRow {
  metric: string;
  baseline: number;
  current: number;
  /** current − baseline (for latency: the increase in ms). */
  delta: number;
  maxDrop: number;
  failed: boolean;
}

export interface GateResult {
  passed: boolean;
  rows: GateRow[];
}

/** What a gate reads of a report. */
export interface GateInput {
  metrics: Record<string, number>;
  latency_ms: EvalReport['latency_ms'];
}

const LATENCY = /^latency_ms\.(p50|p95|p99|mean|max)$/;

/** `ndcg@10=0.01,faithfulness=0.02` → tolerances; an entry without `=` or with a negative number is refused. */
export function parseTolerances(spec: string): Tolerance[] {
  const out: Tolerance[] = [];
  for (const part of spec.split(',')) {
    const item = part.trim();
    if (item === '') continue;
    const eq = item.lastIndexOf('=');
    const metric = item.slice(0, eq).trim();
    const value = Number(item.slice(eq + 1));
    if (eq <= 0 || metric === '' || item.slice(eq + 1).trim() === '' || !Number.isFinite(value) || value < 0)
      throw new QuarryError(
        'INVALID_ARGUMENT',
        `--max-drop: "${item}" must be <metric>=<non-negative number>, e.g. ndcg@10=0.01`,
        { item },
      );
    out.push({ metric, maxDrop: value });
  }
  if (out.length === 0)
    throw new QuarryError('INVALID_ARGUMENT', '--max-drop: give at least one <metric>=<tolerance>');
  return out;
}

function metricOf(r: GateInput, metric: string): number | undefined {
  const lat = LATENCY.exec(metric);
  if (lat !== null) return r.latency_ms[lat[1] as keyof EvalReport['latency_ms']];
  const v = r.metrics[metric];
  return typeof v === 'number' && Number.isFinite(v) ? v : undefined;
}

/** Every tolerance checked: a metric absent from either report is an error that names it and what exists. */
export function checkGate(
  baseline: GateInput,
  current: GateInput,
  tolerances: readonly Tolerance[],
): GateResult {
  const rows = tolerances.map(({ metric, maxDrop }) => {
    const b = metricOf(baseline, metric);
    const c = metricOf(current, metric);
    if (b === undefined || c === undefined)
      throw new QuarryError(
        'INVALID_ARGUMENT',
        `--max-drop: metric "${metric}" is not in the ${b === undefined ? 'baseline' : 'current'} report (it has: ${Object.keys(
          (b === undefined ? baseline : current).metrics,
        )
          .concat(['latency_ms.p50', 'latency_ms.p95', 'latency_ms.p99'])
          .join(', ')})`,
        { metric },
      );
    const latency = LATENCY.test(metric);
    const delta = c - b;
    // Higher is better, except latency; a tiny epsilon keeps float noise (0.1 + 0.2) from failing a gate.
    const failed = latency ? delta > maxDrop + 1e-9 : -delta > maxDrop + 1e-9;
    return { metric, baseline: b, current: c, delta, maxDrop, failed };
  });
  return { passed: rows.every((r) => !r.failed), rows };
}

/** The gate as a table a person reads in a CI log. */
export function formatGate(g: GateResult, labels = { baseline: 'baseline', current: 'current' }): string {
  const fmt = (m: string, v: number) => (LATENCY.test(m) ? `${v.toFixed(1)} ms` : v.toFixed(4));
  const lines = g.rows.map((r) => {
    const sign = r.delta >= 0 ? '+' : '';
    const allowed = LATENCY.test(r.metric) ? `≤ +${r.maxDrop} ms` : `≥ −${r.maxDrop}`;
    return `${r.failed ? 'FAIL' : 'ok  '}  ${r.metric.padEnd(18)} ${fmt(r.metric, r.baseline).padStart(10)} → ${fmt(r.metric, r.current).padStart(10)}  (${sign}${LATENCY.test(r.metric) ? r.delta.toFixed(1) : r.delta.toFixed(4)}, allowed ${allowed})`;
  });
  const failed = g.rows.filter((r) => r.failed).length;
  return [
    `gate: ${labels.baseline} → ${labels.current}`,
    ...lines,
    g.passed ? 'gate passed' : `gate FAILED: ${failed} metric(s) dropped beyond tolerance`,
  ].join('\n');
}

/** A stored `quarry eval --json` / `--out` report, checked enough to gate against. */
export function readReport(file: string): EvalReport {
  let json: unknown;
  try {
    json = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (e) {
    throw new QuarryError(
      'INVALID_ARGUMENT',
      `cannot read the report ${file}: ${(e as Error).message}`,
      { file },
      e,
    );
  }
  const r = json as Partial<EvalReport>;
  if (
    typeof r !== 'object' ||
    r === null ||
    typeof r.metrics !== 'object' ||
    typeof r.latency_ms !== 'object'
  )
    throw new QuarryError(
      'INVALID_ARGUMENT',
      `${file} is not a quarry eval report (no metrics / latency_ms)`,
      {
        file,
      },
    );
  if (r.version !== 1)
    throw new QuarryError(
      'INVALID_ARGUMENT',
      `${file}: report version ${String(r.version)}, this Quarry reads version 1`,
      {
        file,
      },
    );
  return r as EvalReport;
}

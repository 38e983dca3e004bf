/**
 * The eval report as one self-contained HTML file (`quarry eval … --html report.html`, also for `eval
 * compare`): inline CSS and SVG charts, no script and nothing fetched, so it opens offline and can be
 * attached to a CI run. Charts: metric bars per configuration, latency histograms, and a per-query scatter
 * (A against B for a comparison; metric against latency for a single run).
 */
import type { CompareReport } from './compare.js';
import type { GateResult } from './gate.js';
import type { EvalReport } from './run-eval.js';
import { primaryMetric } from './runs.js';

const COLORS = ['#2563eb', '#ea580c'];
const MAX_POINTS = 1500;

function esc(s: unknown): string {
  return String(s).replace(
    /[&<>"']/g,
    (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!,
  );
}

const f4 = (x: number) => (Number.isFinite(x) ? x.toFixed(4) : '–');

/** Grouped horizontal bars: one group per metric, one bar per series (values in [0, 1]). */
function metricBars(
  metrics: string[],
  series: Array<{ label: string; values: Record<string, number> }>,
): string {
  const rowH = 14 * series.length + 10;
  const w = 640;
  const left = 110;
  const h = metrics.length * rowH + 30;
  const bars = metrics
    .map((m, i) => {
      const y0 = 10 + i * rowH;
      const rects = series
        .map((s, j) => {
          const v = Math.max(0, Math.min(1, s.values[m] ?? 0));
          const y = y0 + j * 14;
          return `<rect x="${left}" y="${y}" width="${(v * (w - left - 60)).toFixed(1)}" height="12" fill="${COLORS[j % 2]}"><title>${esc(s.label)} ${esc(m)} ${f4(v)}</title></rect><text x="${left + v * (w - left - 60) + 4}" y="${y + 10}" class="v">${f4(s.values[m] ?? 0)}</text>`;
        })
        .join('');
      return `<text x="${left - 6}" y="${y0 + 10}" text-anchor="end">${esc(m)}</text>${rects}`;
    })
    .join('');
  return `<svg viewBox="0 0 ${w} ${h}" width="${w}" height="${h}" role="img" aria-label="metrics">${bars}${legend(
    series.map((s) => s.label),
    h - 12,
  )}</svg>`;
}

function legend(labels: string[], y: number): string {
  return labels
    .map(
      (l, i) =>
        `<rect x="${110 + i * 200}" y="${y - 9}" width="10" height="10" fill="${COLORS[i % 2]}"/><text x="${124 + i * 200}" y="${y}">${esc(l)}</text>`,
    )
    .join('');
}

/** Latency histograms on a shared axis (log-spaced bins when the range spans more than a decade). */
function latencyHistogram(series: Array<{ label: string; ms: number[] }>): string {
  const all = series.flatMap((s) => s.ms).filter((x) => Number.isFinite(x) && x >= 0);
  if (all.length === 0) return '<p>No per-query latencies in this report.</p>';
  const w = 640;
  const h = 220;
  const pad = { l: 50, r: 40, t: 10, b: 40 };
  const lo = Math.max(Math.min(...all), 1e-3);
  const hi = Math.max(...all, lo * 1.01);
  const log = hi / lo > 10;
  const bins = 30;
  const edge = (i: number) => (log ? lo * (hi / lo) ** (i / bins) : lo + ((hi - lo) * i) / bins);
  const binOf = (x: number) => {
    const t = log ? Math.log(Math.max(x, lo) / lo) / Math.log(hi / lo) : (x - lo) / (hi - lo);
    return Math.min(bins - 1, Math.max(0, Math.floor(t * bins)));
  };
  const counts = series.map((s) => {
    const c = new Array<number>(bins).fill(0);
    for (const x of s.ms) c[binOf(x)]!++;
    return c;
  });
  const max = Math.max(1, ...counts.flat());
  const bw = (w - pad.l - pad.r) / bins;
  const rects = counts
    .map((c, j) =>
      c
        .map((n, i) => {
          const bh = (n / max) * (h - pad.t - pad.b);
          const x = pad.l + i * bw + (j * bw) / series.length;
          return n === 0
            ? ''
            : `<rect x="${x.toFixed(1)}" y="${(h - pad.b - bh).toFixed(1)}" width="${(bw / series.length - 1).toFixed(1)}" height="${bh.toFixed(1)}" fill="${COLORS[j % 2]}"><title>${esc(series[j]!.label)}: ${n} queries, ${edge(i).toFixed(2)}–${edge(i + 1).toFixed(2)} ms</title></rect>`;
        })
        .join(''),
    )
    .join('');
  const ticks = [0, bins / 2, bins]
    .map(
      (i) =>
        `<text x="${pad.l + i * bw}" y="${h - pad.b + 14}" text-anchor="middle">${edge(i).toFixed(edge(i) < 10 ? 2 : 0)} ms</text>`,
    )
    .join('');
  return `<svg viewBox="0 0 ${w} ${h}" width="${w}" height="${h}" role="img" aria-label="latency histogram"><line x1="${pad.l}" y1="${h - pad.b}" x2="${w - pad.r}" y2="${h - pad.b}" stroke="#999"/>${rects}${ticks}<text x="10" y="${pad.t + 10}">${max}</text>${legend(
    series.map((s) => s.label),
    h - 6,
  )}</svg>`;
}

/** One dot per query: x against y, both in their own ranges; the diagonal when both are the same metric. */
function scatter(
  points: Array<{ x: number; y: number; label: string }>,
  xLabel: string,
  yLabel: string,
  diagonal: boolean,
): string {
  if (points.length === 0) return '<p>No per-query figures in this report.</p>';
  // A large set is drawn as an even sample (every n-th query), so the page stays small.
  const step = Math.ceil(points.length / MAX_POINTS);
  const all = points.length;
  points = step > 1 ? points.filter((_, i) => i % step === 0) : points;
  const w = 420;
  const h = 420;
  const pad = 46;
  const xs = points.map((p) => p.x);
  const ys = points.map((p) => p.y);
  const x0 = diagonal ? 0 : Math.min(...xs);
  const x1 = diagonal ? 1 : Math.max(...xs, x0 + 1e-9);
  const y0 = diagonal ? 0 : Math.min(...ys);
  const y1 = diagonal ? 1 : Math.max(...ys, y0 + 1e-9);
  const px = (x: number) => pad + ((x - x0) / (x1 - x0 || 1)) * (w - 2 * pad);
  const py = (y: number) => h - pad - ((y - y0) / (y1 - y0 || 1)) * (h - 2 * pad);
  const dots = points
    .map(
      (p) =>
        `<circle cx="${px(p.x).toFixed(1)}" cy="${py(p.y).toFixed(1)}" r="3" fill="${COLORS[0]}" fill-opacity="0.45"><title>${esc(p.label)}: ${p.x.toFixed(3)}, ${p.y.toFixed(3)}</title></circle>`,
    )
    .join('');
  return `<svg viewBox="0 0 ${w} ${h}" width="${w}" height="${h}" role="img" aria-label="per-query scatter"><rect x="${pad}" y="${pad}" width="${w - 2 * pad}" height="${h - 2 * pad}" fill="none" stroke="#ccc"/>${
    diagonal
      ? `<line x1="${px(0)}" y1="${py(0)}" x2="${px(1)}" y2="${py(1)}" stroke="#bbb" stroke-dasharray="4"/>`
      : ''
  }${dots}<text x="${w / 2}" y="${h - 10}" text-anchor="middle">${esc(xLabel)}${step > 1 ? ` (${points.length} of ${all} queries shown)` : ''}</text><text x="14" y="${h / 2}" transform="rotate(-90 14 ${h / 2})" text-anchor="middle">${esc(yLabel)}</text><text x="${pad}" y="${h - pad + 14}" text-anchor="middle">${x0.toFixed(2)}</text><text x="${w - pad}" y="${h - pad + 14}" text-anchor="middle">${x1.toFixed(2)}</text><text x="${pad - 6}" y="${h - pad}" text-anchor="end">${y0.toFixed(2)}</text><text x="${pad - 6}" y="${pad + 4}" text-anchor="end">${y1.toFixed(2)}</text></svg>`;
}

function gateTable(g: GateResult | undefined): string {
  if (g === undefined) return '';
  const rows = g.rows
    .map(
      (r) =>
        `<tr class="${r.failed ? 'fail' : 'ok'}"><td>${r.failed ? 'FAIL' : 'ok'}</td><td>${esc(r.metric)}</td><td>${f4(r.baseline)}</td><td>${f4(r.current)}</td><td>${r.delta >= 0 ? '+' : ''}${f4(r.delta)}</td><td>${r.maxDrop}</td></tr>`,
    )
    .join('');
  return `<h2>Gate: ${g.passed ? 'passed' : 'FAILED'}</h2><table><tr><th></th><th>metric</th><th>baseline</th><th>current</th><th>Δ</th><th>max drop</th></tr>${rows}</table>`;
}

function setup(r: EvalReport): string {
  return `${esc(r.retriever)}; BM25 k1=${r.bm25.k1} b=${r.bm25.b}; ${esc(r.chunking.description)}${
    r.dense ? `; dense ${esc(r.dense.model)} (${esc(r.dense.index)})` : ''
  }${r.rerank ? `; rerank ${esc(r.rerank.reranker)}` : ''}`;
}

function page(title: string, body: string): string {
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>${esc(title)}</title><style>
body{font:14px/1.45 system-ui,sans-serif;margin:2rem auto;max-width:980px;color:#111;padding:0 1rem}
h1{font-size:1.4rem}h2{font-size:1.1rem;margin-top:2rem}table{border-collapse:collapse;margin:.5rem 0}
td,th{border-bottom:1px solid #e5e7eb;padding:.25rem .6rem;text-align:left;font-variant-numeric:tabular-nums}
tr.fail td{color:#b91c1c;font-weight:600}svg text{font-size:11px;fill:#333}svg .v{fill:#555}
.muted{color:#666}.sig{font-weight:600}
</style></head><body>${body}<p class="muted">Generated by quarry eval; self-contained, no scripts.</p></body></html>`;
}

/** A single run's report as HTML. */
export function renderEvalHtml(r: EvalReport, gate?: GateResult): string {
  const metrics = Object.keys(r.metrics);
  const per = Object.entries(r.perQuery ?? {});
  const primary = primaryMetric(r.metrics) ?? metrics[0] ?? '';
  const body = `<h1>Evaluation: ${esc(r.dataset)} (${esc(r.split)})</h1>
<p>${r.queries} queries over ${r.corpus.documents} documents / ${r.corpus.chunks} chunks. ${setup(r)}.</p>
${gateTable(gate)}
<h2>Metrics</h2>${metricBars(metrics, [{ label: r.dataset, values: r.metrics }])}
<table><tr><th>metric</th><th>value</th></tr>${metrics.map((m) => `<tr><td>${esc(m)}</td><td>${f4(r.metrics[m]!)}</td></tr>`).join('')}</table>
<h2>Latency</h2><p>p50 ${r.latency_ms.p50.toFixed(2)} ms · p95 ${r.latency_ms.p95.toFixed(2)} ms · p99 ${r.latency_ms.p99.toFixed(2)} ms · max ${r.latency_ms.max.toFixed(2)} ms</p>
${latencyHistogram([{ label: r.dataset, ms: per.map(([, m]) => m.latency_ms ?? Number.NaN) }])}
<h2>Per query: ${esc(primary)} against latency</h2>
${scatter(
  per.map(([id, m]) => ({ x: m.latency_ms ?? 0, y: m[primary] ?? 0, label: id })),
  'latency (ms)',
  primary,
  false,
)}`;
  return page(`quarry eval ${r.dataset}`, body);
}

/** A comparison's report as HTML. */
export function renderCompareHtml(c: CompareReport): string {
  const labels = [c.a.label, c.b.label];
  const metrics = c.metrics.map((m) => m.metric);
  const pa = c.a.report.perQuery ?? {};
  const pb = c.b.report.perQuery ?? {};
  const primary = c.changed[0]?.metric ?? primaryMetric(c.a.report.metrics) ?? metrics[0] ?? '';
  const rows = c.metrics
    .map(
      (m) =>
        `<tr><td>${esc(m.metric)}</td><td>${f4(m.a)}</td><td>${f4(m.b)}</td><td class="${m.significant ? 'sig' : ''}">${m.delta >= 0 ? '+' : ''}${f4(m.delta)}</td><td>[${f4(m.ci95[0])}, ${f4(m.ci95[1])}]</td><td>${m.pValue.toFixed(4)}</td></tr>`,
    )
    .join('');
  const changed = c.changed
    .map(
      (q) =>
        `<tr><td>${esc(q.queryId)}</td><td>${esc(q.query)}</td><td>${f4(q.a)}</td><td>${f4(q.b)}</td><td>${q.delta >= 0 ? '+' : ''}${f4(q.delta)}</td></tr>`,
    )
    .join('');
  const ids = Object.keys(pa).filter((id) => pb[id] !== undefined);
  const body = `<h1>Comparison on ${esc(c.dataset)} (${esc(c.split)}): ${esc(labels[0])} → ${esc(labels[1])}</h1>
<p>${c.queries} paired queries. A: ${setup(c.a.report)}.<br>B: ${setup(c.b.report)}.</p>
<p class="muted">${esc(c.method.ci)}; ${esc(c.method.test)}; ${c.method.iterations} iterations, seed ${c.method.seed}; bold Δ: p &lt; ${c.method.alpha}.</p>
${gateTable(c.gate)}
<h2>Metrics</h2>${metricBars(metrics, [
    { label: labels[0]!, values: c.a.report.metrics },
    { label: labels[1]!, values: c.b.report.metrics },
  ])}
<table><tr><th>metric</th><th>${esc(labels[0])}</th><th>${esc(labels[1])}</th><th>Δ (B − A)</th><th>95 % CI</th><th>p</th></tr>${rows}</table>
<h2>Latency</h2><p>p95 ${c.a.report.latency_ms.p95.toFixed(2)} ms → ${c.b.report.latency_ms.p95.toFixed(2)} ms</p>
${latencyHistogram([
  { label: labels[0]!, ms: ids.map((id) => pa[id]!.latency_ms ?? Number.NaN) },
  { label: labels[1]!, ms: ids.map((id) => pb[id]!.latency_ms ?? Number.NaN) },
])}
<h2>Per query: ${esc(primary)}, A against B</h2>
${scatter(
  ids.map((id) => ({ x: pa[id]![primary] ?? 0, y: pb[id]![primary] ?? 0, label: id })),
  `${labels[0]} ${primary}`,
  `${labels[1]} ${primary}`,
  true,
)}
<h2>Queries that changed most</h2><table><tr><th>id</th><th>query</th><th>A</th><th>B</th><th>Δ</th></tr>${changed}</table>`;
  return page(`quarry eval compare ${c.dataset}`, body);
}

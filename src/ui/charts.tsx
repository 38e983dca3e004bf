/**
 * Two small SVG charts for the evaluation dashboard, drawn here rather than with a chart library to keep the
 * bundle small: a line per metric over time, and a latency histogram with its percentiles marked.
 */

const PALETTE = ['#2563eb', '#dc2626', '#059669', '#d97706', '#7c3aed', '#0891b2', '#db2777', '#4b5563'];

export interface Series {
  name: string;
  points: Array<{ x: number; y: number; label?: string }>;
}

const W = 640;
const H = 240;
const PAD = { left: 44, right: 12, top: 12, bottom: 28 };

function niceMax(v: number): number {
  if (v <= 0) return 1;
  const p = 10 ** Math.floor(Math.log10(v));
  for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= v) return m * p;
  return 10 * p;
}

const HOUR = 3_600_000;

/** A tick value without needless digits: 2.5, 0.25, 120. */
const round = (v: number) => String(Number(v.toFixed(Math.abs(v) < 10 ? 2 : 0)));

/** A time label as precise as the span of the axis needs (seconds for runs minutes apart, days for weeks). */
function timeLabel(t: number, span: number): string {
  const d = new Date(t);
  if (span < HOUR)
    return d.toLocaleTimeString(undefined, { hour: '2-digit', minute: '2-digit', second: '2-digit' });
  if (span < 72 * HOUR)
    return d.toLocaleString(undefined, {
      month: 'short',
      day: 'numeric',
      hour: '2-digit',
      minute: '2-digit',
    });
  return d.toLocaleDateString(undefined, { year: 'numeric', month: 'short', day: 'numeric' });
}

/** One line per series over time; `yMax` fixes the scale (1 for metrics in [0, 1]). */
export function LineChart(props: { series: Series[]; yMax?: number; title: string }) {
  const xs = props.series.flatMap((s) => s.points.map((p) => p.x));
  const ys = props.series.flatMap((s) => s.points.map((p) => p.y));
  if (xs.length === 0) return <p class="muted">No data.</p>;
  const x0 = Math.min(...xs);
  const x1 = Math.max(...xs);
  const yMax = props.yMax ?? niceMax(Math.max(...ys));
  const px = (x: number) =>
    x1 === x0
      ? (PAD.left + W - PAD.right) / 2
      : PAD.left + ((x - x0) / (x1 - x0)) * (W - PAD.left - PAD.right);
  const py = (y: number) => H - PAD.bottom - (y / yMax) * (H - PAD.top - PAD.bottom);
  // Fifths of a "nice" maximum (1, 2, 2.5, 5 × 10ⁿ) fall on round values.
  const yTicks = [0, 0.2, 0.4, 0.6, 0.8, 1].map((f) => f * yMax);
  const xTicks = x1 === x0 ? [x0] : [x0, (x0 + x1) / 2, x1];
  return (
    <figure class="chart" data-testid="line-chart">
      <svg viewBox={`0 0 ${W} ${H}`} role="img" aria-label={props.title}>
        <title>{props.title}</title>
        {yTicks.map((t) => (
          <g key={t}>
            <line class="grid-line" x1={PAD.left} x2={W - PAD.right} y1={py(t)} y2={py(t)} />
            <text class="tick" x={PAD.left - 6} y={py(t) + 4} text-anchor="end">
              {yMax <= 1 ? t.toFixed(1) : round(t)}
            </text>
          </g>
        ))}
        {xTicks.map((t, i) => (
          <text
            key={t}
            class="tick"
            x={px(t)}
            y={H - 8}
            text-anchor={
              xTicks.length === 1 ? 'middle' : i === 0 ? 'start' : i === xTicks.length - 1 ? 'end' : 'middle'
            }
          >
            {timeLabel(t, x1 - x0)}
          </text>
        ))}
        {props.series.map((s, i) => {
          const color = PALETTE[i % PALETTE.length];
          const pts = [...s.points].sort((a, b) => a.x - b.x);
          return (
            <g key={s.name} data-series={s.name}>
              <polyline
                fill="none"
                stroke={color}
                stroke-width="2"
                points={pts.map((p) => `${px(p.x).toFixed(1)},${py(p.y).toFixed(1)}`).join(' ')}
              />
              {pts.map((p) => (
                <circle key={p.x} cx={px(p.x)} cy={py(p.y)} r="3.5" fill={color}>
                  <title>
                    {s.name} {p.y.toFixed(3)} · {p.label ?? new Date(p.x).toLocaleString()}
                  </title>
                </circle>
              ))}
            </g>
          );
        })}
      </svg>
      <figcaption class="legend-row">
        {props.series.map((s, i) => (
          <span key={s.name} class="swatch-label">
            <svg class="swatch" viewBox="0 0 10 10" aria-hidden="true">
              <rect width="10" height="10" rx="2" fill={PALETTE[i % PALETTE.length]} />
            </svg>
            {s.name}
          </span>
        ))}
      </figcaption>
    </figure>
  );
}

/** Samples in equal-width bins, with vertical lines at the given percentiles. */
export function Histogram(props: {
  values: number[];
  marks: Array<{ name: string; value: number }>;
  unit: string;
  title: string;
}) {
  const { values } = props;
  if (values.length === 0 && props.marks.length === 0) return <p class="muted">No latency samples.</p>;
  const hi = niceMax(Math.max(...values, ...props.marks.map((m) => m.value)));
  const bins = 20;
  const counts = new Array<number>(bins).fill(0);
  for (const v of values) counts[Math.min(bins - 1, Math.floor((v / hi) * bins))]! += 1;
  const cMax = Math.max(...counts, 1);
  const bw = (W - PAD.left - PAD.right) / bins;
  const px = (v: number) => PAD.left + (v / hi) * (W - PAD.left - PAD.right);
  const py = (c: number) => H - PAD.bottom - (c / cMax) * (H - PAD.top - PAD.bottom);
  return (
    <figure class="chart" data-testid="histogram">
      <svg viewBox={`0 0 ${W} ${H}`} role="img" aria-label={props.title}>
        <title>{props.title}</title>
        <line class="axis" x1={PAD.left} x2={W - PAD.right} y1={H - PAD.bottom} y2={H - PAD.bottom} />
        {counts.map((c, i) =>
          c === 0 ? null : (
            <rect
              key={i}
              class="bar"
              x={PAD.left + i * bw + 1}
              width={bw - 2}
              y={py(c)}
              height={H - PAD.bottom - py(c)}
            >
              <title>
                {round((i * hi) / bins)}–{round(((i + 1) * hi) / bins)} {props.unit}: {c}
              </title>
            </rect>
          ),
        )}
        {[0, 0.5, 1].map((f) => (
          <text
            key={f}
            class="tick"
            x={px(f * hi)}
            y={H - 8}
            text-anchor={f === 0 ? 'start' : f === 1 ? 'end' : 'middle'}
          >
            {round(f * hi)} {props.unit}
          </text>
        ))}
        <text class="tick" x={PAD.left - 6} y={PAD.top + 8} text-anchor="end">
          {cMax}
        </text>
        {props.marks.map((m, i) => (
          <g key={m.name} class="mark">
            <line x1={px(m.value)} x2={px(m.value)} y1={PAD.top} y2={H - PAD.bottom} />
            <text x={px(m.value) + 4} y={PAD.top + 10 + i * 12}>
              {m.name} {m.value.toFixed(1)}
            </text>
          </g>
        ))}
      </svg>
    </figure>
  );
}

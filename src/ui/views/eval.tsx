/**
 * The evaluation dashboard over the runs `quarry eval --record` stored: a line per metric over time and the
 * latency percentiles per run, then for the selected run its latency distribution and its worst queries,
 * each linked to the trace kept for it. Eval runs measure the whole corpus, so the API asks for the admin
 * scope; other keys are told so.
 */
import { Fragment } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import type { EvalRunResponse, EvalRunSummary } from '../../client/index.js';
import { Histogram, LineChart, type Series } from '../charts.js';
import { isAdmin, type Session } from '../main.js';

const time = (r: EvalRunSummary) => Date.parse(r.createdAt);
const runLabel = (r: EvalRunSummary) => r.label ?? r.id;

function RunDetail(props: { run: EvalRunResponse }) {
  const { run } = props;
  const metricNames = Object.keys(run.metrics);
  const primary = 'ndcg@10' in run.metrics ? 'ndcg@10' : metricNames[0];
  const report = run.report as { corpus?: { documents?: number; chunks?: number } };
  return (
    <>
      <div class="charts">
        <section class="card">
          <h2>
            Latency of {runLabel(run)} <span class="muted">({run.latencies_ms.length} queries)</span>
          </h2>
          <Histogram
            values={run.latencies_ms}
            marks={[
              { name: 'p50', value: run.latency_ms.p50 },
              { name: 'p95', value: run.latency_ms.p95 },
              { name: 'p99', value: run.latency_ms.p99 },
            ]}
            unit="ms"
            title={`Latency distribution of run ${runLabel(run)}`}
          />
        </section>
        <section class="card" data-testid="run-summary">
          <h2>Run {runLabel(run)}</h2>
          <dl class="facts">
            <dt>recorded</dt>
            <dd>{new Date(run.createdAt).toLocaleString()}</dd>
            <dt>dataset</dt>
            <dd>
              {run.dataset} ({run.split}), {run.queries} queries
              {report.corpus?.documents === undefined
                ? ''
                : `, ${report.corpus.documents} documents in ${report.corpus.chunks ?? '?'} chunks`}
            </dd>
            <dt>retriever</dt>
            <dd>{run.retriever}</dd>
            {metricNames.map((m) => (
              <Fragment key={m}>
                <dt>{m}</dt>
                <dd>{run.metrics[m]?.toFixed(4)}</dd>
              </Fragment>
            ))}
            <dt>latency</dt>
            <dd>
              p50 {run.latency_ms.p50.toFixed(1)} · p95 {run.latency_ms.p95.toFixed(1)} · p99{' '}
              {run.latency_ms.p99.toFixed(1)} · max {run.latency_ms.max.toFixed(1)} ms
            </dd>
          </dl>
        </section>
      </div>
      <section class="card">
        <h2>Worst queries{primary === undefined ? '' : ` by ${primary}`}</h2>
        {run.worst.length === 0 ? (
          <p class="muted">No queries.</p>
        ) : (
          <table class="grid" data-testid="worst">
            <thead>
              <tr>
                <th>query</th>
                {metricNames.map((m) => (
                  <th key={m} class="num">
                    {m}
                  </th>
                ))}
                <th class="num">latency</th>
                <th>top documents</th>
                <th>trace</th>
              </tr>
            </thead>
            <tbody>
              {run.worst.map((w) => (
                <tr key={w.queryId} data-query={w.queryId}>
                  <td>
                    <code>{w.queryId}</code> {w.query}
                  </td>
                  {metricNames.map((m) => (
                    <td key={m} class="num">
                      {w.metrics[m]?.toFixed(3) ?? '—'}
                    </td>
                  ))}
                  <td class="num">{w.latencyMs.toFixed(1)} ms</td>
                  <td>{w.top.slice(0, 3).join(', ')}</td>
                  <td>
                    {w.traceId === null ? (
                      <span class="muted">—</span>
                    ) : (
                      <a href={`#/trace/${encodeURIComponent(w.traceId)}`}>trace →</a>
                    )}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </section>
    </>
  );
}

export function EvalView(props: { session: Session }) {
  const { session } = props;
  const [runs, setRuns] = useState<EvalRunSummary[] | undefined>();
  const [dataset, setDataset] = useState<string | undefined>();
  const [selected, setSelected] = useState<string | undefined>();
  const [run, setRun] = useState<EvalRunResponse | undefined>();
  const [error, setError] = useState<string | undefined>();
  const admin = isAdmin(session);

  useEffect(() => {
    if (!admin) return;
    setRuns(undefined);
    setError(undefined);
    session.api
      .listEvalRuns({ limit: 200 }, { collection: session.collection })
      .then((r) => {
        setRuns(r.runs);
        setDataset(r.runs[0]?.dataset);
        setSelected(r.runs[0]?.id);
      })
      .catch((e: unknown) => setError(e instanceof Error ? e.message : String(e)));
  }, [session.api, session.collection, admin]);

  useEffect(() => {
    setRun(undefined);
    if (selected === undefined) return;
    session.api
      .getEvalRun(selected, { worst: 10 }, { collection: session.collection })
      .then(setRun)
      .catch((e: unknown) => setError(e instanceof Error ? e.message : String(e)));
  }, [session.api, session.collection, selected]);

  if (!admin) return <p class="muted">Evaluation runs need a key with the admin scope.</p>;
  if (error !== undefined)
    return (
      <p class="error" role="alert">
        {error}
      </p>
    );
  if (runs === undefined) return <p class="muted">Loading evaluation runs…</p>;
  if (runs.length === 0)
    return (
      <p class="muted" data-testid="no-runs">
        No recorded evaluation runs in collection {session.collection}. Record one with{' '}
        <code>quarry eval &lt;dataset&gt; --record &lt;store&gt;</code>.
      </p>
    );

  const datasets = [...new Set(runs.map((r) => r.dataset))];
  const shown = runs.filter((r) => r.dataset === dataset).sort((a, b) => time(a) - time(b));
  const metricNames = [...new Set(shown.flatMap((r) => Object.keys(r.metrics)))];
  const metricSeries: Series[] = metricNames.map((m) => ({
    name: m,
    points: shown
      .filter((r) => r.metrics[m] !== undefined)
      .map((r) => ({ x: time(r), y: r.metrics[m] ?? 0, label: runLabel(r) })),
  }));
  const latencySeries: Series[] = (['p50', 'p95', 'p99'] as const).map((p) => ({
    name: `${p} ms`,
    points: shown.map((r) => ({ x: time(r), y: r.latency_ms[p], label: runLabel(r) })),
  }));

  return (
    <div class="eval" data-testid="eval">
      {datasets.length > 1 ? (
        <label class="row">
          Dataset
          <select value={dataset} onChange={(e) => setDataset(e.currentTarget.value)}>
            {datasets.map((d) => (
              <option key={d} value={d}>
                {d}
              </option>
            ))}
          </select>
        </label>
      ) : null}
      <div class="charts">
        <section class="card">
          <h2>Metrics over time</h2>
          <LineChart series={metricSeries} yMax={1} title={`Metrics of ${dataset ?? ''} over time`} />
        </section>
        <section class="card">
          <h2>Latency over time</h2>
          <LineChart series={latencySeries} title="Latency percentiles per run (ms)" />
        </section>
      </div>
      <section class="card">
        <h2>Runs</h2>
        <table class="grid runs" data-testid="runs">
          <thead>
            <tr>
              <th>recorded</th>
              <th>label</th>
              <th>retriever</th>
              <th class="num">queries</th>
              {metricNames.map((m) => (
                <th key={m} class="num">
                  {m}
                </th>
              ))}
              <th class="num">p50</th>
              <th class="num">p95</th>
            </tr>
          </thead>
          <tbody>
            {[...shown].reverse().map((r) => (
              <tr key={r.id} data-run={r.id} class={r.id === selected ? 'selected' : ''}>
                <td>
                  <button type="button" class="link" onClick={() => setSelected(r.id)}>
                    {new Date(r.createdAt).toLocaleString()}
                  </button>
                </td>
                <td>{r.label ?? ''}</td>
                <td>{r.retriever}</td>
                <td class="num">{r.queries}</td>
                {metricNames.map((m) => (
                  <td key={m} class="num">
                    {r.metrics[m]?.toFixed(3) ?? '—'}
                  </td>
                ))}
                <td class="num">{r.latency_ms.p50.toFixed(1)}</td>
                <td class="num">{r.latency_ms.p95.toFixed(1)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </section>
      {run === undefined ? null : <RunDetail run={run} />}
    </div>
  );
}

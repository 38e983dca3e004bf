/**
 * The stage trace of one query, for the engineer debugging retrieval: every stage on a waterfall (offset
 * and duration), one table joining each candidate chunk's per-retriever rank and score with its fusion,
 * rerank and final rank, what entered the context (tokens per source, what was dropped and why), the
 * degraded stages, and every stage's raw detail. It renders the stored record as the server returns it.
 */
import { useEffect, useState } from 'preact/hooks';
import type { TraceResponse } from '../../client/index.js';
import type { Session } from '../main.js';

type TraceRecord = TraceResponse;
type StageReport = NonNullable<TraceResponse['trace']>['stages'][number];

import { Meter } from './ask.js';

type Scored = { rank: number; score: number };

export interface CandidateRow {
  chunkId: number;
  docId?: string;
  retrievers: Record<string, Scored>;
  fused?: Scored;
  rerank?: Scored & { fusedRank?: number };
  final?: number;
}

const num = (v: unknown): number | undefined => (typeof v === 'number' && Number.isFinite(v) ? v : undefined);
const arr = (v: unknown): Array<Record<string, unknown>> =>
  Array.isArray(v) ? v.filter((x): x is Record<string, unknown> => typeof x === 'object' && x !== null) : [];
const first = (stages: StageReport[], name: string) => stages.find((s) => s.stage === name);

/** Join the candidate lists of the retrieve, fuse and rerank stages and the final hits by chunk id. */
export function candidateRows(record: TraceRecord): { rows: CandidateRow[]; retrievers: string[] } {
  const stages = record.trace?.stages ?? [];
  const rows = new Map<number, CandidateRow>();
  const row = (chunkId: number): CandidateRow => {
    let r = rows.get(chunkId);
    if (r === undefined) {
      r = { chunkId, retrievers: {} };
      rows.set(chunkId, r);
    }
    return r;
  };
  const retrievers: string[] = [];
  for (const s of stages) {
    if (!s.stage.startsWith('retrieve.')) continue;
    const name = s.stage.slice('retrieve.'.length);
    const cands = arr(s.detail.candidates);
    if (cands.length === 0 || retrievers.includes(name)) continue;
    retrievers.push(name);
    for (const c of cands) {
      const id = num(c.chunkId);
      const rank = num(c.rank);
      const score = num(c.score);
      if (id !== undefined && rank !== undefined && score !== undefined)
        row(id).retrievers[name] = { rank, score };
    }
  }
  const fuse = first(stages, 'fuse');
  for (const c of arr(fuse?.detail.candidates)) {
    const id = num(c.chunkId);
    const rank = num(c.rank);
    const score = num(c.score);
    if (id === undefined || rank === undefined || score === undefined) continue;
    const r = row(id);
    r.fused = { rank, score };
    const sources = c.sources;
    if (typeof sources === 'object' && sources !== null)
      for (const [name, v] of Object.entries(sources as Record<string, Record<string, unknown>>)) {
        const sr = num(v.rank);
        const ss = num(v.score);
        if (sr === undefined || ss === undefined) continue;
        if (!retrievers.includes(name)) retrievers.push(name);
        r.retrievers[name] ??= { rank: sr, score: ss };
      }
  }
  const rerank = first(stages, 'rerank');
  for (const m of arr(rerank?.detail.moves)) {
    const id = num(m.chunkId);
    const rank = num(m.rank);
    const score = num(m.score);
    if (id === undefined || rank === undefined || score === undefined) continue;
    const fusedRank = num(m.fusedRank);
    row(id).rerank = { rank, score, ...(fusedRank === undefined ? {} : { fusedRank }) };
  }
  // Eval traces list their top documents without chunk ids (-1): those are shown apart.
  for (const h of record.hits ?? []) {
    if (h.chunkId < 0) continue;
    const r = row(h.chunkId);
    r.final = h.rank;
    r.docId = h.docId;
  }
  const key = (r: CandidateRow) => [
    r.final ?? Number.POSITIVE_INFINITY,
    r.rerank?.rank ?? Number.POSITIVE_INFINITY,
    r.fused?.rank ?? Number.POSITIVE_INFINITY,
    Math.min(...Object.values(r.retrievers).map((x) => x.rank), Number.POSITIVE_INFINITY),
  ];
  const sorted = [...rows.values()].sort((a, b) => {
    const ka = key(a);
    const kb = key(b);
    for (let i = 0; i < ka.length; i++) if (ka[i] !== kb[i]) return (ka[i] ?? 0) - (kb[i] ?? 0);
    return a.chunkId - b.chunkId;
  });
  return { rows: sorted, retrievers };
}

const fmt = (n: number | undefined, digits = 3) =>
  n === undefined ? '—' : Math.abs(n) >= 100 ? n.toFixed(0) : n.toFixed(digits);
const ms = (n: number) =>
  n >= 100 ? `${n.toFixed(0)} ms` : n >= 1 ? `${n.toFixed(1)} ms` : `${n.toFixed(2)} ms`;

function Waterfall(props: { stages: StageReport[]; totalMs: number }) {
  const total = Math.max(props.totalMs, ...props.stages.map((s) => s.offsetMs + s.durationMs), 0.001);
  const stages = [...props.stages].sort((a, b) => a.offsetMs - b.offsetMs);
  return (
    <div class="waterfall" data-testid="waterfall">
      {stages.map((s, i) => (
        <div class="wf-row" key={`${s.stage}-${i}`} data-stage={s.stage}>
          <span class="wf-name">{s.stage}</span>
          <span class="wf-track">
            <span
              class={`wf-bar wf-${s.stage.split('.')[0]}`}
              style={{
                left: `${(s.offsetMs / total) * 100}%`,
                width: `max(2px, ${(s.durationMs / total) * 100}%)`,
              }}
            />
          </span>
          <span class="wf-time">
            +{ms(s.offsetMs)} · {ms(s.durationMs)}
          </span>
        </div>
      ))}
      <div class="wf-row wf-total">
        <span class="wf-name">total</span>
        <span class="wf-track" />
        <span class="wf-time">{ms(total)}</span>
      </div>
    </div>
  );
}

function Candidates(props: { record: TraceRecord }) {
  const { rows, retrievers } = candidateRows(props.record);
  const [all, setAll] = useState(false);
  if (rows.length === 0) return <p class="muted">This trace lists no candidates.</p>;
  const hasFuse = rows.some((r) => r.fused !== undefined);
  const hasRerank = rows.some((r) => r.rerank !== undefined);
  const shown = all ? rows : rows.slice(0, 25);
  return (
    <>
      <table class="grid" data-testid="candidates">
        <thead>
          <tr>
            <th>chunk</th>
            <th>document</th>
            {retrievers.map((r) => (
              <th key={r} colSpan={2}>
                {r} rank · score
              </th>
            ))}
            {hasFuse ? <th colSpan={2}>fused rank · score</th> : null}
            {hasRerank ? <th colSpan={2}>rerank rank · score</th> : null}
            <th>final</th>
          </tr>
        </thead>
        <tbody>
          {shown.map((r) => (
            <tr key={r.chunkId} class={r.final === undefined ? 'out' : ''}>
              <td>{r.chunkId}</td>
              <td>{r.docId ?? <span class="muted">—</span>}</td>
              {retrievers.map((name) => [
                <td key={`${name}-r`} class="num">
                  {r.retrievers[name]?.rank ?? '—'}
                </td>,
                <td key={`${name}-s`} class="num">
                  {fmt(r.retrievers[name]?.score)}
                </td>,
              ])}
              {hasFuse ? (
                <>
                  <td class="num">{r.fused?.rank ?? '—'}</td>
                  <td class="num">{fmt(r.fused?.score)}</td>
                </>
              ) : null}
              {hasRerank ? (
                <>
                  <td class="num">{r.rerank?.rank ?? '—'}</td>
                  <td class="num">{fmt(r.rerank?.score)}</td>
                </>
              ) : null}
              <td class="num final">{r.final ?? '—'}</td>
            </tr>
          ))}
        </tbody>
      </table>
      {rows.length > shown.length ? (
        <button type="button" class="link" onClick={() => setAll(true)}>
          Show all {rows.length} candidates
        </button>
      ) : null}
    </>
  );
}

function Context(props: { record: TraceRecord }) {
  const stages = props.record.trace?.stages ?? [];
  const docOf = new Map((props.record.hits ?? []).map((h) => [h.chunkId, h.docId]));
  const assemble = first(stages, 'context.assemble');
  if (assemble !== undefined) {
    const d = assemble.detail;
    const budget = (d.budget ?? {}) as Record<string, unknown>;
    const sources = arr(d.sources);
    const dropped = arr(d.dropped);
    const chunks = (v: unknown) => (Array.isArray(v) ? v.map(String).join(', ') : '');
    const docs = (v: unknown) =>
      Array.isArray(v) ? [...new Set(v.map((c) => docOf.get(Number(c)) ?? '?'))].join(', ') : '';
    return (
      <div data-testid="context">
        <p>
          <strong>{String(d.tokens ?? '?')}</strong> tokens of {String(budget.available ?? '?')} available
          (window {String(budget.window ?? '?')}, {String(budget.reservedOutput ?? '?')} reserved for the
          answer, {String(budget.promptOverhead ?? '?')} prompt) · tokenizer {String(d.tokenizer ?? '?')} ·
          ordering {String(d.ordering ?? '?')}
          {num(d.compressedSentences) ? ` · ${String(d.compressedSentences)} sentences compressed` : ''}
        </p>
        <table class="grid">
          <thead>
            <tr>
              <th>source</th>
              <th>kind</th>
              <th>chunks</th>
              <th>document</th>
              <th>tokens</th>
              <th>score</th>
            </tr>
          </thead>
          <tbody>
            {sources.map((s) => (
              <tr key={String(s.n)}>
                <td>[{String(s.n)}]</td>
                <td>{String(s.kind ?? '')}</td>
                <td>{chunks(s.chunkIds)}</td>
                <td>{docs(s.chunkIds)}</td>
                <td class="num">{String(s.tokens ?? '')}</td>
                <td class="num">{fmt(num(s.score))}</td>
              </tr>
            ))}
          </tbody>
        </table>
        {dropped.length === 0 ? (
          <p class="muted">Nothing was dropped.</p>
        ) : (
          <>
            <h3>Dropped</h3>
            <table class="grid" data-testid="dropped">
              <thead>
                <tr>
                  <th>chunk</th>
                  <th>document</th>
                  <th>reason</th>
                </tr>
              </thead>
              <tbody>
                {dropped.map((x) => (
                  <tr key={`${String(x.chunkId)}-${String(x.reason)}`}>
                    <td>{String(x.chunkId)}</td>
                    <td>{docOf.get(Number(x.chunkId)) ?? '—'}</td>
                    <td>{String(x.reason)}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </>
        )}
      </div>
    );
  }
  const extractive = first(stages, 'answer.extractive');
  if (extractive !== undefined) {
    const d = extractive.detail;
    const sentences = arr(d.sentences);
    return (
      <div data-testid="context">
        <p>
          Extractive answer: <strong>{String(d.answerTokens ?? '?')}</strong> tokens of a{' '}
          {String(d.tokenBudget ?? '?')}
          -token budget, support {fmt(num(d.support))} (minimum {fmt(num(d.minSupport))}).
        </p>
        <table class="grid">
          <thead>
            <tr>
              <th>chunk</th>
              <th>document</th>
              <th>score</th>
              <th>coverage</th>
              <th>sentence</th>
            </tr>
          </thead>
          <tbody>
            {sentences.map((s, i) => (
              <tr key={String(i)}>
                <td>{String(s.chunkId)}</td>
                <td>{docOf.get(Number(s.chunkId)) ?? '—'}</td>
                <td class="num">{fmt(num(s.score))}</td>
                <td class="num">{fmt(num(s.coverage))}</td>
                <td>{String(s.text ?? '')}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
    );
  }
  return <p class="muted">No context was assembled for this query ({props.record.kind}).</p>;
}

export function TraceView(props: { session: Session; id: string }) {
  const [record, setRecord] = useState<TraceRecord | undefined>();
  const [error, setError] = useState<string | undefined>();
  const [lookup, setLookup] = useState('');
  useEffect(() => {
    setRecord(undefined);
    setError(undefined);
    if (props.id === '') return;
    props.session.api
      .getTrace(props.id)
      .then(setRecord)
      .catch((e: unknown) => setError(e instanceof Error ? e.message : String(e)));
  }, [props.id, props.session.api]);

  const open = (
    <form
      class="inline"
      onSubmit={(e) => {
        e.preventDefault();
        if (lookup.trim() !== '') location.hash = `#/trace/${encodeURIComponent(lookup.trim())}`;
      }}
    >
      <input
        type="text"
        aria-label="Query id"
        placeholder="query id"
        value={lookup}
        onInput={(e) => setLookup(e.currentTarget.value)}
      />
      <button type="submit">Open trace</button>
    </form>
  );
  if (props.id === '') return open;
  if (error !== undefined)
    return (
      <>
        {open}
        <p class="error" role="alert" data-testid="trace-error">
          {error}
        </p>
      </>
    );
  if (record === undefined) return <p class="muted">Loading trace…</p>;
  const t = record.trace;
  const degraded = record.degraded ?? t?.degraded ?? [];
  return (
    <div class="trace" data-testid="trace">
      <section class="card">
        <h1 class="query" data-testid="trace-query">
          {record.query}
        </h1>
        <p class="muted">
          {record.kind} · collection {record.collection} · {new Date(record.createdAt).toLocaleString()} ·{' '}
          {t === undefined ? '' : ms(t.totalMs)} · query id <code>{record.queryId}</code>
        </p>
        {record.answer === undefined ? null : (
          <p>
            {record.answer.abstained ? <span class="pill warn">abstained</span> : null} {record.answer.text}{' '}
            <span class="confidence">
              <Meter value={record.answer.confidence} /> {Math.round(record.answer.confidence * 100)}% ·{' '}
              {record.answer.answerer}
            </span>
          </p>
        )}
      </section>
      {record.metrics === undefined ? null : (
        <section class="card" data-testid="eval-metrics">
          <h2>Evaluation of this query</h2>
          <p>
            {Object.entries(record.metrics).map(([m, v]) => (
              <span key={m} class="pill">
                {m} {v.toFixed(3)}
              </span>
            ))}
          </p>
          {(record.hits ?? []).length === 0 ? null : (
            <p class="muted">
              Ranked documents: {(record.hits ?? []).map((h) => `${h.rank}. ${h.docId}`).join(' · ')}
            </p>
          )}
        </section>
      )}
      {degraded.length === 0 ? null : (
        <section class="card">
          <h2>Degraded stages</h2>
          <ul class="degraded" data-testid="trace-degraded">
            {degraded.map((d) => (
              <li key={d.stage}>
                <span class="pill warn">{d.stage}</span> {d.reason}
              </li>
            ))}
          </ul>
        </section>
      )}
      <section class="card">
        <h2>Stages</h2>
        {t === undefined ? (
          <p class="muted">No trace was stored.</p>
        ) : (
          <Waterfall stages={t.stages} totalMs={t.totalMs} />
        )}
      </section>
      <section class="card">
        <h2>Candidates</h2>
        <Candidates record={record} />
      </section>
      <section class="card">
        <h2>Context</h2>
        <Context record={record} />
      </section>
      <section class="card">
        <h2>Stage details</h2>
        {(t?.stages ?? []).map((s, i) => (
          <details key={`${s.stage}-${i}`}>
            <summary>
              {s.stage} <span class="muted">{ms(s.durationMs)}</span>
            </summary>
            <pre>{JSON.stringify(s.detail, null, 2)}</pre>
          </details>
        ))}
      </section>
    </div>
  );
}

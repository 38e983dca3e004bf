/**
 * Ask: the answer streams in as the server sends it (`delta` appends, `reset` voids what was streamed), then
 * the final answer brings its citations, validation, confidence and degraded stages. Citation markers open
 * the cited passage with the quoted span highlighted; sentences the validator found unsupported are marked
 * in place, withdrawn ones listed struck through; the query id links to the stage trace.
 */
import type { ComponentChildren } from 'preact';
import { useEffect, useRef, useState } from 'preact/hooks';
import type { AskResponse, AskStreamEvent } from '../../client/index.js';
import type { Session } from '../main.js';
import { answerChunks, type ValidationSummary } from '../types.js';

type Degradation = AskResponse['degraded'][number];

interface AskState {
  status: 'idle' | 'streaming' | 'done' | 'failed';
  queryId?: string;
  text: string;
  deltas: number;
  retrieved?: { strategy: string; hits: number };
  context?: { sources: number; tokens: number };
  reset?: string;
  validation?: ValidationSummary;
  degraded: Degradation[];
  answer?: AskResponse;
  error?: string;
}

const IDLE: AskState = { status: 'idle', text: '', deltas: 0, degraded: [] };

/** Apply one stream event to the state the view renders. */
export function reduce(s: AskState, e: AskStreamEvent): AskState {
  switch (e.event) {
    case 'meta':
      return { ...s, queryId: e.data.queryId };
    case 'retrieved':
      return { ...s, retrieved: { strategy: e.data.strategy, hits: e.data.hits.length } };
    case 'context':
      return { ...s, context: { sources: e.data.sources, tokens: e.data.tokens } };
    case 'delta':
      return { ...s, text: s.text + e.data.text, deltas: s.deltas + 1 };
    case 'reset':
      return { ...s, text: '', reset: e.data.reason };
    case 'validation':
      return { ...s, validation: e.data };
    case 'degraded':
      return { ...s, degraded: e.data };
    case 'answer': {
      const validation = e.data.validation ?? s.validation;
      return {
        ...s,
        answer: e.data,
        text: e.data.text,
        degraded: e.data.degraded,
        ...(validation === undefined ? {} : { validation }),
      };
    }
    case 'error':
      return { ...s, status: 'failed', error: `${e.data.code}: ${e.data.message}` };
    case 'done':
      return s.status === 'failed' ? s : { ...s, status: 'done' };
    default:
      return s;
  }
}

const MARKER = /\[(\d+(?:\s*,\s*\d+)*)\]/g;

/** Text pieces with the ranges of flagged sentences, then citation markers as buttons. */
function AnswerText(props: {
  text: string;
  flagged: Array<{ text: string; kind: 'unsupported' | 'disputed' }>;
  known: Set<number>;
  unknown: Set<number>;
  onCite: (marker: number) => void;
  selected: number | undefined;
}) {
  const { text } = props;
  const ranges: Array<{ start: number; end: number; kind: string }> = [];
  for (const f of props.flagged) {
    const probe = f.text.trim();
    const at = probe === '' ? -1 : text.indexOf(probe);
    if (at >= 0 && !ranges.some((r) => at < r.end && at + probe.length > r.start))
      ranges.push({ start: at, end: at + probe.length, kind: f.kind });
  }
  ranges.sort((a, b) => a.start - b.start);
  const pieces: Array<{ text: string; kind?: string }> = [];
  let at = 0;
  for (const r of ranges) {
    if (r.start > at) pieces.push({ text: text.slice(at, r.start) });
    pieces.push({ text: text.slice(r.start, r.end), kind: r.kind });
    at = r.end;
  }
  if (at < text.length) pieces.push({ text: text.slice(at) });

  const withMarkers = (s: string, key: string): ComponentChildren[] => {
    const out: ComponentChildren[] = [];
    let last = 0;
    for (const m of s.matchAll(MARKER)) {
      if (m.index > last) out.push(s.slice(last, m.index));
      for (const n of (m[1] ?? '').split(',').map((x) => Number(x.trim()))) {
        const known = props.known.has(n);
        out.push(
          <button
            type="button"
            key={`${key}-${m.index}-${n}`}
            class={`cite${known ? '' : ' unknown'}${props.selected === n ? ' selected' : ''}`}
            data-marker={n}
            disabled={!known}
            title={
              known
                ? `Show source ${n}`
                : props.unknown.has(n)
                  ? `[${n}] points to no source in the context`
                  : `[${n}] was not confirmed by the sources`
            }
            onClick={() => props.onCite(n)}
          >
            [{n}]
          </button>,
        );
      }
      last = m.index + m[0].length;
    }
    if (last < s.length) out.push(s.slice(last));
    return out;
  };

  return (
    <>
      {pieces.map((p, i) =>
        p.kind === undefined ? (
          withMarkers(p.text, String(i))
        ) : (
          <span
            key={String(i)}
            class={p.kind}
            title={
              p.kind === 'unsupported'
                ? 'Not supported by the cited sources'
                : 'The self-check disputes this sentence'
            }
          >
            {withMarkers(p.text, String(i))}
          </span>
        ),
      )}
    </>
  );
}

/** The cited passage: the chunk the citation points into, the quoted span in <mark>. */
function PassagePanel(props: {
  session: Session;
  answer: AskResponse;
  marker: number;
  collection: string;
  onClose: () => void;
}) {
  const cites = props.answer.citations.filter((c) => c.marker === props.marker);
  const first = cites[0];
  const [docText, setDocText] = useState<string | undefined>();
  const [error, setError] = useState<string | undefined>();
  const hit = first === undefined ? undefined : answerChunks(props.answer).get(first.chunkId);
  useEffect(() => {
    setDocText(undefined);
    setError(undefined);
    if (first === undefined || hit !== undefined) return;
    props.session.api
      .getDocument(first.docId, { collection: props.collection })
      .then((d) => setDocText(d.text ?? ''))
      .catch((e: unknown) => setError(e instanceof Error ? e.message : String(e)));
  }, [first?.docId, first?.chunkId, hit === undefined]);
  if (first === undefined) return null;

  // The passage and the spans to highlight within it, both relative to the passage.
  let passage = '';
  let offset = 0;
  if (hit !== undefined) {
    passage = hit.text;
    offset = hit.start;
  } else if (docText !== undefined) {
    const lo = Math.max(0, Math.min(...cites.map((c) => c.start)) - 300);
    const hi = Math.min(docText.length, Math.max(...cites.map((c) => c.end)) + 300);
    passage = docText.slice(lo, hi);
    offset = lo;
  }
  const spans = cites
    .filter((c) => c.chunkId === first.chunkId || hit === undefined)
    .map((c) =>
      hit !== undefined && typeof c.chunkStart === 'number' && typeof c.chunkEnd === 'number'
        ? { start: c.chunkStart, end: c.chunkEnd }
        : { start: c.start - offset, end: c.end - offset },
    )
    .filter((s) => s.start >= 0 && s.end <= passage.length && s.start < s.end)
    .sort((a, b) => a.start - b.start);
  const parts: ComponentChildren[] = [];
  let at = 0;
  for (const s of spans) {
    if (s.start < at) continue;
    parts.push(passage.slice(at, s.start));
    parts.push(<mark key={s.start}>{passage.slice(s.start, s.end)}</mark>);
    at = s.end;
  }
  parts.push(passage.slice(at));
  const section = Array.isArray(first.sectionPath) ? first.sectionPath.map(String) : [];

  return (
    <aside class="panel" data-testid="passage-panel" aria-label={`Source ${props.marker}`}>
      <div class="panel-head">
        <h2>
          [{props.marker}] {first.title || first.docId}
        </h2>
        <button type="button" class="link" onClick={props.onClose} aria-label="Close source">
          ✕
        </button>
      </div>
      <dl class="facts">
        <dt>Document</dt>
        <dd data-testid="passage-doc">{first.docId}</dd>
        <dt>Source</dt>
        <dd>{first.source}</dd>
        {section.length > 0 ? (
          <>
            <dt>Section</dt>
            <dd>{section.join(' › ')}</dd>
          </>
        ) : null}
        <dt>Chunk</dt>
        <dd>{first.chunkId}</dd>
      </dl>
      {error !== undefined ? <p class="error">{error}</p> : null}
      {hit === undefined && docText === undefined && error === undefined ? (
        <p class="muted">Loading…</p>
      ) : null}
      <blockquote class="passage">{parts}</blockquote>
      {cites.length > 1 ? <p class="muted">{cites.length} quotes from this source are highlighted.</p> : null}
    </aside>
  );
}

export function AskView(props: { session: Session }) {
  const { session } = props;
  const [question, setQuestion] = useState('');
  const [state, setState] = useState<AskState>(IDLE);
  const [selected, setSelected] = useState<number | undefined>();
  const abort = useRef<AbortController | undefined>(undefined);
  useEffect(() => () => abort.current?.abort(), []);

  const ask = async (e: Event) => {
    e.preventDefault();
    const q = question.trim();
    if (q === '') return;
    abort.current?.abort();
    const ctl = new AbortController();
    abort.current = ctl;
    setSelected(undefined);
    let s: AskState = { ...IDLE, status: 'streaming' };
    setState(s);
    try {
      for await (const ev of session.api.askStream(
        { question: q },
        { collection: session.collection, signal: ctl.signal },
      )) {
        s = reduce(s, ev);
        setState(s);
      }
      if (s.status === 'streaming') setState({ ...s, status: 'done' });
    } catch (err) {
      if (ctl.signal.aborted) return;
      setState({ ...s, status: 'failed', error: err instanceof Error ? err.message : String(err) });
    }
  };

  const a = state.answer;
  const v = state.validation;
  const flagged: Array<{ text: string; kind: 'unsupported' | 'disputed' }> = [
    ...(v?.unsupported ?? []).map((u) => ({ text: u.text, kind: 'unsupported' as const })),
    ...(v?.critique?.unsupported ?? []).map((t) => ({ text: t, kind: 'disputed' as const })),
  ];
  const withdrawn =
    a !== undefined && v?.policy === 'remove'
      ? v.unsupported.filter((u) => !a.text.includes(u.text.trim()))
      : [];
  const known = new Set((a?.citations ?? []).map((c) => c.marker));

  return (
    <div class={selected === undefined || a === undefined ? 'ask' : 'ask with-panel'}>
      <section>
        <form class="ask-form" onSubmit={ask}>
          <input
            type="text"
            name="question"
            aria-label="Question"
            placeholder="Ask a question about your documents"
            value={question}
            onInput={(e) => setQuestion(e.currentTarget.value)}
          />
          <button type="submit" disabled={question.trim() === ''}>
            Ask
          </button>
        </form>
        {state.status === 'idle' ? null : (
          <article class="answer" data-testid="answer" data-state={state.status} data-deltas={state.deltas}>
            <div class="answer-meta">
              {state.status === 'streaming' ? <span class="pill live">streaming…</span> : null}
              {state.retrieved === undefined ? null : (
                <span class="muted">
                  {state.retrieved.hits} passages retrieved ({state.retrieved.strategy})
                </span>
              )}
              {state.context === undefined ? null : (
                <span class="muted">
                  · {state.context.sources} in context, {state.context.tokens} tokens
                </span>
              )}
              {state.queryId === undefined ? null : (
                <a class="trace-link" data-testid="trace-link" href={`#/trace/${state.queryId}`}>
                  Trace of this query →
                </a>
              )}
            </div>
            {state.reset === undefined ? null : (
              <p class="notice">Generation restarted ({state.reset}); the streamed text was discarded.</p>
            )}
            {a?.abstained ? (
              <p class="notice abstained" data-testid="abstained">
                Quarry abstained: the sources did not support an answer.
              </p>
            ) : null}
            <p class="answer-text" data-testid="answer-text">
              <AnswerText
                text={state.text}
                flagged={flagged}
                known={known}
                unknown={new Set(v?.unknownMarkers ?? [])}
                onCite={setSelected}
                selected={selected}
              />
            </p>
            {withdrawn.length === 0 ? null : (
              <div class="withdrawn" data-testid="withdrawn">
                <h3>Withdrawn sentences</h3>
                {withdrawn.map((w) => (
                  <p key={w.text}>
                    <s>{w.text}</s>
                  </p>
                ))}
              </div>
            )}
            {a === undefined ? null : (
              <div class="answer-foot">
                <span class="confidence" data-testid="confidence">
                  Confidence <Meter value={a.confidence} /> {Math.round(a.confidence * 100)}%
                </span>
                <span class="muted">answered by {a.answerer}</span>
                {v === undefined ? null : (
                  <span class="muted">
                    {v.supported} of {v.sentences} sentences supported
                  </span>
                )}
              </div>
            )}
            {flagged.length > 0 || withdrawn.length > 0 ? (
              <p class="legend">
                <span class="unsupported">underlined</span>: not supported by the cited sources
                {v?.critique === undefined ? null : (
                  <>
                    {' '}
                    · <span class="disputed">dotted</span>: disputed by the self-check
                  </>
                )}
                {withdrawn.length > 0 ? (
                  <>
                    {' '}
                    · <s>struck</s>: withdrawn from the answer
                  </>
                ) : null}
              </p>
            ) : null}
            {state.degraded.length === 0 ? null : (
              <ul class="degraded" data-testid="degraded">
                {state.degraded.map((d) => (
                  <li key={d.stage}>
                    <span class="pill warn">{d.stage}</span> {d.reason}
                  </li>
                ))}
              </ul>
            )}
            {state.error === undefined ? null : (
              <p class="error" role="alert">
                {state.error}
              </p>
            )}
          </article>
        )}
      </section>
      {selected === undefined || a === undefined ? null : (
        <PassagePanel
          session={session}
          answer={a}
          marker={selected}
          collection={session.collection}
          onClose={() => setSelected(undefined)}
        />
      )}
    </div>
  );
}

export function Meter(props: { value: number }) {
  const pct = Math.max(0, Math.min(1, props.value)) * 100;
  return (
    <span class="meter" role="img" aria-label={`${Math.round(pct)}%`}>
      <span class={pct >= 50 ? 'fill' : 'fill low'} style={{ width: `${pct}%` }} />
    </span>
  );
}

/**
 * PII redaction of everything the library returns when privacy redacts output (`privacy.at` = `answers` or
 * `both`): one function per output shape (search results, answers, documents, parent sections, traces), called
 * by the facade and the answer runner at the boundary and by any shell (the HTTP server) that returns them.
 * Offsets (chunk, citation, section) keep pointing into the stored text, so they resolve against the store.
 */
import type {
  Answer,
  Citation,
  Degradation,
  QueryRewrite,
  SearchHit,
  StoredDocument,
  TraceReport,
} from '../types.js';
import { type PrivacyConfig, type Redactor, redactsAt } from './redact.js';

/** What output redaction needs of a redactor. */
export type OutputRedactor = Pick<Redactor, 'redact'>;

/** Findings per PII kind, added up across calls (for the trace and metrics). */
export type RedactionCounts = Record<string, number>;

/**
 * The redactor to apply to output, or undefined when output is not redacted: callers test for undefined and
 * do no work at all when privacy is off or redacts at ingest only.
 */
export function outputRedactor(
  config: PrivacyConfig,
  redactor: Redactor | undefined,
): OutputRedactor | undefined {
  return redactor !== undefined && redactsAt(config, 'answers') ? redactor : undefined;
}

function text(r: OutputRedactor, s: string, counts?: RedactionCounts): string {
  const out = r.redact(s);
  if (counts !== undefined) for (const f of out.findings) counts[f.kind] = (counts[f.kind] ?? 0) + 1;
  return out.text;
}

/** Every string inside a JSON-like value (user fields, structured answers, trace details), keys kept. */
function value(r: OutputRedactor, v: unknown, counts?: RedactionCounts): unknown {
  if (typeof v === 'string') return text(r, v, counts);
  if (Array.isArray(v)) return v.map((x) => value(r, x, counts));
  if (v !== null && typeof v === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v)) out[k] = value(r, x, counts);
    return out;
  }
  return v;
}

function strings(r: OutputRedactor, list: readonly string[], counts?: RedactionCounts): string[] {
  return list.map((s) => text(r, s, counts));
}

function rewrite(r: OutputRedactor, w: QueryRewrite, counts?: RedactionCounts): QueryRewrite {
  return {
    original: text(r, w.original, counts),
    searched: text(r, w.searched, counts),
    corrections: w.corrections.map((c) => ({ from: text(r, c.from, counts), to: text(r, c.to, counts) })),
  };
}

function degraded(r: OutputRedactor, list: Degradation[]): Degradation[] {
  // Reasons are error messages, which can echo a query or a provider's reply.
  return list.map((d) => ({ ...d, reason: text(r, d.reason) }));
}

/** Search hits: chunk text, titles, section path and the document's user fields. */
export function redactHits(hits: SearchHit[], r: OutputRedactor, counts?: RedactionCounts): SearchHit[] {
  return hits.map((h) => ({
    ...h,
    chunk: {
      ...h.chunk,
      text: text(r, h.chunk.text, counts),
      title: text(r, h.chunk.title, counts),
      sectionPath: strings(r, h.chunk.sectionPath, counts),
    },
    document: {
      ...h.document,
      title: text(r, h.document.title, counts),
      fields: value(r, h.document.fields, counts) as Record<string, unknown>,
    },
  }));
}

/** The result shape of `search` (kept structural so the privacy stage does not import the pipeline). */
export interface SearchResultShape {
  query: string;
  hits: SearchHit[];
  degraded: Degradation[];
  rewrite?: QueryRewrite;
  trace?: TraceReport;
}

/** A search result: the query as echoed, its rewrite, every hit, degradation reasons and the trace. */
export function redactSearchResult<R extends SearchResultShape>(
  result: R,
  r: OutputRedactor,
  counts?: RedactionCounts,
): R {
  return {
    ...result,
    query: text(r, result.query, counts),
    hits: redactHits(result.hits, r, counts),
    degraded: degraded(r, result.degraded),
    ...(result.rewrite === undefined ? {} : { rewrite: rewrite(r, result.rewrite, counts) }),
    ...(result.trace === undefined ? {} : { trace: redactTrace(result.trace, r) }),
  };
}

/** A citation's quoted text, title and section path. */
export function redactCitation(c: Citation, r: OutputRedactor, counts?: RedactionCounts): Citation {
  return {
    ...c,
    quote: text(r, c.quote, counts),
    title: text(r, c.title, counts),
    sectionPath: strings(r, c.sectionPath, counts),
  };
}

/**
 * An answer, or the part of one built so far: its text, citations and structured data; the question as
 * echoed, its rewrite, the hits, the validator's sentences, degradation reasons and the trace when present.
 */
export function redactAnswer<A extends Pick<Answer, 'text' | 'citations'> & Partial<Answer>>(
  answer: A,
  r: OutputRedactor,
  counts?: RedactionCounts,
): A {
  const out: A = {
    ...answer,
    text: text(r, answer.text, counts),
    citations: answer.citations.map((c) => redactCitation(c, r, counts)),
  };
  if (answer.question !== undefined) out.question = text(r, answer.question, counts);
  if (answer.data !== undefined) out.data = value(r, answer.data, counts);
  if (answer.hits !== undefined) out.hits = redactHits(answer.hits, r, counts);
  if (answer.rewrite !== undefined) out.rewrite = rewrite(r, answer.rewrite, counts);
  if (answer.degraded !== undefined) out.degraded = degraded(r, answer.degraded);
  if (answer.validation !== undefined) {
    const v = answer.validation;
    out.validation = {
      ...v,
      unsupported: v.unsupported.map((u) => ({ ...u, text: text(r, u.text, counts) })),
      ...(v.critique === undefined
        ? {}
        : { critique: { ...v.critique, unsupported: strings(r, v.critique.unsupported, counts) } }),
    };
  }
  if (answer.trace !== undefined) out.trace = redactTrace(answer.trace, r);
  return out;
}

/** A stored document (list entry, or with its `text` from `getDocument`): text, title and user fields. */
export function redactStoredDocument<D extends StoredDocument & { text?: string }>(
  doc: D,
  r: OutputRedactor,
): D {
  const out: D = {
    ...doc,
    meta: {
      ...doc.meta,
      title: text(r, doc.meta.title),
      fields: value(r, doc.meta.fields) as Record<string, unknown>,
    },
  };
  if (doc.text !== undefined) out.text = text(r, doc.text);
  return out;
}

/** The heading-delimited section around a chunk: its text and heading path. */
export function redactParentSection<S extends { text: string; path: string[] }>(
  section: S,
  r: OutputRedactor,
): S {
  return { ...section, text: text(r, section.text), path: strings(r, section.path) };
}

/**
 * A trace report: the query and every string inside the stages' details and degradation reasons (candidate
 * snippets, context sources, extractive sentences, rewritten queries). Details are open-ended per stage, so
 * every string is read rather than a list of fields that would miss the next one added. A text repeated across
 * stages is scanned once.
 */
export function redactTrace(trace: TraceReport, r: OutputRedactor): TraceReport {
  const seen = new Map<string, string>();
  // The trace also holds the query's analyzed terms (`dana.whitfield`, `example.org`, `6789`): pieces of a
  // value found in the query, which no detector recognizes alone. Any string that is such a piece goes too.
  const q = r.redact(trace.query);
  const values = q.findings.map((f) => trace.query.slice(f.start, f.end).toLowerCase());
  const piece = (s: string) => s.length >= 3 && values.some((v) => v.includes(s.toLowerCase()));
  const once: OutputRedactor = {
    redact(s) {
      let t = seen.get(s);
      if (t === undefined) {
        t = values.length > 0 && piece(s) ? '[REDACTED]' : r.redact(s).text;
        seen.set(s, t);
      }
      return { text: t, findings: [] };
    },
  };
  return {
    ...trace,
    query: text(once, trace.query),
    stages: trace.stages.map((s) => ({ ...s, detail: value(once, s.detail) as Record<string, unknown> })),
    ...(trace.degraded === undefined ? {} : { degraded: degraded(once, trace.degraded) }),
  };
}

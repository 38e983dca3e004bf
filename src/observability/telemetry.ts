/**
 * One request's spans and metrics, fed from the trace's stage boundaries (./trace.ts): a request span
 * (`quarry.search`, `quarry.ask`, `quarry.ingest`) parented on the active context, one child span per stage
 * with the `rag.*` attributes, and the stage/request histograms. `startRequestTelemetry` returns undefined
 * when neither spans nor metrics are on, and the trace then skips all of this.
 */

import type { Attributes, Context, Span } from '@opentelemetry/api';
import { QuarryError } from '../errors.js';
import { countTokens } from '../ingest/tokens.js';
import type { Answer, Degradation, RequestUsage, SearchHit, StageName } from '../types.js';
import {
  activeMetrics,
  type GuardEvent,
  type QuarryMetrics,
  type RequestOperation,
  reasonClass,
  recordTokens,
} from './metrics.js';
import { activeTracer, otel, STAGE_SPANS } from './tracing.js';

// SpanStatusCode.ERROR, without loading the API for a constant.
const STATUS_ERROR = 2 as const;

export type { RequestOperation } from './metrics.js';

/** What a search hands the request telemetry at its end (a `SearchResult`, structurally). */
export interface RetrievalOutcome {
  hits: SearchHit[];
  degraded: Degradation[];
  strategy?: string | undefined;
  rerank?: { reranker: string; status: string } | undefined;
  usage?: RequestUsage | undefined;
}

export function startRequestTelemetry(
  operation: RequestOperation,
  query: string,
): RequestTelemetry | undefined {
  const tracer = activeTracer();
  const metrics = activeMetrics();
  if (tracer === undefined && metrics === undefined) return undefined;
  return new RequestTelemetry(operation, query, tracer, metrics);
}

export class RequestTelemetry {
  private readonly t0 = performance.now();
  private readonly span: Span | undefined;
  /** The request span's context: every stage span is its child. */
  private readonly parent: Context | undefined;
  private fusedTop1: number | undefined;
  private rerankTop1: number | undefined;
  private contextTokens: number | undefined;
  private ended = false;

  constructor(
    readonly operation: RequestOperation,
    query: string,
    tracer: ReturnType<typeof activeTracer>,
    private readonly metrics: QuarryMetrics | undefined,
  ) {
    if (tracer === undefined) return;
    const { context, trace } = otel();
    const active = context.active();
    this.span = tracer.startSpan(
      `quarry.${operation}`,
      {
        startTime: epochMs(this.t0),
        attributes: operation === 'ingest' ? {} : { 'rag.query_tokens': countTokens(query) },
      },
      active,
    );
    this.parent = trace.setSpan(active, this.span);
  }

  /** Whether stage spans are emitted (they need the stage detail). */
  get spans(): boolean {
    return this.span !== undefined;
  }

  startStage(name: StageName, t0: number): Span | undefined {
    if (this.span === undefined) return undefined;
    return activeTracer()?.startSpan(STAGE_SPANS[name], { startTime: epochMs(t0) }, this.parent);
  }

  /** Run a stage with its span active (the request span when `span` is undefined), so what it calls sees it. */
  within<T>(span: Span | undefined, fn: () => T): T {
    if (this.parent === undefined) return fn();
    const { context, trace } = otel();
    return context.with(span === undefined ? this.parent : trace.setSpan(this.parent, span), fn);
  }

  endStage(
    name: StageName,
    span: Span | undefined,
    t0: number,
    t1: number,
    detail: Record<string, unknown> | undefined,
    result: unknown,
  ): void {
    this.metrics?.stage.observe({ stage: name }, (t1 - t0) / 1000);
    this.observeStage(name, detail, result);
    const s = span ?? this.startStage(name, t0);
    if (s === undefined) return;
    if (detail !== undefined) s.setAttributes(stageAttributes(name, detail, result));
    if (name === 'rerank' && this.rerankTop1 !== undefined)
      s.setAttribute('rag.rerank_score_top1', this.rerankTop1);
    if (typeof detail?.error === 'string') s.setStatus({ code: STATUS_ERROR, message: detail.error });
    s.end(epochMs(t1));
  }

  failStage(name: StageName, span: Span | undefined, t0: number, error: unknown): void {
    const t1 = performance.now();
    this.metrics?.stage.observe({ stage: name }, (t1 - t0) / 1000);
    if (span === undefined) return;
    markError(span, error);
    span.end(epochMs(t1));
  }

  degraded(d: Degradation): void {
    this.metrics?.degraded.inc({ stage: d.stage, reason: reasonClass(d.reason) });
    this.span?.addEvent('quarry.degraded', { 'rag.stage': d.stage, 'rag.degraded_reason': d.reason });
  }

  /** A request-level `rag.*` figure only the runner knows (e.g. the extractive answerer's context tokens). */
  contextUsed(tokens: number): void {
    this.contextTokens = tokens;
  }

  /** The end of a search, also inside an ask: hits, top-1 scores. */
  retrieved(result: RetrievalOutcome): void {
    if (result.strategy === 'cache') return; // nothing was ranked
    if (this.metrics !== undefined) {
      if (this.fusedTop1 !== undefined) this.metrics.score.observe({ kind: 'fused' }, this.fusedTop1);
      if (this.rerankTop1 !== undefined) this.metrics.score.observe({ kind: 'rerank' }, this.rerankTop1);
    }
    this.span?.setAttributes({
      'rag.retrieved_chunks': result.hits.length,
      ...(this.fusedTop1 === undefined ? {} : { 'rag.fused_score_top1': this.fusedTop1 }),
      ...(this.rerankTop1 === undefined ? {} : { 'rag.rerank_score_top1': this.rerankTop1 }),
      ...(result.rerank === undefined ? {} : { 'rag.reranker': result.rerank.reranker }),
    });
  }

  /** The request answered: search result or answer. */
  finish(result: RetrievalOutcome & { strategy?: string | undefined }, answer?: Answer): void {
    if (this.ended) return;
    this.ended = true;
    const status = result.degraded.length > 0 ? 'degraded' : 'ok';
    const m = this.metrics;
    if (answer !== undefined && answer.cached !== true) {
      const answerer = answer.answerer === 'extractive' ? 'extractive' : 'llm';
      m?.answers.inc({ answerer });
      if (answer.abstained) m?.abstentions.inc({ answerer });
      const v = answer.validation;
      if (v !== undefined) {
        guard(m, 'unknown_citation', v.unknownMarkers.length);
        guard(m, 'unsupported_sentence', Math.max(v.unsupported.length, v.removed));
      }
    }
    // Every metered call of the request (rewrite, rerank, embed, generate, critique), by component; a cached
    // result spent nothing.
    const usage = answer?.usage ?? result.usage;
    if (usage !== undefined && usage.cached !== true)
      for (const c of usage.byComponent) recordTokens(c.component, c);
    m?.request.observe({ operation: this.operation, status }, (performance.now() - this.t0) / 1000);
    const span = this.span;
    if (span === undefined) return;
    span.setAttributes({
      'rag.retrieved_chunks': result.hits.length,
      'rag.degraded': result.degraded.length,
      ...(result.strategy === undefined ? {} : { 'rag.strategy': result.strategy }),
      ...(answer === undefined ? {} : answerAttributes(answer, this.contextTokens)),
    });
    // The same clock the stage spans end on (the SDK's own anchored clock can differ by a fraction of a ms).
    span.end(epochMs(performance.now()));
  }

  /** An ingest finished (its report's counts). */
  finishIngest(counts: Record<string, number>, failed: number): void {
    if (this.ended) return;
    this.ended = true;
    this.metrics?.request.observe(
      { operation: this.operation, status: failed > 0 ? 'degraded' : 'ok' },
      (performance.now() - this.t0) / 1000,
    );
    if (this.span === undefined) return;
    const attrs: Attributes = { 'rag.ingest.failed': failed };
    for (const [k, v] of Object.entries(counts)) attrs[`rag.ingest.${k}`] = v;
    this.span.setAttributes(attrs);
    this.span.end();
  }

  /** The request failed (or its consumer stopped reading: `error` undefined). */
  fail(error: unknown): void {
    if (this.ended) return;
    this.ended = true;
    const code = error === undefined ? 'CANCELLED' : errorCode(error);
    this.metrics?.errors.inc({ operation: this.operation, code });
    this.metrics?.request.observe(
      { operation: this.operation, status: 'error' },
      (performance.now() - this.t0) / 1000,
    );
    if (this.span === undefined) return;
    if (error === undefined) this.span.setStatus({ code: STATUS_ERROR, message: 'cancelled' });
    else markError(this.span, error);
    this.span.end();
  }

  /** Facts metrics need from a stage, whether or not spans are on. */
  private observeStage(name: StageName, detail: Record<string, unknown> | undefined, result: unknown): void {
    if (name === 'hits.load') {
      // The first list's top hit before any reranking (multi-stage retrieval loads one list per query).
      const top = (result as SearchHit[] | undefined)?.[0]?.score;
      this.fusedTop1 ??= top;
    } else if (name === 'rerank') {
      const outcome = result as { status?: string; hits?: SearchHit[] } | undefined;
      const top = outcome?.hits?.[0]?.score;
      if (outcome?.status === 'reranked' && top !== undefined) this.rerankTop1 = top;
    } else if (name === 'context.assemble' && typeof detail?.tokens === 'number') {
      this.contextTokens = detail.tokens;
    } else if (name === 'privacy.redact' && this.metrics !== undefined) {
      const findings = (detail?.findings ?? {}) as Record<string, number>;
      guard(
        this.metrics,
        'pii_redaction',
        Object.values(findings).reduce((a, b) => a + b, 0),
      );
    }
  }
}

/** Stage detail → span attributes: scalars as `quarry.<key>`, list lengths, and the `rag.*` figures. */
function stageAttributes(name: StageName, detail: Record<string, unknown>, result: unknown): Attributes {
  const a: Attributes = {};
  for (const [k, v] of Object.entries(detail)) {
    if (typeof v === 'number' ? Number.isFinite(v) : typeof v === 'boolean') a[`quarry.${k}`] = v as number;
    else if (typeof v === 'string') a[`quarry.${k}`] = v.length > 256 ? `${v.slice(0, 253)}...` : v;
    else if (Array.isArray(v)) a[`quarry.${k}.count`] = v.length;
  }
  if (name.startsWith('retrieve.') && name !== 'retrieve.prepare') {
    a['rag.retriever'] = name.slice('retrieve.'.length);
    if (Array.isArray(detail.candidates)) a['rag.candidates'] = detail.candidates.length;
  }
  if (name === 'cache') {
    a['rag.cache.layer'] = typeof detail.layer === 'string' ? detail.layer : 'response';
    a['rag.cache.hit'] = detail.hit === true;
  }
  if (name === 'context.assemble' && typeof detail.tokens === 'number') {
    a['rag.context_tokens'] = detail.tokens;
    if (Array.isArray(detail.sources)) a['rag.context_sources'] = detail.sources.length;
  }
  if (name === 'hits.load' && Array.isArray(result)) {
    a['rag.retrieved_chunks'] = result.length;
    const top = (result as SearchHit[])[0]?.score;
    if (top !== undefined) a['rag.fused_score_top1'] = top;
  }
  if (name === 'answer.generate' || name === 'query.rewrite' || name === 'answer.critique') {
    const usage = detail.usage as { inputTokens?: number; outputTokens?: number } | null | undefined;
    if (typeof detail.provider === 'string') a['gen_ai.system'] = detail.provider;
    if (usage?.inputTokens !== undefined) a['gen_ai.usage.input_tokens'] = usage.inputTokens;
    if (usage?.outputTokens !== undefined) a['gen_ai.usage.output_tokens'] = usage.outputTokens;
  }
  return a;
}

function answerAttributes(answer: Answer, contextTokens: number | undefined): Attributes {
  return {
    'rag.answerer': answer.answerer,
    'rag.abstained': answer.abstained,
    'rag.confidence': answer.confidence,
    'rag.citations': answer.citations.length,
    'rag.cached': answer.cached === true,
    ...(contextTokens === undefined ? {} : { 'rag.context_tokens': contextTokens }),
    ...(answer.usage === undefined
      ? {}
      : {
          'gen_ai.usage.input_tokens': answer.usage.inputTokens,
          'gen_ai.usage.output_tokens': answer.usage.outputTokens,
        }),
  };
}

function guard(m: QuarryMetrics | undefined, kind: GuardEvent, n: number): void {
  if (n > 0) m?.guard.inc({ kind }, n);
}

function markError(span: Span, error: unknown): void {
  span.recordException(error instanceof Error ? error : String(error));
  span.setAttribute('error.type', errorCode(error));
  span.setStatus({
    code: STATUS_ERROR,
    message: error instanceof Error ? error.message : String(error),
  });
}

function errorCode(error: unknown): string {
  return error instanceof QuarryError ? error.code : 'INTERNAL';
}

function epochMs(t: number): number {
  return performance.timeOrigin + t;
}

/** What an ingest request reports at its end (an `IngestReport`, structurally). */
export interface IngestOutcome {
  files: number;
  added: number;
  updated: number;
  unchanged: number;
  removed: number;
  failed: number;
  chunks: number;
  redactions?: Record<string, number> | undefined;
}

/** Run one ingest request under a `quarry.ingest` span and the request metrics (a no-op when telemetry is off). */
export async function observeIngest<R extends IngestOutcome>(fn: () => Promise<R>): Promise<R> {
  const tel = startRequestTelemetry('ingest', '');
  if (tel === undefined) return fn();
  try {
    const report = await tel.within(undefined, fn);
    const { files, added, updated, unchanged, removed, chunks } = report;
    const redacted = Object.values(report.redactions ?? {}).reduce((a, b) => a + b, 0);
    if (redacted > 0) activeMetrics()?.guard.inc({ kind: 'pii_redaction' }, redacted);
    tel.finishIngest({ files, added, updated, unchanged, removed, chunks }, report.failed);
    return report;
  } catch (e) {
    tel.fail(e);
    throw e;
  }
}

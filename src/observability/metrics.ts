/**
 * Prometheus metrics on a registry Quarry owns (never prom-client's global one, so tests and embedding
 * applications do not collide). Collection starts when `enableMetrics()` (or `metricsRegistry()`) is first
 * called; until then every `record…` helper is one branch. The pipeline reports through the request
 * telemetry (./telemetry.ts); caches, the server and cost accounting call the helpers below.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import type { Registry } from 'prom-client';
import { lazyModule } from '../lazy.js';
import type { StageName } from '../types.js';

export type CacheLayer = 'embedding' | 'retrieval' | 'response';
export type TokenComponent = 'generate' | 'rewrite' | 'rerank' | 'embed' | 'critique';
export type RequestOperation = 'search' | 'ask' | 'ingest';
/** `degraded`: answered, but with a stage in a reduced form. */
export type RequestStatus = 'ok' | 'degraded' | 'error';
/**
 * Guard events: PII redacted from text leaving Quarry, citations naming no source of the context (a model
 * citing what it was not shown), unsupported sentences flagged or removed by validation; sources that look
 * like a prompt injection, by kind (src/generate/guard.ts), and links in answers that would carry data to a
 * URL no source names (`answer_exfiltration`).
 */
export type GuardEvent =
  | 'pii_redaction'
  | 'unknown_citation'
  | 'unsupported_sentence'
  | 'injection_override'
  | 'injection_role'
  | 'injection_persona'
  | 'injection_prompt_leak'
  | 'injection_exfiltration'
  | 'answer_exfiltration';

/** Who a request is for, as the server knows it; put on token and cost series. */
export interface RequestLabels {
  keyId?: string;
  tenant?: string;
}

// Loaded when metrics are enabled: most CLI calls never collect, and prom-client costs ~35 ms to load.
const promClient = lazyModule<typeof import('prom-client')>('prom-client');

const LATENCY_BUCKETS = [
  0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
];
// Fused (RRF) scores sit around 0.01-0.05, BM25 and cross-encoder scores from ~0.1 to tens: one wide ladder.
const SCORE_BUCKETS = [0.001, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 20, 50];

function createMetrics(registry: Registry) {
  const { Counter, Gauge, Histogram } = promClient();
  const registers = [registry];
  return {
    stage: new Histogram({
      name: 'quarry_stage_duration_seconds',
      help: 'Duration of each pipeline stage',
      labelNames: ['stage'] as const,
      buckets: LATENCY_BUCKETS,
      registers,
    }),
    request: new Histogram({
      name: 'quarry_request_duration_seconds',
      help: 'Duration of search, ask and ingest requests by outcome',
      labelNames: ['operation', 'status'] as const,
      buckets: LATENCY_BUCKETS,
      registers,
    }),
    errors: new Counter({
      name: 'quarry_errors_total',
      help: 'Requests that failed, by operation and error code',
      labelNames: ['operation', 'code'] as const,
      registers,
    }),
    cache: new Counter({
      name: 'quarry_cache_lookups_total',
      help: 'Cache lookups by layer and result (hit or miss)',
      labelNames: ['layer', 'result'] as const,
      registers,
    }),
    tokens: new Counter({
      name: 'quarry_tokens_total',
      help: 'Model tokens by component and direction (in = prompt, out = completion)',
      labelNames: ['component', 'direction', 'key', 'tenant'] as const,
      registers,
    }),
    cost: new Counter({
      name: 'quarry_cost_usd_total',
      help: 'Model cost in US dollars by component (from the configured price table)',
      labelNames: ['component', 'key', 'tenant'] as const,
      registers,
    }),
    score: new Histogram({
      name: 'quarry_retrieval_top1_score',
      help: 'Score of the top hit: fused (first stage) and rerank',
      labelNames: ['kind'] as const,
      buckets: SCORE_BUCKETS,
      registers,
    }),
    answers: new Counter({
      name: 'quarry_answers_total',
      help: 'Answers given (abstentions included)',
      labelNames: ['answerer'] as const,
      registers,
    }),
    abstentions: new Counter({
      name: 'quarry_abstentions_total',
      help: 'Answers that abstained because the sources did not support one',
      labelNames: ['answerer'] as const,
      registers,
    }),
    degraded: new Counter({
      name: 'quarry_degraded_total',
      help: 'Stages that ran in a reduced form, by stage and reason class',
      labelNames: ['stage', 'reason'] as const,
      registers,
    }),
    guard: new Counter({
      name: 'quarry_guard_events_total',
      help: 'Guard events: PII redactions, citations of unknown sources, unsupported sentences, prompt injections, exfiltration links',
      labelNames: ['kind'] as const,
      registers,
    }),
    indexAge: new Gauge({
      name: 'quarry_index_version_age_seconds',
      help: 'Seconds since the index version last changed, as seen by this process',
      labelNames: ['collection'] as const,
      registers,
      collect() {
        collectIndexProbes();
      },
    }),
    unembedded: new Gauge({
      name: 'quarry_index_unembedded_chunks',
      help: 'Chunks in the store that a dense index does not hold yet',
      labelNames: ['collection', 'model'] as const,
      registers,
    }),
    http: new Histogram({
      name: 'quarry_http_request_duration_seconds',
      help: 'HTTP requests by method, route and status',
      labelNames: ['method', 'route', 'status'] as const,
      buckets: LATENCY_BUCKETS,
      registers,
    }),
    inFlight: new Gauge({
      name: 'quarry_http_requests_in_flight',
      help: 'HTTP requests being served',
      labelNames: ['method', 'route'] as const,
      registers,
    }),
  };
}

export type QuarryMetrics = ReturnType<typeof createMetrics>;

let registry: Registry | undefined;
let metrics: QuarryMetrics | undefined;
let processMetrics = false;

/** The metric set when collection is on; undefined otherwise (for the request telemetry). */
export function activeMetrics(): QuarryMetrics | undefined {
  return metrics;
}

/**
 * Start collecting and return Quarry's registry (idempotent). `processMetrics` adds prom-client's
 * process and Node.js metrics (CPU, memory, event-loop lag) to the same registry.
 */
export function enableMetrics(opts: { processMetrics?: boolean } = {}): Registry {
  if (registry === undefined) {
    registry = new (promClient().Registry)();
    metrics = createMetrics(registry);
  }
  if (opts.processMetrics === true && !processMetrics) {
    promClient().collectDefaultMetrics({ register: registry });
    processMetrics = true;
  }
  return registry;
}

/** Quarry's registry (collection starts with the first call). */
export function metricsRegistry(): Registry {
  return enableMetrics();
}

/** The exposition text for `/metrics`, and its content type. */
export async function metricsText(): Promise<{ contentType: string; text: string }> {
  const r = enableMetrics();
  return { contentType: r.contentType, text: await r.metrics() };
}

/** Zero every series (tests; a new benchmark phase). */
export function resetMetrics(): void {
  registry?.resetMetrics();
}

/** Stop collecting and drop the registry (the next `enableMetrics` starts fresh). */
export function disableMetrics(): void {
  registry?.clear();
  registry = undefined;
  metrics = undefined;
  processMetrics = false;
  indexProbes.clear();
}

const requestLabels = new AsyncLocalStorage<RequestLabels>();

/**
 * Run `fn` with `labels` as the request's key and tenant: token and cost series recorded inside it (also
 * by the pipeline, through async calls) carry them.
 *
 * @example
 * await withRequestLabels({ keyId: key.id, tenant: key.tenant }, () => quarry.ask(question));
 */
export function withRequestLabels<T>(labels: RequestLabels, fn: () => T): T {
  return requestLabels.run(labels, fn);
}

/** A lookup in one cache layer (call from the cache's `get`). */
export function recordCacheLookup(layer: CacheLayer, hit: boolean): void {
  metrics?.cache.inc({ layer, result: hit ? 'hit' : 'miss' });
}

/** Model tokens spent by a component; `labels` default to those of `withRequestLabels`. */
export function recordTokens(
  component: TokenComponent,
  usage: { inputTokens: number; outputTokens: number; costUsd?: number | undefined },
  labels?: RequestLabels,
): void {
  if (metrics === undefined) return;
  const l = labelValues(labels ?? requestLabels.getStore());
  if (usage.inputTokens > 0) metrics.tokens.inc({ component, direction: 'in', ...l }, usage.inputTokens);
  if (usage.outputTokens > 0) metrics.tokens.inc({ component, direction: 'out', ...l }, usage.outputTokens);
  if (usage.costUsd !== undefined && usage.costUsd > 0) metrics.cost.inc({ component, ...l }, usage.costUsd);
}

/** A guard that fired `n` times (e.g. PII redacted in search hits or documents). */
export function recordGuardEvent(kind: GuardEvent, n = 1): void {
  if (n > 0) metrics?.guard.inc({ kind }, n);
}

/** A degradation, by stage and the class of its reason (timeout, unavailable, error). */
export function recordDegraded(stage: StageName, reason: string): void {
  metrics?.degraded.inc({ stage, reason: reasonClass(reason) });
}

/** Degradation reasons are free text; their class is bounded, so it can be a label. */
export function reasonClass(reason: string): 'timeout' | 'unavailable' | 'error' {
  if (/\b(timeout|timed out|exceeded|budget)\b/i.test(reason)) return 'timeout';
  if (/\b(unavailable|not ready|did not run|no vectors|behind|empty|too small|in flight)\b/i.test(reason))
    return 'unavailable';
  return 'error';
}

/**
 * Time one HTTP request: call at arrival, call the returned function with the status when it ends. `route`
 * is the route pattern (`/v1/documents/:id`), never the raw URL, so the label stays bounded.
 */
export function startHttpRequest(method: string, route: string): (status: number) => void {
  const m = metrics;
  if (m === undefined) return () => {};
  const t0 = performance.now();
  m.inFlight.inc({ method, route });
  let done = false;
  return (status) => {
    if (done) return;
    done = true;
    m.inFlight.dec({ method, route });
    m.http.observe({ method, route, status: String(status) }, (performance.now() - t0) / 1000);
  };
}

/** What an index staleness probe reports; see `registerIndexProbe`. */
export interface IndexFreshness {
  indexVersion: number;
  /** Per dense model: chunks in the store it has no vector for yet. */
  unembedded?: Record<string, number>;
}

const indexProbes = new Map<string, { probe: () => IndexFreshness; version?: number; since: number }>();

/**
 * Report the staleness of one collection's index at every scrape: seconds since its version last changed
 * (as seen by this process) and chunks not embedded yet. Returns the function that stops reporting it.
 *
 * @example
 * registerIndexProbe('default', () => indexFreshness(quarry.stats()));
 */
export function registerIndexProbe(collection: string, probe: () => IndexFreshness): () => void {
  indexProbes.set(collection, { probe, since: Date.now() });
  return () => {
    indexProbes.delete(collection);
    metrics?.indexAge.remove({ collection });
  };
}

/** `IndexFreshness` from `quarry.stats()`: index version, and chunks minus vectors per dense model. */
export function indexFreshness(stats: {
  chunks: number;
  index: { version: number };
  dense: Array<{ name: string; vectors?: number | undefined }>;
}): IndexFreshness {
  const unembedded: Record<string, number> = {};
  for (const d of stats.dense)
    if (d.vectors !== undefined) unembedded[d.name] = Math.max(0, stats.chunks - d.vectors);
  return { indexVersion: stats.index.version, unembedded };
}

function collectIndexProbes(): void {
  const m = metrics;
  if (m === undefined) return;
  const now = Date.now();
  for (const [collection, p] of indexProbes) {
    let f: IndexFreshness;
    try {
      f = p.probe();
    } catch {
      continue; // a closed instance: nothing to report this scrape
    }
    if (p.version !== f.indexVersion) {
      // The first observation starts the clock: an older change is not visible from here.
      if (p.version !== undefined) p.since = now;
      p.version = f.indexVersion;
    }
    m.indexAge.set({ collection }, (now - p.since) / 1000);
    for (const [model, n] of Object.entries(f.unembedded ?? {})) m.unembedded.set({ collection, model }, n);
  }
}

function labelValues(l: RequestLabels | undefined): { key?: string; tenant?: string } {
  if (l === undefined) return {};
  return {
    ...(l.keyId === undefined ? {} : { key: l.keyId }),
    ...(l.tenant === undefined ? {} : { tenant: l.tenant }),
  };
}

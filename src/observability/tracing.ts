/**
 * OpenTelemetry spans for the pipeline behind one function and a closed list of span names. Off by default:
 * until `configureTelemetry` installs a tracer, `activeTracer()` is undefined and no span code runs. The SDK
 * and the OTLP exporter are imported only when configured, so a library user who never traces loads neither.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import type { Context, ContextManager, Tracer, TracerProvider } from '@opentelemetry/api';
import type { SpanProcessor } from '@opentelemetry/sdk-trace-base';
import { z } from 'zod';
import { QuarryError } from '../errors.js';
import { lazyModule } from '../lazy.js';
import type { StageName } from '../types.js';

/** Every span Quarry emits: one per request and one per trace stage (see `STAGE_SPANS`). */
export type SpanName =
  /** The server's span around one HTTP request (parent of the request span). */
  | 'quarry.http'
  | 'quarry.search'
  | 'quarry.ask'
  | 'quarry.ingest'
  | 'quarry.filter'
  | 'quarry.understand'
  | 'quarry.expand'
  | 'quarry.rewrite'
  | 'quarry.retrieve.prepare'
  | 'quarry.retrieve.bm25'
  | 'quarry.retrieve.dense'
  | 'quarry.retrieve.exact'
  | 'quarry.fuse'
  | 'quarry.freshness'
  | 'quarry.hits'
  | 'quarry.cache'
  | 'quarry.rerank'
  | 'quarry.assemble'
  | 'quarry.route'
  | 'quarry.generate'
  | 'quarry.generate.extractive'
  | 'quarry.validate'
  | 'quarry.critique'
  | 'quarry.guard.passages'
  | 'quarry.guard.answer'
  | 'quarry.redact';

/** The span of each trace stage: a new StageName does not compile until it has one. */
export const STAGE_SPANS: Readonly<Record<StageName, SpanName>> = {
  'filter.compile': 'quarry.filter',
  'query.analyze': 'quarry.understand',
  'query.expand': 'quarry.expand',
  'query.rewrite': 'quarry.rewrite',
  'retrieve.prepare': 'quarry.retrieve.prepare',
  'retrieve.bm25': 'quarry.retrieve.bm25',
  'retrieve.dense': 'quarry.retrieve.dense',
  'retrieve.exact': 'quarry.retrieve.exact',
  fuse: 'quarry.fuse',
  freshness: 'quarry.freshness',
  'hits.load': 'quarry.hits',
  cache: 'quarry.cache',
  rerank: 'quarry.rerank',
  'context.assemble': 'quarry.assemble',
  'answer.route': 'quarry.route',
  'answer.generate': 'quarry.generate',
  'answer.extractive': 'quarry.generate.extractive',
  'answer.validate': 'quarry.validate',
  'answer.critique': 'quarry.critique',
  'guard.passages': 'quarry.guard.passages',
  'guard.answer': 'quarry.guard.answer',
  'privacy.redact': 'quarry.redact',
};

/** Every span name, for checks (tests, collectors' allow lists). */
export const SPAN_NAMES: readonly SpanName[] = [
  'quarry.http',
  'quarry.search',
  'quarry.ask',
  'quarry.ingest',
  ...new Set(Object.values(STAGE_SPANS)),
];

/** How spans leave the process: OTLP over HTTP, nowhere, or a processor/provider the caller owns. */
export type TelemetryOptions =
  | { exporter: 'otlp'; endpoint?: string; headers?: Record<string, string>; serviceName?: string }
  | { exporter: 'none' }
  /** e.g. `new SimpleSpanProcessor(new InMemorySpanExporter())` in tests. */
  | { spanProcessor: SpanProcessor; serviceName?: string }
  /** A provider the application already runs (e.g. its NodeSDK); Quarry only asks it for a tracer. */
  | { tracerProvider: TracerProvider };

const OtlpSchema = z
  .object({
    exporter: z.literal('otlp'),
    endpoint: z.url().optional(),
    headers: z.record(z.string(), z.string()).optional(),
    serviceName: z.string().min(1).optional(),
  })
  .strict();

const TRACER_NAME = 'quarry';

/** The OpenTelemetry API, loaded once telemetry is configured (nothing loads it while tracing is off). */
export const otel = lazyModule<typeof import('@opentelemetry/api')>('@opentelemetry/api');

interface Installed {
  tracer: Tracer;
  /** Flush and stop what Quarry created (nothing for a caller-owned provider). */
  shutdown(): Promise<void>;
  /** Whether Quarry registered the provider as the global one (undone on reconfigure). */
  global: boolean;
}

let installed: Installed | undefined;

/** The tracer when telemetry is configured; undefined (and nothing else to do) when it is not. */
export function activeTracer(): Tracer | undefined {
  return installed?.tracer;
}

/**
 * Turn spans on (OTLP, a span processor, an existing provider) or off (`{ exporter: 'none' }`). Replaces an
 * earlier configuration, flushing it first. Installs an AsyncLocalStorage context manager when none is
 * registered, so an active parent (the server's HTTP span) and the trace ids in logs follow async calls.
 *
 * @example
 * await configureTelemetry({ exporter: 'otlp', endpoint: 'http://127.0.0.1:4318/v1/traces', serviceName: 'quarry' });
 */
export async function configureTelemetry(options: TelemetryOptions): Promise<void> {
  await shutdownTelemetry();
  if ('tracerProvider' in options) {
    installed = {
      tracer: options.tracerProvider.getTracer(TRACER_NAME),
      shutdown: async () => {},
      global: false,
    };
    ensureContextManager();
    return;
  }
  if ('spanProcessor' in options) {
    installed = await install([options.spanProcessor], options.serviceName ?? 'quarry');
    return;
  }
  if (options.exporter === 'none') return;
  const parsed = OtlpSchema.safeParse(options);
  if (!parsed.success)
    throw new QuarryError(
      'INVALID_CONFIG',
      `telemetry: ${parsed.error.issues.map((i) => `${i.path.join('.') || '(options)'}: ${i.message}`).join('; ')}`,
    );
  const { OTLPTraceExporter } = await import('@opentelemetry/exporter-trace-otlp-http');
  const { BatchSpanProcessor } = await import('@opentelemetry/sdk-trace-base');
  const exporter = new OTLPTraceExporter({
    ...(parsed.data.endpoint === undefined ? {} : { url: parsed.data.endpoint }),
    ...(parsed.data.headers === undefined ? {} : { headers: parsed.data.headers }),
  });
  installed = await install([new BatchSpanProcessor(exporter)], parsed.data.serviceName ?? 'quarry');
}

/** Flush pending spans and turn telemetry off (graceful shutdown; also what reconfiguring does first). */
export async function shutdownTelemetry(): Promise<void> {
  const was = installed;
  installed = undefined;
  if (was === undefined) return;
  if (was.global) otel().trace.disable();
  await was.shutdown();
}

async function install(processors: SpanProcessor[], serviceName: string): Promise<Installed> {
  const { BasicTracerProvider } = await import('@opentelemetry/sdk-trace-base');
  const { resourceFromAttributes } = await import('@opentelemetry/resources');
  const provider = new BasicTracerProvider({
    resource: resourceFromAttributes({ 'service.name': serviceName }),
    spanProcessors: processors,
  });
  ensureContextManager();
  // Global, so the server and other OTel-instrumented code share it; an application that registered its own
  // provider first keeps it (Quarry still traces through this one).
  const global = otel().trace.setGlobalTracerProvider(provider);
  return { tracer: provider.getTracer(TRACER_NAME), shutdown: () => provider.shutdown(), global };
}

let contextManagerInstalled = false;

function ensureContextManager(): void {
  if (contextManagerInstalled) return;
  // false when the application registered one already: theirs stays.
  otel().context.setGlobalContextManager(new AsyncLocalContextManager().enable());
  contextManagerInstalled = true;
}

/**
 * The context manager @opentelemetry/context-async-hooks provides, in the few lines Quarry needs (that
 * package is not a dependency): the active context follows async continuations through AsyncLocalStorage.
 */
class AsyncLocalContextManager implements ContextManager {
  private readonly storage = new AsyncLocalStorage<Context>();

  active(): Context {
    return this.storage.getStore() ?? otel().ROOT_CONTEXT;
  }

  with<A extends unknown[], F extends (...args: A) => ReturnType<F>>(
    ctx: Context,
    fn: F,
    thisArg?: ThisParameterType<F>,
    ...args: A
  ): ReturnType<F> {
    return this.storage.run(ctx, () => fn.apply(thisArg, args));
  }

  bind<T>(ctx: Context, target: T): T {
    if (typeof target !== 'function') return target;
    const fn = target as unknown as (...a: unknown[]) => unknown;
    const manager = this;
    return function (this: unknown, ...a: unknown[]) {
      return manager.with(ctx, () => fn.apply(this, a));
    } as unknown as T;
  }

  enable(): this {
    return this;
  }

  disable(): this {
    this.storage.disable();
    return this;
  }
}

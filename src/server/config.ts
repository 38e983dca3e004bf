/**
 * The server's own settings (where it listens, limits, CORS, traces kept, shutdown), separate from the
 * pipeline configuration. Read from a JSON file, then `QUARRY_*` environment variables, then command-line
 * flags, and validated once at start: a bad value stops the server with a message naming it.
 */
import fs from 'node:fs';
import { z } from 'zod';
import { QuarryError } from '../errors.js';

export const ServerConfigSchema = z
  .object({
    host: z.string().min(1).default('127.0.0.1'),
    port: z.number().int().min(0).max(65_535).default(7700),
    /** Largest JSON body accepted (bytes). Uploads have their own limit. */
    bodyLimitBytes: z
      .number()
      .int()
      .min(1024)
      .max(1024 * 1024 * 1024)
      .default(1024 * 1024),
    /** Largest uploaded file (bytes) and files per upload request. */
    upload: z
      .object({
        maxFileBytes: z
          .number()
          .int()
          .min(1024)
          .default(50 * 1024 * 1024),
        maxFiles: z.number().int().min(1).max(10_000).default(100),
      })
      .strict()
      .default({ maxFileBytes: 50 * 1024 * 1024, maxFiles: 100 }),
    /** A request (search, ask, or a whole stream) that runs longer than this is cut off with REQUEST_TIMEOUT. */
    requestTimeoutMs: z.number().int().min(100).max(3_600_000).default(60_000),
    /** Origins allowed to call the API from a browser (`*` for any); none by default. */
    cors: z
      .object({ origins: z.array(z.string().min(1)).default([]) })
      .strict()
      .default({ origins: [] }),
    /** Requests per key per minute (keys may set their own); applies per client address without keys. */
    rateLimit: z
      .object({
        perMinute: z.number().int().min(1).default(600),
      })
      .strict()
      .default({ perMinute: 600 }),
    /**
     * Load shedding (`src/server/admission.ts`): work past these bounds is refused with 503 OVERLOADED and a
     * Retry-After instead of slowing every request down. A stream holds its query slot until it ends.
     */
    admission: z
      .object({
        /** Query requests (search, ask, chat, MCP) running at once, and how many more may wait. */
        queryInFlight: z.number().int().min(1).max(1_000_000).default(4096),
        queryQueue: z.number().int().min(0).max(1_000_000).default(256),
        /** Ingest requests (document writes, uploads, deletes) running at once, and how many more may wait. */
        ingestInFlight: z.number().int().min(1).max(10_000).default(4),
        ingestQueue: z.number().int().min(0).max(100_000).default(64),
        /** How long a queued request waits for a slot before it is refused. */
        queueTimeoutMs: z.number().int().min(1).max(600_000).default(5_000),
        /** Mean event-loop delay over one sample above which new work is refused (0: off). */
        maxEventLoopDelayMs: z.number().int().min(0).max(600_000).default(1_000),
        /** Share of V8's heap limit in use above which new work is refused (0: off). */
        maxHeapFraction: z.number().min(0).max(1).default(0.9),
        sampleIntervalMs: z.number().int().min(10).max(60_000).default(1_000),
        retryAfterSeconds: z.number().int().min(1).max(3_600).default(2),
      })
      .strict()
      .default({
        queryInFlight: 4096,
        queryQueue: 256,
        ingestInFlight: 4,
        ingestQueue: 64,
        queueTimeoutMs: 5_000,
        maxEventLoopDelayMs: 1_000,
        maxHeapFraction: 0.9,
        sampleIntervalMs: 1_000,
        retryAfterSeconds: 2,
      }),
    /** Query traces kept for `GET /v1/traces/{id}` and feedback (oldest dropped first). */
    traces: z
      .object({ keep: z.number().int().min(0).max(1_000_000).default(10_000) })
      .strict()
      .default({ keep: 10_000 }),
    /** On SIGTERM/SIGINT, how long in-flight requests and streams may take to finish. */
    shutdownGraceMs: z.number().int().min(0).max(600_000).default(10_000),
    /** `/metrics` without a key (for a scraper on a private network); otherwise it needs an admin key. */
    publicMetrics: z.boolean().default(false),
    /** OpenTelemetry: spans exported over OTLP/HTTP when an endpoint is set (off, at no cost, otherwise). */
    telemetry: z
      .object({
        /** Full traces URL, e.g. http://127.0.0.1:4318/v1/traces. */
        otlpEndpoint: z.url().optional(),
        headers: z.record(z.string(), z.string()).optional(),
        serviceName: z.string().min(1).default('quarry'),
      })
      .strict()
      .default({ serviceName: 'quarry' }),
    /**
     * Online A/B: a share of query traffic (search, ask, chat) answered by a candidate configuration — another
     * ranker, prompt, model or retrieval setting over the same index, or another collection built with a
     * candidate index — with its requests, latency, abstentions, citation validity and feedback recorded per
     * variant (`GET /v1/admin/variants`, `quarry_variant_*` metrics). A canary before it becomes the default.
     */
    canary: z
      .object({
        name: z
          .string()
          .regex(/^[a-z0-9][a-z0-9_-]{0,31}$/, 'lowercase letters, digits, - and _ (up to 32)')
          .refine((n) => n !== 'default', '"default" names the current configuration')
          .default('candidate'),
        /** Share of requests in [0, 1] the candidate answers. */
        share: z.number().min(0).max(1),
        /** Pipeline configuration merged over the server's for the candidate (query-time settings). */
        config: z.record(z.string(), z.unknown()).default({}),
        /** Answer the candidate's share from this collection instead (a store built with a candidate index). */
        collection: z.string().min(1).max(64).optional(),
        /** Collections whose traffic is split (default: only `default`). */
        collections: z.array(z.string().min(1).max(64)).min(1).default(['default']),
        /** `key`: a key always gets the same variant (sticky); `request`: each request is drawn anew. */
        assign: z.enum(['key', 'request']).default('key'),
      })
      .strict()
      .optional(),
    /** Log level for the JSON request log. */
    logLevel: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  })
  .strict();

export type ServerConfig = z.infer<typeof ServerConfigSchema>;
export type ServerConfigInput = z.input<typeof ServerConfigSchema>;

const LOOPBACK = new Set(['127.0.0.1', '::1', 'localhost']);

export function isLoopback(host: string): boolean {
  return LOOPBACK.has(host) || /^127\.\d+\.\d+\.\d+$/.test(host);
}

/** Environment variables the server reads, and the setting each one fills. */
export const SERVER_ENV: Record<string, (v: string) => ServerConfigInput> = {
  QUARRY_HOST: (v) => ({ host: v }),
  QUARRY_PORT: (v) => ({ port: envNumber('QUARRY_PORT', v) }),
  QUARRY_BODY_LIMIT_BYTES: (v) => ({ bodyLimitBytes: envNumber('QUARRY_BODY_LIMIT_BYTES', v) }),
  QUARRY_REQUEST_TIMEOUT_MS: (v) => ({ requestTimeoutMs: envNumber('QUARRY_REQUEST_TIMEOUT_MS', v) }),
  QUARRY_CORS_ORIGINS: (v) => ({
    cors: {
      origins: v
        .split(',')
        .map((s) => s.trim())
        .filter(Boolean),
    },
  }),
  QUARRY_RATE_LIMIT_PER_MINUTE: (v) => ({
    rateLimit: { perMinute: envNumber('QUARRY_RATE_LIMIT_PER_MINUTE', v) },
  }),
  QUARRY_MAX_IN_FLIGHT: (v) => ({
    admission: { queryInFlight: envNumber('QUARRY_MAX_IN_FLIGHT', v) },
  }),
  QUARRY_MAX_EVENT_LOOP_DELAY_MS: (v) => ({
    admission: { maxEventLoopDelayMs: envNumber('QUARRY_MAX_EVENT_LOOP_DELAY_MS', v) },
  }),
  QUARRY_LOG_LEVEL: (v) => ({ logLevel: v as ServerConfig['logLevel'] }),
  // The standard OpenTelemetry variables: the base endpoint gets the traces path, the traces one is used as is.
  OTEL_EXPORTER_OTLP_ENDPOINT: (v) => ({ telemetry: { otlpEndpoint: `${v.replace(/\/+$/, '')}/v1/traces` } }),
  OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: (v) => ({ telemetry: { otlpEndpoint: v } }),
  OTEL_SERVICE_NAME: (v) => ({ telemetry: { serviceName: v } }),
};

function envNumber(name: string, v: string): number {
  const n = Number(v);
  if (v.trim() === '' || !Number.isFinite(n))
    throw new QuarryError('INVALID_CONFIG', `${name} must be a number, got "${v}"`, { env: name });
  return n;
}

/** File, then environment, then flags (later wins, one section at a time); validated as a whole. */
export function loadServerConfig(
  opts: { file?: string; env?: NodeJS.ProcessEnv; flags?: ServerConfigInput } = {},
): ServerConfig {
  const layers: ServerConfigInput[] = [];
  if (opts.file !== undefined) layers.push(readJson(opts.file));
  const env = opts.env ?? process.env;
  for (const [name, fill] of Object.entries(SERVER_ENV)) {
    const v = env[name];
    if (v !== undefined) layers.push(fill(v));
  }
  if (opts.flags !== undefined) layers.push(opts.flags);
  const merged: Record<string, unknown> = {};
  for (const layer of layers)
    for (const [k, v] of Object.entries(layer)) {
      if (v === undefined) continue;
      const prev = merged[k];
      merged[k] =
        prev !== null && typeof prev === 'object' && v !== null && typeof v === 'object' && !Array.isArray(v)
          ? { ...prev, ...v }
          : v;
    }
  const parsed = ServerConfigSchema.safeParse(merged);
  if (!parsed.success) {
    const lines = parsed.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`);
    throw new QuarryError('INVALID_CONFIG', `server configuration: ${lines.join('; ')}`, {
      issues: lines,
    });
  }
  return parsed.data;
}

function readJson(file: string): ServerConfigInput {
  try {
    const v = JSON.parse(fs.readFileSync(file, 'utf8')) as unknown;
    if (v === null || typeof v !== 'object' || Array.isArray(v)) throw new Error('expected a JSON object');
    return v as ServerConfigInput;
  } catch (e) {
    throw new QuarryError('INVALID_CONFIG', `cannot read server config ${file}: ${(e as Error).message}`, {
      file,
    });
  }
}

/**
 * The HTTP shell: a Fastify app over the library core. It owns only what HTTP needs — request ids, the
 * principal each request carries (from its API key; trusted only on a key-less loopback server), rate
 * and body limits, CORS and security headers, one error body shape, metrics and logs — and hands every
 * request to the pipeline through the library API.
 */
import { randomUUID } from 'node:crypto';
import cors from '@fastify/cors';
import helmet from '@fastify/helmet';
import multipart from '@fastify/multipart';
import rateLimit from '@fastify/rate-limit';
import Fastify, {
  type FastifyError,
  type FastifyInstance,
  type FastifyRequest,
  LogController,
} from 'fastify';
import type { Logger } from 'pino';
import { ANONYMOUS, TRUSTED_LOCAL } from '../access/principal.js';
import type { QuarryConfigInput } from '../config/config.js';
import { describeError, isQuarryError, QuarryError } from '../errors.js';
import { enableMetrics, startHttpRequest } from '../observability/metrics.js';
import { Admission } from './admission.js';
import { Budgets } from './budgets.js';
import { Collections } from './collections.js';
import type { ServerConfig } from './config.js';
import { openServerDb, type ServerDb } from './db.js';
import { KeyStore, principalOf } from './keys.js';
import { ServerMetrics } from './metrics.js';
import { RouteRegistry } from './route.js';
import { registerAdminRoutes } from './routes/admin.js';
import { registerChatRoutes } from './routes/chat.js';
import { registerDocumentRoutes } from './routes/documents.js';
import { registerEvalRoutes } from './routes/eval.js';
import { extraRegistries, registerHealthRoutes } from './routes/health.js';
import { registerMcpRoutes } from './routes/mcp.js';
import { registerQueryRoutes } from './routes/query.js';
import { registerUiRoutes } from './routes/ui.js';
import { registerVariantRoutes } from './routes/variants.js';
import type { ServerState } from './state.js';
import { QueryRecords } from './traces.js';
import { Variants } from './variants.js';

export interface AppOptions {
  /** The store directory: the default collection, and home of server.db and other collections. */
  store: string;
  config: ServerConfig;
  /** Pipeline configuration for every collection. */
  pipeline?: QuarryConfigInput;
  version: string;
  /** Require keys even when none exist yet (every request is then refused until one is created). */
  requireKeys?: boolean;
  logger?: Logger;
}

export interface QuarryServer {
  app: FastifyInstance;
  state: ServerState;
  db: ServerDb;
}

const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

function presentedKey(request: FastifyRequest): string | undefined {
  const auth = request.headers.authorization;
  if (typeof auth === 'string' && /^bearer\s+/i.test(auth)) return auth.replace(/^bearer\s+/i, '').trim();
  const x = request.headers['x-api-key'];
  return typeof x === 'string' ? x.trim() : undefined;
}

/** Fastify's own errors (bad JSON, body too large, rate limit…) in Quarry's error codes. */
function toQuarryError(e: unknown): QuarryError | undefined {
  if (isQuarryError(e)) return e;
  const fe = e as FastifyError;
  if (typeof fe?.code !== 'string') return undefined;
  if (fe.code === 'FST_ERR_CTP_BODY_TOO_LARGE' || fe.code === 'FST_REQ_FILE_TOO_LARGE')
    return new QuarryError('PAYLOAD_TOO_LARGE', fe.message);
  if (fe.code === 'FST_FILES_LIMIT' || fe.code === 'FST_PARTS_LIMIT' || fe.code === 'FST_FIELDS_LIMIT')
    return new QuarryError('PAYLOAD_TOO_LARGE', fe.message);
  if (fe.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE')
    return new QuarryError('INVALID_ARGUMENT', `${fe.message} (send application/json)`);
  if (fe.code.startsWith('FST_ERR_CTP') || fe.code === 'FST_INVALID_MULTIPART_CONTENT_TYPE')
    return new QuarryError('INVALID_ARGUMENT', fe.message);
  if (fe.statusCode === 429) return new QuarryError('RATE_LIMITED', fe.message);
  if (fe.statusCode === 404) return new QuarryError('NOT_FOUND', fe.message);
  if (fe.statusCode !== undefined && fe.statusCode >= 400 && fe.statusCode < 500)
    return new QuarryError('INVALID_ARGUMENT', fe.message);
  return undefined;
}

export async function createApp(opts: AppOptions): Promise<QuarryServer> {
  const { config } = opts;
  // The pipeline's series (stages, caches, tokens, scores, degradations) are served by /metrics too, with
  // the process's own (resident memory, heap, event-loop lag, CPU): what an operator watches for leaks.
  const pipelineMetrics = enableMetrics({ processMetrics: true });
  if (!extraRegistries.includes(pipelineMetrics)) extraRegistries.push(pipelineMetrics);
  const db = openServerDb(opts.store);
  const keys = new KeyStore(db);
  const app = Fastify({
    loggerInstance: opts.logger,
    bodyLimit: config.bodyLimitBytes,
    requestTimeout: config.requestTimeoutMs,
    connectionTimeout: 0,
    keepAliveTimeout: 30_000,
    genReqId: (req) => {
      const given = req.headers['x-request-id'];
      return typeof given === 'string' && REQUEST_ID.test(given) ? given : randomUUID();
    },
    // Per-request lines come from our onResponse hook (with the error code), not Fastify's own.
    logController: new LogController({ requestIdLogLabel: 'requestId', disableRequestLogging: true }),
    return503OnClosing: true,
    forceCloseConnections: 'idle',
  }) as unknown as FastifyInstance;
  const collections = new Collections(db, opts.store, opts.pipeline ?? {});
  const metrics = new ServerMetrics();
  const state: ServerState = {
    config,
    version: opts.version,
    collections,
    keys,
    records: new QueryRecords(db, config.traces.keep, (p, collection, text) => {
      const redactor = collections.get(p, collection).quarry.outputRedactor;
      return redactor === undefined ? text : redactor.redact(text).text;
    }),
    budgets: new Budgets(db),
    metrics,
    variants: new Variants(config.canary, collections, opts.pipeline ?? {}, metrics.registry),
    registry: new RouteRegistry(),
    log: app.log,
    authRequired: opts.requireKeys === true || keys.hasActiveKeys(),
    ready: false,
    draining: false,
    streams: new Set(),
  };

  const admission = new Admission(config.admission, metrics);
  app.decorate('admission', admission);
  app.decorateRequest('principal', null as unknown as typeof ANONYMOUS);
  app.decorateRequest('apiKey', undefined);
  app.decorateRequest('httpDone', undefined);
  app.addHook('onRequest', async (request, reply) => {
    reply.header('x-request-id', request.id);
    request.httpDone = startHttpRequest(request.method, request.routeOptions.url ?? 'unmatched');
    // Fail closed: until a key or the key-less loopback rule says otherwise, the caller is anonymous.
    request.principal = ANONYMOUS;
    if (state.draining && !request.url.startsWith('/healthz'))
      throw new QuarryError('UNAVAILABLE', 'the server is shutting down');
    const presented = presentedKey(request);
    if (presented !== undefined && presented !== '') {
      const key = keys.verify(presented);
      if (key === undefined)
        throw new QuarryError('UNAUTHORIZED', 'the API key is unknown, malformed or revoked');
      request.apiKey = key;
      request.principal = principalOf(key);
      state.budgets.check(key);
    } else if (state.authRequired) {
      const scope = (request.routeOptions.config as { scope?: string } | undefined)?.scope;
      const metricsOpen = request.url === '/metrics' && config.publicMetrics;
      if (scope !== 'public' && !metricsOpen)
        throw new QuarryError(
          'UNAUTHORIZED',
          'send an API key as `Authorization: Bearer qk_…` or `x-api-key`',
        );
    } else {
      // No keys configured: the server listens on loopback only, and its callers are the store's owner.
      request.principal = TRUSTED_LOCAL;
    }
  });
  app.addHook('onResponse', async (request, reply) => {
    const route = request.routeOptions.url ?? 'unmatched';
    const labels = { method: request.method, route, status: String(reply.statusCode) };
    state.metrics.requests.inc(labels);
    request.httpDone?.(reply.statusCode);
    request.log.info(
      {
        method: request.method,
        route,
        status: reply.statusCode,
        ms: Math.round(reply.elapsedTime * 10) / 10,
        key: request.apiKey?.id,
      },
      'request',
    );
  });

  app.setErrorHandler(async (error, request, reply) => {
    const qe = toQuarryError(error);
    const d = qe ? { code: qe.code, message: qe.message } : describeError(error);
    const status = qe ? qe.httpStatus : 500;
    state.metrics.errors.inc({ code: d.code });
    if (status >= 500) request.log.error({ err: error, code: d.code }, 'request failed');
    else request.log.info({ code: d.code, message: d.message }, 'request refused');
    if (d.code === 'RATE_LIMITED' || d.code === 'BUDGET_EXCEEDED') reply.header('retry-after', '60');
    if (d.code === 'OVERLOADED') reply.header('retry-after', String(config.admission.retryAfterSeconds));
    if (d.code === 'UNAUTHORIZED') reply.header('www-authenticate', 'Bearer');
    return reply.code(status).send({
      error: {
        code: d.code,
        message: status >= 500 && !qe ? 'internal error (see the server log for this request id)' : d.message,
        requestId: request.id,
        ...(qe !== undefined && Object.keys(qe.details).length > 0 ? { details: qe.details } : {}),
      },
    });
  });
  app.setNotFoundHandler(async (request) => {
    throw new QuarryError('NOT_FOUND', `no route ${request.method} ${request.url.split('?')[0]}`);
  });

  await app.register(helmet, {
    contentSecurityPolicy: { directives: { defaultSrc: ["'self'"], frameAncestors: ["'none'"] } },
    crossOriginResourcePolicy: { policy: 'same-origin' },
  });
  // Decided per request so that an origin not on the list gets no CORS headers at all (with a static
  // list, @fastify/cors still answers its preflight with the allowed methods and headers).
  const anyOrigin = config.cors.origins.includes('*');
  const origins = new Set(config.cors.origins);
  await app.register(cors, {
    origin:
      config.cors.origins.length === 0
        ? false
        : (origin, cb) => cb(null, origin !== undefined && (anyOrigin || origins.has(origin))),
    exposedHeaders: ['x-request-id', 'retry-after'],
    // mcp-protocol-version: what an MCP client in a browser sends to /mcp after initializing.
    allowedHeaders: ['authorization', 'content-type', 'x-api-key', 'x-request-id', 'mcp-protocol-version'],
  });
  await app.register(rateLimit, {
    global: true,
    hook: 'preHandler',
    max: (request) => request.apiKey?.ratePerMinute ?? config.rateLimit.perMinute,
    timeWindow: 60_000,
    keyGenerator: (request) => (request.apiKey ? `key:${request.apiKey.id}` : `ip:${request.ip}`),
    allowList: (request) => request.url === '/healthz' || request.url === '/readyz',
    errorResponseBuilder: (_request, ctx) =>
      new QuarryError(
        'RATE_LIMITED',
        `more than ${ctx.max} requests per minute for this key; retry in ${ctx.after}`,
        {
          limit: ctx.max,
        },
      ),
  });
  // After the auth hook (so a shed request still has its request id and metrics), before any work.
  await admission.registerPressure(app);
  await app.register(multipart, {
    limits: {
      fileSize: config.upload.maxFileBytes,
      files: config.upload.maxFiles,
      fields: 20,
      fieldSize: 64 * 1024,
    },
  });

  registerHealthRoutes(app, state);
  registerQueryRoutes(app, state);
  registerChatRoutes(app, state);
  registerDocumentRoutes(app, state);
  registerAdminRoutes(app, state);
  registerEvalRoutes(app, state);
  registerVariantRoutes(app, state);
  registerMcpRoutes(app, state);
  registerUiRoutes(app);
  return { app, state, db };
}

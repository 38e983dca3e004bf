/**
 * Running the server: refuse an unsafe bind (a non-loopback address without API keys), listen, warm the
 * index before `/readyz` turns ready, keep watched folders in sync, and on shutdown stop taking requests,
 * let in-flight requests and streams finish within the grace period, then close the stores.
 */
import { TRUSTED_LOCAL } from '../access/principal.js';
import type { QuarryConfigInput } from '../config/config.js';
import { QuarryError } from '../errors.js';
import { createLogger } from '../observability/log.js';
import { createApp, type QuarryServer } from './app.js';
import { isLoopback, type ServerConfig } from './config.js';
import { type SourceWatcher, watchSources } from './watch.js';

/**
 * Connections the kernel may hold completed but not yet accepted. Node's default (511) overflows when a
 * burst of clients connects while the event loop is busy answering: the kernel then drops handshakes, and
 * clients wait out SYN retransmits (1 s, 3 s…) or see resets. Linux caps it at net.core.somaxconn.
 */
export const LISTEN_BACKLOG = 4096;

export interface StartOptions {
  store: string;
  config: ServerConfig;
  pipeline?: QuarryConfigInput;
  version: string;
  /** Folders kept in sync with the default collection. */
  watch?: string[];
  requireKeys?: boolean;
  /** Where the one-line start and stop messages go (default stderr). */
  announce?: (line: string) => void;
  /** JSON log destination (default stdout). */
  logDestination?: NodeJS.WritableStream;
}

export interface RunningServer extends QuarryServer {
  url: string;
  port: number;
  /** The folder watcher when `watch` was given. */
  watcher?: SourceWatcher;
  /** Graceful shutdown: drain, then close. Resolves when everything is closed. */
  close(): Promise<void>;
}

export async function startServer(opts: StartOptions): Promise<RunningServer> {
  const announce = opts.announce ?? ((l: string) => process.stderr.write(`${l}\n`));
  const { otlpEndpoint, headers, serviceName } = opts.config.telemetry;
  if (otlpEndpoint !== undefined) {
    const { configureTelemetry } = await import('../observability/tracing.js');
    await configureTelemetry({
      exporter: 'otlp',
      endpoint: otlpEndpoint,
      serviceName,
      ...(headers ? { headers } : {}),
    });
  }
  const logger = createLogger({
    level: opts.config.logLevel,
    ...(opts.logDestination === undefined ? {} : { destination: opts.logDestination }),
    bindings: { service: 'quarry' },
  });
  const server = await createApp({
    store: opts.store,
    config: opts.config,
    ...(opts.pipeline === undefined ? {} : { pipeline: opts.pipeline }),
    version: opts.version,
    ...(opts.requireKeys === undefined ? {} : { requireKeys: opts.requireKeys }),
    logger,
  });
  const { app, state } = server;
  if (!state.authRequired && !isLoopback(opts.config.host)) {
    await app.close();
    server.db.close();
    throw new QuarryError(
      'INVALID_CONFIG',
      `refusing to listen on ${opts.config.host} without API keys: create one with \`quarry keys create\` (or listen on 127.0.0.1)`,
      { host: opts.config.host },
    );
  }
  let watcher: SourceWatcher | undefined;
  try {
    // Open and warm the default collection before listening, so the first request does not pay for it.
    state.collections.warm();
    state.variants.warm();
    await app.listen({ host: opts.config.host, port: opts.config.port, backlog: LISTEN_BACKLOG });
  } catch (e) {
    await app.close();
    state.variants.close();
    state.collections.close();
    server.db.close();
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'EADDRINUSE' || code === 'EACCES')
      throw new QuarryError(
        'INVALID_CONFIG',
        `cannot listen on ${opts.config.host}:${opts.config.port}: ${code}`,
        {},
        e,
      );
    throw e;
  }
  const address = app.server.address();
  const port = typeof address === 'object' && address !== null ? address.port : opts.config.port;
  const host = opts.config.host.includes(':') ? `[${opts.config.host}]` : opts.config.host;
  const url = `http://${host}:${port}`;
  if (opts.watch !== undefined && opts.watch.length > 0) {
    const { quarry } = state.collections.get(TRUSTED_LOCAL, undefined);
    watcher = await watchSources(opts.watch, {
      ingest: (paths, prune) => state.collections.serialize('default', () => quarry.ingest(paths, { prune })),
      log: state.log,
    });
  }
  state.ready = true;
  announce(
    `quarry serve: listening on ${url} (store ${opts.store}; ${
      state.authRequired
        ? 'API keys required'
        : 'no API keys configured: loopback only, callers are trusted as the store owner'
    }${opts.watch?.length ? `; watching ${opts.watch.join(', ')}` : ''}${
      otlpEndpoint === undefined ? '' : `; spans to ${otlpEndpoint}`
    })`,
  );
  let closing: Promise<void> | undefined;
  const close = () => {
    closing ??= (async () => {
      state.draining = true;
      state.ready = false;
      await watcher?.close();
      const closed = app.close();
      const streams = Promise.allSettled([...state.streams]);
      let timer: NodeJS.Timeout | undefined;
      const grace = new Promise<'timeout'>((resolve) => {
        timer = setTimeout(() => resolve('timeout'), opts.config.shutdownGraceMs);
      });
      const outcome = await Promise.race([
        Promise.all([closed, streams]).then(() => 'drained' as const),
        grace,
      ]);
      clearTimeout(timer);
      if (outcome === 'timeout') {
        announce(
          `quarry serve: ${state.streams.size} stream(s) still open after ${opts.config.shutdownGraceMs} ms; closing them`,
        );
        app.server.closeAllConnections();
        await closed;
      }
      state.variants.close();
      state.collections.close();
      server.db.close();
      if (otlpEndpoint !== undefined) {
        const { shutdownTelemetry } = await import('../observability/tracing.js');
        await shutdownTelemetry();
      }
      announce('quarry serve: stopped');
    })();
    return closing;
  };
  return { ...server, url, port, close, ...(watcher === undefined ? {} : { watcher }) };
}

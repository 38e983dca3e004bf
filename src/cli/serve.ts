/**
 * `quarry serve` and `quarry keys`: the commands that run Quarry as a service and manage its API keys.
 * Kept apart from the other commands so the CLI loads the server only when it is asked to serve.
 */
import type { Command } from 'commander';
import { InvalidArgumentError } from 'commander';
import type { Scope } from '../access/principal.js';

interface Io {
  out: NodeJS.WritableStream;
  err: NodeJS.WritableStream;
}

const list = (v: string) =>
  v
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);

function integer(name: string, min: number, max = Number.MAX_SAFE_INTEGER) {
  return (v: string): number => {
    const n = Number(v);
    if (v.trim() === '' || !Number.isInteger(n) || n < min || n > max)
      throw new InvalidArgumentError(
        `${name} must be an integer ≥ ${min}${max < Number.MAX_SAFE_INTEGER ? ` and ≤ ${max}` : ''}, got "${v}"`,
      );
    return n;
  };
}

/** Open `<store>/server.db` and its key store for one command, closing the database afterwards. */
async function withKeys<T>(
  storeDir: string,
  fn: (keys: import('../server/keys.js').KeyStore) => T,
): Promise<T> {
  const { openServerDb } = await import('../server/db.js');
  const { KeyStore } = await import('../server/keys.js');
  const db = openServerDb(storeDir);
  try {
    return fn(new KeyStore(db));
  } finally {
    db.close();
  }
}

export function registerServerCommands(
  program: Command,
  io: Io,
  shared: {
    storeDir(store?: string): string;
    pipelineConfig(file?: string): Promise<Record<string, unknown>>;
    version: string;
  },
): void {
  program
    .command('serve')
    .description(
      'run the HTTP API (search, ask with SSE, OpenAI-compatible chat, documents, collections, feedback, traces, /metrics, /openapi.json). Without API keys it listens on loopback only.',
    )
    .option('--store <dir>', 'store directory: the default collection (default: $QUARRY_STORE or ./.quarry)')
    .option('--config <file>', 'pipeline configuration JSON (as for the other commands)')
    .option(
      '--server-config <file>',
      'server settings JSON (host, port, limits, cors, rateLimit, traces…); env QUARRY_* and flags override it',
    )
    .option(
      '--host <address>',
      'address to listen on (default 127.0.0.1; any other needs API keys) [env QUARRY_HOST]',
    )
    .option(
      '--port <n>',
      'port (default 7700; 0 picks a free one) [env QUARRY_PORT]',
      integer('--port', 0, 65_535),
    )
    .option('--watch <dirs...>', 'keep these folders in sync with the default collection')
    .option('--require-keys', 'refuse requests without an API key even when no key exists yet')
    .option(
      '--body-limit <bytes>',
      'largest JSON body (default 1 MiB) [env QUARRY_BODY_LIMIT_BYTES]',
      integer('--body-limit', 1024),
    )
    .option(
      '--request-timeout <ms>',
      'cut off requests after this long (default 60000) [env QUARRY_REQUEST_TIMEOUT_MS]',
      integer('--request-timeout', 100),
    )
    .option(
      '--cors <origins>',
      'comma-separated origins allowed from browsers, or * [env QUARRY_CORS_ORIGINS]',
      list,
    )
    .option(
      '--rate-limit <n>',
      'requests per minute per key (default 600) [env QUARRY_RATE_LIMIT_PER_MINUTE]',
      integer('--rate-limit', 1),
    )
    .option(
      '--max-in-flight <n>',
      'query requests (search, ask, chat, MCP) running at once before new ones queue, then get 503 OVERLOADED (default 4096) [env QUARRY_MAX_IN_FLIGHT]',
      integer('--max-in-flight', 1),
    )
    .option(
      '--max-event-loop-delay <ms>',
      'refuse new work with 503 OVERLOADED while the event loop lags more than this; 0 turns it off (default 1000) [env QUARRY_MAX_EVENT_LOOP_DELAY_MS]',
      integer('--max-event-loop-delay', 0),
    )
    .option(
      '--log-level <level>',
      'JSON log level: fatal|error|warn|info|debug|trace|silent (default info) [env QUARRY_LOG_LEVEL]',
    )
    .option('--public-metrics', '/metrics without a key (default: admin key needed when keys exist)')
    .option(
      '--otlp-endpoint <url>',
      'export OpenTelemetry spans over OTLP/HTTP to this traces URL [env OTEL_EXPORTER_OTLP_TRACES_ENDPOINT, or OTEL_EXPORTER_OTLP_ENDPOINT + /v1/traces]',
    )
    .action(async (o: Record<string, unknown>) => {
      const { loadServerConfig } = await import('../server/config.js');
      const { startServer } = await import('../server/serve.js');
      const config = loadServerConfig({
        ...(o.serverConfig === undefined ? {} : { file: o.serverConfig as string }),
        flags: {
          host: o.host as string | undefined,
          port: o.port as number | undefined,
          bodyLimitBytes: o.bodyLimit as number | undefined,
          requestTimeoutMs: o.requestTimeout as number | undefined,
          ...(o.cors === undefined ? {} : { cors: { origins: o.cors as string[] } }),
          ...(o.rateLimit === undefined ? {} : { rateLimit: { perMinute: o.rateLimit as number } }),
          ...(o.maxInFlight === undefined && o.maxEventLoopDelay === undefined
            ? {}
            : {
                admission: {
                  ...(o.maxInFlight === undefined ? {} : { queryInFlight: o.maxInFlight as number }),
                  ...(o.maxEventLoopDelay === undefined
                    ? {}
                    : { maxEventLoopDelayMs: o.maxEventLoopDelay as number }),
                },
              }),
          logLevel: o.logLevel as never,
          ...(o.publicMetrics === true ? { publicMetrics: true } : {}),
          ...(o.otlpEndpoint === undefined ? {} : { telemetry: { otlpEndpoint: o.otlpEndpoint as string } }),
        },
      });
      const server = await startServer({
        store: shared.storeDir(o.store as string | undefined),
        config,
        pipeline: await shared.pipelineConfig(o.config as string | undefined),
        version: shared.version,
        ...(o.watch === undefined ? {} : { watch: o.watch as string[] }),
        ...(o.requireKeys === true ? { requireKeys: true } : {}),
        announce: (l) => io.err.write(`${l}\n`),
      });
      await new Promise<void>((resolve) => {
        const stop = () => {
          process.off('SIGTERM', stop);
          process.off('SIGINT', stop);
          server.close().then(resolve, resolve);
        };
        process.on('SIGTERM', stop);
        process.on('SIGINT', stop);
      });
    });

  const keys = program
    .command('keys')
    .description('manage API keys for `quarry serve` (stored hashed in <store>/server.db)');
  keys
    .command('create')
    .description('create a key; prints the secret once')
    .requiredOption('--name <name>', 'a label for the key')
    .option('--store <dir>', 'store directory')
    .option('--scopes <list>', 'query,ingest,admin (default query)', list)
    .option('--tenant <name>', 'tenant (default "default")')
    .option('--user <id>', "user id, matched against documents' access_users")
    .option('--groups <list>', "groups, matched against documents' access_groups", list)
    .option(
      '--clearance <n>',
      'clearance level (documents above it stay hidden; default 0)',
      integer('--clearance', 0, 1000),
    )
    .option('--rate-limit <n>', 'requests per minute for this key', integer('--rate-limit', 1))
    .option('--token-budget <n>', 'model tokens per period', integer('--token-budget', 1))
    .option('--cost-budget <usd>', 'model cost in USD per period')
    .option('--budget-period <p>', 'day or month (default month)')
    .option('--json', 'print machine-readable JSON')
    .action(async (o: Record<string, unknown>) => {
      const budget =
        o.tokenBudget !== undefined || o.costBudget !== undefined
          ? {
              ...(o.tokenBudget === undefined ? {} : { tokens: o.tokenBudget as number }),
              ...(o.costBudget === undefined ? {} : { costUsd: Number(o.costBudget) }),
              ...(o.budgetPeriod === undefined ? {} : { period: o.budgetPeriod as 'day' | 'month' }),
            }
          : undefined;
      const { key, record } = await withKeys(shared.storeDir(o.store as string | undefined), (ks) =>
        ks.create({
          name: o.name as string,
          ...(o.scopes === undefined ? {} : { scopes: o.scopes as Scope[] }),
          ...(o.tenant === undefined ? {} : { tenant: o.tenant as string }),
          ...(o.user === undefined ? {} : { userId: o.user as string }),
          ...(o.groups === undefined ? {} : { groups: o.groups as string[] }),
          ...(o.clearance === undefined ? {} : { clearance: o.clearance as number }),
          ...(o.rateLimit === undefined ? {} : { ratePerMinute: o.rateLimit as number }),
          ...(budget === undefined ? {} : { budget }),
        }),
      );
      if (o.json === true) io.out.write(`${JSON.stringify({ key, ...record })}\n`);
      else {
        io.out.write(`${key}\n`);
        io.err.write(
          `created key ${record.id} "${record.name}" (tenant ${record.tenant}, scopes ${record.scopes.join(',')}); the secret above is shown only once\n`,
        );
      }
    });
  keys
    .command('list')
    .description('list keys (never their secrets)')
    .option('--store <dir>', 'store directory')
    .option('--json', 'print machine-readable JSON')
    .action(async (o: Record<string, unknown>) => {
      const all = await withKeys(shared.storeDir(o.store as string | undefined), (ks) => ks.list());
      if (o.json === true) io.out.write(`${JSON.stringify(all)}\n`);
      else
        for (const k of all)
          io.out.write(
            `${k.id}  ${k.name}  tenant=${k.tenant}  scopes=${k.scopes.join(',')}${k.userId ? `  user=${k.userId}` : ''}${k.groups.length ? `  groups=${k.groups.join(',')}` : ''}  clearance=${k.clearance}${k.revokedAt ? `  revoked ${k.revokedAt}` : ''}\n`,
          );
    });
  keys
    .command('revoke')
    .description('revoke a key by id')
    .argument('<id>', 'key id (from `quarry keys list`)')
    .option('--store <dir>', 'store directory')
    .action(async (id: string, o: Record<string, unknown>) => {
      const { QuarryError } = await import('../errors.js');
      const revoked = await withKeys(shared.storeDir(o.store as string | undefined), (ks) => ks.revoke(id));
      if (!revoked) throw new QuarryError('NOT_FOUND', `no active key with id "${id}"`);
      io.err.write(`revoked key ${id}\n`);
    });
}

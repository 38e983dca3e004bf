/**
 * `quarry mcp`: the store as an MCP server over stdio (src/mcp/server.ts), for MCP clients that start their
 * servers as child processes. Standard output carries nothing but the protocol; every message goes to
 * standard error. It reads as the store's owner like the other commands (or `--user/--groups/--clearance`),
 * or with `--key` / `$QUARRY_API_KEY` as that API key of `<store>/server.db`: the same scopes, tenant and
 * document access as the key has over HTTP, checked again (revocation, budget) on every call.
 */
import type { Command } from 'commander';
import type { Principal } from '../access/principal.js';

interface Io {
  out: NodeJS.WritableStream;
  err: NodeJS.WritableStream;
}

export interface McpCommandShared {
  storeDir(store?: string): string;
  pipelineConfig(file?: string): Promise<Record<string, unknown>>;
  version: string;
  /** Adds `--user`, `--groups`, `--clearance`, as on search, ask and docs. */
  withPrincipal(cmd: Command): Command;
  /** The principal those options describe (the store owner when none is given). */
  cliPrincipal(o: Record<string, unknown>): Principal;
}

const HELP = `
Stdout carries only the protocol; messages go to stderr. The tools are search, ask, get_document and
(with the ingest scope) add_document; documents are resources quarry://documents/{id} (default collection)
and quarry://collections/{collection}/documents/{id}.

An MCP client configuration (e.g. "mcpServers" in a client's JSON settings):
  { "mcpServers": { "quarry": { "command": "npx", "args": ["quarry", "mcp", "--store", "/path/to/.quarry"],
                                "env": { "QUARRY_API_KEY": "qk_…" } } } }
Over HTTP instead, \`quarry serve\` answers MCP at POST /mcp (Authorization: Bearer qk_…).
`;

export function registerMcpCommand(program: Command, io: Io, shared: McpCommandShared): void {
  const cmd = program
    .command('mcp')
    .description(
      'serve the store to an MCP client over stdio: search, ask, get_document, add_document (ingest scope), documents as resources',
    )
    .option('--store <dir>', 'store directory (default: $QUARRY_STORE or ./.quarry)')
    .option('--config <file>', 'pipeline configuration JSON (as for the other commands)')
    .option(
      '--key <key>',
      'act as this API key of <store>/server.db (its scopes, tenant, groups, clearance) [env QUARRY_API_KEY]; default: the store owner',
    );
  shared
    .withPrincipal(cmd)
    .addHelpText('after', HELP)
    .action(async (o: Record<string, unknown>) => {
      await runMcpStdio(o, io, shared);
    });
}

async function runMcpStdio(o: Record<string, unknown>, io: Io, shared: McpCommandShared): Promise<void> {
  const { QuarryError } = await import('../errors.js');
  const envKey = process.env.QUARRY_API_KEY;
  const key =
    typeof o.key === 'string' ? o.key : envKey !== undefined && envKey.trim() !== '' ? envKey : undefined;
  if (key !== undefined && (o.user !== undefined || o.groups !== undefined || o.clearance !== undefined))
    throw new QuarryError(
      'INVALID_ARGUMENT',
      'give an API key (--key or $QUARRY_API_KEY) or --user/--groups/--clearance, not both: the key decides who reads',
    );
  const fs = await import('node:fs');
  const path = await import('node:path');
  const store = shared.storeDir(o.store as string | undefined);
  const config = await shared.pipelineConfig(o.config as string | undefined);
  const { SqliteStore } = await import('../store/sqlite/sqlite-store.js');
  if (!SqliteStore.exists(store))
    throw new QuarryError(
      'STORE_NOT_FOUND',
      `no store at ${store} (create one with \`quarry ingest <paths> --store ${store}\`)`,
      { dir: store },
    );

  const dbFile = path.join(store, 'server.db');
  const { openServerDb } = await import('../server/db.js');
  const { KeyStore, principalOf } = await import('../server/keys.js');
  const { hasScope } = await import('../access/principal.js');
  const { createMcpServer, singleCollection } = await import('../mcp/server.js');
  type Options = Parameters<typeof createMcpServer>[0];

  let principal: Principal;
  let guard: Pick<Options, 'beforeCall' | 'onUsage'> = {};
  let db: import('../server/db.js').ServerDb | undefined;
  if (key !== undefined) {
    const unknown = (why: string) =>
      new QuarryError('UNAUTHORIZED', `the API key is unknown, malformed or revoked (${why})`);
    if (!fs.existsSync(dbFile))
      throw unknown(`${dbFile} does not exist: create keys with \`quarry keys create\``);
    db = openServerDb(store, { create: false });
    const keys = new KeyStore(db);
    const record = keys.verify(key);
    if (record === undefined) {
      db.close();
      throw unknown(`no active key matches it in ${dbFile}`);
    }
    principal = principalOf(record);
    if (!hasScope(principal, 'query')) {
      db.close();
      throw new QuarryError('FORBIDDEN', `key ${record.id} lacks the "query" scope needed to connect`, {
        scope: 'query',
      });
    }
    const { Budgets } = await import('../server/budgets.js');
    const budgets = new Budgets(db);
    guard = {
      // As over HTTP, where every request presents the key again: a key revoked meanwhile stops working.
      beforeCall: () => {
        if (keys.verify(key) === undefined) throw unknown('revoked while connected');
        budgets.check(record);
      },
      onUsage: (u) => {
        if (u.inputTokens + u.outputTokens > 0) budgets.record(record, u);
      },
    };
  } else {
    principal = shared.cliPrincipal(o);
    // A store served by `quarry serve` has collections; a plain store is the one collection `default`.
    if (fs.existsSync(dbFile)) db = openServerDb(store, { create: false });
  }

  let collections: Options['collections'] & { close(): void };
  if (db !== undefined) {
    const { Collections } = await import('../server/collections.js');
    collections = new Collections(db, store, config);
  } else {
    const { Quarry } = await import('../pipeline/quarry.js');
    collections = singleCollection(Quarry.open({ store, config, create: false }));
  }

  const { StdioServerTransport } = await import('@modelcontextprotocol/sdk/server/stdio.js');
  const server = createMcpServer({
    principal,
    collections,
    version: shared.version,
    ...guard,
    onInternalError: (e) => io.err.write(`quarry mcp: ${(e as Error)?.stack ?? String(e)}\n`),
  });
  const transport = new StdioServerTransport(process.stdin, io.out as import('node:stream').Writable);
  try {
    await new Promise<void>((resolve, reject) => {
      const stop = () => {
        process.off('SIGTERM', stop);
        process.off('SIGINT', stop);
        process.stdin.off('end', stop);
        void server.close().then(resolve, resolve);
      };
      // The client ends the session by closing our stdin (then SIGTERM if we linger).
      process.stdin.once('end', stop);
      process.on('SIGTERM', stop);
      process.on('SIGINT', stop);
      server.server.onclose = resolve;
      server.connect(transport).then(() => {
        const who =
          principal.kind !== 'user'
            ? 'the store owner'
            : principal.keyId !== undefined
              ? `key ${principal.keyId} (tenant ${principal.tenant})`
              : `a user${principal.userId === undefined ? '' : ` "${principal.userId}"`} in groups [${principal.groups.join(', ')}] with clearance ${principal.clearance}`;
        io.err.write(`quarry mcp: serving ${store} over stdio as ${who}\n`);
      }, reject);
    });
  } finally {
    collections.close();
    db?.close();
  }
}

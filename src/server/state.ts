/**
 * What every route handler shares: the collections and their Quarry instances, keys, query records,
 * budgets, metrics, and the server's lifecycle flags (ready once warmed, draining once shutdown began).
 */
import type { FastifyBaseLogger } from 'fastify';
import type { Budgets } from './budgets.js';
import type { Collections } from './collections.js';
import type { ServerConfig } from './config.js';
import type { ApiKeyRecord, KeyStore } from './keys.js';
import type { ServerMetrics } from './metrics.js';
import type { RouteRegistry } from './route.js';
import type { QueryRecords } from './traces.js';
import type { Variants } from './variants.js';

export interface ServerState {
  config: ServerConfig;
  version: string;
  collections: Collections;
  keys: KeyStore;
  records: QueryRecords;
  /** Online A/B: which configuration answers a query request (the `canary` setting). */
  variants: Variants;
  budgets: Budgets;
  metrics: ServerMetrics;
  registry: RouteRegistry;
  log: FastifyBaseLogger;
  /** Keys are required (some exist, or the server was told to); otherwise loopback callers are trusted. */
  authRequired: boolean;
  ready: boolean;
  draining: boolean;
  /** Streams in flight (SSE asks and chats), awaited on shutdown. */
  streams: Set<Promise<void>>;
}

declare module 'fastify' {
  interface FastifyRequest {
    apiKey?: ApiKeyRecord;
    /** Ends the request's latency and in-flight series (pipeline metrics). */
    httpDone?: (status: number) => void;
  }
}

/**
 * Online A/B (the `canary` server setting): which variant answers a request, the candidate's Quarry
 * instance, and what is recorded per variant. Assignment is a hash of the API key (sticky: one key sees one
 * variant, so feedback compares like with like) or of the request id; an admin may force one with the
 * `x-quarry-variant` header (to try the candidate before it takes traffic). The candidate is a second Quarry
 * instance over the same store with the candidate configuration merged over the server's — or the store of
 * another collection when the candidate is an index — so the same documents and access rules apply.
 */
import { createHash } from 'node:crypto';
import type { FastifyRequest } from 'fastify';
import client from 'prom-client';
import { hasScope, type Principal } from '../access/principal.js';
import type { QuarryConfigInput } from '../config/config.js';
import { QuarryError } from '../errors.js';
import { Quarry } from '../pipeline/quarry.js';
import type { Answer } from '../types.js';
import type { Collections } from './collections.js';
import type { ServerConfig } from './config.js';

export const DEFAULT_VARIANT = 'default';

type Canary = NonNullable<ServerConfig['canary']>;

export interface Assignment {
  variant: string;
  quarry: Quarry;
}

function merge(base: Record<string, unknown>, over: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...base };
  for (const [k, v] of Object.entries(over)) {
    const b = out[k];
    out[k] =
      b !== null &&
      typeof b === 'object' &&
      !Array.isArray(b) &&
      v !== null &&
      typeof v === 'object' &&
      !Array.isArray(v)
        ? merge(b as Record<string, unknown>, v as Record<string, unknown>)
        : v;
  }
  return out;
}

/** The share of [0, 1) a string hashes to (stable across processes and restarts). */
export function hashShare(s: string): number {
  return createHash('sha256').update(s).digest().readUInt32BE(0) / 2 ** 32;
}

export class Variants {
  private readonly candidates = new Map<string, Quarry>();
  readonly requests: client.Counter<'variant' | 'route'>;
  readonly latency: client.Histogram<'variant' | 'route'>;
  readonly answers: client.Counter<'variant' | 'outcome'>;
  readonly feedback: client.Counter<'variant' | 'helpful'>;

  constructor(
    private readonly canary: Canary | undefined,
    private readonly collections: Collections,
    private readonly pipeline: QuarryConfigInput,
    registry: client.Registry,
  ) {
    this.requests = new client.Counter({
      name: 'quarry_variant_requests_total',
      help: 'Query requests by A/B variant and route',
      labelNames: ['variant', 'route'] as const,
      registers: [registry],
    });
    this.latency = new client.Histogram({
      name: 'quarry_variant_request_seconds',
      help: 'Pipeline time of query requests by A/B variant and route',
      labelNames: ['variant', 'route'] as const,
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers: [registry],
    });
    this.answers = new client.Counter({
      name: 'quarry_variant_answers_total',
      help: 'Answers by A/B variant and outcome (answered, abstained, invalid_citations, unsupported)',
      labelNames: ['variant', 'outcome'] as const,
      registers: [registry],
    });
    this.feedback = new client.Counter({
      name: 'quarry_variant_feedback_total',
      help: 'Feedback votes by the A/B variant that answered the query',
      labelNames: ['variant', 'helpful'] as const,
      registers: [registry],
    });
  }

  get enabled(): boolean {
    return this.canary !== undefined;
  }

  /** Open the candidate of every split collection now, so a candidate config that cannot open stops the start. */
  warm(): void {
    if (this.canary === undefined) return;
    for (const c of this.canary.collections) this.candidate(c);
  }

  /**
   * The variant that answers this request in `collection` (already resolved for the principal), and its
   * Quarry instance; `current` is the collection's own.
   */
  assign(p: Principal, request: FastifyRequest, collection: string, current: Quarry): Assignment {
    const forced = request.headers['x-quarry-variant'];
    const c = this.canary;
    if (typeof forced === 'string' && forced !== '') {
      if (!hasScope(p, 'admin'))
        throw new QuarryError('FORBIDDEN', 'x-quarry-variant needs the "admin" scope');
      if (forced === DEFAULT_VARIANT) return { variant: DEFAULT_VARIANT, quarry: current };
      if (c === undefined || forced !== c.name || !c.collections.includes(collection))
        throw new QuarryError('INVALID_ARGUMENT', `no variant "${forced}" for collection "${collection}"`, {
          variant: forced,
        });
      return { variant: c.name, quarry: this.candidate(collection) };
    }
    if (c === undefined || c.share === 0 || !c.collections.includes(collection))
      return { variant: DEFAULT_VARIANT, quarry: current };
    const who =
      c.assign === 'key' && p.kind === 'user' && p.keyId !== undefined
        ? `key:${p.keyId}`
        : `req:${request.id}`;
    return hashShare(`${collection}\u0000${who}`) < c.share
      ? { variant: c.name, quarry: this.candidate(collection) }
      : { variant: DEFAULT_VARIANT, quarry: current };
  }

  /** Count a finished request (and, for answers, its outcome) under its variant. */
  observe(variant: string, route: string, seconds: number, answer?: Answer): void {
    if (this.canary === undefined) return;
    this.requests.inc({ variant, route });
    this.latency.observe({ variant, route }, seconds);
    if (answer === undefined) return;
    this.answers.inc({ variant, outcome: answer.abstained ? 'abstained' : 'answered' });
    const v = answer.validation;
    if (v !== undefined && v.unknownMarkers.length > 0)
      this.answers.inc({ variant, outcome: 'invalid_citations' });
    if (v !== undefined && v.unsupported.length > 0) this.answers.inc({ variant, outcome: 'unsupported' });
  }

  close(): void {
    for (const q of this.candidates.values()) q.close();
    this.candidates.clear();
  }

  private candidate(collection: string): Quarry {
    let q = this.candidates.get(collection);
    if (q === undefined) {
      const c = this.canary!;
      const store = this.collections.storeDirUnchecked(c.collection ?? collection);
      try {
        q = Quarry.open({
          store,
          config: merge(this.pipeline as Record<string, unknown>, c.config) as QuarryConfigInput,
        });
      } catch (e) {
        throw new QuarryError(
          'INVALID_CONFIG',
          `canary "${c.name}" cannot open ${c.collection === undefined ? `collection "${collection}"` : `collection "${c.collection}"`}: ${(e as Error).message}`,
          { canary: c.name },
          e,
        );
      }
      this.candidates.set(collection, q);
    }
    return q;
  }
}

/**
 * API keys: created once (the secret is shown once and stored only as a SHA-256 hash), each with scopes, a
 * tenant, a user id, groups and a clearance level — the principal every request made with it carries.
 * A key is `qk_<id>_<secret>`: the id finds the row, the secret (32 random bytes) is compared in constant
 * time. A slow password hash is not needed for 256-bit random secrets: no dictionary to guess from.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { z } from 'zod';
import { SCOPES, type Scope, type UserPrincipal, userPrincipal } from '../access/principal.js';
import { QuarryError } from '../errors.js';
import type { ServerDb } from './db.js';

export const BudgetSchema = z
  .object({
    /** Tokens (input + output, every model call of the request) per period. */
    tokens: z.number().int().min(1).optional(),
    /** Cost in US dollars per period (priced calls only). */
    costUsd: z.number().positive().optional(),
    period: z.enum(['day', 'month']).default('month'),
  })
  .strict();

export type Budget = z.infer<typeof BudgetSchema>;

export const NewKeySchema = z
  .object({
    name: z.string().min(1).max(200),
    tenant: z
      .string()
      .regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/, 'letters, digits, "_", "." or "-", at most 64')
      .default('default'),
    userId: z.string().min(1).max(200).optional(),
    groups: z.array(z.string().min(1).max(200)).max(1000).default([]),
    clearance: z.number().int().min(0).max(1000).default(0),
    scopes: z
      .array(z.enum(SCOPES as [Scope, ...Scope[]]))
      .min(1)
      .default(['query']),
    ratePerMinute: z.number().int().min(1).optional(),
    budget: BudgetSchema.optional(),
  })
  .strict();

export type NewKey = z.input<typeof NewKeySchema>;

export interface ApiKeyRecord {
  id: string;
  name: string;
  tenant: string;
  userId?: string;
  groups: string[];
  clearance: number;
  scopes: Scope[];
  ratePerMinute?: number;
  budget?: Budget;
  createdAt: string;
  revokedAt?: string;
}

interface Row {
  id: string;
  hash: string;
  name: string;
  tenant: string;
  user_id: string | null;
  groups: string;
  clearance: number;
  scopes: string;
  rate_per_minute: number | null;
  budget: string | null;
  created_at: string;
  revoked_at: string | null;
}

const KEY_FORMAT = /^qk_([0-9a-f]{16})_([A-Za-z0-9_-]{43})$/;

function hashSecret(secret: string): string {
  return createHash('sha256').update(secret).digest('hex');
}

function toRecord(r: Row): ApiKeyRecord {
  return {
    id: r.id,
    name: r.name,
    tenant: r.tenant,
    ...(r.user_id === null ? {} : { userId: r.user_id }),
    groups: JSON.parse(r.groups) as string[],
    clearance: r.clearance,
    scopes: JSON.parse(r.scopes) as Scope[],
    ...(r.rate_per_minute === null ? {} : { ratePerMinute: r.rate_per_minute }),
    ...(r.budget === null ? {} : { budget: JSON.parse(r.budget) as Budget }),
    createdAt: r.created_at,
    ...(r.revoked_at === null ? {} : { revokedAt: r.revoked_at }),
  };
}

export class KeyStore {
  constructor(private readonly db: ServerDb) {}

  /** Create a key; the returned `secret` is the only time the full key exists outside its holder. */
  create(input: NewKey): { key: string; record: ApiKeyRecord } {
    const parsed = NewKeySchema.safeParse(input);
    if (!parsed.success)
      throw new QuarryError(
        'INVALID_ARGUMENT',
        `new key: ${parsed.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ')}`,
      );
    const k = parsed.data;
    const id = randomBytes(8).toString('hex');
    const secret = randomBytes(32).toString('base64url');
    const now = new Date().toISOString();
    this.db
      .prepare(
        `INSERT INTO api_keys (id, hash, name, tenant, user_id, groups, clearance, scopes, rate_per_minute, budget, created_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      )
      .run(
        id,
        hashSecret(secret),
        k.name,
        k.tenant,
        k.userId ?? null,
        JSON.stringify([...new Set(k.groups)].sort()),
        k.clearance,
        JSON.stringify([...new Set(k.scopes)]),
        k.ratePerMinute ?? null,
        k.budget === undefined ? null : JSON.stringify(k.budget),
        now,
      );
    return { key: `qk_${id}_${secret}`, record: this.get(id)! };
  }

  get(id: string): ApiKeyRecord | undefined {
    const row = this.db.prepare('SELECT * FROM api_keys WHERE id = ?').get(id) as Row | undefined;
    return row === undefined ? undefined : toRecord(row);
  }

  list(): ApiKeyRecord[] {
    return (this.db.prepare('SELECT * FROM api_keys ORDER BY created_at, id').all() as Row[]).map(toRecord);
  }

  /** Revoke by id; true when an active key was revoked. */
  revoke(id: string): boolean {
    const r = this.db
      .prepare('UPDATE api_keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL')
      .run(new Date().toISOString(), id);
    return r.changes > 0;
  }

  /** Whether any active key exists (no keys: the server stays on loopback and trusts local callers). */
  hasActiveKeys(): boolean {
    return this.db.prepare('SELECT 1 FROM api_keys WHERE revoked_at IS NULL LIMIT 1').get() !== undefined;
  }

  /** The key's record for a presented secret, or undefined (unknown, malformed, revoked). */
  verify(presented: string): ApiKeyRecord | undefined {
    const m = KEY_FORMAT.exec(presented);
    if (m === null) return undefined;
    const row = this.db.prepare('SELECT * FROM api_keys WHERE id = ?').get(m[1]) as Row | undefined;
    if (row === undefined || row.revoked_at !== null) return undefined;
    const a = Buffer.from(hashSecret(m[2]!), 'hex');
    const b = Buffer.from(row.hash, 'hex');
    return a.length === b.length && timingSafeEqual(a, b) ? toRecord(row) : undefined;
  }
}

/** The principal a request made with `key` carries. */
export function principalOf(key: ApiKeyRecord): UserPrincipal {
  return userPrincipal({
    tenant: key.tenant,
    ...(key.userId === undefined ? {} : { userId: key.userId }),
    groups: key.groups,
    clearance: key.clearance,
    scopes: key.scopes,
    keyId: key.id,
  });
}

/**
 * Who is asking. Every read path (search, ask, chat, citations, parent sections, documents, traces,
 * feedback, exports, caches) takes a principal and shows only what it may read. "Trusted local caller" is
 * an explicit value (`TRUSTED_LOCAL`, used by the CLI on its own store), never what a missing argument means:
 * a call without a principal is anonymous and sees only unrestricted documents.
 */

/** What an API key may do. `query`: search, ask, chat, read documents; `ingest`: write; `admin`: everything. */
export type Scope = 'query' | 'ingest' | 'admin';

export const SCOPES: readonly Scope[] = ['query', 'ingest', 'admin'];

export interface UserPrincipal {
  kind: 'user';
  /** Tenant the caller belongs to; a tenant's collections are invisible to every other tenant. */
  tenant: string;
  /** Matched against a document's `access_users`. */
  userId?: string;
  /** Matched against a document's `access_groups`. */
  groups: readonly string[];
  /** Documents with `security_level` above this are invisible (default 0). */
  clearance: number;
  scopes: readonly Scope[];
  /** The API key's id (never its secret), for budgets, audit and metrics. */
  keyId?: string;
}

export interface TrustedPrincipal {
  kind: 'trusted';
  tenant?: string;
}

export interface AnonymousPrincipal {
  kind: 'anonymous';
}

export type Principal = UserPrincipal | TrustedPrincipal | AnonymousPrincipal;

/** The local owner of a store (the CLI, a script on the same machine): sees every document. */
export const TRUSTED_LOCAL: TrustedPrincipal = Object.freeze({ kind: 'trusted' });

/** No identity: only documents without access restrictions. What a missing principal means. */
export const ANONYMOUS: AnonymousPrincipal = Object.freeze({ kind: 'anonymous' });

/** A user principal with defaults filled in (no groups, clearance 0, query scope). */
export function userPrincipal(p: {
  tenant?: string;
  userId?: string;
  groups?: readonly string[];
  clearance?: number;
  scopes?: readonly Scope[];
  keyId?: string;
}): UserPrincipal {
  return {
    kind: 'user',
    tenant: p.tenant ?? 'default',
    ...(p.userId === undefined ? {} : { userId: p.userId }),
    groups: [...new Set(p.groups ?? [])].sort(),
    clearance: p.clearance ?? 0,
    scopes: p.scopes ?? ['query'],
    ...(p.keyId === undefined ? {} : { keyId: p.keyId }),
  };
}

export function hasScope(p: Principal, scope: Scope): boolean {
  if (p.kind === 'trusted') return true;
  if (p.kind === 'anonymous') return false;
  return p.scopes.includes('admin') || p.scopes.includes(scope);
}

/**
 * The part of a principal that decides what it can read, as a stable string: part of every cache key, so
 * one principal's cached result is never served to another that sees different documents.
 */
export function visibilityKey(p: Principal): string {
  if (p.kind === 'trusted') return 'trusted';
  if (p.kind === 'anonymous') return 'anonymous';
  return JSON.stringify([p.tenant, p.userId ?? null, [...p.groups].sort(), p.clearance]);
}

/**
 * The one visibility rule: which documents a principal may read. Retrieval (the catalog's group predicate),
 * document get/list (SQL in the store), parent sections, feedback and the answer's context all ask it, so a
 * document a principal may not read behaves on every path exactly as if it did not exist.
 */
import { QuarryError } from '../errors.js';
import type { AccessScope, DocumentMetadata } from '../types.js';
import { ANONYMOUS, type Principal, SCOPES, type UserPrincipal, userPrincipal } from './principal.js';

/** The metadata the rule reads. */
export type DocumentAccess = Pick<DocumentMetadata, 'access_groups' | 'access_users' | 'security_level'>;

/**
 * What a non-trusted principal is granted, in the form a store compiles to its query language (see
 * `SqliteStore.listDocuments`). `undefined` (from `readGrant`) means no restriction at all (trusted).
 */
export interface ReadGrant {
  userId?: string;
  groups: readonly string[];
  clearance: number;
}

/** The grant of a principal; undefined for the trusted caller (reads everything). */
export function readGrant(p: Principal): ReadGrant | undefined {
  if (p.kind === 'trusted') return undefined;
  if (p.kind === 'anonymous') return { groups: [], clearance: 0 };
  return {
    ...(p.userId === undefined ? {} : { userId: p.userId }),
    groups: p.groups,
    clearance: p.clearance,
  };
}

/** True when the document carries any restriction (users, groups, or a security level above 0). */
export function isRestricted(doc: DocumentAccess): boolean {
  return doc.access_users.length > 0 || doc.access_groups.length > 0 || (doc.security_level ?? 0) > 0;
}

/**
 * A reusable check for one principal (sets built once: retrieval calls it per candidate document).
 * - trusted: every document;
 * - anonymous: only documents without users, groups or a security level above 0;
 * - user: (no users and no groups, or its id among the users, or one of its groups among the groups)
 *   and the document's level (default 0) at most its clearance.
 */
export function readerFor(p: Principal): (doc: DocumentAccess) => boolean {
  const grant = readGrant(p);
  if (grant === undefined) return () => true;
  const groups = new Set(grant.groups);
  const { userId, clearance } = grant;
  return (doc) => {
    if ((doc.security_level ?? 0) > clearance) return false;
    if (doc.access_users.length === 0 && doc.access_groups.length === 0) return true;
    if (userId !== undefined && doc.access_users.includes(userId)) return true;
    return doc.access_groups.some((g) => groups.has(g));
  };
}

/** Whether `principal` may read `doc` (see `readerFor` for the rule). */
export function canRead(principal: Principal, doc: DocumentAccess): boolean {
  return readerFor(principal)(doc);
}

/**
 * The principal of a library request. `principal` wins; the deprecated `scope: { groups }` means a user
 * principal in those groups (clearance 0); neither means ANONYMOUS — never trusted. Giving both is an error,
 * so a caller cannot widen one with the other by mistake.
 */
export function requestPrincipal(o: {
  principal?: Principal | undefined;
  scope?: AccessScope | undefined;
}): Principal {
  if (o.principal !== undefined && o.scope !== undefined)
    throw new QuarryError('INVALID_ARGUMENT', 'give principal or the deprecated scope, not both', {
      field: 'scope',
    });
  if (o.principal !== undefined) return checkPrincipal(o.principal);
  if (o.scope !== undefined) {
    const groups = o.scope.groups ?? [];
    if (!Array.isArray(groups) || groups.some((g) => typeof g !== 'string'))
      throw new QuarryError('INVALID_ARGUMENT', 'scope.groups must be a list of group names', {
        field: 'scope.groups',
      });
    return userPrincipal({ groups });
  }
  return ANONYMOUS;
}

/** Checks a principal handed in by a caller (JavaScript callers are not type-checked); throws INVALID_ARGUMENT. */
export function checkPrincipal(p: unknown): Principal {
  const bad = (what: string, field = 'principal'): never => {
    throw new QuarryError('INVALID_ARGUMENT', `${field} ${what}`, { field });
  };
  if (p === null || typeof p !== 'object') return bad('must be an object with a kind');
  const kind = (p as { kind?: unknown }).kind;
  if (kind === 'trusted' || kind === 'anonymous') return p as Principal;
  if (kind !== 'user')
    return bad(`kind must be "user", "trusted" or "anonymous", got ${JSON.stringify(kind)}`);
  const u = p as Partial<UserPrincipal>;
  if (!Array.isArray(u.groups) || u.groups.some((g) => typeof g !== 'string'))
    bad('must be a list of group names', 'principal.groups');
  if (typeof u.clearance !== 'number' || !Number.isInteger(u.clearance) || u.clearance < 0)
    bad(`must be an integer ≥ 0, got ${JSON.stringify(u.clearance)}`, 'principal.clearance');
  if (u.userId !== undefined && (typeof u.userId !== 'string' || u.userId === ''))
    bad('must be a non-empty string', 'principal.userId');
  if (typeof u.tenant !== 'string') bad('must be a string', 'principal.tenant');
  if (!Array.isArray(u.scopes) || u.scopes.some((s) => !SCOPES.includes(s)))
    bad(`must be a list of ${SCOPES.join(', ')}`, 'principal.scopes');
  return u as UserPrincipal;
}

/**
 * `principal` acting as a member of `groups` only (a batch question's `groups`): the trusted caller becomes a
 * user in those groups; a user keeps its id and clearance with the groups it has of these; anonymous stays
 * anonymous. Never wider than `principal`.
 */
export function narrowToGroups(principal: Principal, groups: readonly string[]): Principal {
  if (principal.kind === 'anonymous') return principal;
  if (principal.kind === 'trusted')
    return userPrincipal({ groups, ...(principal.tenant === undefined ? {} : { tenant: principal.tenant }) });
  const wanted = new Set(groups);
  return { ...principal, groups: principal.groups.filter((g) => wanted.has(g)) };
}

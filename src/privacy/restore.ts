/**
 * Restoring PII behind reversible placeholders: an admin-only call that puts the vault's originals back into
 * a text (an answer, a document) and leaves an audit row for every attempt, allowed or not (./audit.ts).
 * All or nothing: a placeholder this vault did not issue (another key, another store) fails the whole call.
 */
import { z } from 'zod';
import { QuarryError } from '../errors.js';
import type { PiiAuditEntry } from './audit.js';
import { PLACEHOLDER_TOKEN, type Redactor } from './redact.js';

export const RestoreOptionsSchema = z.object({
  /** Restoring is for administrators only; the caller states it (the server sets it from the key's scope). */
  admin: z.literal(true),
  /** Who restores: a user or API key id, written to the audit log. */
  actor: z.string().trim().min(1, 'actor must name who restores').max(200),
  /** Why (a ticket, a legal request), written to the audit log with any PII in it redacted. */
  reason: z.string().max(2000).optional(),
});
export type RestoreOptions = z.input<typeof RestoreOptionsSchema>;

export interface RestoreResult {
  text: string;
  /** Placeholders replaced by their original (each occurrence). */
  restored: number;
}

function actorOf(opts: unknown): string {
  const actor = (opts as { actor?: unknown } | null | undefined)?.actor;
  return typeof actor === 'string' && actor.trim() !== '' ? actor.trim().slice(0, 200) : '(not given)';
}

function reasonOf(opts: unknown): string | undefined {
  const reason = (opts as { reason?: unknown } | null | undefined)?.reason;
  return typeof reason === 'string' ? reason.slice(0, 2000) : undefined;
}

/** The reason as written to the log: originals being restored put back as placeholders, then redacted. */
function loggedReason(
  redactor: Redactor,
  reason: string | undefined,
  originals: ReadonlyMap<string, string> = new Map(),
): string | undefined {
  if (reason === undefined) return undefined;
  let out = reason;
  const byLength = [...originals].sort((a, b) => b[1].length - a[1].length);
  for (const [placeholder, value] of byLength) out = out.split(value).join(placeholder);
  return redactor.redact(out).text;
}

/**
 * Replace every reversible placeholder in `text` by its original. Throws FORBIDDEN without `admin: true`
 * (audited), INVALID_CONFIG when redaction is not reversible, INVALID_ARGUMENT on a missing actor or a
 * non-string text, PRIVACY_TOKEN_UNKNOWN when a placeholder is not in this vault (audited, nothing restored).
 *
 * @example
 * restorePii(redactor, answer.text, { admin: true, actor: 'key:ops-1', reason: 'ticket 4411' });
 */
export function restorePii(
  redactor: Redactor | undefined,
  text: string,
  opts: RestoreOptions,
): RestoreResult {
  const vault = redactor?.vault;
  const actor = actorOf(opts);
  if ((opts as { admin?: unknown } | null | undefined)?.admin !== true) {
    if (redactor !== undefined && vault !== undefined)
      vault.audit.append({
        actor,
        ...optional(loggedReason(redactor, reasonOf(opts))),
        outcome: 'forbidden',
        placeholders: 0,
        restored: 0,
      });
    throw new QuarryError('FORBIDDEN', 'restoring PII needs an admin caller (admin: true)', { actor });
  }
  if (redactor === undefined || vault === undefined) {
    throw new QuarryError(
      'INVALID_CONFIG',
      'restoring PII needs reversible redaction (privacy.enabled: true, privacy.mode: "reversible")',
    );
  }
  const parsed = RestoreOptionsSchema.safeParse(opts);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new QuarryError('INVALID_ARGUMENT', `restorePii ${issue?.path.join('.')}: ${issue?.message}`);
  }
  if (typeof text !== 'string') throw new QuarryError('INVALID_ARGUMENT', 'restorePii text must be a string');

  const found = [...text.matchAll(PLACEHOLDER_TOKEN)].map((m) => m[0]);
  const originals = new Map<string, string>();
  const unknown: string[] = [];
  for (const p of new Set(found)) {
    const value = vault.get(p);
    if (value === undefined) unknown.push(p);
    else originals.set(p, value);
  }
  const reason = loggedReason(redactor, parsed.data.reason, originals);
  if (unknown.length > 0) {
    vault.audit.append({
      actor: parsed.data.actor,
      ...optional(reason),
      outcome: 'rejected',
      placeholders: found.length,
      restored: 0,
    });
    throw new QuarryError(
      'PRIVACY_TOKEN_UNKNOWN',
      `${unknown.length} placeholder(s) were not issued by this vault (another key or another store), e.g. ${unknown[0]}; nothing was restored`,
      { unknown: unknown.slice(0, 10), count: unknown.length },
    );
  }
  // The audit row is durable before any original leaves: a restore that cannot be logged does not happen.
  vault.audit.append({
    actor: parsed.data.actor,
    ...optional(reason),
    outcome: 'restored',
    placeholders: found.length,
    restored: found.length,
  });
  const restored = found.length === 0 ? text : text.replace(PLACEHOLDER_TOKEN, (p) => originals.get(p)!);
  return { text: restored, restored: found.length };
}

/** The most recent restore attempts, newest first; empty when redaction is not reversible (no vault open). */
export function piiAuditLog(redactor: Redactor | undefined, opts: { limit?: number } = {}): PiiAuditEntry[] {
  const limit = opts.limit ?? 100;
  if (!Number.isInteger(limit) || limit < 1 || limit > 10_000)
    throw new QuarryError(
      'INVALID_ARGUMENT',
      `limit must be an integer from 1 to 10000, got ${String(limit)}`,
    );
  return redactor?.vault?.audit.list(limit) ?? [];
}

function optional(reason: string | undefined): { reason?: string } {
  return reason === undefined ? {} : { reason };
}

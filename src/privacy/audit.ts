/**
 * The restore audit log: one row per attempt to put PII originals back (who, when, why, how many
 * placeholders, the outcome), in the vault's own SQLite file so it travels with the originals it guards.
 * Append-only (triggers refuse UPDATE and DELETE) and written with the vault's FULL sync; never holds a value.
 */
import type Database from 'better-sqlite3';

/** `restored`: originals returned; `forbidden`: the caller was not an admin; `rejected`: unknown placeholders. */
export type RestoreOutcome = 'restored' | 'forbidden' | 'rejected';

export interface PiiAuditEntry {
  id: number;
  /** ISO-8601 time of the attempt. */
  at: string;
  /** Who asked (a user or API key id, as the caller named it). */
  actor: string;
  /** Why, as given (PII in it is redacted before it is written). */
  reason?: string;
  outcome: RestoreOutcome;
  /** Placeholders found in the text (each occurrence). */
  placeholders: number;
  /** Placeholders replaced by their original. */
  restored: number;
}

export const AUDIT_SCHEMA = `
  CREATE TABLE IF NOT EXISTS restore_audit (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at TEXT NOT NULL,
    actor TEXT NOT NULL,
    reason TEXT,
    outcome TEXT NOT NULL,
    placeholders INTEGER NOT NULL,
    restored INTEGER NOT NULL);
  CREATE TRIGGER IF NOT EXISTS restore_audit_no_update BEFORE UPDATE ON restore_audit
    BEGIN SELECT RAISE(ABORT, 'restore_audit is append-only'); END;
  CREATE TRIGGER IF NOT EXISTS restore_audit_no_delete BEFORE DELETE ON restore_audit
    BEGIN SELECT RAISE(ABORT, 'restore_audit is append-only'); END;`;

interface AuditRow {
  id: number;
  at: string;
  actor: string;
  reason: string | null;
  outcome: RestoreOutcome;
  placeholders: number;
  restored: number;
}

export class PiiAuditLog {
  private readonly insert;
  private readonly recent;

  /**
   * `db` (the vault's better-sqlite3 database) must already hold `AUDIT_SCHEMA` (the vault creates it when it
   * opens). Typed `unknown` here so the published declarations do not require better-sqlite3's types.
   */
  constructor(vaultDb: unknown) {
    const db = vaultDb as Database.Database;
    this.insert = db.prepare(
      'INSERT INTO restore_audit (at, actor, reason, outcome, placeholders, restored) VALUES (?, ?, ?, ?, ?, ?)',
    );
    this.recent = db.prepare<[number], AuditRow>('SELECT * FROM restore_audit ORDER BY id DESC LIMIT ?');
  }

  append(entry: Omit<PiiAuditEntry, 'id' | 'at'>): PiiAuditEntry {
    const at = new Date().toISOString();
    const r = this.insert.run(
      at,
      entry.actor,
      entry.reason ?? null,
      entry.outcome,
      entry.placeholders,
      entry.restored,
    );
    return { id: Number(r.lastInsertRowid), at, ...entry };
  }

  /** The most recent entries, newest first. */
  list(limit: number): PiiAuditEntry[] {
    return this.recent.all(limit).map(({ reason, ...row }) => (reason === null ? row : { ...row, reason }));
  }
}

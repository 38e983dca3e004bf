/**
 * Restoring reversible placeholders through the library on a real store and vault: the original text comes
 * back exactly, only for an admin caller, placeholders of another vault key restore nothing, and every
 * attempt leaves an append-only audit row on disk that never holds a restored value.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { QuarryError } from '../../src/errors.js';
import { Quarry } from '../../src/pipeline/quarry.js';
import { VAULT_FILE } from '../../src/privacy/vault.js';

const EMAIL = 'dana.whitfield@example.org';
const SSN = '536-22-1937';
const TEXT = `Escalations go to Dana Whitfield at ${EMAIL}; her payroll SSN is ${SSN}.`;

const dirs: string[] = [];
const open: Quarry[] = [];
afterEach(() => {
  for (const q of open.splice(0)) q.close();
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
  delete process.env.QUARRY_TEST_RESTORE_KEY;
});

function store(): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'quarry-restore-'));
  dirs.push(d);
  return path.join(d, 'store');
}

/** A store with reversible redaction at ingest, opened with `key`. */
async function reversible(dir: string, key: string): Promise<Quarry> {
  process.env.QUARRY_TEST_RESTORE_KEY = key;
  const q = Quarry.open({
    store: dir,
    config: { privacy: { enabled: true, at: 'both', mode: 'reversible', keyEnv: 'QUARRY_TEST_RESTORE_KEY' } },
  });
  open.push(q);
  await q.addDocuments([{ id: 'contacts', text: TEXT }]);
  return q;
}

function thrown(fn: () => unknown): QuarryError {
  try {
    fn();
  } catch (e) {
    if (e instanceof QuarryError) return e;
    throw e;
  }
  throw new Error('expected a QuarryError');
}

const ADMIN = { admin: true, actor: 'ops@example.net', reason: 'DSAR-17' } as const;

describe('restorePii', () => {
  it('round-trips the stored placeholders to the exact original text, and logs who, why and how many', async () => {
    const q = await reversible(store(), randomBytes(32).toString('hex'));
    const stored = q.getDocument('contacts')!.text;
    expect(stored).not.toContain(EMAIL);
    expect(stored).toMatch(/\[EMAIL_[0-9a-f]{16}\].*\[SSN_[0-9a-f]{16}\]/);
    const r = q.restorePii(`${stored} Again: ${stored}`, ADMIN);
    expect(r).toEqual({ text: `${TEXT} Again: ${TEXT}`, restored: 4 });
    // Mask placeholders and plain text pass through; nothing to restore is still an audited use.
    expect(q.restorePii('no tokens here [EMAIL]', { admin: true, actor: 'ops@example.net' })).toEqual({
      text: 'no tokens here [EMAIL]',
      restored: 0,
    });
    const log = q.piiAuditLog();
    expect(log).toHaveLength(2);
    expect(log[0]).toMatchObject({
      actor: 'ops@example.net',
      outcome: 'restored',
      placeholders: 0,
      restored: 0,
    });
    expect(log[0]!.reason).toBeUndefined();
    expect(log[1]).toMatchObject({
      actor: 'ops@example.net',
      reason: 'DSAR-17',
      outcome: 'restored',
      restored: 4,
    });
    expect(Date.parse(log[1]!.at)).toBeGreaterThan(Date.now() - 60_000);
    expect(q.piiAuditLog({ limit: 1 })).toEqual([log[0]]);
  });

  it('refuses a caller that is not an admin, restores nothing and logs the refusal', async () => {
    const q = await reversible(store(), randomBytes(32).toString('hex'));
    const stored = q.getDocument('contacts')!.text;
    for (const opts of [{ actor: 'mallory' }, { admin: false, actor: 'mallory' }, undefined]) {
      const e = thrown(() => q.restorePii(stored, opts as never));
      expect(e.code).toBe('FORBIDDEN');
      expect(e.httpStatus).toBe(403);
      expect(e.message).not.toContain(EMAIL);
    }
    const log = q.piiAuditLog();
    expect(log.map((l) => [l.outcome, l.actor, l.restored])).toEqual([
      ['forbidden', '(not given)', 0],
      ['forbidden', 'mallory', 0],
      ['forbidden', 'mallory', 0],
    ]);
    // An admin call still needs to say who it is.
    expect(thrown(() => q.restorePii(stored, { admin: true, actor: ' ' })).code).toBe('INVALID_ARGUMENT');
  });

  it('refuses placeholders issued under another vault key, restoring nothing', async () => {
    const a = await reversible(store(), randomBytes(32).toString('hex'));
    const fromA = a.getDocument('contacts')!.text;
    const b = await reversible(store(), randomBytes(32).toString('hex'));
    const fromB = b.getDocument('contacts')!.text;
    // Same values, another key: other tokens.
    expect(fromB).not.toBe(fromA);
    const e = thrown(() => b.restorePii(`${fromB} ${fromA}`, ADMIN));
    expect(e.code).toBe('PRIVACY_TOKEN_UNKNOWN');
    expect(e.message).toMatch(/2 placeholder\(s\) were not issued by this vault/);
    expect(e.message).not.toContain(EMAIL);
    expect(b.piiAuditLog()[0]).toMatchObject({ outcome: 'rejected', placeholders: 4, restored: 0 });
    expect(b.restorePii(fromB, ADMIN).text).toBe(TEXT);
  });

  it('keeps the audit log durable and append-only on disk, without any restored value', async () => {
    const dir = store();
    const q = await reversible(dir, randomBytes(32).toString('hex'));
    const stored = q.getDocument('contacts')!.text;
    q.restorePii(stored, { ...ADMIN, reason: `customer ${EMAIL} asked for SSN ${SSN}` });
    thrown(() => q.restorePii(stored, { admin: false, actor: 'x', reason: `wants ${EMAIL}` } as never));
    const [forbidden, restored] = q.piiAuditLog();
    // A value named in the reason is written as its placeholder.
    expect(restored!.reason).toMatch(/^customer \[EMAIL_[0-9a-f]{16}\] asked for SSN \[SSN_[0-9a-f]{16}\]$/);
    expect(forbidden!.reason).toMatch(/^wants \[EMAIL_[0-9a-f]{16}\]$/);
    q.close();
    open.splice(0);

    const db = new Database(path.join(dir, VAULT_FILE));
    try {
      const rows = db.prepare('SELECT * FROM restore_audit ORDER BY id').all();
      expect(rows).toHaveLength(2);
      const dump = JSON.stringify(rows);
      for (const raw of [EMAIL, SSN, SSN.replace(/-/g, ''), 'dana.whitfield'])
        expect(dump).not.toContain(raw);
      expect(() => db.prepare("UPDATE restore_audit SET actor = 'someone else'").run()).toThrow(
        /append-only/,
      );
      expect(() => db.prepare('DELETE FROM restore_audit').run()).toThrow(/append-only/);
    } finally {
      db.close();
    }
    // Reopened, the log is still there.
    const again = await reversible(dir, process.env.QUARRY_TEST_RESTORE_KEY!);
    expect(again.piiAuditLog()).toHaveLength(2);
  });

  it('is unavailable without reversible redaction', async () => {
    const q = Quarry.open({ store: store(), config: { privacy: { enabled: true, mode: 'mask' } } });
    open.push(q);
    expect(thrown(() => q.restorePii('[EMAIL]', ADMIN)).code).toBe('INVALID_CONFIG');
    expect(q.piiAuditLog()).toEqual([]);
  });
});

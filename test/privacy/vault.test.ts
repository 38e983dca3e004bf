/**
 * Reversible redaction against a real SQLite vault on disk: stable placeholders, exact round trips, key
 * formats, a wrong or missing key refused with a clear error, tampering detected, and no plaintext anywhere
 * in the vault's bytes.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import fc from 'fast-check';
import { afterEach, describe, expect, it } from 'vitest';
import { createRedactor, type PrivacyConfigInput, type Redactor } from '../../src/privacy/redact.js';
import { VAULT_FILE } from '../../src/privacy/vault.js';
import { thrownBy as failure } from '../fixtures/rejection.js';

const KEY_HEX = randomBytes(32).toString('hex');
const REVERSIBLE: PrivacyConfigInput = {
  enabled: true,
  mode: 'reversible',
  keyEnv: 'TEST_PII_KEY',
  phoneRegion: 'US',
};

const dirs: string[] = [];
const open: Redactor[] = [];
afterEach(() => {
  for (const r of open.splice(0)) r.close();
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

function tempDir(): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'quarry-vault-'));
  dirs.push(d);
  return d;
}

function redactor(storeDir: string, key = KEY_HEX, config: PrivacyConfigInput = REVERSIBLE): Redactor {
  const r = createRedactor(config, { storeDir, env: { TEST_PII_KEY: key } });
  open.push(r);
  return r;
}

/** Every file the vault left on disk (main file, WAL, shared memory), concatenated. */
function vaultBytes(dir: string): Buffer {
  return Buffer.concat(
    fs
      .readdirSync(dir)
      .filter((f) => f.startsWith(VAULT_FILE))
      .map((f) => fs.readFileSync(path.join(dir, f))),
  );
}

const TEXT =
  'Contact Alice at alice.liddell@wonderland.example or (415) 555-2671. ' +
  'Refund to card 4111 1111 1111 1111, IBAN DE89 3704 0044 0532 0130 00, from host 203.0.113.77. ' +
  'Copy alice.liddell@wonderland.example on the reply.';
const VALUES = [
  'alice.liddell@wonderland.example',
  '(415) 555-2671',
  '4111 1111 1111 1111',
  'DE89 3704 0044 0532 0130 00',
  '203.0.113.77',
];

describe('reversible redaction', () => {
  it('gives each distinct value one stable placeholder and restores the exact text', () => {
    const dir = tempDir();
    const r = redactor(dir);
    const out = r.redact(TEXT);
    for (const v of VALUES) expect(out.text).not.toContain(v);
    const placeholders = out.text.match(/\[[A-Z]+_[0-9a-f]{16}\]/g) ?? [];
    expect(placeholders.map((p) => p.slice(1, p.indexOf('_')))).toEqual([
      'EMAIL',
      'PHONE',
      'CARD',
      'IBAN',
      'IP',
      'EMAIL',
    ]);
    // The same address twice → the same placeholder; different values → different placeholders.
    expect(placeholders[5]).toBe(placeholders[0]);
    expect(new Set(placeholders).size).toBe(5);
    expect(r.restore?.(out.text)).toBe(TEXT);

    // Across documents and after reopening the vault: the same value keeps its placeholder.
    r.close();
    const again = redactor(dir);
    const other = again.redact('Forwarded by alice.liddell@wonderland.example.');
    expect(other.text).toBe(`Forwarded by ${placeholders[0]}.`);
    expect(again.restore?.(out.text)).toBe(TEXT);
  });

  it('leaves unknown placeholders and ordinary brackets alone on restore', () => {
    const r = redactor(tempDir());
    expect(r.restore?.('see [EMAIL_0123456789abcdef] and [1] and [EMAIL]')).toBe(
      'see [EMAIL_0123456789abcdef] and [1] and [EMAIL]',
    );
  });

  it('round-trips arbitrary text with embedded values', () => {
    const r = redactor(tempDir());
    const value = fc.constantFrom(...VALUES, 'bob@example.org', '+44 20 7946 0958', '2001:db8::7');
    const prose = fc.string({ maxLength: 30 }).map((s) => ` ${s.replace(/[[\]]/g, '')} `);
    fc.assert(
      fc.property(fc.array(fc.tuple(prose, value), { maxLength: 5 }), prose, (parts, tail) => {
        const text = parts.map(([p, v]) => p + v).join('') + tail;
        expect(r.restore?.(r.redact(text).text)).toBe(text);
      }),
      { numRuns: 150 },
    );
  });

  it('keeps no plaintext in the vault file, only encrypted entries', () => {
    const dir = tempDir();
    const r = redactor(dir);
    r.redact(TEXT);
    r.close();
    const bytes = vaultBytes(dir);
    expect(bytes.length).toBeGreaterThan(0);
    for (const v of [...VALUES, '4111111111111111', 'wonderland', 'liddell', '555-2671', '0532 0130']) {
      expect(bytes.includes(Buffer.from(v))).toBe(false);
    }
    const db = new Database(path.join(dir, VAULT_FILE), { readonly: true });
    const rows = db.prepare('SELECT token, data FROM entries').all() as Array<{
      token: string;
      data: Buffer;
    }>;
    db.close();
    expect(rows).toHaveLength(5);
    for (const row of rows) expect(row.token).toMatch(/^\[[A-Z]+_[0-9a-f]{16}\]$/);
  });

  it('refuses a wrong key with a clear error instead of producing garbage', () => {
    const dir = tempDir();
    const out = redactor(dir).redact(TEXT);
    for (const r of open.splice(0)) r.close();
    const e = failure(() => redactor(dir, randomBytes(32).toString('hex')));
    expect(e.code).toBe('PRIVACY_KEY_MISMATCH');
    expect(e.message).toContain(VAULT_FILE);
    expect(e.exitCode).toBe(5);
    // The right key still works afterwards.
    expect(redactor(dir).restore?.(out.text)).toBe(TEXT);
  });

  it('accepts a base64 key and a passphrase (stretched with scrypt, salted per vault)', () => {
    const b64 = randomBytes(32).toString('base64');
    const d1 = tempDir();
    const r1 = redactor(d1, b64);
    expect(r1.restore?.(r1.redact(TEXT).text)).toBe(TEXT);

    const passphrase = 'correct horse battery staple';
    const d2 = tempDir();
    const d3 = tempDir();
    const p2 = redactor(d2, passphrase).redact('mail alice@example.com');
    const p3 = redactor(d3, passphrase).redact('mail alice@example.com');
    // Per-vault salt: the same passphrase yields different placeholders in different vaults.
    expect(p2.text).not.toBe(p3.text);
    expect(failure(() => redactor(d2, 'correct horse battery stapler')).code).toBe('PRIVACY_KEY_MISMATCH');
    expect(failure(() => redactor(d2, KEY_HEX)).code).toBe('PRIVACY_KEY_MISMATCH');
  });

  it('needs a key: missing or too short is PRIVACY_KEY, and the value is never echoed', () => {
    const dir = tempDir();
    const missing = failure(() => createRedactor(REVERSIBLE, { storeDir: dir, env: {} }));
    expect(missing.code).toBe('PRIVACY_KEY');
    expect(missing.message).toContain('TEST_PII_KEY');
    const short = failure(() =>
      createRedactor(REVERSIBLE, { storeDir: dir, env: { TEST_PII_KEY: 'hunter2' } }),
    );
    expect(short.code).toBe('PRIVACY_KEY');
    expect(short.message).not.toContain('hunter2');
    expect(fs.existsSync(path.join(dir, VAULT_FILE))).toBe(false);
  });

  it('detects a tampered entry instead of restoring it', () => {
    const dir = tempDir();
    const r = redactor(dir);
    const out = r.redact('mail alice@example.com');
    r.close();
    const db = new Database(path.join(dir, VAULT_FILE));
    const row = db.prepare('SELECT token, data FROM entries').get() as { token: string; data: Buffer };
    row.data[0] = row.data[0]! ^ 1;
    db.prepare('UPDATE entries SET data = ? WHERE token = ?').run(row.data, row.token);
    db.close();
    const e = failure(() => redactor(dir).restore?.(out.text));
    expect(e.code).toBe('PRIVACY_VAULT');
    expect(e.message).toContain('failed authentication');
  });

  it('mask mode needs no key and opens no vault; disabled passes text through', () => {
    const dir = tempDir();
    const mask = createRedactor({ enabled: true, kinds: ['email', 'card'] }, { storeDir: dir, env: {} });
    expect(mask.restore).toBeUndefined();
    expect(mask.redact(TEXT).text).toBe(
      'Contact Alice at [EMAIL] or (415) 555-2671. Refund to card [CARD], IBAN DE89 3704 0044 0532 0130 00, ' +
        'from host 203.0.113.77. Copy [EMAIL] on the reply.',
    );
    const off = createRedactor({}, { storeDir: dir, env: {} });
    expect(off.redact(TEXT)).toEqual({ text: TEXT, findings: [] });
    expect(fs.readdirSync(dir)).toEqual([]);
  });

  it('changes its fingerprint with the key and the settings, never exposing the key', () => {
    const dir = tempDir();
    const a = redactor(dir).fingerprint;
    const b = redactor(tempDir()).fingerprint; // another vault, another salt
    const c = redactor(dir, KEY_HEX, { ...REVERSIBLE, kinds: ['email'] }).fingerprint;
    expect(new Set([a, b, c]).size).toBe(3);
    for (const f of [a, b, c]) expect(KEY_HEX).not.toContain(f);
  });
});

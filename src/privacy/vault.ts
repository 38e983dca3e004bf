/**
 * The PII vault behind reversible redaction: maps each placeholder to its original value, kept in its own
 * SQLite file apart from the document store and encrypted entry by entry (AES-256-GCM), so the store can be
 * shared, backed up or indexed without the originals. Only a caller holding the key can restore them.
 */
import {
  createCipheriv,
  createDecipheriv,
  createHmac,
  hkdfSync,
  randomBytes,
  scryptSync,
  timingSafeEqual,
} from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { QuarryError } from '../errors.js';
import { AUDIT_SCHEMA, PiiAuditLog } from './audit.js';

export const VAULT_FILE = 'pii-vault.sqlite';
const FORMAT = '1';
/** scrypt cost for passphrases (~100 ms, 32 MiB): brute force of a stolen vault pays it per guess. */
const SCRYPT = { N: 2 ** 15, r: 8, p: 1 } as const;
const MIN_PASSPHRASE = 12;
const CHECK_LABEL = 'quarry pii vault key check v1';

/** Key material as configured: a random 32-byte key (hex or base64), or a passphrase to stretch. */
export type VaultKeyMaterial = { kind: 'raw'; key: Buffer } | { kind: 'passphrase'; passphrase: string };

/** Read the key from the environment variable `envName`; the value never appears in errors. */
export function readVaultKey(envName: string, env: NodeJS.ProcessEnv = process.env): VaultKeyMaterial {
  const value = env[envName]?.trim();
  if (!value) {
    throw new QuarryError(
      'PRIVACY_KEY',
      `environment variable ${envName} is not set; reversible redaction needs a 32-byte key (64 hex digits or base64) or a passphrase of at least ${MIN_PASSPHRASE} characters`,
      { keyEnv: envName },
    );
  }
  if (/^[0-9a-fA-F]{64}$/.test(value)) return { kind: 'raw', key: Buffer.from(value, 'hex') };
  if (/^[A-Za-z0-9+/]{43}=?$/.test(value) || /^[A-Za-z0-9_-]{43}$/.test(value)) {
    const key = Buffer.from(value, value.includes('-') || value.includes('_') ? 'base64url' : 'base64');
    if (key.length === 32) return { kind: 'raw', key };
  }
  if (value.length < MIN_PASSPHRASE) {
    throw new QuarryError(
      'PRIVACY_KEY',
      `${envName} is neither a 32-byte key (64 hex digits or base64) nor a passphrase of at least ${MIN_PASSPHRASE} characters`,
      { keyEnv: envName },
    );
  }
  return { kind: 'passphrase', passphrase: value };
}

interface EntryRow {
  iv: Buffer;
  data: Buffer;
  tag: Buffer;
}

export interface VaultOptions {
  /** The vault file (default `<storeDir>/pii-vault.sqlite`). */
  file: string;
  key: VaultKeyMaterial;
}

/**
 * An open vault. Placeholder tokens are keyed hashes of the values (`token()`), so the same value gets the
 * same placeholder in every document and the token reveals nothing without the key.
 */
export class PiiVault {
  readonly file: string;
  private readonly db: Database.Database;
  private readonly encKey: Buffer;
  private readonly macKey: Buffer;
  /** Tokens known to be stored with the right value (saves a read per repeated value). */
  private readonly known = new Set<string>();
  private readonly stmts;
  /** Every restore attempt, in the same file (see ./audit.ts). */
  readonly audit: PiiAuditLog;

  private constructor(file: string, db: Database.Database, encKey: Buffer, macKey: Buffer) {
    this.file = file;
    this.db = db;
    this.audit = new PiiAuditLog(db);
    this.encKey = encKey;
    this.macKey = macKey;
    this.stmts = {
      get: db.prepare<[string], EntryRow>('SELECT iv, data, tag FROM entries WHERE token = ?'),
      put: db.prepare('INSERT OR IGNORE INTO entries (token, iv, data, tag) VALUES (?, ?, ?, ?)'),
    };
  }

  /** Open (creating if needed) the vault; a key that did not create it is refused before anything is read. */
  static open(opts: VaultOptions): PiiVault {
    const file = path.resolve(opts.file);
    let db: Database.Database;
    try {
      fs.mkdirSync(path.dirname(file), { recursive: true });
      db = new Database(file);
      db.pragma('journal_mode = WAL');
      // FULL: an entry must be durable before the store commits text that refers to it.
      db.pragma('synchronous = FULL');
      db.pragma('busy_timeout = 5000');
      db.exec(`CREATE TABLE IF NOT EXISTS vault_meta (key TEXT PRIMARY KEY, value BLOB NOT NULL);
        CREATE TABLE IF NOT EXISTS entries (
          token TEXT PRIMARY KEY, iv BLOB NOT NULL, data BLOB NOT NULL, tag BLOB NOT NULL) WITHOUT ROWID;
        ${AUDIT_SCHEMA}`);
    } catch (e) {
      throw new QuarryError('PRIVACY_VAULT', `${file}: ${(e as Error).message}`, { file }, e);
    }
    try {
      const meta = PiiVault.initMeta(db);
      if (meta.format !== FORMAT) {
        throw new QuarryError('PRIVACY_VAULT', `${file} has format ${meta.format}, expected ${FORMAT}`, {
          file,
        });
      }
      const master =
        opts.key.kind === 'raw'
          ? opts.key.key
          : scryptSync(opts.key.passphrase.normalize('NFC'), meta.salt, 32, {
              ...meta.scrypt,
              maxmem: 128 * meta.scrypt.N * meta.scrypt.r * 2,
            });
      const derive = (info: string) => Buffer.from(hkdfSync('sha256', master, meta.salt, info, 32));
      const check = createHmac('sha256', derive('check')).update(CHECK_LABEL).digest();
      let stored = meta.check;
      if (stored === undefined) {
        // Another process may be creating the vault with another key at this moment: read back what won.
        db.prepare('INSERT OR IGNORE INTO vault_meta (key, value) VALUES (?, ?)').run('check', check);
        const row = db
          .prepare<[string], { value: Buffer }>('SELECT value FROM vault_meta WHERE key = ?')
          .get('check');
        stored = row === undefined ? undefined : Buffer.from(row.value);
      }
      if (stored === undefined || stored.length !== check.length || !timingSafeEqual(stored, check)) {
        throw new QuarryError(
          'PRIVACY_KEY_MISMATCH',
          `${file} was created with a different key; placeholders cannot be created or restored with this one`,
          { file },
        );
      }
      return new PiiVault(file, db, derive('encrypt'), derive('placeholder'));
    } catch (e) {
      db.close();
      if (e instanceof QuarryError) throw e;
      throw new QuarryError('PRIVACY_VAULT', `${file}: ${(e as Error).message}`, { file }, e);
    }
  }

  /** Salt and KDF parameters are created once per vault, atomically, so two writers agree on them. */
  private static initMeta(db: Database.Database) {
    const read = () =>
      new Map(
        db
          .prepare<[], { key: string; value: Buffer }>('SELECT key, value FROM vault_meta')
          .all()
          .map((r) => [r.key, Buffer.from(r.value)]),
      );
    db.transaction(() => {
      if (read().has('salt')) return;
      const put = db.prepare('INSERT INTO vault_meta (key, value) VALUES (?, ?)');
      put.run('format', Buffer.from(FORMAT));
      put.run('salt', randomBytes(16));
      put.run('scrypt', Buffer.from(JSON.stringify(SCRYPT)));
    }).immediate();
    const m = read();
    return {
      format: m.get('format')?.toString(),
      salt: m.get('salt')!,
      scrypt: JSON.parse(m.get('scrypt')!.toString()) as { N: number; r: number; p: number },
      check: m.get('check'),
    };
  }

  /** The placeholder token of a value: a keyed hash, stable for this vault's key. */
  token(kind: string, value: string): string {
    return createHmac('sha256', this.macKey).update(`${kind}\0${value}`).digest('hex').slice(0, 16);
  }

  /** Store `placeholder → value` entries (one transaction). Existing placeholders are checked, not rewritten. */
  putMany(entries: Iterable<{ placeholder: string; value: string }>): void {
    const fresh = [...entries].filter((e) => !this.known.has(e.placeholder));
    if (fresh.length === 0) return;
    this.db.transaction(() => {
      for (const { placeholder, value } of fresh) {
        const iv = randomBytes(12);
        const cipher = createCipheriv('aes-256-gcm', this.encKey, iv);
        // The placeholder is authenticated with the entry, so rows cannot be swapped between placeholders.
        cipher.setAAD(Buffer.from(placeholder));
        const data = Buffer.concat([cipher.update(value, 'utf8'), cipher.final()]);
        const r = this.stmts.put.run(placeholder, iv, data, cipher.getAuthTag());
        // 64-bit tokens make a collision between two values practically impossible; refuse it anyway
        // rather than restore the wrong original.
        if (r.changes === 0 && this.get(placeholder) !== value) {
          throw new QuarryError('PRIVACY_VAULT', `placeholder collision on ${placeholder}`, {
            file: this.file,
            placeholder,
          });
        }
      }
    })();
    for (const e of fresh) this.known.add(e.placeholder);
  }

  /** The original behind a placeholder, or undefined if the vault has none. */
  get(placeholder: string): string | undefined {
    const row = this.stmts.get.get(placeholder);
    if (row === undefined) return undefined;
    try {
      const decipher = createDecipheriv('aes-256-gcm', this.encKey, row.iv);
      decipher.setAAD(Buffer.from(placeholder));
      decipher.setAuthTag(row.tag);
      return Buffer.concat([decipher.update(row.data), decipher.final()]).toString('utf8');
    } catch (e) {
      throw new QuarryError(
        'PRIVACY_VAULT',
        `entry ${placeholder} in ${this.file} failed authentication (corrupted or tampered with)`,
        { file: this.file, placeholder },
        e,
      );
    }
  }

  /** Entries stored (for stats and tests). */
  size(): number {
    return (this.db.prepare('SELECT count(*) AS n FROM entries').get() as { n: number }).n;
  }

  close(): void {
    if (this.db.open) this.db.close();
  }
}

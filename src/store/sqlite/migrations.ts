/**
 * Schema migrations for the embedded store. Each entry moves the schema up one version inside a transaction;
 * `PRAGMA user_version` records where a store is. Never edit a shipped migration — append a new one.
 */
import type Database from 'better-sqlite3';
import { QuarryError } from '../../errors.js';

const MIGRATIONS: ReadonlyArray<(db: Database.Database) => void> = [
  // 1: documents, sections, chunks, meta.
  (db) => {
    db.exec(`
      CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
      CREATE TABLE documents (
        key           INTEGER PRIMARY KEY AUTOINCREMENT,
        id            TEXT NOT NULL UNIQUE,
        hash          TEXT NOT NULL,
        source        TEXT NOT NULL,
        title         TEXT NOT NULL,
        created_at    TEXT NOT NULL,
        updated_at    TEXT NOT NULL,
        version       INTEGER NOT NULL,
        doc_type      TEXT NOT NULL,
        tags          TEXT NOT NULL,
        access_groups TEXT NOT NULL,
        fields        TEXT NOT NULL,
        text          TEXT NOT NULL
      );
      CREATE INDEX documents_source ON documents(source);
      CREATE TABLE sections (
        doc_key INTEGER NOT NULL REFERENCES documents(key) ON DELETE CASCADE,
        ordinal INTEGER NOT NULL,
        path    TEXT NOT NULL,
        start   INTEGER NOT NULL,
        "end"   INTEGER NOT NULL,
        PRIMARY KEY (doc_key, ordinal)
      ) WITHOUT ROWID;
      CREATE TABLE chunks (
        id          INTEGER PRIMARY KEY AUTOINCREMENT,
        doc_key     INTEGER NOT NULL REFERENCES documents(key) ON DELETE CASCADE,
        ordinal     INTEGER NOT NULL,
        section     INTEGER NOT NULL,
        start       INTEGER NOT NULL,
        "end"       INTEGER NOT NULL,
        token_count INTEGER NOT NULL,
        text        TEXT NOT NULL
      );
      CREATE INDEX chunks_doc ON chunks(doc_key);
    `);
  },
  // 2: user feedback on answers' sources (training data for the learning-to-rank reranker).
  (db) => {
    db.exec(`
      CREATE TABLE feedback (
        id       INTEGER PRIMARY KEY AUTOINCREMENT,
        at       TEXT NOT NULL,
        query    TEXT NOT NULL,
        doc_id   TEXT NOT NULL,
        chunk_id INTEGER,
        helpful  INTEGER NOT NULL
      );
    `);
  },
  // 3: allowed users and a security level beside the allowed groups. Stores written before this kept
  // `access_users` / `security_level` (front matter, record keys) as plain user fields, and an unchanged
  // file is never re-parsed: lift the valid ones into the new columns, so they restrict reading from now on.
  (db) => {
    db.exec(`
      ALTER TABLE documents ADD COLUMN access_users TEXT NOT NULL DEFAULT '[]';
      ALTER TABLE documents ADD COLUMN security_level INTEGER;
    `);
    const rows = db
      .prepare<[], { key: number; fields: string }>(
        `SELECT key, fields FROM documents
         WHERE json_type(fields, '$.access_users') IS NOT NULL OR json_type(fields, '$.security_level') IS NOT NULL`,
      )
      .all();
    const update = db.prepare(
      'UPDATE documents SET access_users = ?, security_level = ?, fields = ? WHERE key = ?',
    );
    for (const r of rows) {
      const fields = JSON.parse(r.fields) as Record<string, unknown>;
      const users = liftedUsers(fields.access_users);
      const level = fields.security_level;
      const validLevel = typeof level === 'number' && Number.isInteger(level) && level >= 0;
      if (users !== undefined) delete fields.access_users;
      if (validLevel) delete fields.security_level;
      update.run(JSON.stringify(users ?? []), validLevel ? level : null, JSON.stringify(fields), r.key);
    }
  },
  // 4: feedback given through the server names the query (its id) it was given on, so an export can tie a
  // vote to that query's stored trace.
  (db) => {
    db.exec('ALTER TABLE feedback ADD COLUMN query_id TEXT;');
  },
];

/** `access_users` as ingest reads it (a list, or a comma-separated string), or undefined when not valid. */
function liftedUsers(v: unknown): string[] | undefined {
  const values = typeof v === 'string' ? v.split(',') : Array.isArray(v) ? v : undefined;
  if (values === undefined || values.some((x) => typeof x !== 'string')) return undefined;
  return [...new Set((values as string[]).map((x) => x.trim()).filter(Boolean))];
}

export const SCHEMA_VERSION = MIGRATIONS.length;

export function migrate(db: Database.Database, file: string): void {
  const current = db.pragma('user_version', { simple: true }) as number;
  if (current > SCHEMA_VERSION) {
    throw new QuarryError(
      'STORE_SCHEMA',
      `${file} has schema version ${current}, this Quarry understands up to ${SCHEMA_VERSION}; upgrade Quarry`,
      { file, schemaVersion: current },
    );
  }
  for (let v = current; v < SCHEMA_VERSION; v++) {
    db.transaction(() => {
      MIGRATIONS[v]!(db);
      db.pragma(`user_version = ${v + 1}`);
    })();
  }
}

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
];

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

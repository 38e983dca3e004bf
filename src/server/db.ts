/**
 * The server's own small database beside the store (`server.db`): API keys (hashed), collections and their
 * tenants, query traces kept for `GET /v1/traces/{id}` and feedback, and per-key usage for budgets. SQLite in
 * WAL mode, so several server processes on one store directory share it.
 */
import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { QuarryError } from '../errors.js';

export type ServerDb = Database.Database;

const SCHEMA = `
CREATE TABLE IF NOT EXISTS api_keys (
  id TEXT PRIMARY KEY,
  hash TEXT NOT NULL,
  name TEXT NOT NULL,
  tenant TEXT NOT NULL,
  user_id TEXT,
  groups TEXT NOT NULL,
  clearance INTEGER NOT NULL,
  scopes TEXT NOT NULL,
  rate_per_minute INTEGER,
  budget TEXT,
  created_at TEXT NOT NULL,
  revoked_at TEXT
);
CREATE TABLE IF NOT EXISTS collections (
  name TEXT PRIMARY KEY,
  tenant TEXT NOT NULL,
  created_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS traces (
  id TEXT PRIMARY KEY,
  seq INTEGER NOT NULL,
  created_at TEXT NOT NULL,
  tenant TEXT,
  key_id TEXT,
  visibility TEXT NOT NULL,
  collection TEXT NOT NULL,
  kind TEXT NOT NULL,
  query TEXT NOT NULL,
  body TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS traces_seq ON traces(seq);
CREATE TABLE IF NOT EXISTS key_usage (
  key_id TEXT NOT NULL,
  period TEXT NOT NULL,
  input_tokens INTEGER NOT NULL DEFAULT 0,
  output_tokens INTEGER NOT NULL DEFAULT 0,
  cost_usd REAL NOT NULL DEFAULT 0,
  requests INTEGER NOT NULL DEFAULT 0,
  PRIMARY KEY (key_id, period)
);
`;

export function openServerDb(root: string, { create = true }: { create?: boolean } = {}): ServerDb {
  const file = path.join(root, 'server.db');
  if (!create && !fs.existsSync(file)) {
    throw new QuarryError('STORE_NOT_FOUND', `no server database at ${file} (create a key first)`, { file });
  }
  try {
    fs.mkdirSync(root, { recursive: true });
    const db = new Database(file);
    db.pragma('journal_mode = WAL');
    db.pragma('busy_timeout = 5000');
    db.pragma('synchronous = NORMAL');
    db.exec(SCHEMA);
    return db;
  } catch (e) {
    throw new QuarryError('STORE_OPEN', `cannot open ${file}: ${(e as Error).message}`, { file }, e);
  }
}

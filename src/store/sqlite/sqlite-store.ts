/**
 * The embedded store: one directory with a SQLite database (WAL mode) and index snapshot files. Every write
 * batch is one transaction, so a process killed mid-ingest leaves each document fully present or absent.
 */
import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { QuarryError } from '../../errors.js';
import type { DocumentDraft, DocumentMetadata, StoredChunk, StoredDocument } from '../../types.js';
import type {
  CatalogEntry,
  DocumentListOptions,
  DocumentState,
  DocumentStore,
  DocumentWriteResult,
  FeedbackEntry,
  ParentSection,
  StoreIndexSettings,
  StoreStats,
  WriteBatch,
  WriteOutcome,
} from '../types.js';
import { migrate, SCHEMA_VERSION } from './migrations.js';

const DB_FILE = 'quarry.db';

/**
 * A write the file system or SQLite refused (read-only files or mount, disk full, I/O error) is a store
 * problem (exit 5) naming the file, not an INTERNAL error; anything else is rethrown as is.
 */
function storeWriteError(e: unknown, file: string): unknown {
  if (e instanceof QuarryError) return e;
  const code = (e as { code?: unknown }).code;
  if (typeof code !== 'string') return e;
  const why = (e as Error).message;
  if (code.startsWith('SQLITE_READONLY') || code === 'EROFS' || code === 'EACCES' || code === 'EPERM') {
    return new QuarryError(
      'STORE_READONLY',
      `${file} cannot be written (${why}); check the permissions of the store directory and its files`,
      { file, systemCode: code },
      e,
    );
  }
  if (/^SQLITE_(FULL|IOERR|CANTOPEN|CORRUPT|NOTADB)/.test(code) || code === 'ENOSPC' || code === 'EIO') {
    return new QuarryError('STORE_WRITE', `${file}: ${why}`, { file, systemCode: code }, e);
  }
  return e;
}
const ARTIFACT_DIR = 'artifacts';

/** The database's own findings for `quarry check` (see `SqliteStore.integrityReport`). */
export interface StoreIntegrityReport {
  /** Lines of `PRAGMA integrity_check` other than `ok`. */
  integrity: string[];
  /** Rows of `PRAGMA foreign_key_check`. */
  foreignKeys: number;
  orphanChunks: Array<{ chunkId: number; docKey: number }>;
  orphanSections: number;
  /** Documents with text but no chunk. */
  emptyDocuments: string[];
  badSpans: Array<{
    docId: string;
    chunkId: number;
    start: number;
    end: number;
    length: number;
    reason: 'outside' | 'text';
  }>;
  /** Documents, and chunks that belong to one. */
  counts: { documents: number; chunks: number };
}

interface DocumentRow {
  key: number;
  id: string;
  hash: string;
  source: string;
  title: string;
  created_at: string;
  updated_at: string;
  version: number;
  doc_type: string;
  tags: string;
  access_groups: string;
  access_users: string;
  security_level: number | null;
  fields: string;
}

interface ChunkRow {
  id: number;
  doc_key: number;
  doc_id: string;
  ordinal: number;
  section: number;
  start: number;
  end: number;
  token_count: number;
  text: string;
  title: string;
  path: string | null;
}

function rowToMeta(r: DocumentRow): DocumentMetadata {
  return {
    source: r.source,
    title: r.title,
    created_at: r.created_at,
    updated_at: r.updated_at,
    version: r.version,
    doc_type: r.doc_type,
    tags: JSON.parse(r.tags) as string[],
    access_groups: JSON.parse(r.access_groups) as string[],
    access_users: JSON.parse(r.access_users) as string[],
    ...(r.security_level === null ? {} : { security_level: r.security_level }),
    fields: JSON.parse(r.fields) as Record<string, unknown>,
  };
}

function rowToChunk(r: ChunkRow): StoredChunk {
  return {
    id: r.id,
    docId: r.doc_id,
    ordinal: r.ordinal,
    sectionOrdinal: r.section,
    sectionPath: r.path === null ? [] : (JSON.parse(r.path) as string[]),
    start: r.start,
    end: r.end,
    text: r.text,
    tokenCount: r.token_count,
    title: r.title,
  };
}

const CHUNK_SELECT = `
  SELECT c.id, c.doc_key, d.id AS doc_id, c.ordinal, c.section, c.start, c."end" AS "end", c.token_count, c.text,
         d.title, s.path
  FROM chunks c
  JOIN documents d ON d.key = c.doc_key
  LEFT JOIN sections s ON s.doc_key = c.doc_key AND s.ordinal = c.section`;

export interface SqliteStoreOptions {
  /** Settings to record when the store is created; when opening, they must match (or be omitted). */
  settings: StoreIndexSettings;
  readonly?: boolean;
  /** `false`: the store must exist already; a path without one is STORE_NOT_FOUND and nothing is created. */
  create?: boolean;
}

export class SqliteStore implements DocumentStore {
  readonly dir: string;
  readonly settings: StoreIndexSettings;
  private readonly db: Database.Database;
  private readonly file: string;
  private readonly stmts;

  private constructor(dir: string, db: Database.Database, file: string, settings: StoreIndexSettings) {
    this.dir = dir;
    this.db = db;
    this.file = file;
    this.settings = settings;
    this.stmts = {
      getMeta: db.prepare<[string], { value: string }>('SELECT value FROM meta WHERE key = ?'),
      setMeta: db.prepare(
        'INSERT INTO meta(key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value',
      ),
      docState: db.prepare<[string], DocumentState>(
        'SELECT key, id, hash, source, version, created_at FROM documents WHERE id = ?',
      ),
      insertDoc: db.prepare(`INSERT INTO documents
        (id, hash, source, title, created_at, updated_at, version, doc_type, tags, access_groups, access_users,
         security_level, fields, text)
        VALUES (@id, @hash, @source, @title, @created_at, @updated_at, @version, @doc_type, @tags, @access_groups,
         @access_users, @security_level, @fields, @text)`),
      updateDoc:
        db.prepare(`UPDATE documents SET hash=@hash, source=@source, title=@title, updated_at=@updated_at,
        version=@version, doc_type=@doc_type, tags=@tags, access_groups=@access_groups, access_users=@access_users,
        security_level=@security_level, fields=@fields, text=@text
        WHERE key=@key`),
      deleteDoc: db.prepare('DELETE FROM documents WHERE key = ?'),
      chunkIdsOf: db.prepare<[number], { id: number }>('SELECT id FROM chunks WHERE doc_key = ? ORDER BY id'),
      deleteChunksOf: db.prepare('DELETE FROM chunks WHERE doc_key = ?'),
      deleteSectionsOf: db.prepare('DELETE FROM sections WHERE doc_key = ?'),
      insertSection: db.prepare(
        'INSERT INTO sections (doc_key, ordinal, path, start, "end") VALUES (?, ?, ?, ?, ?)',
      ),
      insertChunk: db.prepare(
        'INSERT INTO chunks (doc_key, ordinal, section, start, "end", token_count, text) VALUES (?, ?, ?, ?, ?, ?, ?)',
      ),
    };
  }

  /** Open the store in `dir`, creating it unless `opts.create` is false. */
  static open(dir: string, opts: SqliteStoreOptions): SqliteStore {
    const abs = path.resolve(dir);
    if (opts.create === false && !SqliteStore.exists(abs))
      throw new QuarryError(
        'STORE_NOT_FOUND',
        `no store at ${abs} (create one with \`quarry ingest <paths> --store ${abs}\`)`,
        { dir: abs },
      );
    try {
      fs.mkdirSync(path.join(abs, ARTIFACT_DIR), { recursive: true });
    } catch (e) {
      throw new QuarryError('STORE_OPEN', `cannot create directory ${abs}`, { dir: abs }, e);
    }
    const file = path.join(abs, DB_FILE);
    let db: Database.Database;
    try {
      db = new Database(file);
      db.pragma('journal_mode = WAL');
      // NORMAL in WAL mode: a commit is atomic and durable across process crashes; an OS crash may lose
      // the last commits but never corrupts the database.
      db.pragma('synchronous = NORMAL');
      db.pragma('foreign_keys = ON');
      db.pragma('busy_timeout = 5000');
      migrate(db, file);
    } catch (e) {
      if (e instanceof QuarryError) throw e;
      throw new QuarryError('STORE_OPEN', `${file}: ${(e as Error).message}`, { file }, e);
    }
    const existing = db
      .prepare<[string], { value: string }>('SELECT value FROM meta WHERE key = ?')
      .get('settings');
    let settings = opts.settings;
    if (existing === undefined) {
      const now = new Date().toISOString();
      const set = db.prepare('INSERT INTO meta(key, value) VALUES (?, ?)');
      db.transaction(() => {
        set.run('settings', JSON.stringify(settings));
        set.run('index_version', '0');
        set.run('created_at', now);
      })();
    } else {
      const stored = JSON.parse(existing.value) as StoreIndexSettings;
      if (JSON.stringify(stored) !== JSON.stringify(settings)) {
        db.close();
        throw new QuarryError(
          'STORE_CONFIG_MISMATCH',
          `${abs} was created with ${JSON.stringify(stored)}, but ${JSON.stringify(settings)} was requested; ` +
            'use the stored settings or ingest into a new store',
          { dir: abs, stored, requested: settings },
        );
      }
      settings = stored;
    }
    return new SqliteStore(abs, db, file, settings);
  }

  /** Whether `dir` holds a store (its database file), without creating or opening anything. */
  static exists(dir: string): boolean {
    return fs.existsSync(path.join(path.resolve(dir), DB_FILE));
  }

  /** Read the settings a store was created with, without opening it for writes (undefined if none). */
  static readSettings(dir: string): StoreIndexSettings | undefined {
    const file = path.join(path.resolve(dir), DB_FILE);
    if (!fs.existsSync(file)) return undefined;
    const db = new Database(file, { readonly: true, fileMustExist: true });
    try {
      const row = db
        .prepare<[string], { value: string }>('SELECT value FROM meta WHERE key = ?')
        .get('settings');
      return row === undefined ? undefined : (JSON.parse(row.value) as StoreIndexSettings);
    } catch {
      return undefined;
    } finally {
      db.close();
    }
  }

  indexVersion(): number {
    return Number(this.stmts.getMeta.get('index_version')?.value ?? '0');
  }

  documentStates(ids: string[]): Map<string, DocumentState> {
    const out = new Map<string, DocumentState>();
    for (const id of ids) {
      const s = this.stmts.docState.get(id);
      if (s !== undefined) out.set(id, s);
    }
    return out;
  }

  documentsUnderSource(source: string): DocumentState[] {
    const prefix = source.endsWith('/') ? source : `${source}/`;
    return this.db
      .prepare<[string, number, string], DocumentState>(
        `SELECT key, id, hash, source, version, created_at FROM documents
         WHERE source = ? OR substr(source, 1, ?) = ? ORDER BY key`,
      )
      .all(source, prefix.length, prefix);
  }

  write(batch: WriteBatch): WriteOutcome {
    const now = new Date().toISOString();
    const results: DocumentWriteResult[] = [];
    const run = this.db.transaction(() => {
      for (const id of batch.deletes) {
        const state = this.stmts.docState.get(id);
        if (state === undefined) continue;
        const removed = this.stmts.chunkIdsOf.all(state.key).map((r) => r.id);
        this.stmts.deleteDoc.run(state.key);
        results.push({ id, key: state.key, status: 'deleted', removedChunkIds: removed, addedChunks: [] });
      }
      for (const draft of batch.upserts) results.push(this.upsert(draft, now));
      // A batch whose every document turned out unchanged wrote nothing: the index version stays.
      if (results.every((r) => r.status === 'unchanged')) return this.indexVersion();
      const version = this.indexVersion() + 1;
      this.stmts.setMeta.run('index_version', String(version));
      return version;
    });
    let indexVersion: number;
    try {
      indexVersion = run.immediate();
    } catch (e) {
      throw storeWriteError(e, this.file);
    }
    return { results, indexVersion };
  }

  private upsert(draft: DocumentDraft, now: string): DocumentWriteResult {
    const state = this.stmts.docState.get(draft.id);
    // The caller compared hashes before this transaction; another process may have stored the very same
    // content since. Compared again here, under the write lock: the same content never makes a new version.
    if (state !== undefined && state.hash === draft.hash) {
      return { id: draft.id, key: state.key, status: 'unchanged', removedChunkIds: [], addedChunks: [] };
    }
    const m = draft.meta;
    const row = {
      id: draft.id,
      hash: draft.hash,
      source: m.source,
      title: m.title,
      created_at: m.created_at ?? state?.created_at ?? now,
      updated_at: m.updated_at ?? now,
      version: (state?.version ?? 0) + 1,
      doc_type: m.doc_type,
      tags: JSON.stringify(m.tags),
      access_groups: JSON.stringify(m.access_groups),
      access_users: JSON.stringify(m.access_users),
      security_level: m.security_level ?? null,
      fields: JSON.stringify(m.fields),
      text: draft.text,
    };
    let key: number;
    let removed: number[] = [];
    if (state === undefined) {
      key = Number(this.stmts.insertDoc.run(row).lastInsertRowid);
    } else {
      key = state.key;
      removed = this.stmts.chunkIdsOf.all(key).map((r) => r.id);
      this.stmts.deleteChunksOf.run(key);
      this.stmts.deleteSectionsOf.run(key);
      this.stmts.updateDoc.run({ ...row, key });
    }
    for (const s of draft.sections) {
      this.stmts.insertSection.run(key, s.ordinal, JSON.stringify(s.path), s.start, s.end);
    }
    const added: StoredChunk[] = [];
    for (const c of draft.chunks) {
      const id = Number(
        this.stmts.insertChunk.run(key, c.ordinal, c.section, c.start, c.end, c.tokenCount, c.text)
          .lastInsertRowid,
      );
      added.push({
        id,
        docId: draft.id,
        ordinal: c.ordinal,
        sectionOrdinal: c.section,
        sectionPath: draft.sections[c.section]?.path ?? [],
        start: c.start,
        end: c.end,
        text: c.text,
        tokenCount: c.tokenCount,
        title: m.title,
      });
    }
    const meta: DocumentMetadata = {
      source: row.source,
      title: row.title,
      created_at: row.created_at,
      updated_at: row.updated_at,
      version: row.version,
      doc_type: row.doc_type,
      tags: m.tags,
      access_groups: m.access_groups,
      access_users: m.access_users,
      ...(m.security_level === undefined ? {} : { security_level: m.security_level }),
      fields: m.fields,
    };
    return {
      id: draft.id,
      key,
      status: state === undefined ? 'added' : 'updated',
      removedChunkIds: removed,
      addedChunks: added,
      meta,
    };
  }

  getChunks(ids: number[]): Map<number, StoredChunk> {
    const out = new Map<number, StoredChunk>();
    if (ids.length === 0) return out;
    // Chunked IN lists keep us under SQLite's parameter limit.
    for (let i = 0; i < ids.length; i += 500) {
      const part = ids.slice(i, i + 500);
      for (const r of this.chunksByIds(part.length).all(...part)) out.set(r.id, rowToChunk(r));
    }
    return out;
  }

  /** Hit loading runs on every search: keep its statement per IN-list length instead of preparing each time. */
  private readonly chunkStatements = new Map<number, Database.Statement<number[], ChunkRow>>();

  private chunksByIds(n: number): Database.Statement<number[], ChunkRow> {
    let stmt = this.chunkStatements.get(n);
    if (stmt === undefined) {
      stmt = this.db.prepare<number[], ChunkRow>(
        `${CHUNK_SELECT} WHERE c.id IN (${Array.from({ length: n }, () => '?').join(',')})`,
      );
      // Bounded: search asks for a few sizes (k, 2k, the rerank pool); other sizes stay uncached.
      if (this.chunkStatements.size < 64) this.chunkStatements.set(n, stmt);
    }
    return stmt;
  }

  getParentSection(chunkId: number): ParentSection | undefined {
    const r = this.db
      .prepare<
        [number],
        { doc_id: string; ordinal: number; path: string; start: number; end: number; text: string }
      >(
        `SELECT d.id AS doc_id, s.ordinal, s.path, s.start, s."end" AS "end", d.text
         FROM chunks c
         JOIN documents d ON d.key = c.doc_key
         JOIN sections s ON s.doc_key = c.doc_key AND s.ordinal = c.section
         WHERE c.id = ?`,
      )
      .get(chunkId);
    if (r === undefined) return undefined;
    // Offsets are UTF-16 positions (JS strings); SQLite's substr counts code points, so slice in JS.
    return {
      docId: r.doc_id,
      chunkId,
      ordinal: r.ordinal,
      path: JSON.parse(r.path) as string[],
      start: r.start,
      end: r.end,
      text: r.text.slice(r.start, r.end),
    };
  }

  addFeedback(entry: Omit<FeedbackEntry, 'at'>): FeedbackEntry {
    const at = new Date().toISOString();
    this.db
      .prepare(
        'INSERT INTO feedback (at, query, doc_id, chunk_id, helpful, query_id) VALUES (?, ?, ?, ?, ?, ?)',
      )
      .run(at, entry.query, entry.docId, entry.chunkId ?? null, entry.helpful ? 1 : 0, entry.queryId ?? null);
    return { ...entry, at };
  }

  listFeedback(): FeedbackEntry[] {
    return this.db
      .prepare<
        [],
        {
          at: string;
          query: string;
          doc_id: string;
          chunk_id: number | null;
          helpful: number;
          query_id: string | null;
        }
      >('SELECT at, query, doc_id, chunk_id, helpful, query_id FROM feedback ORDER BY id')
      .all()
      .map((r) => ({
        query: r.query,
        docId: r.doc_id,
        ...(r.chunk_id === null ? {} : { chunkId: r.chunk_id }),
        helpful: r.helpful === 1,
        ...(r.query_id === null ? {} : { queryId: r.query_id }),
        at: r.at,
      }));
  }

  sectionChunks(docId: string, sectionOrdinal: number): Array<{ id: number; start: number; end: number }> {
    return this.db
      .prepare<[string, number], { id: number; start: number; end: number }>(
        `SELECT c.id, c.start, c."end" AS "end" FROM chunks c JOIN documents d ON d.key = c.doc_key
         WHERE d.id = ? AND c.section = ? ORDER BY c.ordinal`,
      )
      .all(docId, sectionOrdinal);
  }

  getDocument(id: string): (StoredDocument & { text: string }) | undefined {
    const r = this.db
      .prepare<[string], DocumentRow & { text: string; chunk_count: number }>(
        `SELECT d.*, (SELECT count(*) FROM chunks c WHERE c.doc_key = d.key) AS chunk_count
         FROM documents d WHERE d.id = ?`,
      )
      .get(id);
    if (r === undefined) return undefined;
    return {
      id: r.id,
      hash: r.hash,
      meta: rowToMeta(r),
      chunkCount: r.chunk_count,
      charCount: r.text.length,
      text: r.text,
    };
  }

  listDocuments(opts: DocumentListOptions = {}): StoredDocument[] {
    const where = listWhere(opts);
    const rows = this.db
      .prepare<unknown[], DocumentRow & { chunk_count: number; char_count: number }>(
        `SELECT d.key, d.id, d.hash, d.source, d.title, d.created_at, d.updated_at, d.version, d.doc_type, d.tags,
                d.access_groups, d.access_users, d.security_level, d.fields, length(d.text) AS char_count,
                (SELECT count(*) FROM chunks c WHERE c.doc_key = d.key) AS chunk_count
         FROM documents d WHERE ${where.sql} ORDER BY d.id LIMIT ? OFFSET ?`,
      )
      .all(...where.params, opts.limit ?? -1, opts.offset ?? 0);
    return rows.map((r) => ({
      id: r.id,
      hash: r.hash,
      meta: rowToMeta(r),
      chunkCount: r.chunk_count,
      charCount: r.char_count,
    }));
  }

  countDocuments(opts: Omit<DocumentListOptions, 'limit' | 'offset'> = {}): number {
    const where = listWhere(opts);
    return this.db
      .prepare<unknown[], { n: number }>(`SELECT count(*) AS n FROM documents d WHERE ${where.sql}`)
      .get(...where.params)!.n;
  }

  *catalog(): Iterable<CatalogEntry> {
    const stmt = this.db.prepare<[], DocumentRow>(
      `SELECT key, id, hash, source, title, created_at, updated_at, version, doc_type, tags, access_groups,
              access_users, security_level, fields
       FROM documents ORDER BY key`,
    );
    for (const r of stmt.iterate()) yield { key: r.key, id: r.id, meta: rowToMeta(r) };
  }

  *iterateChunks(): Iterable<StoredChunk & { docKey: number }> {
    const stmt = this.db.prepare<[], ChunkRow>(`${CHUNK_SELECT} ORDER BY c.id`);
    for (const r of stmt.iterate()) yield { ...rowToChunk(r), docKey: r.doc_key };
  }

  stats(): StoreStats {
    const one = <T>(sql: string): T => this.db.prepare<[], T>(sql).get() as T;
    const docs = one<{ n: number; chars: number }>(
      'SELECT count(*) AS n, coalesce(sum(length(text)),0) AS chars FROM documents',
    );
    const chunks = one<{ n: number; tokens: number }>(
      'SELECT count(*) AS n, coalesce(sum(token_count),0) AS tokens FROM chunks',
    );
    const sections = one<{ n: number }>('SELECT count(*) AS n FROM sections');
    return {
      documents: docs.n,
      chunks: chunks.n,
      sections: sections.n,
      characters: docs.chars,
      tokens: chunks.tokens,
      bytesOnDisk: dirSize(this.dir),
      schemaVersion: SCHEMA_VERSION,
      indexVersion: this.indexVersion(),
      createdAt: this.stmts.getMeta.get('created_at')?.value ?? '',
    };
  }

  readArtifact(name: string): Buffer | undefined {
    const file = path.join(this.dir, ARTIFACT_DIR, name);
    try {
      return fs.readFileSync(file);
    } catch {
      return undefined;
    }
  }

  readArtifactHead(name: string, bytes: number): Buffer | undefined {
    const file = path.join(this.dir, ARTIFACT_DIR, name);
    let fd: number;
    try {
      fd = fs.openSync(file, 'r');
    } catch {
      return undefined;
    }
    try {
      const buf = Buffer.alloc(bytes);
      let got = 0;
      while (got < bytes) {
        const n = fs.readSync(fd, buf, got, bytes - got, got);
        if (n === 0) break;
        got += n;
      }
      return buf.subarray(0, got);
    } finally {
      fs.closeSync(fd);
    }
  }

  writeArtifact(name: string, data: Buffer | Uint8Array[]): void {
    const file = path.join(this.dir, ARTIFACT_DIR, name);
    const tmp = `${file}.${process.pid}.tmp`;
    let fd: number;
    try {
      fd = fs.openSync(tmp, 'w');
    } catch (e) {
      throw storeWriteError(e, tmp);
    }
    try {
      for (const part of Array.isArray(data) ? data : [data]) {
        let off = 0;
        while (off < part.byteLength) off += fs.writeSync(fd, part, off);
      }
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    // rename is atomic: readers see the old snapshot or the new one, never a torn file.
    fs.renameSync(tmp, file);
  }

  /**
   * What `quarry check` asks of the database itself: SQLite's own integrity and foreign-key checks, chunks and
   * sections whose document is gone, documents with text but no chunks, and chunk spans that fall outside
   * their document's text or whose text is not the text at that span. Read-only; bounded lists (`limit`).
   */
  integrityReport(limit = 100): StoreIntegrityReport {
    const integrity = (this.db.pragma('integrity_check') as unknown[])
      .map((r) => String(Object.values(r as Record<string, unknown>)[0]))
      .filter((m: string) => m !== 'ok');
    const foreignKeys = (this.db.pragma('foreign_key_check') as unknown[]).length;
    const orphanChunks = this.db
      .prepare<[], { id: number; doc_key: number }>(
        'SELECT c.id, c.doc_key FROM chunks c WHERE NOT EXISTS (SELECT 1 FROM documents d WHERE d.key = c.doc_key) ORDER BY c.id',
      )
      .all()
      .map((r) => ({ chunkId: r.id, docKey: r.doc_key }));
    const orphanSections = this.db
      .prepare<[], { n: number }>(
        'SELECT count(*) AS n FROM sections s WHERE NOT EXISTS (SELECT 1 FROM documents d WHERE d.key = s.doc_key)',
      )
      .get()!.n;
    const emptyDocuments = this.db
      .prepare<[], { id: string }>(
        `SELECT d.id FROM documents d WHERE length(trim(d.text)) > 0
         AND NOT EXISTS (SELECT 1 FROM chunks c WHERE c.doc_key = d.key) ORDER BY d.id`,
      )
      .all()
      .map((r) => r.id);
    const badSpans: StoreIntegrityReport['badSpans'] = [];
    const chunksOf = this.db.prepare<[number], { id: number; start: number; end: number; text: string }>(
      'SELECT id, start, "end" AS "end", text FROM chunks WHERE doc_key = ? ORDER BY ordinal',
    );
    const docs = this.db.prepare<[], { key: number; id: string; text: string }>(
      'SELECT key, id, text FROM documents ORDER BY key',
    );
    for (const d of docs.iterate()) {
      for (const c of chunksOf.all(d.key)) {
        const inside = c.start >= 0 && c.start <= c.end && c.end <= d.text.length;
        const reason = !inside ? 'outside' : d.text.slice(c.start, c.end) !== c.text ? 'text' : undefined;
        if (reason !== undefined && badSpans.length < limit)
          badSpans.push({
            docId: d.id,
            chunkId: c.id,
            start: c.start,
            end: c.end,
            length: d.text.length,
            reason,
          });
      }
    }
    const counts = {
      documents: this.db.prepare<[], { n: number }>('SELECT count(*) AS n FROM documents').get()!.n,
      chunks: this.db
        .prepare<[], { n: number }>(
          'SELECT count(*) AS n FROM chunks c JOIN documents d ON d.key = c.doc_key',
        )
        .get()!.n,
    };
    return { integrity, foreignKeys, orphanChunks, orphanSections, emptyDocuments, badSpans, counts };
  }

  /** Remove chunks and sections whose document is gone (`quarry check --repair`); returns the chunk ids removed. */
  removeOrphans(): number[] {
    const run = this.db.transaction(() => {
      const ids = this.db
        .prepare<[], { id: number }>(
          'SELECT id FROM chunks c WHERE NOT EXISTS (SELECT 1 FROM documents d WHERE d.key = c.doc_key)',
        )
        .all()
        .map((r) => r.id);
      this.db.exec(`DELETE FROM chunks WHERE NOT EXISTS (SELECT 1 FROM documents d WHERE d.key = chunks.doc_key);
        DELETE FROM sections WHERE NOT EXISTS (SELECT 1 FROM documents d WHERE d.key = sections.doc_key);`);
      return ids;
    });
    try {
      return run.immediate();
    } catch (e) {
      throw storeWriteError(e, this.file);
    }
  }

  checkpoint(): void {
    // TRUNCATE resets the WAL file to zero bytes, so a bulk ingest does not leave a log as large as the data.
    try {
      this.db.pragma('wal_checkpoint(TRUNCATE)');
    } catch (e) {
      throw storeWriteError(e, this.file);
    }
  }

  close(): void {
    if (this.db.open) this.db.close();
  }

  /** Path of the database file (for diagnostics and tests). */
  get databaseFile(): string {
    return this.file;
  }
}

/**
 * The WHERE clause of a document listing: what the reader is granted, compiled from the one visibility rule (src/access/visibility.ts `readerFor`):
 * level ≤ clearance, and unrestricted or one of the users or in one of the groups.
 */
function listWhere(opts: Omit<DocumentListOptions, 'limit' | 'offset'>): { sql: string; params: unknown[] } {
  const parts: string[] = [];
  const params: unknown[] = [];
  const g = opts.readableBy;
  if (g !== undefined) {
    parts.push(`coalesce(d.security_level, 0) <= ?`);
    params.push(g.clearance);
    const either = ['(json_array_length(d.access_users) = 0 AND json_array_length(d.access_groups) = 0)'];
    if (g.userId !== undefined) {
      either.push('EXISTS (SELECT 1 FROM json_each(d.access_users) u WHERE u.value = ?)');
      params.push(g.userId);
    }
    if (g.groups.length > 0) {
      either.push(
        'EXISTS (SELECT 1 FROM json_each(d.access_groups) g WHERE g.value IN (SELECT value FROM json_each(?)))',
      );
      params.push(JSON.stringify(g.groups));
    }
    parts.push(`(${either.join(' OR ')})`);
  }
  return { sql: parts.length === 0 ? '1' : parts.join(' AND '), params };
}

function dirSize(dir: string): number {
  let total = 0;
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, entry.name);
    if (entry.isDirectory()) total += dirSize(p);
    else if (entry.isFile()) total += fs.statSync(p).size;
  }
  return total;
}

/**
 * Query records: every search, ask and chat request the server answers gets a query id; its trace (with
 * the stages, candidates and timings), the query text and who asked are kept here for `GET
 * /v1/traces/{id}` and for feedback tied to that id. Only the principal that asked (same key, or one that
 * sees exactly the same documents in the same tenant) and admins may read it. Oldest records are dropped
 * past `keep`. The query text is stored as the collection's output redaction leaves it, so PII a caller
 * typed never reaches the server database nor a trace read back from it.
 */
import { randomUUID } from 'node:crypto';
import { hasScope, type Principal, visibilityKey } from '../access/principal.js';
import { QuarryError } from '../errors.js';
import type { ServerDb } from './db.js';

export interface QueryRecord {
  id: string;
  createdAt: string;
  collection: string;
  kind: 'search' | 'ask' | 'chat';
  query: string;
  tenant?: string;
  keyId?: string;
  body: Record<string, unknown>;
}

export class QueryRecords {
  private seq: number;
  private inserts = 0;

  constructor(
    readonly db: ServerDb,
    private readonly keep: number,
    /** The collection's output redaction (identity when privacy does not redact output). */
    private readonly redactQuery: (p: Principal, collection: string, text: string) => string = (_p, _c, t) =>
      t,
  ) {
    const row = db.prepare('SELECT MAX(seq) AS s FROM traces').get() as { s: number | null };
    this.seq = row.s ?? 0;
  }

  newId(): string {
    return randomUUID();
  }

  save(p: Principal, r: Omit<QueryRecord, 'createdAt' | 'tenant' | 'keyId'>): void {
    if (this.keep === 0) return;
    const tenant = p.kind === 'user' ? p.tenant : p.kind === 'trusted' ? (p.tenant ?? null) : null;
    const keyId = p.kind === 'user' ? (p.keyId ?? null) : null;
    // Another process may have inserted since: seq only orders the pruning, so a collision is harmless.
    this.seq++;
    this.db
      .prepare(
        `INSERT OR REPLACE INTO traces (id, seq, created_at, tenant, key_id, visibility, collection, kind, query, body)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      )
      .run(
        r.id,
        this.seq,
        new Date().toISOString(),
        tenant,
        keyId,
        visibilityKey(p),
        r.collection,
        r.kind,
        this.redactQuery(p, r.collection, r.query),
        JSON.stringify(r.body),
      );
    if (++this.inserts % 500 === 0) this.prune();
  }

  /** The record, if `p` may read it; NOT_FOUND otherwise (the same as an unknown id). */
  get(p: Principal, id: string): QueryRecord {
    const row = this.db.prepare('SELECT * FROM traces WHERE id = ?').get(id) as
      | {
          id: string;
          created_at: string;
          tenant: string | null;
          key_id: string | null;
          visibility: string;
          collection: string;
          kind: QueryRecord['kind'];
          query: string;
          body: string;
        }
      | undefined;
    const readable =
      row !== undefined &&
      (p.kind === 'trusted' ||
        (p.kind === 'user' &&
          row.tenant === p.tenant &&
          (hasScope(p, 'admin') ||
            (row.key_id !== null && row.key_id === p.keyId) ||
            row.visibility === visibilityKey(p))));
    if (!readable) throw new QuarryError('NOT_FOUND', `no query with id "${id}"`, { queryId: id });
    return {
      id: row.id,
      createdAt: row.created_at,
      collection: row.collection,
      kind: row.kind,
      query: row.query,
      ...(row.tenant === null ? {} : { tenant: row.tenant }),
      ...(row.key_id === null ? {} : { keyId: row.key_id }),
      body: JSON.parse(row.body) as Record<string, unknown>,
    };
  }

  private prune(): void {
    this.db.prepare('DELETE FROM traces WHERE seq <= (SELECT MAX(seq) FROM traces) - ?').run(this.keep);
  }
}

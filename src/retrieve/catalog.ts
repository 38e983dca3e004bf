/**
 * In-memory mirror of document metadata, keyed by the store's numeric document key (the index's group id).
 * Retrieval evaluates metadata filters and the principal's visibility against it per candidate document,
 * inside top-k selection, so a filtered search still returns k results when k documents match.
 */
import type { Principal } from '../access/principal.js';
import { isRestricted, readerFor } from '../access/visibility.js';
import type { CatalogEntry, WriteOutcome } from '../store/types.js';
import type { DocumentMetadata } from '../types.js';
import type { CompiledFilter } from './filter.js';

export type CatalogDocument = DocumentMetadata & { id: string };

/** Most documents name no users: they share one empty list instead of holding one each. */
const NO_USERS: string[] = Object.freeze([]) as unknown as string[];

export class DocumentCatalog {
  private readonly byKey = new Map<number, CatalogDocument>();
  /**
   * One copy of each repeated metadata string. Every row read from the store arrives as its own string, so
   * without this a corpus ingested from one file holds its path (and its batch's timestamps) once per document.
   */
  private readonly shared = new Map<string, string>();
  /** Documents with any access restriction: while there are none, non-trusted callers need no predicate. */
  private restricted = 0;

  constructor(entries: Iterable<CatalogEntry> = []) {
    for (const e of entries) this.set(e.key, this.entry(e.meta, e.id));
  }

  private set(key: number, doc: CatalogDocument): void {
    this.remove(key);
    this.byKey.set(key, doc);
    if (isRestricted(doc)) this.restricted++;
  }

  private remove(key: number): void {
    const old = this.byKey.get(key);
    if (old === undefined) return;
    if (isRestricted(old)) this.restricted--;
    this.byKey.delete(key);
  }

  private intern(s: string): string {
    const known = this.shared.get(s);
    if (known !== undefined) return known;
    // Unbounded growth is not a risk in practice (sources, types and batch timestamps repeat), but cap it.
    if (this.shared.size < 100_000) this.shared.set(s, s);
    return s;
  }

  private entry(meta: DocumentMetadata, id: string): CatalogDocument {
    return {
      ...meta,
      source: this.intern(meta.source),
      doc_type: this.intern(meta.doc_type),
      created_at: this.intern(meta.created_at),
      updated_at: this.intern(meta.updated_at),
      access_users: meta.access_users.length === 0 ? NO_USERS : meta.access_users,
      id,
    };
  }

  get size(): number {
    return this.byKey.size;
  }

  get(key: number): CatalogDocument | undefined {
    return this.byKey.get(key);
  }

  apply(outcome: WriteOutcome): void {
    for (const r of outcome.results) {
      if (r.status === 'deleted') this.remove(r.key);
      else if (r.meta !== undefined) this.set(r.key, this.entry(r.meta, r.id));
    }
  }

  /** Whether `principal` may read the document with this key; unknown keys are unreadable (fail closed). */
  readable(key: number, principal: Principal): boolean {
    const doc = this.byKey.get(key);
    return doc !== undefined && readerFor(principal)(doc);
  }

  /**
   * Group predicate for the index: the document exists, `principal` may read it (src/access/visibility.ts),
   * and it matches `filter`. Unknown keys are rejected (fail closed), never let through. Undefined (no check
   * at all) only when there is no filter and nothing in the catalog is hidden from this principal.
   */
  predicate(
    filter: CompiledFilter | undefined,
    principal: Principal,
  ): ((key: number) => boolean) | undefined {
    const everything = principal.kind === 'trusted' || this.restricted === 0;
    if (filter === undefined && everything) return undefined;
    const reader = everything ? undefined : readerFor(principal);
    return (key) => {
      const doc = this.byKey.get(key);
      if (doc === undefined) return false;
      if (reader !== undefined && !reader(doc)) return false;
      return filter === undefined || filter.matches(doc);
    };
  }
}

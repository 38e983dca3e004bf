/**
 * In-memory mirror of document metadata, keyed by the store's numeric document key (the index's group id).
 * Retrieval evaluates metadata filters and access scopes against it per candidate document, inside top-k
 * selection, so a filtered search still returns k results when k documents match.
 */
import type { CatalogEntry, WriteOutcome } from '../store/types.js';
import type { AccessScope, DocumentMetadata } from '../types.js';
import type { CompiledFilter } from './filter.js';

export type CatalogDocument = DocumentMetadata & { id: string };

export class DocumentCatalog {
  private readonly byKey = new Map<number, CatalogDocument>();
  /**
   * One copy of each repeated metadata string. Every row read from the store arrives as its own string, so
   * without this a corpus ingested from one file holds its path (and its batch's timestamps) once per document.
   */
  private readonly shared = new Map<string, string>();

  constructor(entries: Iterable<CatalogEntry> = []) {
    for (const e of entries) this.byKey.set(e.key, this.entry(e.meta, e.id));
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
      if (r.status === 'deleted') this.byKey.delete(r.key);
      else if (r.meta !== undefined) this.byKey.set(r.key, this.entry(r.meta, r.id));
    }
  }

  /**
   * Group predicate for the index: the document exists, is visible to `scope`, and matches `filter`.
   * Unknown keys are rejected (fail closed), never let through.
   */
  predicate(
    filter: CompiledFilter | undefined,
    scope: AccessScope | undefined,
  ): ((key: number) => boolean) | undefined {
    const groups = scope?.groups === undefined ? undefined : new Set(scope.groups);
    if (filter === undefined && groups === undefined) return undefined;
    return (key) => {
      const doc = this.byKey.get(key);
      if (doc === undefined) return false;
      if (
        groups !== undefined &&
        doc.access_groups.length > 0 &&
        !doc.access_groups.some((g) => groups.has(g))
      ) {
        return false;
      }
      return filter === undefined || filter.matches(doc);
    };
  }
}

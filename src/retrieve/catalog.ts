/**
 * In-memory mirror of document metadata, keyed by the store's numeric document key (the index's group id).
 * Retrieval evaluates metadata filters and the principal's visibility against it per candidate document,
 * inside top-k selection, so a filtered search still returns k results when k documents match.
 */
import type { Principal } from '../access/principal.js';
import { isRestricted, readerFor, readGrant } from '../access/visibility.js';
import type { VisibleStatistics } from '../indexes/lexical/bm25-index.js';
import type { CatalogEntry, WriteOutcome } from '../store/types.js';
import type { DocumentMetadata } from '../types.js';
import type { CompiledFilter } from './filter.js';

export type CatalogDocument = DocumentMetadata & { id: string };

/** Most documents name no users: they share one empty list instead of holding one each. */
const NO_USERS: string[] = Object.freeze([]) as unknown as string[];

/**
 * Catalog generations are numbered across instances: the engine replaces its catalog after another process
 * wrote, and a fresh one must not hand out the visibility keys of the one it replaced.
 */
let generations = 0;

/** Hidden sets kept per catalog generation (one per distinct grant in recent use). */
const VISIBILITY_CACHE_SIZE = 16;

export class DocumentCatalog {
  private readonly byKey = new Map<number, CatalogDocument>();
  /**
   * One copy of each repeated metadata string. Every row read from the store arrives as its own string, so
   * without this a corpus ingested from one file holds its path (and its batch's timestamps) once per document.
   */
  private readonly shared = new Map<string, string>();
  /** Keys of documents with any access restriction: only these can be hidden from anyone. */
  private readonly restricted = new Set<number>();
  /** Bumped by every write applied: a visibility key names the hidden set of one generation. */
  private generation = ++generations;
  /** Hidden sets by visibility key (null: nothing hidden), least recently used first. */
  private readonly hiddenSets = new Map<string, VisibleStatistics | null>();

  constructor(entries: Iterable<CatalogEntry> = []) {
    for (const e of entries) this.set(e.key, this.entry(e.meta, e.id));
  }

  private set(key: number, doc: CatalogDocument): void {
    this.remove(key);
    this.byKey.set(key, doc);
    if (isRestricted(doc)) this.restricted.add(key);
  }

  private remove(key: number): void {
    const old = this.byKey.get(key);
    if (old === undefined) return;
    this.restricted.delete(key);
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
    this.generation = ++generations;
    this.hiddenSets.clear();
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
    const everything = principal.kind === 'trusted' || this.restricted.size === 0;
    if (filter === undefined && everything) return undefined;
    const reader = everything ? undefined : readerFor(principal);
    return (key) => {
      const doc = this.byKey.get(key);
      if (doc === undefined) return false;
      if (reader !== undefined && !reader(doc)) return false;
      return filter === undefined || filter.matches(doc);
    };
  }

  /**
   * The documents hidden from `principal`, for BM25 statistics over what it may read (see
   * `VisibleStatistics`). Only restricted documents can be hidden, so this is one pass over those, done once
   * per grant and catalog generation. Undefined when nothing is hidden (the trusted caller, a store without
   * restrictions, a grant that reads every restricted document): store-wide statistics are then the visible
   * ones. The key is the generation and the grant, so principals that read the same documents share it.
   */
  visibility(principal: Principal): VisibleStatistics | undefined {
    const grant = readGrant(principal);
    if (grant === undefined || this.restricted.size === 0) return undefined;
    const key = JSON.stringify([
      this.generation,
      grant.userId ?? null,
      [...grant.groups].sort(),
      grant.clearance,
    ]);
    const known = this.hiddenSets.get(key);
    if (known !== undefined) {
      this.hiddenSets.delete(key);
      this.hiddenSets.set(key, known);
      return known ?? undefined;
    }
    const reader = readerFor(principal);
    const hiddenGroups = new Set<number>();
    for (const k of this.restricted) if (!reader(this.byKey.get(k)!)) hiddenGroups.add(k);
    const found = hiddenGroups.size === 0 ? null : { key, hiddenGroups };
    this.hiddenSets.set(key, found);
    if (this.hiddenSets.size > VISIBILITY_CACHE_SIZE)
      this.hiddenSets.delete(this.hiddenSets.keys().next().value!);
    return found ?? undefined;
  }
}

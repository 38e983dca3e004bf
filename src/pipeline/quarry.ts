/**
 * The library facade: one object over ingest, search, ask (and its stream), evaluation helpers and admin
 * calls. It holds no pipeline logic of its own: the open resources live in the engine (./engine.ts), the
 * query path's order, deadlines, cache and degradation in the runner (./runner.ts, ./ask.ts), and every step
 * in its stage's folder. The CLI and, later, the HTTP server are thin shells on it.
 */
import path from 'node:path';
import { ANONYMOUS, type Principal } from '../access/principal.js';
import { canRead, checkPrincipal, readGrant } from '../access/visibility.js';
import type { CacheInvalidation, CacheStats } from '../cache/layers.js';
import { type QuarryConfig, resolveConfig } from '../config/config.js';
import { QuarryError } from '../errors.js';
import type { DenseIndex } from '../indexes/dense/dense-index.js';
import type { DenseModels } from '../indexes/dense/dense-models.js';
import type { DenseSyncReport } from '../indexes/dense/provider-dense-index.js';
import type { LexicalIndex } from '../indexes/lexical/lexical-index.js';
import { type AddDocumentsOptions, addDocuments, type DocumentInput } from '../ingest/add-documents.js';
import { type IngestOptions, type IngestReport, ingestPaths } from '../ingest/ingest.js';
import { observeIngest } from '../observability/telemetry.js';
import type { Trace } from '../observability/trace.js';
import type { PiiAuditEntry } from '../privacy/audit.js';
import { createRedactor, redactsAt } from '../privacy/redact.js';
import {
  type OutputRedactor,
  outputRedactor,
  redactParentSection,
  redactSearchResult,
  redactStoredDocument,
} from '../privacy/redact-output.js';
import { piiAuditLog, type RestoreOptions, type RestoreResult, restorePii } from '../privacy/restore.js';
import { normalizeQuery } from '../query/understand.js';
import { DocumentCatalog } from '../retrieve/catalog.js';
import { SqliteStore } from '../store/sqlite/sqlite-store.js';
import type { DocumentStore, FeedbackEntry, ParentSection, WriteOutcome } from '../store/types.js';
import type { Answer, StoredDocument } from '../types.js';
import { AskRunner } from './ask.js';
import { type CheckReport, checkStore, lexicalIndexFor, openStoreIndexes } from './check.js';
import { checkComponents } from './components.js';
import type { Deadline } from './deadline.js';
import { Engine } from './engine.js';
import type { AskEvent } from './llm-answer.js';
import type { AskOptions, QuarryOptions, QuarryStats, SearchOptions, SearchResult } from './options.js';
import { QueryRunner } from './runner.js';

export type { AskOptions, QuarryOptions, QuarryStats, SearchOptions, SearchResult } from './options.js';

/** Resolve the store directory the same way everywhere (CLI, library, tests). */
export function resolveStoreDir(store?: string): string {
  return path.resolve(store ?? process.env.QUARRY_STORE ?? '.quarry');
}

export class Quarry {
  private readonly engine: Engine;
  private readonly runner: QueryRunner;
  private readonly asker: AskRunner;
  /** Set when privacy redacts output (`at`: answers or both); every text this facade returns goes through it. */
  readonly outputRedactor: OutputRedactor | undefined;

  private constructor(engine: Engine) {
    this.engine = engine;
    this.runner = new QueryRunner(engine);
    this.asker = new AskRunner(engine, this.runner);
    this.outputRedactor = outputRedactor(engine.config.privacy, engine.redactor);
  }

  get config(): QuarryConfig {
    return this.engine.config;
  }

  get store(): DocumentStore {
    return this.engine.store;
  }

  get lexical(): LexicalIndex {
    return this.engine.lexical;
  }

  get dense(): DenseIndex {
    return this.engine.dense;
  }

  /** Every configured dense model (the built-in one is `dense`), its index and the per-query router. */
  get denseModels(): DenseModels {
    return this.engine.denseModels;
  }

  /** Open or create a store and load its index (from snapshot, or rebuilt from the store if stale). */
  static open(options: QuarryOptions = {}): Quarry {
    const config = resolveConfig(options.config ?? {});
    const components = checkComponents(options.components);
    const { store, lexical } = openStore(options, config, components.store);
    const dir = store.dir;
    try {
      lexical.open();
      // Opened now so a missing or wrong vault key fails here, not halfway through an ingest.
      const redactor = config.privacy.enabled ? createRedactor(config.privacy, { storeDir: dir }) : undefined;
      return new Quarry(new Engine(config, store, lexical, redactor, components));
    } catch (e) {
      // A supplied store belongs to the caller: left open, as Quarry found it.
      if (components.store === undefined) store.close();
      throw e;
    }
  }

  /** Ingest files and folders (see `IngestOptions`); returns added/updated/unchanged/removed and errors. */
  async ingest(paths: string[], options: IngestOptions = {}): Promise<IngestReport> {
    this.engine.ensureFresh();
    return observeIngest(() => ingestPaths(this.ingestContext(), paths, options));
  }

  /**
   * Ingest documents given in memory (`{ id, text | markdown | html, title, metadata, access }`): the same
   * parse → chunk → embed → index path as files, incremental by content hash (identical content is
   * `unchanged`, the same id with other content replaces it). Every document is checked and parsed before
   * anything is written: a bad one throws a QuarryError naming its index and field, and nothing changes.
   *
   * @example
   * await quarry.addDocuments([{ id: 'faq-12', markdown: '# Refunds\n\nRefunds take 5 days.' }]);
   */
  async addDocuments(documents: DocumentInput[], options: AddDocumentsOptions = {}): Promise<IngestReport> {
    this.engine.ensureFresh();
    return observeIngest(() => addDocuments(this.ingestContext(), documents, options));
  }

  /** Delete documents by id; returns the ids that existed. Nothing of them stays retrievable. */
  deleteDocuments(ids: string[]): string[] {
    this.engine.ensureFresh();
    // Deleting nothing must not bump the index version (that would make every other instance reload).
    const states = this.store.documentStates(ids);
    if (states.size === 0) return [];
    const outcome = this.store.write({ upserts: [], deletes: ids });
    this.engine.applyOutcome(outcome);
    this.engine.persist();
    return outcome.results.map((r) => r.id);
  }

  /** Delete every document whose source is `source` or lies under it. */
  deleteBySource(source: string): string[] {
    const normalized = normalizeSource(source);
    const ids = this.store.documentsUnderSource(normalized).map((d) => d.id);
    return ids.length === 0 ? [] : this.deleteDocuments(ids);
  }

  /**
   * Documents in id order, `limit` / `offset` counted over those `principal` may read (missing principal =
   * ANONYMOUS: unrestricted documents only). Titles and user fields are redacted when privacy redacts output.
   */
  listDocuments(opts: { limit?: number; offset?: number; principal?: Principal } = {}): StoredDocument[] {
    const { principal, ...paging } = opts;
    const docs = this.store.listDocuments({
      ...paging,
      readableBy: readGrant(checkPrincipal(principal ?? ANONYMOUS)),
    });
    const r = this.outputRedactor;
    return r === undefined ? docs : docs.map((d) => redactStoredDocument(d, r));
  }

  /** How many documents `principal` may read (the total behind `listDocuments` paging). */
  countDocuments(opts: { principal?: Principal } = {}): number {
    return this.store.countDocuments({ readableBy: readGrant(checkPrincipal(opts.principal ?? ANONYMOUS)) });
  }

  /**
   * One document with its text; undefined when absent or when `principal` may not read it (the same answer).
   * The text is redacted when privacy redacts output (offsets still refer to the store).
   */
  getDocument(
    id: string,
    opts: { principal?: Principal } = {},
  ): (StoredDocument & { text: string }) | undefined {
    const principal = checkPrincipal(opts.principal ?? ANONYMOUS);
    const doc = this.store.getDocument(id);
    if (doc === undefined || !canRead(principal, doc.meta)) return undefined;
    const r = this.outputRedactor;
    return r === undefined ? doc : redactStoredDocument(doc, r);
  }

  /**
   * Record whether a source helped answer a query (e.g. a thumbs up/down on a citation). Stored with the
   * store; `quarry train-ranker --from-feedback` learns reranker weights from it. A document `principal` may
   * not read is NOT_FOUND exactly as an absent one, so feedback cannot probe for hidden documents.
   */
  recordFeedback(
    entry: { query: string; docId: string; chunkId?: number; helpful: boolean; queryId?: string },
    opts: { principal?: Principal } = {},
  ): FeedbackEntry {
    const principal = checkPrincipal(opts.principal ?? ANONYMOUS);
    if (typeof entry.query !== 'string' || entry.query.trim() === '')
      throw new QuarryError('INVALID_ARGUMENT', 'feedback query must be a non-empty string');
    if (typeof entry.helpful !== 'boolean')
      throw new QuarryError('INVALID_ARGUMENT', 'feedback helpful must be true or false');
    this.engine.ensureFresh();
    if (!this.engine.readableDocument(entry.docId, principal))
      throw new QuarryError('NOT_FOUND', `no document with id "${entry.docId}"`, { docId: entry.docId });
    if (entry.chunkId !== undefined) {
      const chunk = this.store.getChunks([entry.chunkId]).get(entry.chunkId);
      if (chunk === undefined || chunk.docId !== entry.docId)
        throw new QuarryError('NOT_FOUND', `chunk ${entry.chunkId} is not part of document "${entry.docId}"`);
    }
    // Stored as output redaction leaves it: PII typed into a query never sits in the feedback table.
    const query = entry.query.trim();
    const redactor = this.outputRedactor;
    return this.store.addFeedback({
      ...entry,
      query: redactor === undefined ? query : redactor.redact(query).text,
    });
  }

  /**
   * The heading-delimited section a chunk belongs to, with its text: context beyond the retrieved chunk.
   * Undefined when the chunk is absent or its document is one `principal` may not read.
   */
  getParentSection(chunkId: number, opts: { principal?: Principal } = {}): ParentSection | undefined {
    const principal = checkPrincipal(opts.principal ?? ANONYMOUS);
    this.engine.ensureFresh();
    const section = this.store.getParentSection(chunkId);
    if (section === undefined || !this.engine.readableDocument(section.docId, principal)) return undefined;
    const r = this.outputRedactor;
    return r === undefined ? section : redactParentSection(section, r);
  }

  /**
   * Put the originals back in place of reversible placeholders (`[EMAIL_9f86d081884c7d65]`) in `text`.
   * Admin only (FORBIDDEN otherwise); every attempt is written to the audit log (`piiAuditLog`), never the
   * values. A placeholder from another vault key fails the call (PRIVACY_TOKEN_UNKNOWN), restoring nothing.
   *
   * @example
   * const { text } = quarry.restorePii(answer.text, { admin: true, actor: 'ops@example.org', reason: 'DSAR-17' });
   */
  restorePii(text: string, opts: RestoreOptions): RestoreResult {
    return restorePii(this.engine.redactor, text, opts);
  }

  /** Restore attempts, newest first (default 100): who, when, why, how many placeholders, the outcome. */
  piiAuditLog(opts: { limit?: number } = {}): PiiAuditEntry[] {
    return piiAuditLog(this.engine.redactor, opts);
  }

  /**
   * Retrieve the top-k chunks for `query`: retrieval and fusion (with metadata filters applied inside
   * retrieval), then the configured reranker over a wide pool under its latency budget.
   */
  async search(
    query: string,
    options: SearchOptions = {},
    trace?: Trace,
    deadline?: Deadline,
  ): Promise<SearchResult> {
    const result = await this.runner.searchRequest(query, options, trace, deadline);
    // Redacted on the way out, so results served from the retrieval cache are redacted too.
    return this.outputRedactor === undefined ? result : redactSearchResult(result, this.outputRedactor);
  }

  /**
   * Synchronous search (the embedded path has no I/O wait). A remote/ONNX dense model needs its query vector
   * in `options.queryVectors` here (see `embedQueries`); without one dense is skipped and the result says so.
   */
  searchSync(query: string, options: SearchOptions = {}, trace?: Trace): SearchResult {
    const result = this.runner.searchSyncRequest(query, options, trace);
    return this.outputRedactor === undefined ? result : redactSearchResult(result, this.outputRedactor);
  }

  /** Answer `question` from the indexed documents, with citations; abstains when the sources do not support it. */
  async ask(question: string, options: AskOptions = {}): Promise<Answer> {
    let final: Answer | undefined;
    for await (const e of this.askStream(question, options)) if (e.type === 'answer') final = e.answer;
    return final!;
  }

  /**
   * Streaming ask: retrieval, context and generation events as they happen, ending with the validated
   * `answer`. With an LLM configured, deltas arrive token by token and citations as soon as they are complete;
   * if the LLM fails or runs out of budget, the extractive answerer answers instead (marked `fallback`).
   */
  askStream(question: string, options: AskOptions = {}): AsyncGenerator<AskEvent> {
    return this.asker.askStream(question, options);
  }

  /**
   * Embed many queries in one pass for the dense retriever (batch mode), keyed the way search looks them up,
   * each with the model the router picks for it (one batched call per remote/ONNX model). Empty when the
   * retrieval does not use dense vectors; queries whose model is not ready or failed are left out.
   */
  async embedQueries(
    queries: string[],
    retriever = this.config.retrieval.retriever,
  ): Promise<Map<string, Float32Array>> {
    if (retriever === 'bm25') return new Map();
    this.engine.ensureFresh();
    return this.denseModels.embedQueries(
      queries.map((q) => (this.config.query.normalize ? normalizeQuery(q) : q)),
    );
  }

  /**
   * Bring every remote/ONNX dense index in step with the store (ingest and search do this themselves; call
   * it to retry after an embedding failure, or after another process wrote). Throws `EMBEDDING_FAILED`.
   */
  async syncDense(signal?: AbortSignal): Promise<DenseSyncReport[]> {
    this.engine.ensureFresh();
    return this.denseModels.sync(signal);
  }

  /** Store-wide counts and settings (no document ids or text, so the same for every principal). */
  stats(): QuarryStats {
    // Report the index this instance would search with, not one another process has since made stale.
    this.engine.ensureFresh();
    return {
      ...this.store.stats(),
      storeDir: this.store.dir,
      index: {
        chunks: this.lexical.bm25.size,
        memoryBytes: this.lexical.bm25.memoryBytes(),
        loadedFrom: this.lexical.loadedFrom,
        version: this.lexical.indexVersion,
      },
      dense: this.denseModels.models.map((m) => ({
        name: m.name,
        provider: m.provider,
        // From the snapshot's header when the vectors are not loaded yet (they load on the first dense query).
        ...m.index.summary(),
      })),
      config: this.config,
    };
  }

  /**
   * Hits and misses per cache layer (embeddings, retrievals, responses) since this instance opened.
   *
   * @example
   * const { responses } = quarry.cacheStats();
   * const hitRate = responses.hits / Math.max(1, responses.hits + responses.misses);
   */
  cacheStats(): CacheStats {
    return this.engine.caches.stats();
  }

  /**
   * Resolves once the configured cache answers (Redis connected, cross-process invalidation subscribed);
   * at once for the in-process cache. Never rejects: an unreachable Redis gives `ok: false` and the reason.
   */
  cacheReady(): Promise<{ driver: 'memory' | 'redis'; ok: boolean; reason?: string }> {
    return this.engine.caches.ready();
  }

  /**
   * Calls `listener` whenever cached entries of this store became unreachable: a write by this instance
   * (`origin: 'local'`), or one by another process announced over Redis (`'remote'`, after this instance
   * dropped its in-process entries and reloaded the index). Returns a function that removes the listener.
   */
  onCacheInvalidation(listener: (e: CacheInvalidation) => void): () => void {
    return this.engine.caches.onInvalidation(listener);
  }

  /**
   * Check the store's integrity and every derived index against it (see ./check.ts); with `repair`, rebuild
   * the BM25 and dense indexes and the catalog from the store, remove orphan chunks (reported), and check again.
   * Documents are never deleted.
   */
  check(options: { repair?: boolean } = {}): CheckReport {
    const { engine } = this;
    // The check reads SQLite's own integrity report and repair deletes orphan rows with SQL: neither is
    // part of the DocumentStore contract, so a supplied store cannot be checked this way.
    if (!(engine.store instanceof SqliteStore))
      throw new QuarryError(
        'INVALID_ARGUMENT',
        `check needs the embedded SQLite store; this Quarry was opened with components.store (${engine.store.dir}), ` +
          'whose integrity its implementation has to check',
        { store: engine.store.dir },
      );
    const store = engine.store;
    const targets = () => ({ store, lexical: engine.lexical, catalog: engine.catalog });
    const first = checkStore(targets());
    if (options.repair !== true) return first;
    const repaired: string[] = [];
    const orphans = store.removeOrphans();
    if (orphans.length > 0)
      repaired.push(`removed ${orphans.length} orphan chunks (${orphans.slice(0, 20).join(', ')})`);
    engine.lexical.rebuild();
    engine.lexical.persist();
    repaired.push(`rebuilt the BM25 index from the store (${engine.lexical.bm25.size} chunks)`);
    const hadDense =
      first.counts.denseSnapshot !== null || first.findings.some((f) => f.code.startsWith('DENSE_'));
    if (hadDense || engine.dense.ready) {
      const built = engine.dense.rebuild();
      repaired.push(
        built
          ? `rebuilt the dense index (${engine.dense.size} vectors)`
          : 'the dense index cannot be built yet (too few chunks)',
      );
    }
    engine.catalog = new DocumentCatalog(store.catalog());
    repaired.push(`rebuilt the catalog (${engine.catalog.size} documents)`);
    engine.caches.committed(store.indexVersion());
    const after = checkStore(targets());
    return { ...after, repaired, before: first.findings };
  }

  close(): void {
    this.engine.close();
  }

  private ingestContext() {
    const { engine } = this;
    return {
      store: engine.store,
      config: engine.config,
      apply: (outcome: WriteOutcome) => engine.applyOutcome(outcome),
      ...(engine.redactor !== undefined && redactsAt(engine.config.privacy, 'ingest')
        ? { redact: engine.redactor }
        : {}),
      persist: () => engine.persist(),
      // Stage "embed": remote/ONNX dense indexes catch up after the write (src/ingest/embed.ts).
      dense: engine.denseModels,
      ...(engine.components.tokenizer === undefined ? {} : { tokenizer: engine.components.tokenizer }),
    };
  }
}

/**
 * The store a Quarry opens over: the supplied object (its BM25 index built from it), else the embedded SQLite
 * store at `options.store`. Giving both is ambiguous, so it is refused.
 */
function openStore(
  options: QuarryOptions,
  config: QuarryConfig,
  supplied: DocumentStore | undefined,
): { store: DocumentStore; lexical: LexicalIndex } {
  if (supplied === undefined)
    return openStoreIndexes(resolveStoreDir(options.store), config, options.create !== false);
  if (options.store !== undefined)
    throw new QuarryError(
      'INVALID_ARGUMENT',
      'give store (a directory for the embedded store) or components.store (your own store), not both',
      { field: 'store' },
    );
  return { store: supplied, lexical: lexicalIndexFor(supplied, config) };
}

/** Open a Quarry instance (library entry point). */
export async function createQuarry(options: QuarryOptions = {}): Promise<Quarry> {
  return Quarry.open(options);
}

/** Sources are stored as posix paths relative to the working directory when inside it. */
export function normalizeSource(p: string): string {
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(p)) return p;
  const abs = path.resolve(p);
  const rel = path.relative(process.cwd(), abs);
  const chosen = rel !== '' && !rel.startsWith('..') && !path.isAbsolute(rel) ? rel : abs;
  return chosen.split(path.sep).join('/');
}

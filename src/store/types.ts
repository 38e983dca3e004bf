/**
 * The store contract: the durable record of documents, sections and chunks that every index is derived from.
 * The embedded SQLite store implements it today; a Postgres store will implement the same interface, so no
 * SQL or file layout leaks into the pipeline stages.
 */
import type { ReadGrant } from '../access/visibility.js';
import type { DocumentDraft, DocumentMetadata, StoredChunk, StoredDocument } from '../types.js';

/** Index-relevant settings fixed when a store is created (changing them requires a re-index). */
export interface StoreIndexSettings {
  analyzer: Record<string, unknown>;
  fields: 'flat' | 'multifield';
}

export interface ParentSection {
  docId: string;
  chunkId: number;
  ordinal: number;
  path: string[];
  start: number;
  end: number;
  text: string;
}

/** A user's judgment of one retrieved source for a query: training data for the reranker. */
export interface FeedbackEntry {
  query: string;
  docId: string;
  chunkId?: number;
  helpful: boolean;
  /** The server's query id the vote was given on (its trace: `GET /v1/traces/{queryId}`). */
  queryId?: string;
  /** ISO timestamp, set by the store. */
  at: string;
}

/** Paging and visibility of a document listing. */
export interface DocumentListOptions {
  limit?: number;
  offset?: number;
  /** Only documents this grant may read (src/access/visibility.ts); undefined = every document. */
  readableBy?: ReadGrant | undefined;
}

export interface DocumentState {
  key: number;
  id: string;
  hash: string;
  source: string;
  version: number;
  created_at: string;
}

/** A stored document's metadata with its numeric key (the index's group id). */
export interface CatalogEntry {
  key: number;
  id: string;
  meta: DocumentMetadata;
}

/**
 * `unchanged`: the draft's content hash equals the stored one when the write transaction looked (another
 * process wrote the same content since the caller compared); nothing was written and the version stays.
 */
export type WriteStatus = 'added' | 'updated' | 'unchanged' | 'deleted';

export interface DocumentWriteResult {
  id: string;
  key: number;
  status: WriteStatus;
  /** Chunk ids that no longer exist after this write (to drop from every index). */
  removedChunkIds: number[];
  /** Chunks written (to add to every index). Empty for deletes. */
  addedChunks: StoredChunk[];
  meta?: DocumentMetadata;
}

export interface WriteBatch {
  upserts: DocumentDraft[];
  deletes: string[];
}

export interface WriteOutcome {
  results: DocumentWriteResult[];
  indexVersion: number;
}

export interface StoreStats {
  documents: number;
  chunks: number;
  sections: number;
  characters: number;
  tokens: number;
  bytesOnDisk: number;
  schemaVersion: number;
  indexVersion: number;
  createdAt: string;
}

export interface DocumentStore {
  readonly dir: string;
  readonly settings: StoreIndexSettings;
  /** Bumped by every committed write; indexes tag themselves with it to detect staleness. */
  indexVersion(): number;
  documentStates(ids: string[]): Map<string, DocumentState>;
  /** Documents whose source equals `source` or lies under it (`source/…`). */
  documentsUnderSource(source: string): DocumentState[];
  /** Apply upserts and deletes in ONE transaction: all of it is visible afterwards, or none of it. */
  write(batch: WriteBatch): WriteOutcome;
  getChunks(ids: number[]): Map<number, StoredChunk>;
  /** The parent section of a chunk (small chunks retrieve, the section gives context), with its text. */
  getParentSection(chunkId: number): ParentSection | undefined;
  /** Record a feedback judgment (kept until the store is deleted; documents may come and go). */
  addFeedback(entry: Omit<FeedbackEntry, 'at'>): FeedbackEntry;
  listFeedback(): FeedbackEntry[];
  /** Offsets of every chunk of one section, in text order (maps parent-section text back to its chunks). */
  sectionChunks(docId: string, sectionOrdinal: number): Array<{ id: number; start: number; end: number }>;
  getDocument(id: string): (StoredDocument & { text: string }) | undefined;
  /** Documents in id order; with `readableBy`, only those it may read (paging counts visible ones only). */
  listDocuments(opts?: DocumentListOptions): StoredDocument[];
  /** How many documents `readableBy` may read (all without it). */
  countDocuments(opts?: Pick<DocumentListOptions, 'readableBy'>): number;
  catalog(): Iterable<CatalogEntry>;
  /** Every chunk with its document key, in id order (for rebuilding derived indexes). */
  iterateChunks(): Iterable<StoredChunk & { docKey: number }>;
  stats(): StoreStats;
  /** Opaque named blobs stored beside the data (index snapshots), written atomically. */
  readArtifact(name: string): Buffer | undefined;
  /** The first `bytes` bytes of an artifact (fewer if it is shorter), e.g. a snapshot's header. Optional. */
  readArtifactHead?(name: string, bytes: number): Buffer | undefined;
  writeArtifact(name: string, data: Buffer | Uint8Array[]): void;
  /** Make committed writes durable in the main store files and reclaim log space (after bulk writes). */
  checkpoint(): void;
  close(): void;
}

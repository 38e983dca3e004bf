/**
 * The types every ingest stage and the ingest runner share: what a caller passes (`IngestOptions`), what the
 * runner reports while it runs (`IngestProgress`) and at the end (`IngestReport`, with one `IngestFileError`
 * per file or record that failed), and what the pipeline hands the ingest path (`IngestContext`: the store,
 * the configuration and how a committed write reaches the indexes).
 */
import type { QuarryConfig } from '../config/config.js';
import type { DocumentRedactor } from '../privacy/redact.js';
import type { DocumentStore, WriteOutcome } from '../store/types.js';
import type { Tokenizer } from '../types.js';
import type { DenseCatchUp } from './embed.js';
import type { RecordFieldMap } from './parsers/records.js';

export interface IngestOptions {
  /** Field mapping for JSON/JSONL record files. */
  records?: RecordFieldMap;
  /** Remove stored documents under an ingested folder (or from a record file) that are gone. Default true. */
  prune?: boolean;
  /** Added to every document's tags / access groups / user fields. */
  tags?: string[];
  accessGroups?: string[];
  fields?: Record<string, unknown>;
  onProgress?: (p: IngestProgress) => void;
  /** Documents are named by their path relative to this folder (default: the working directory). */
  sourceRoot?: string;
  /**
   * Symbolic links met while walking a folder: skipped and reported in `skipped` (default), or followed to
   * the file or folder they point at (each target once; a link cycle is not walked twice).
   */
  followSymlinks?: boolean;
}

/**
 * Sent as records are read and batches are written. Records are what a long ingest is made of (one JSONL file
 * can hold thousands): every other file counts as one record, a record file as its records once parsed.
 */
export interface IngestProgress {
  filesDone: number;
  filesTotal: number;
  /** Records (documents to be) handled so far: written, unchanged or failed. */
  recordsDone: number;
  /** Records known so far; grows as record files are parsed (a file not parsed yet counts as one). */
  recordsTotal: number;
  /** Documents written (added or updated) so far. */
  documents: number;
  /** Chunks written so far. */
  chunks: number;
  elapsedMs: number;
}

export interface IngestFileError {
  path: string;
  /** Record id or line for record files. */
  record?: string;
  code: string;
  message: string;
}

/** Something met during an ingest and deliberately not read, with why. */
export interface IngestSkipped {
  path: string;
  reason: string;
}

export interface IngestReport {
  files: number;
  added: number;
  updated: number;
  unchanged: number;
  removed: number;
  failed: number;
  chunks: number;
  durationMs: number;
  documents: { added: string[]; updated: string[]; unchanged: string[]; removed: string[] };
  errors: IngestFileError[];
  /** Entries not read, with the reason (symbolic links not followed); present when there are any. */
  skipped?: IngestSkipped[];
  /** Blank lines skipped in JSONL files; present when there are any. */
  blankLines?: number;
  indexVersion: number;
  /** PII values redacted per kind in the documents written (present when the context redacts). */
  redactions?: Record<string, number>;
}

export interface IngestContext {
  store: DocumentStore;
  config: QuarryConfig;
  apply(outcome: WriteOutcome): void;
  persist(): void;
  /** PII redaction applied to every document before it is chunked and before anything is written. */
  redact?: DocumentRedactor;
  /** Measures chunks instead of the built-in o200k counter (a library-supplied `components.tokenizer`). */
  tokenizer?: Tokenizer;
  /**
   * The dense indexes that embed after the write (stage "embed", src/ingest/embed.ts); absent = no dense
   * catch-up (BM25 only, or a caller that syncs itself).
   */
  dense?: DenseCatchUp;
}

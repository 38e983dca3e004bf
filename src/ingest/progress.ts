/**
 * Ingest progress, owned by the runner: counts files and the records inside them (a JSONL file is thousands
 * of documents, not one), and what the write stage has committed, and sends `IngestProgress` events —
 * per-record events at most every 50 ms, file and batch events always.
 */
import type { ProgressEvent } from '../observability/progress.js';
import type { IngestProgress } from './types.js';

/** An ingest event as a progress line counts it: records (a JSONL file of 5,000 records is 5,000, not one file). */
export function ingestProgressEvent(p: IngestProgress): ProgressEvent {
  return {
    phase: 'ingest',
    done: p.recordsDone,
    total: p.recordsTotal,
    unit: 'records',
    documents: p.documents,
    chunks: p.chunks,
  };
}

/** A file's share of the record count: one until its records are known. */
export interface FileRecords {
  found: number;
  done: number;
}

/** What has been committed so far (the write stage's counters). */
export interface WrittenCounts {
  readonly documents: number;
  readonly chunks: number;
}

export class ProgressTracker {
  private filesDone = 0;
  private filesStarted = 0;
  private recordsDone = 0;
  /** Records of the files started so far (each counts one until its records are known). */
  private recordsKnown = 0;
  private lastProgress = 0;

  constructor(
    private readonly onProgress: ((p: IngestProgress) => void) | undefined,
    private readonly filesTotal: number,
    private readonly started: number,
    private readonly written: () => WrittenCounts,
  ) {}

  fileStarted(): FileRecords {
    this.filesStarted++;
    this.recordsKnown++;
    return { found: 1, done: 0 };
  }

  /** A record file was parsed: it holds `n` records, not one. */
  recordsFound(file: FileRecords, n: number): void {
    this.recordsKnown += n - file.found;
    file.found = n;
    this.emit(true);
  }

  recordDone(file: FileRecords): void {
    file.done++;
    this.recordsDone++;
    this.emit(true);
  }

  /** The file is finished (or failed): whatever of it was not counted yet is done. */
  fileDone(file: FileRecords): void {
    this.recordsDone += Math.max(0, file.found - file.done);
    file.done = file.found;
    this.filesDone++;
    this.emit();
  }

  /** `throttled`: per-record calls report at most every 50 ms (a record can take microseconds). */
  emit(throttled = false): void {
    if (this.onProgress === undefined) return;
    const now = performance.now();
    if (throttled && now - this.lastProgress < 50) return;
    this.lastProgress = now;
    const { documents, chunks } = this.written();
    this.onProgress({
      filesDone: this.filesDone,
      filesTotal: this.filesTotal,
      recordsDone: this.recordsDone,
      recordsTotal: this.recordsKnown + (this.filesTotal - this.filesStarted),
      documents,
      chunks,
      elapsedMs: now - this.started,
    });
  }
}

/**
 * Stage "index" (write): drafts and deletes → the store, in transactional batches of
 * `ingest.batchSize`, each committed batch mirrored at once into the lexical index, the document catalog
 * and the in-process dense index (`IngestContext.apply`); remote/ONNX dense indexes embed later (stage
 * "embed"). Input: `DocumentDraft`s to upsert, ids to delete. Output: the write counters and the report.
 * Progress: calls `afterCommit` after every batch (the runner sends a progress event). Degrades: it does
 * not; a failed commit throws and leaves the store as it was before that batch.
 */
import type { DocumentDraft } from '../types.js';
import type { IngestContext, IngestFileError, IngestReport } from './types.js';

/** Accumulates drafts and deletes, commits them in batches, and mirrors each commit into the indexes. */
export class BatchWriter {
  upserts: DocumentDraft[] = [];
  deletes: string[] = [];
  readonly unchanged: string[] = [];
  readonly added: string[] = [];
  readonly updated: string[] = [];
  readonly removed: string[] = [];
  chunks = 0;
  wrote = false;
  readonly redactions: Record<string, number> = {};
  indexVersion: number;

  constructor(
    private readonly ctx: Pick<IngestContext, 'store' | 'config' | 'apply' | 'redact'>,
    private readonly afterCommit: () => void = () => {},
  ) {
    this.indexVersion = ctx.store.indexVersion();
  }

  /** Documents written (added or updated) so far. */
  get documents(): number {
    return this.added.length + this.updated.length;
  }

  /**
   * Commits when the batch is full by count (`ingest.batchSize`) or by text (`ingest.batchMaxChars`): a few
   * very large documents must not wait in memory for 63 more.
   */
  async maybeFlush(): Promise<void> {
    const { batchSize, batchMaxChars } = this.ctx.config.ingest;
    if (this.upserts.length >= batchSize) return this.flush();
    let chars = 0;
    for (const d of this.upserts) chars += d.text.length;
    if (chars >= batchMaxChars) await this.flush();
  }

  async flush(): Promise<void> {
    if (this.upserts.length === 0 && this.deletes.length === 0) return;
    const batch = { upserts: this.upserts, deletes: this.deletes };
    this.upserts = [];
    this.deletes = [];
    const outcome = this.ctx.store.write(batch);
    this.ctx.apply(outcome);
    this.wrote = true;
    this.indexVersion = outcome.indexVersion;
    for (const r of outcome.results) {
      if (r.status === 'added') this.added.push(r.id);
      else if (r.status === 'updated') this.updated.push(r.id);
      else if (r.status === 'unchanged') this.unchanged.push(r.id);
      else this.removed.push(r.id);
      this.chunks += r.addedChunks.length;
    }
    this.afterCommit();
    // Let progress output and other I/O breathe between synchronous batch commits.
    await new Promise<void>((resolve) => setImmediate(resolve));
  }

  report(files: number, errors: IngestFileError[], durationMs: number): IngestReport {
    return {
      files,
      added: this.added.length,
      updated: this.updated.length,
      unchanged: this.unchanged.length,
      removed: this.removed.length,
      failed: errors.length,
      chunks: this.chunks,
      durationMs: Math.round(durationMs),
      documents: {
        added: this.added,
        updated: this.updated,
        unchanged: this.unchanged,
        removed: this.removed,
      },
      errors,
      indexVersion: this.indexVersion,
      ...(this.ctx.redact ? { redactions: this.redactions } : {}),
    };
  }
}

/**
 * Stage "embed": the dense catch-up after a write. The store's write path is synchronous and embedding is
 * not, so the BM25 index has every committed chunk at once while remote/ONNX dense indexes embed the new
 * chunks here, after the last batch is committed and persisted.
 * Input: the ingest report (what was written). Output: the same report. Progress: none of its own (each
 * dense index reports its sync). Degrades: it does not; an embedding failure is an EMBEDDING_FAILED error
 * naming the model and saying what was written — the documents stay stored, BM25 finds them, and the dense
 * index catches up on the next sync, ingest or search.
 */
import { QuarryError } from '../errors.js';
import type { IngestReport } from './types.js';

/** The dense indexes that embed after a write (`DenseModels`, seen through what this stage needs). */
export interface DenseCatchUp {
  /** Indexes that need a sync; none = nothing to embed here. */
  readonly providers: readonly unknown[];
  sync(): Promise<unknown>;
}

export async function embedWritten(
  report: IngestReport,
  dense: DenseCatchUp | undefined,
): Promise<IngestReport> {
  if (dense === undefined || dense.providers.length === 0) return report;
  try {
    await dense.sync();
  } catch (e) {
    if (!(e instanceof QuarryError) || e.code !== 'EMBEDDING_FAILED') throw e;
    throw new QuarryError(
      'EMBEDDING_FAILED',
      `the documents were written (${report.added} added, ${report.updated} updated, ${report.removed} ` +
        'removed) and BM25 finds them, but a dense index could not embed them; it catches up on the next ' +
        `syncDense(), ingest or search. ${e.message}`,
      { ...e.details, written: { added: report.added, updated: report.updated, removed: report.removed } },
      e,
    );
  }
  return report;
}

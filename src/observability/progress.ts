/**
 * Progress of long-running work (ingest, dense index builds, evaluation queries), as plain events: the library
 * reports them through `onProgress` callbacks and the CLI draws them (src/cli/progress.ts).
 */

export interface ProgressEvent {
  /** The phase being counted: `ingest`, `dense build`, `queries`, `answers`, … */
  phase: string;
  done: number;
  /** May grow while the phase runs (a record file's records are known once it is parsed). */
  total: number;
  /** What `done` and `total` count: `records`, `chunks`, `queries`. */
  unit: string;
  /** Documents written and chunks indexed so far (ingest). */
  documents?: number;
  chunks?: number;
}

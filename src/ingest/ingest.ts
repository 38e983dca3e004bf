/**
 * The ingest path's public surface: files and folders (`ingestPaths`) and prebuilt drafts (`writeDrafts`),
 * run by the ingest runner (src/ingest/runner.ts) through the stages parse → chunk → index/write → embed,
 * and the types callers see. Documents given in memory enter at src/ingest/add-documents.ts.
 */
export { changeFingerprint, sha256 } from './hash.js';
export { ingestPaths, writeDrafts } from './runner.js';
export type {
  IngestContext,
  IngestFileError,
  IngestOptions,
  IngestProgress,
  IngestReport,
} from './types.js';

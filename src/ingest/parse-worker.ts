/**
 * The parse worker's task: one document's bytes → its `ParsedDocument`, with the format parsers of
 * `parsers/by-format.ts`. Runs in a worker thread started by `parse-workers.ts` (through the plain-JS
 * `parse-worker-boot.mjs`), so a parser that exhausts its heap or never returns takes down only its thread.
 */

import type { ParsedDocument } from '../types.js';
import { type DocumentFormat, parseDocument } from './parsers/by-format.js';
import type { ZipLimits } from './parsers/zip-guard.js';

export interface ParseTask {
  path: string;
  format: DocumentFormat;
  bytes: Uint8Array;
  zip: ZipLimits;
}

export default function parse(task: ParseTask): Promise<ParsedDocument> {
  const bytes = Buffer.from(task.bytes.buffer, task.bytes.byteOffset, task.bytes.byteLength);
  return parseDocument(task.path, task.format, bytes, task.zip);
}

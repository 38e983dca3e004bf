/**
 * Stage "parse": one file's bytes (or one document given in memory) → a `ParsedDocument` with the metadata
 * its source carries. Picks the parser from the extension (or sniffs the bytes), enforces the input rules
 * (size, inflated size of archives, emptiness, binary, UTF-8) as QuarryErrors naming the file, and returns either one document or, for
 * JSON/JSONL record files, one result per record.
 * Input: a path and its bytes (`readSource` reads them), or content and its format (`parseContent`).
 * Output: `ParsedFile`. Progress: none (the runner counts a record file's records once parsed). Degrades:
 * it does not; a file-level failure throws (the runner records it for that file and keeps what is stored),
 * and a bad record is an error result in `records` while the others go on.
 */
import fs from 'node:fs';
import { extname } from 'node:path';
import { isQuarryError, QuarryError } from '../errors.js';
import type { ParsedDocument } from '../types.js';
import { type IsolationLimits, ParseWorkers } from './parse-workers.js';
import { type DocumentFormat, parseDocument } from './parsers/by-format.js';
import {
  liftMeta,
  parseJsonFile,
  parseJsonLines,
  type RecordFieldMap,
  type RecordResult,
  type SourceMeta,
} from './parsers/records.js';
import { looksLikeText } from './parsers/text.js';
import { DEFAULT_ZIP_LIMITS, type ZipLimits } from './parsers/zip-guard.js';

export type {
  ParsedRecord,
  RecordError,
  RecordFieldMap,
  RecordResult,
  SourceMeta,
} from './parsers/records.js';

export type FileFormat = 'markdown' | 'text' | 'html' | 'pdf' | 'docx' | 'json' | 'jsonl';

const EXTENSIONS: Record<string, FileFormat> = {
  '.md': 'markdown',
  '.markdown': 'markdown',
  '.mdx': 'markdown',
  '.txt': 'text',
  '.text': 'text',
  '.rst': 'text',
  '.log': 'text',
  '.csv': 'text',
  '.html': 'html',
  '.htm': 'html',
  '.xhtml': 'html',
  '.pdf': 'pdf',
  '.docx': 'docx',
  '.json': 'json',
  '.jsonl': 'jsonl',
  '.ndjson': 'jsonl',
};

/** Extensions parseFile understands (lower-case, with the dot); other files are sniffed for UTF-8 text. */
export const SUPPORTED_EXTENSIONS: readonly string[] = Object.keys(EXTENSIONS);

/** The `doc_type` each format gets unless the source overrides it (front matter / record `doc_type`). */
const DOC_TYPE: Record<FileFormat, string> = {
  markdown: 'markdown',
  text: 'text',
  html: 'html',
  pdf: 'pdf',
  docx: 'docx',
  json: 'record',
  jsonl: 'record',
};

export function formatForPath(path: string): FileFormat | undefined {
  return EXTENSIONS[extname(path).toLowerCase()];
}

export interface ParseOptions {
  /** Byte limit per document: the whole file, except JSONL where it bounds each line (each is a document). */
  maxBytes: number;
  /** Field mapping for JSON/JSONL records; BEIR defaults when absent. */
  records?: RecordFieldMap;
  /** Decompression limits for zip-based formats (DOCX); `DEFAULT_ZIP_LIMITS` when absent. */
  zip?: ZipLimits;
  /** Parse PDF, DOCX, HTML and Markdown in worker threads with these limits; in-process when absent. */
  isolation?: IsolationLimits;
}

/** A file that is one document. */
export interface ParsedDocumentFile {
  kind: 'document';
  format: FileFormat;
  /** The format's doc type; `meta.doc_type`, when set by the source, should win over it. */
  docType: string;
  doc: ParsedDocument;
  /** Quarry metadata lifted from `doc.fields` (front matter); `meta.fields` is the rest. */
  meta: SourceMeta;
}

/** A JSON/JSONL file: each record is its own document, or a per-record error (never thrown). */
export interface ParsedRecordsFile {
  kind: 'records';
  format: 'json' | 'jsonl';
  docType: 'record';
  records: RecordResult[];
  /** Blank JSONL lines skipped (not records, not errors). */
  blankLines: number;
}

export type ParsedFile = ParsedDocumentFile | ParsedRecordsFile;

/**
 * Parses one file's bytes. Throws QuarryError for a file-level failure (FILE_TOO_LARGE, EMPTY_DOCUMENT,
 * BINARY_FILE, INVALID_UTF8, PARSE_FAILED, UNSUPPORTED_FILE, ARCHIVE_BOMB); record-level failures come back in `records`.
 */
export async function parseFile(path: string, bytes: Buffer, opts: ParseOptions): Promise<ParsedFile> {
  const known = formatForPath(path);
  if (bytes.length === 0) {
    throw new QuarryError('EMPTY_DOCUMENT', `${path} is empty (0 bytes)`, { file: path });
  }
  if (known !== 'jsonl' && bytes.length > opts.maxBytes) {
    throw new QuarryError(
      'FILE_TOO_LARGE',
      `${path} is ${bytes.length} bytes, over the ${opts.maxBytes}-byte limit (raise the limit to ingest it)`,
      { file: path, bytes: bytes.length, maxBytes: opts.maxBytes },
    );
  }

  const format = known ?? sniff(path, bytes);
  try {
    if (format === 'json' || format === 'jsonl') {
      const counts = { blankLines: 0 };
      const records =
        format === 'jsonl'
          ? parseJsonLines(path, bytes, opts.maxBytes, opts.records, counts)
          : parseJsonFile(path, bytes, opts.maxBytes, opts.records, counts);
      if (records.length === 0) {
        throw new QuarryError('EMPTY_DOCUMENT', `${path} contains no records`, { file: path });
      }
      return { kind: 'records', format, docType: 'record', records, blankLines: counts.blankLines };
    }

    return await parseOneDocument(path, format, bytes, opts.zip, opts.isolation);
  } catch (e) {
    if (isQuarryError(e)) throw e;
    // A parser library blowing up on malformed input is still a file problem, not a Quarry bug to crash on.
    throw new QuarryError(
      'PARSE_FAILED',
      `${path}: ${e instanceof Error ? e.message : String(e)}`,
      { file: path, format },
      e,
    );
  }
}

/**
 * One document given as content rather than as a file (the library's `addDocuments`): the same parser,
 * checks and metadata lifting as a file of that format, so both paths give the same chunks. `label` names
 * the document in error messages.
 */
export async function parseContent(
  label: string,
  format: 'markdown' | 'text' | 'html',
  bytes: Buffer,
  isolation?: IsolationLimits,
): Promise<ParsedDocumentFile> {
  try {
    return await parseOneDocument(label, format, bytes, DEFAULT_ZIP_LIMITS, isolation);
  } catch (e) {
    if (isQuarryError(e)) throw e;
    throw new QuarryError(
      'PARSE_FAILED',
      `${label}: ${e instanceof Error ? e.message : String(e)}`,
      { file: label, format },
      e,
    );
  }
}

/** The formats whose parsers run third-party code over hostile structure: isolated when limits are given. */
const ISOLATED = new Set<FileFormat>(['pdf', 'docx', 'html', 'markdown']);

async function parseOneDocument(
  path: string,
  format: FileFormat,
  bytes: Buffer,
  zip: ZipLimits = DEFAULT_ZIP_LIMITS,
  isolation?: IsolationLimits,
): Promise<ParsedDocumentFile> {
  const f = format as DocumentFormat; // records never get here
  const doc =
    isolation !== undefined && ISOLATED.has(format)
      ? await ParseWorkers.shared(isolation).run({ path, format: f, bytes: new Uint8Array(bytes), zip })
      : await parseDocument(path, f, bytes, zip);
  if (!doc.blocks.some((b) => /\S/.test(doc.text.slice(b.start, b.end)))) {
    const hint = format === 'pdf' ? ' (a scanned PDF needs OCR first)' : '';
    throw new QuarryError('EMPTY_DOCUMENT', `${path} has no text after extraction${hint}`, { file: path });
  }
  const meta = liftMeta(doc.fields ?? {});
  if (typeof meta === 'string') {
    throw new QuarryError('PARSE_FAILED', `${path}: front matter ${meta}`, { file: path, format });
  }
  return { kind: 'document', format, docType: DOC_TYPE[format], doc, meta };
}

function sniff(path: string, bytes: Buffer): FileFormat {
  if (bytes.subarray(0, 5).toString('latin1') === '%PDF-') return 'pdf';
  if (looksLikeText(bytes)) return 'text';
  const ext = extname(path);
  throw new QuarryError(
    'UNSUPPORTED_FILE',
    `${path}: ${ext ? `"${ext}" files are not supported` : 'no file extension'} and the content is not UTF-8 text`,
    { file: path, ...(ext ? { extension: ext } : {}) },
  );
}

/**
 * Read one file for parsing. Over `maxBytes` is FILE_TOO_LARGE before anything is read, except for JSONL
 * files, where the limit applies per record (the parser enforces it); a read failure is UNREADABLE_FILE.
 */
export function readSource(abs: string, source: string, maxBytes: number): Buffer {
  const ext = extname(abs).toLowerCase();
  try {
    const st = fs.statSync(abs);
    if (st.size > maxBytes && ext !== '.jsonl' && ext !== '.ndjson') {
      throw new QuarryError('FILE_TOO_LARGE', `${source} is ${st.size} bytes, the limit is ${maxBytes}`, {
        path: source,
        bytes: st.size,
        limit: maxBytes,
      });
    }
    return fs.readFileSync(abs);
  } catch (e) {
    if (e instanceof QuarryError) throw e;
    throw new QuarryError('UNREADABLE_FILE', `${source}: ${(e as Error).message}`, { path: source }, e);
  }
}

/** Whether a path is a record file (JSON/JSONL: many documents, each hashed on its own). */
export function isRecordFile(abs: string): boolean {
  const ext = extname(abs).toLowerCase();
  return ext === '.jsonl' || ext === '.ndjson' || ext === '.json';
}

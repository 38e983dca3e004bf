/**
 * Ingestion orchestrator: walk files → hash → (skip unchanged) → parse → chunk → write in transactional
 * batches → mirror each committed batch into the indexes. Per-file failures are reported and never touch
 * what is already stored; files that vanished from an ingested folder are removed.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { QuarryConfig } from '../config/config.js';
import { describeError, QuarryError } from '../errors.js';
import { type DocumentRedactor, redactDocument, redactDraft } from '../privacy/redact.js';
import type { DocumentStore, WriteOutcome } from '../store/types.js';
import type { DocumentDraft, ParsedDocument, Tokenizer } from '../types.js';
import { chunkDocument } from './chunker.js';
import { parseFile } from './parse.js';
import type { RecordFieldMap, SourceMeta } from './parsers/records.js';
import { countTokens } from './tokens.js';

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

/** A file's share of the record count: one until its records are known. */
interface FileRecords {
  found: number;
  done: number;
}

export interface IngestFileError {
  path: string;
  /** Record id or line for record files. */
  record?: string;
  code: string;
  message: string;
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
}

interface FileTask {
  abs: string;
  source: string;
}

const SKIP_DIRS = new Set(['node_modules', '.git', '.quarry', '.hg', '.svn']);

/** Sources are posix paths relative to the working directory (absolute outside it). */
function toSource(abs: string): string {
  const rel = path.relative(process.cwd(), abs);
  const chosen = rel !== '' && !rel.startsWith('..') && !path.isAbsolute(rel) ? rel : abs;
  return chosen.split(path.sep).join('/');
}

function walk(dir: string, out: FileTask[], errors: IngestFileError[]): void {
  let entries: fs.Dirent[];
  try {
    entries = fs.readdirSync(dir, { withFileTypes: true });
  } catch (e) {
    errors.push({
      path: toSource(dir),
      code: 'UNREADABLE_FILE',
      message: `Cannot read directory: ${(e as Error).message}`,
    });
    return;
  }
  entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  for (const e of entries) {
    if (e.name.startsWith('.')) continue;
    const abs = path.join(dir, e.name);
    if (e.isDirectory()) {
      if (!SKIP_DIRS.has(e.name)) walk(abs, out, errors);
    } else if (e.isFile()) out.push({ abs, source: toSource(abs) });
  }
}

export function sha256(...parts: Array<string | Uint8Array>): string {
  const h = createHash('sha256');
  for (const p of parts) h.update(p);
  return h.digest('hex');
}

/** Run `fn` over items with at most `limit` in flight, preserving completion order via callbacks. */
async function pool<T>(items: T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const workers = Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length) {
      const item = items[next++]!;
      await fn(item);
    }
  });
  await Promise.all(workers);
}

export async function ingestPaths(
  ctx: IngestContext,
  inputs: string[],
  opts: IngestOptions = {},
): Promise<IngestReport> {
  const started = performance.now();
  const errors: IngestFileError[] = [];
  const tasks: FileTask[] = [];
  const roots: string[] = [];
  for (const input of inputs) {
    const abs = path.resolve(input);
    let st: fs.Stats;
    try {
      st = fs.statSync(abs);
    } catch (e) {
      errors.push({
        path: input,
        code: 'UNREADABLE_FILE',
        message: `Cannot read ${input}: ${(e as Error).message}`,
      });
      continue;
    }
    if (st.isDirectory()) {
      roots.push(toSource(abs));
      walk(abs, tasks, errors);
    } else tasks.push({ abs, source: toSource(abs) });
  }
  // The same file reached twice (a folder and a file in it, overlapping folders) is ingested once.
  const files = [...new Map(tasks.map((t) => [t.abs, t])).values()];
  const writer = new BatchWriter(ctx, opts.onProgress, files.length, started);
  const seen = new Set<string>();
  /** Record id → the record file that supplied it in this run (ids must be unique across files too). */
  const claimed = new Map<string, string>();
  const recordSources = new Set<string>();
  const chunkingFingerprint = changeFingerprint(ctx, opts);

  await pool(files, ctx.config.ingest.concurrency, async (task) => {
    const records = writer.fileStarted();
    try {
      await ingestFile(
        ctx,
        task,
        opts,
        chunkingFingerprint,
        writer,
        seen,
        recordSources,
        claimed,
        errors,
        records,
      );
    } catch (e) {
      const d = describeError(e);
      errors.push({ path: task.source, code: d.code, message: d.message });
      // A file that failed keeps whatever was stored for it: mark it seen so pruning leaves it alone.
      seen.add(task.source);
      for (const s of ctx.store.documentsUnderSource(task.source)) seen.add(s.id);
    }
    writer.fileDone(records);
    await writer.maybeFlush();
  });

  // Prune documents that disappeared: only under folders we walked and record files we read.
  if (opts.prune !== false) {
    const gone = new Set<string>();
    for (const root of roots)
      for (const d of ctx.store.documentsUnderSource(root)) if (!seen.has(d.id)) gone.add(d.id);
    for (const src of recordSources)
      for (const d of ctx.store.documentsUnderSource(src)) if (!seen.has(d.id)) gone.add(d.id);
    writer.deletes.push(...gone);
  }
  await writer.flush();
  if (writer.wrote) {
    ctx.persist();
    ctx.store.checkpoint();
  }
  return writer.report(files.length, errors, performance.now() - started);
}

/**
 * What besides its content makes a document "changed": the chunking settings, the options added to every
 * document, and the redaction settings (other ones must rewrite stored text). Part of every content hash.
 */
export function changeFingerprint(ctx: IngestContext, opts: IngestOptions): string {
  return JSON.stringify({
    chunking: ctx.config.chunking,
    extra: [opts.tags, opts.accessGroups, opts.fields],
    ...(ctx.redact ? { redact: ctx.redact.fingerprint } : {}),
    // Another tokenizer measures chunks differently: every document is re-chunked with it.
    ...(ctx.tokenizer ? { tokenizer: ctx.tokenizer.id } : {}),
  });
}

async function ingestFile(
  ctx: IngestContext,
  task: FileTask,
  opts: IngestOptions,
  fingerprint: string,
  writer: BatchWriter,
  seen: Set<string>,
  recordSources: Set<string>,
  claimed: Map<string, string>,
  errors: IngestFileError[],
  records: FileRecords,
): Promise<void> {
  const max = ctx.config.ingest.maxFileBytes;
  const ext = path.extname(task.abs).toLowerCase();
  const isRecords = ext === '.jsonl' || ext === '.ndjson' || ext === '.json';
  let bytes: Buffer;
  try {
    const st = fs.statSync(task.abs);
    // A record file is many documents: the limit applies per record (the parser enforces it).
    if (st.size > max && ext !== '.jsonl' && ext !== '.ndjson') {
      throw new QuarryError('FILE_TOO_LARGE', `${task.source} is ${st.size} bytes, the limit is ${max}`, {
        path: task.source,
        bytes: st.size,
        limit: max,
      });
    }
    bytes = fs.readFileSync(task.abs);
  } catch (e) {
    if (e instanceof QuarryError) throw e;
    throw new QuarryError(
      'UNREADABLE_FILE',
      `${task.source}: ${(e as Error).message}`,
      { path: task.source },
      e,
    );
  }
  if (!isRecords) {
    const hash = sha256(bytes, fingerprint);
    seen.add(task.source);
    const state = ctx.store.documentStates([task.source]).get(task.source);
    if (state?.hash === hash) {
      writer.unchanged.push(task.source);
      return;
    }
  }
  const parsed = await parseFile(task.abs, bytes, { maxBytes: max, records: opts.records });
  if (parsed.kind === 'document') {
    const id = task.source;
    writer.upserts.push(
      buildDraft(
        ctx,
        id,
        task.source,
        sha256(bytes, fingerprint),
        parsed.doc,
        parsed.docType,
        parsed.meta,
        opts,
        path.basename(task.abs),
        writer.redactions,
      ),
    );
    return;
  }
  recordSources.add(task.source);
  writer.recordsFound(records, parsed.records.length);
  const ids = parsed.records.filter((r) => r.ok).map((r) => r.id);
  const states = ctx.store.documentStates(ids);
  // A record that failed before its id was known may be one that is stored: keep everything stored from
  // this file rather than prune a document because its line went bad (as for a file that fails as a whole).
  if (parsed.records.some((r) => !r.ok && r.id === undefined)) {
    for (const s of ctx.store.documentsUnderSource(task.source)) seen.add(s.id);
  }
  for (const r of parsed.records) {
    writer.recordDone(records);
    if (!r.ok) {
      errors.push({
        path: task.source,
        record: r.id ?? (r.line !== undefined ? `line ${r.line}` : `#${r.index}`),
        code: r.error.code,
        message: r.error.message,
      });
      if (r.id !== undefined) seen.add(r.id);
      continue;
    }
    const owner = claimed.get(r.id);
    if (owner !== undefined) {
      // Writing both would flip the stored document between the files on every run.
      errors.push({
        path: task.source,
        record: r.id,
        code: 'INVALID_RECORD',
        message: `Invalid JSON record: duplicate id ${r.id} in ${task.source}${owner === task.source ? '' : ` (already read from ${owner})`}`,
      });
      continue;
    }
    claimed.set(r.id, task.source);
    seen.add(r.id);
    const hash = sha256(JSON.stringify([r.doc.text, r.doc.title, r.meta]), fingerprint);
    if (states.get(r.id)?.hash === hash) {
      writer.unchanged.push(r.id);
      continue;
    }
    writer.upserts.push(
      buildDraft(
        ctx,
        r.id,
        task.source,
        hash,
        r.doc,
        r.meta.doc_type ?? 'record',
        r.meta,
        opts,
        // A record's id is a key, not words about it: an untitled record stays untitled (never a title term).
        '',
        writer.redactions,
      ),
    );
    if (writer.upserts.length >= ctx.config.ingest.batchSize) await writer.flush();
  }
}

/** Redact (when configured), chunk and assemble one parsed document into a draft ready to write. */
export function buildDraft(
  ctx: IngestContext,
  id: string,
  source: string,
  hash: string,
  parsed: ParsedDocument,
  docType: string,
  meta: SourceMeta,
  opts: IngestOptions,
  fallbackTitle: string,
  redactions: Record<string, number>,
): DocumentDraft {
  const merged = { ...meta.fields, ...opts.fields };
  delete merged.title;
  const parts = { doc: parsed, title: parsed.title?.trim() || fallbackTitle, fields: merged };
  const { doc, title, fields } = ctx.redact ? redactDocument(ctx.redact, parts, redactions) : parts;
  const tokenizer = ctx.tokenizer;
  const count = tokenizer === undefined ? countTokens : (t: string) => tokenizer.count(t);
  const { sections, chunks } = chunkDocument(doc, { ...ctx.config.chunking, countTokens: count });
  return {
    id,
    hash,
    text: doc.text,
    meta: {
      source,
      title,
      doc_type: meta.doc_type ?? docType,
      tags: [...new Set([...(meta.tags ?? []), ...(opts.tags ?? [])])],
      access_groups: [...new Set([...(meta.access_groups ?? []), ...(opts.accessGroups ?? [])])],
      fields,
      ...(meta.created_at ? { created_at: meta.created_at } : {}),
      ...(meta.updated_at ? { updated_at: meta.updated_at } : {}),
    },
    sections,
    chunks,
  };
}

/** Write already-built drafts through the same batch path (library API). */
export async function writeDrafts(ctx: IngestContext, drafts: DocumentDraft[]): Promise<IngestReport> {
  const started = performance.now();
  const writer = new BatchWriter(ctx, undefined, drafts.length, started);
  const states = ctx.store.documentStates(drafts.map((d) => d.id));
  for (const d of drafts) {
    if (states.get(d.id)?.hash === d.hash) writer.unchanged.push(d.id);
    else writer.upserts.push(ctx.redact ? redactDraft(ctx.redact, d, countTokens, writer.redactions) : d);
    await writer.maybeFlush();
  }
  await writer.flush();
  if (writer.wrote) ctx.persist();
  return writer.report(drafts.length, [], performance.now() - started);
}

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
  private filesDone = 0;
  private filesStarted = 0;
  private recordsDone = 0;
  /** Records of the files started so far (each counts one until its records are known). */
  private recordsKnown = 0;
  private lastProgress = 0;

  constructor(
    private readonly ctx: IngestContext,
    private readonly onProgress: ((p: IngestProgress) => void) | undefined,
    private readonly filesTotal: number,
    private readonly started: number,
  ) {
    this.indexVersion = ctx.store.indexVersion();
  }

  fileStarted(): FileRecords {
    this.filesStarted++;
    this.recordsKnown++;
    return { found: 1, done: 0 };
  }

  /** A record file was parsed: it holds `n` records, not one. */
  recordsFound(file: FileRecords, n: number): void {
    this.recordsKnown += n - file.found;
    file.found = n;
    this.progress(true);
  }

  recordDone(file: FileRecords): void {
    file.done++;
    this.recordsDone++;
    this.progress(true);
  }

  /** The file is finished (or failed): whatever of it was not counted yet is done. */
  fileDone(file: FileRecords): void {
    this.recordsDone += Math.max(0, file.found - file.done);
    file.done = file.found;
    this.filesDone++;
    this.progress();
  }

  async maybeFlush(): Promise<void> {
    if (this.upserts.length >= this.ctx.config.ingest.batchSize) await this.flush();
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
      else this.removed.push(r.id);
      this.chunks += r.addedChunks.length;
    }
    this.progress();
    // Let progress output and other I/O breathe between synchronous batch commits.
    await new Promise<void>((resolve) => setImmediate(resolve));
  }

  /** `throttled`: per-record calls report at most every 50 ms (a record can take microseconds). */
  private progress(throttled = false): void {
    if (this.onProgress === undefined) return;
    const now = performance.now();
    if (throttled && now - this.lastProgress < 50) return;
    this.lastProgress = now;
    this.onProgress({
      filesDone: this.filesDone,
      filesTotal: this.filesTotal,
      recordsDone: this.recordsDone,
      recordsTotal: this.recordsKnown + (this.filesTotal - this.filesStarted),
      documents: this.added.length + this.updated.length,
      chunks: this.chunks,
      elapsedMs: now - this.started,
    });
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

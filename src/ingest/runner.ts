/**
 * The ingest runner: owns the order of the ingest stages and everything around them.
 *
 *   sources (src/ingest/sources.ts) → skip unchanged (src/ingest/hash.ts) → parse (src/ingest/parse.ts)
 *   → chunk (src/ingest/chunk.ts) → index/write (src/ingest/write.ts) → embed (src/ingest/embed.ts)
 *
 * It sends the progress events (src/ingest/progress.ts), collects per-file and per-record errors into the
 * report (a failed file keeps what is stored for it and never stops the others), skips documents whose
 * content hash is stored already, and prunes documents that vanished from an ingested folder or record file.
 * Files run `ingest.concurrency` at a time; documents given in memory (src/ingest/add-documents.ts) are all
 * parsed and chunked before anything is written.
 */
import fs from 'node:fs';
import path from 'node:path';
import { describeError } from '../errors.js';
import type { DocumentStore } from '../store/types.js';
import type { DocumentDraft } from '../types.js';
import { chunkParsed, redactPrebuilt } from './chunk.js';
import { embedWritten } from './embed.js';
import { changeFingerprint, isUnchanged, type StoredHashes, sha256 } from './hash.js';
import {
  isRecordFile,
  type ParsedDocumentFile,
  type ParsedFile,
  type ParsedRecordsFile,
  parseFile,
  type RecordResult,
  readSource,
} from './parse.js';
import { isolationOf } from './parse-workers.js';
import { type FileRecords, ProgressTracker } from './progress.js';
import { collectSources, type FileTask } from './sources.js';
import type { IngestContext, IngestFileError, IngestOptions, IngestReport } from './types.js';
import { BatchWriter } from './write.js';

/** The state of one `ingestPaths` run, shared by its files. */
interface PathsRun {
  ctx: IngestContext;
  opts: IngestOptions;
  fingerprint: string;
  writer: BatchWriter;
  progress: ProgressTracker;
  errors: IngestFileError[];
  /** Document ids (and file sources) met in this run: what pruning keeps. */
  seen: Set<string>;
  /** Record id → the record file that supplied it in this run (ids must be unique across files too). */
  claimed: Map<string, string>;
  recordSources: Set<string>;
  /** Blank JSONL lines skipped in this run. */
  blankLines: number;
  /** Files finish parsing in any order; their results are applied in the order they started. */
  order: InOrder;
}

/**
 * Run `fn` over the files with at most `limit` in flight and at most `maxBytes` of them (by size on disk) at
 * once; a file larger than `maxBytes` runs alone. Files start in order.
 */
export async function pool(
  items: FileTask[],
  limit: number,
  maxBytes: number,
  fn: (item: FileTask) => Promise<void>,
): Promise<void> {
  const sizeOf = (t: FileTask) => {
    try {
      return fs.statSync(t.abs).size;
    } catch {
      return 0; // unreadable: reading it reports the error
    }
  };
  let next = 0;
  let running = 0;
  let bytes = 0;
  await new Promise<void>((resolve, reject) => {
    const launch = (): void => {
      while (next < items.length && running < limit) {
        const item = items[next]!;
        const size = sizeOf(item);
        if (running > 0 && bytes + size > maxBytes) break;
        next++;
        running++;
        bytes += size;
        fn(item).then(() => {
          running--;
          bytes -= size;
          if (next >= items.length && running === 0) resolve();
          else launch();
        }, reject);
      }
    };
    if (items.length === 0) resolve();
    else launch();
  });
}

/** Ingest files and folders: every stage in order, then the report (and the dense catch-up). */
export async function ingestPaths(
  ctx: IngestContext,
  inputs: string[],
  opts: IngestOptions = {},
): Promise<IngestReport> {
  const started = performance.now();
  const errors: IngestFileError[] = [];
  const { files, roots, skipped } = collectSources(inputs, errors, {
    followSymlinks: opts.followSymlinks,
    base: opts.sourceRoot,
  });
  const writer: BatchWriter = new BatchWriter(ctx, () => progress.emit());
  const progress = new ProgressTracker(opts.onProgress, files.length, started, () => writer);
  const run: PathsRun = {
    ctx,
    opts,
    fingerprint: changeFingerprint(ctx, opts),
    writer,
    progress,
    errors,
    seen: new Set(),
    claimed: new Map(),
    recordSources: new Set(),
    blankLines: 0,
    order: new InOrder(),
  };
  const { concurrency, maxInFlightBytes } = ctx.config.ingest;
  await pool(files, concurrency, maxInFlightBytes, (task) => ingestTask(run, task));
  if (opts.prune !== false) writer.deletes.push(...vanished(ctx.store, roots, run));
  await writer.flush();
  if (writer.wrote) {
    ctx.persist();
    ctx.store.checkpoint();
  }
  const report = writer.report(files.length, errors, performance.now() - started);
  if (skipped.length > 0) report.skipped = skipped;
  if (run.blankLines > 0) report.blankLines = run.blankLines;
  return embedWritten(report, ctx.dense);
}

/** Documents that disappeared: only under folders we walked and record files we read. */
function vanished(store: DocumentStore, roots: string[], run: PathsRun): Set<string> {
  const gone = new Set<string>();
  for (const src of [...roots, ...run.recordSources])
    for (const d of store.documentsUnderSource(src)) if (!run.seen.has(d.id)) gone.add(d.id);
  return gone;
}

/** Hands out turns in the order tasks start, whatever order their slow parts (parsing) finish in. */
class InOrder {
  private last: Promise<void> = Promise.resolve();

  next(): { wait: Promise<void>; done: () => void } {
    const wait = this.last;
    let done!: () => void;
    this.last = new Promise<void>((resolve) => {
      done = resolve;
    });
    return { wait, done };
  }
}

/** A file read, hashed and parsed (the part that may run in a worker thread), or found unchanged. */
type Prepared = { unchanged: true } | { unchanged: false; parsed: ParsedFile; hash: string };

/**
 * One file, its failure collected into the report rather than thrown. Files parse concurrently (in worker
 * threads for most formats) and finish in any order; what follows — chunking, the write batch, the report
 * lines — runs in the order the files started, so that a run writes the same documents with the same chunk
 * ids in the same order every time.
 */
async function ingestTask(run: PathsRun, task: FileTask): Promise<void> {
  const turn = run.order.next();
  const records = run.progress.fileStarted();
  let prepared: Prepared | undefined;
  let failure: unknown;
  try {
    prepared = await prepareFile(run, task);
  } catch (e) {
    failure = e;
  }
  await turn.wait;
  try {
    if (failure !== undefined) throw failure;
    await applyFile(run, task, prepared!, records);
  } catch (e) {
    const d = describeError(e);
    run.errors.push({ path: task.source, code: d.code, message: d.message });
    // A file that failed keeps whatever was stored for it: mark it seen so pruning leaves it alone.
    run.seen.add(task.source);
    for (const s of run.ctx.store.documentsUnderSource(task.source)) run.seen.add(s.id);
  }
  try {
    run.progress.fileDone(records);
    await run.writer.maybeFlush();
  } finally {
    turn.done();
  }
}

async function prepareFile(run: PathsRun, task: FileTask): Promise<Prepared> {
  const { ctx, opts, fingerprint } = run;
  const max = ctx.config.ingest.maxFileBytes;
  const bytes = readSource(task.abs, task.source, max);
  // Record files are hashed record by record; a file that is one document, as a whole.
  const hash = isRecordFile(task.abs) ? '' : sha256(bytes, fingerprint);
  if (hash !== '' && isUnchanged(ctx.store.documentStates([task.source]), task.source, hash))
    return { unchanged: true };
  const { maxInflatedBytes, maxCompressionRatio } = ctx.config.ingest;
  // Named by its source in messages (relative to the ingest root), never by a server path.
  const parsed = await parseFile(task.source, bytes, {
    maxBytes: max,
    records: opts.records,
    zip: { maxInflatedBytes, maxCompressionRatio },
    ...isolationOf(ctx.config.ingest),
  });
  return { unchanged: false, parsed, hash };
}

async function applyFile(
  run: PathsRun,
  task: FileTask,
  prepared: Prepared,
  records: FileRecords,
): Promise<void> {
  if (!isRecordFile(task.abs)) run.seen.add(task.source);
  if (prepared.unchanged) {
    run.writer.unchanged.push(task.source);
    return;
  }
  const { parsed, hash } = prepared;
  if (parsed.kind === 'records') return ingestRecords(run, task, parsed, records);
  run.writer.upserts.push(chunkFile(run, task, parsed, hash));
}

function chunkFile(run: PathsRun, task: FileTask, parsed: ParsedDocumentFile, hash: string): DocumentDraft {
  const input = {
    id: task.source,
    source: task.source,
    hash,
    doc: parsed.doc,
    docType: parsed.docType,
    meta: parsed.meta,
    fallbackTitle: path.basename(task.abs),
  };
  return chunkParsed(input, run.opts, run.ctx, run.writer.redactions);
}

/** A record file: each record is its own document, skipped, written or failed on its own. */
async function ingestRecords(
  run: PathsRun,
  task: FileTask,
  parsed: ParsedRecordsFile,
  records: FileRecords,
): Promise<void> {
  const { ctx, writer, progress } = run;
  run.recordSources.add(task.source);
  run.blankLines += parsed.blankLines;
  progress.recordsFound(records, parsed.records.length);
  const stored = ctx.store.documentStates(parsed.records.filter((r) => r.ok).map((r) => r.id));
  // A record that failed before its id was known may be one that is stored: keep everything stored from
  // this file rather than prune a document because its line went bad (as for a file that fails as a whole).
  if (parsed.records.some((r) => !r.ok && r.id === undefined)) {
    for (const s of ctx.store.documentsUnderSource(task.source)) run.seen.add(s.id);
  }
  for (const r of parsed.records) {
    progress.recordDone(records);
    const draft = recordDraft(run, task, r, stored);
    if (draft === undefined) continue;
    writer.upserts.push(draft);
    await writer.maybeFlush();
  }
}

/** The draft for one record; undefined when it failed, repeats an id, or is unchanged. */
function recordDraft(
  run: PathsRun,
  task: FileTask,
  r: RecordResult,
  stored: StoredHashes,
): DocumentDraft | undefined {
  if (!r.ok) {
    run.errors.push({
      path: task.source,
      record: r.id ?? (r.line !== undefined ? `line ${r.line}` : `#${r.index}`),
      code: r.error.code,
      message: r.error.message,
    });
    if (r.id !== undefined) run.seen.add(r.id);
    return undefined;
  }
  const owner = run.claimed.get(r.id);
  if (owner !== undefined) {
    // Writing both would flip the stored document between the files on every run.
    run.errors.push({
      path: task.source,
      record: r.id,
      code: 'INVALID_RECORD',
      message: `Invalid JSON record: duplicate id ${r.id} in ${task.source}${owner === task.source ? '' : ` (already read from ${owner})`}`,
    });
    return undefined;
  }
  run.claimed.set(r.id, task.source);
  run.seen.add(r.id);
  const hash = sha256(JSON.stringify([r.doc.text, r.doc.title, r.meta]), run.fingerprint);
  if (isUnchanged(stored, r.id, hash)) {
    run.writer.unchanged.push(r.id);
    return undefined;
  }
  const input = { id: r.id, source: task.source, hash, doc: r.doc, docType: r.meta.doc_type ?? 'record' };
  return chunkParsed(
    // A record's id is a key, not words about it: an untitled record stays untitled (never a title term).
    { ...input, meta: r.meta, fallbackTitle: '' },
    run.opts,
    run.ctx,
    run.writer.redactions,
  );
}

/** One document given in memory, as the runner takes it: identity, what its hash covers, how to parse it. */
export interface MemorySource {
  id: string;
  source: string;
  /** Everything given for the document (hashed with the change fingerprint). */
  hashParts: unknown[];
  parse(): Promise<ParsedDocumentFile>;
}

/**
 * Documents given in memory: skip unchanged → parse → chunk for every one first (a bad one throws and
 * nothing is written), then write and embed.
 */
export async function ingestMemory(
  ctx: IngestContext,
  sources: readonly MemorySource[],
  opts: Pick<IngestOptions, 'tags' | 'accessGroups' | 'fields'>,
  started = performance.now(),
): Promise<IngestReport> {
  const fingerprint = changeFingerprint(ctx, opts);
  const stored = ctx.store.documentStates(sources.map((s) => s.id));
  const writer = new BatchWriter(ctx);
  const drafts: DocumentDraft[] = [];
  for (const s of sources) {
    const hash = sha256(JSON.stringify(s.hashParts), fingerprint);
    if (isUnchanged(stored, s.id, hash)) {
      writer.unchanged.push(s.id);
      continue;
    }
    const { doc, docType, meta } = await s.parse();
    const input = { id: s.id, source: s.source, hash, doc, docType, meta, fallbackTitle: '' };
    drafts.push(chunkParsed(input, opts, ctx, writer.redactions));
  }
  // Everything parsed and chunked: only now does anything reach the store.
  for (const d of drafts) {
    writer.upserts.push(d);
    await writer.maybeFlush();
  }
  await writer.flush();
  if (writer.wrote) ctx.persist();
  return embedWritten(writer.report(sources.length, [], performance.now() - started), ctx.dense);
}

/** Write already-built drafts through the same batch path (library API): skip unchanged → redact → write. */
export async function writeDrafts(ctx: IngestContext, drafts: DocumentDraft[]): Promise<IngestReport> {
  const started = performance.now();
  const writer = new BatchWriter(ctx);
  const stored = ctx.store.documentStates(drafts.map((d) => d.id));
  for (const d of drafts) {
    if (isUnchanged(stored, d.id, d.hash)) writer.unchanged.push(d.id);
    else writer.upserts.push(redactPrebuilt(d, ctx.redact, writer.redactions));
    await writer.maybeFlush();
  }
  await writer.flush();
  if (writer.wrote) ctx.persist();
  return writer.report(drafts.length, [], performance.now() - started);
}

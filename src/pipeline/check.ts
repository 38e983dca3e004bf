/**
 * `quarry check`: is the store consistent, and does every derived index agree with it? The database is the
 * source of truth; the BM25 and dense snapshots and the document catalog are derived from it. The check reads
 * the snapshots as they are on disk (a damaged one is found, not silently rebuilt), and `repair` rebuilds the
 * derived indexes from the store, removes chunks whose document is gone (reported), and checks again. It never
 * deletes a document.
 */
import { type QuarryConfig, type QuarryConfigInput, resolveConfig } from '../config/config.js';
import { INDEX_ARTIFACT, peekSnapshot } from '../indexes/dense/dense-index.js';
import { LexicalIndex, SNAPSHOT_NAME } from '../indexes/lexical/lexical-index.js';
import { decodeSnapshot, readSnapshotHeader } from '../indexes/lexical/snapshot.js';
import { deserializeVectorIndex } from '../indexes/vector/auto-index.js';
import type { DocumentCatalog } from '../retrieve/catalog.js';
import { SqliteStore } from '../store/sqlite/sqlite-store.js';
import type { DocumentStore } from '../store/types.js';

/** Stable finding codes; `error` findings fail the check (exit 5), `warning` ones do not. */
export type CheckCode =
  | 'SQLITE_INTEGRITY'
  | 'SQLITE_FOREIGN_KEY'
  | 'ORPHAN_CHUNK'
  | 'ORPHAN_SECTION'
  | 'DOCUMENT_WITHOUT_CHUNKS'
  | 'CHUNK_SPAN_OUTSIDE'
  | 'CHUNK_SPAN_TEXT'
  | 'BM25_SNAPSHOT_CORRUPT'
  | 'BM25_SNAPSHOT_STALE'
  | 'BM25_MISSING_CHUNK'
  | 'BM25_EXTRA_CHUNK'
  | 'BM25_WRONG_DOCUMENT'
  | 'DENSE_SNAPSHOT_CORRUPT'
  | 'DENSE_SNAPSHOT_STALE'
  | 'DENSE_MISSING_CHUNK'
  | 'DENSE_EXTRA_VECTORS'
  | 'CATALOG_MISMATCH';

export interface CheckFinding {
  code: CheckCode;
  severity: 'error' | 'warning';
  message: string;
  /** How many instances (chunks, documents, lines) the finding covers. */
  count: number;
  /** Up to 20 examples (chunk ids, document ids…). */
  examples?: Array<string | number>;
}

export interface CheckReport {
  /** No `error` finding. */
  ok: boolean;
  findings: CheckFinding[];
  counts: {
    documents: number;
    chunks: number;
    /** Chunks in the BM25 snapshot on disk (null when there is none or it is unreadable). */
    bm25Snapshot: number | null;
    /** Vectors in the dense snapshot on disk (null when none is built). */
    denseSnapshot: number | null;
  };
  /** What `repair` did (empty without it). */
  repaired: string[];
  /** With `repair`: the findings before it (`findings` are those of the check after). */
  before?: CheckFinding[];
}

export interface CheckTargets {
  store: SqliteStore;
  /** Used for its fingerprint (analyzer settings); in memory it is compared too when loaded. */
  lexical: LexicalIndex;
  /** The in-memory catalog, compared with the store's documents when given. */
  catalog?: DocumentCatalog;
}

const EXAMPLES = 20;

function finding(
  code: CheckCode,
  message: string,
  count: number,
  examples?: Array<string | number>,
  severity: 'error' | 'warning' = 'error',
): CheckFinding {
  return {
    code,
    severity,
    message,
    count,
    ...(examples === undefined ? {} : { examples: examples.slice(0, EXAMPLES) }),
  };
}

/** Exit code of `quarry check` when an `error` finding remains: a store problem (see src/errors.ts). */
export const CHECK_FAILED_EXIT = 5;

/**
 * The store at `dir` and its BM25 index over it, as configured (the index not loaded yet): what
 * `Quarry.open` and the on-disk check both start from.
 */
export function openStoreIndexes(
  dir: string,
  config: QuarryConfig,
  create: boolean,
): { store: SqliteStore; lexical: LexicalIndex } {
  const store = SqliteStore.open(dir, {
    create,
    settings: { analyzer: { ...config.analyzer }, fields: config.bm25.fields },
  });
  return { store, lexical: lexicalIndexFor(store, config) };
}

/** The BM25 index over `store` as configured (not loaded yet); any DocumentStore, the SQLite one or a user's. */
export function lexicalIndexFor(store: DocumentStore, config: QuarryConfig): LexicalIndex {
  return new LexicalIndex(
    store,
    config.analyzer,
    config.bm25.fields,
    { k1: config.bm25.k1, b: config.bm25.b, lengthNorm: config.bm25.lengthNorm },
    { title: config.bm25.titleWeight, body: config.bm25.bodyWeight },
  );
}

/**
 * Check the store in `dir` as it is on disk, without loading its indexes (loading would rebuild a damaged or
 * stale snapshot and hide it). The store must exist (STORE_NOT_FOUND otherwise); nothing is written.
 */
export function checkStoreDir(dir: string, configInput: QuarryConfigInput = {}): CheckReport {
  const config: QuarryConfig = resolveConfig(configInput);
  const { store, lexical } = openStoreIndexes(dir, config, false);
  try {
    return checkStore({ store, lexical });
  } finally {
    store.close();
  }
}

/** Run every check; read-only. */
export function checkStore(t: CheckTargets): CheckReport {
  const findings: CheckFinding[] = [];
  const db = t.store.integrityReport();
  if (db.integrity.length > 0)
    findings.push(finding('SQLITE_INTEGRITY', db.integrity.slice(0, 5).join('; '), db.integrity.length));
  if (db.foreignKeys > 0)
    findings.push(finding('SQLITE_FOREIGN_KEY', 'rows that break a foreign key', db.foreignKeys));
  if (db.orphanChunks.length > 0)
    findings.push(
      finding(
        'ORPHAN_CHUNK',
        'chunks whose document is not in the store',
        db.orphanChunks.length,
        db.orphanChunks.map((c) => c.chunkId),
      ),
    );
  if (db.orphanSections > 0)
    findings.push(
      finding('ORPHAN_SECTION', 'sections whose document is not in the store', db.orphanSections),
    );
  if (db.emptyDocuments.length > 0)
    findings.push(
      finding(
        'DOCUMENT_WITHOUT_CHUNKS',
        'documents with text but no chunk',
        db.emptyDocuments.length,
        db.emptyDocuments,
      ),
    );
  const outside = db.badSpans.filter((s) => s.reason === 'outside');
  const text = db.badSpans.filter((s) => s.reason === 'text');
  if (outside.length > 0)
    findings.push(
      finding(
        'CHUNK_SPAN_OUTSIDE',
        "chunks whose span is not inside their document's text",
        outside.length,
        outside.map((s) => s.chunkId),
      ),
    );
  if (text.length > 0)
    findings.push(
      finding(
        'CHUNK_SPAN_TEXT',
        "chunks whose text differs from their document's text at their span",
        text.length,
        text.map((s) => s.chunkId),
      ),
    );

  // Every chunk that belongs to a document, with its document's key (the group the indexes keep).
  const chunks = new Map<number, number>();
  for (const c of t.store.iterateChunks()) chunks.set(c.id, c.docKey);
  const storeVersion = t.store.indexVersion();

  const bm25Snapshot = checkBm25(t, chunks, storeVersion, findings);
  const denseSnapshot = checkDense(t, chunks, storeVersion, findings);

  if (t.catalog !== undefined) {
    const keys: number[] = [];
    for (const e of t.store.catalog()) keys.push(e.key);
    const missing = keys.filter((k) => t.catalog!.get(k) === undefined);
    if (missing.length > 0 || t.catalog.size !== keys.length)
      findings.push(
        finding(
          'CATALOG_MISMATCH',
          `the catalog holds ${t.catalog.size} documents, the store ${keys.length}`,
          Math.max(missing.length, Math.abs(t.catalog.size - keys.length)),
          missing,
        ),
      );
  }

  return {
    ok: findings.every((f) => f.severity !== 'error'),
    findings,
    counts: { documents: db.counts.documents, chunks: db.counts.chunks, bm25Snapshot, denseSnapshot },
    repaired: [],
  };
}

/** The BM25 snapshot on disk against the store's chunks; returns its chunk count. */
function checkBm25(
  t: CheckTargets,
  chunks: Map<number, number>,
  storeVersion: number,
  findings: CheckFinding[],
): number | null {
  const buf = t.store.readArtifact(SNAPSHOT_NAME);
  if (buf === undefined) return null; // built from the store on the next open
  const header = readSnapshotHeader(buf);
  if (header === undefined) {
    findings.push(finding('BM25_SNAPSHOT_CORRUPT', `${SNAPSHOT_NAME} has no valid header`, 1));
    return null;
  }
  const index = decodeSnapshot(buf, header.indexVersion, header.fingerprint);
  if (index === undefined) {
    findings.push(finding('BM25_SNAPSHOT_CORRUPT', `${SNAPSHOT_NAME} cannot be decoded`, 1));
    return null;
  }
  if (header.indexVersion !== storeVersion || header.fingerprint !== t.lexical.fingerprint) {
    // A snapshot older than the last commit (a process stopped before persisting it) is by design: opening
    // the store rebuilds the index rather than trusting it.
    findings.push(
      finding(
        'BM25_SNAPSHOT_STALE',
        `${SNAPSHOT_NAME} is for index version ${header.indexVersion}, the store is at ${storeVersion}; it is rebuilt on open`,
        1,
        undefined,
        'warning',
      ),
    );
    return index.size;
  }
  const snap = index.snapshot();
  const seen = new Set<number>();
  const extra: number[] = [];
  const wrongDoc: number[] = [];
  for (let i = 0; i < snap.count; i++) {
    const id = snap.chunkIds[i]!;
    if (!index.has(id)) continue;
    seen.add(id);
    const key = chunks.get(id);
    if (key === undefined) extra.push(id);
    else if (key !== snap.groups[i]) wrongDoc.push(id);
  }
  const missing = [...chunks.keys()].filter((id) => !seen.has(id));
  if (missing.length > 0)
    findings.push(
      finding('BM25_MISSING_CHUNK', 'chunks in the store but not in the BM25 index', missing.length, missing),
    );
  if (extra.length > 0)
    findings.push(
      finding('BM25_EXTRA_CHUNK', 'chunks in the BM25 index but not in the store', extra.length, extra),
    );
  if (wrongDoc.length > 0)
    findings.push(
      finding('BM25_WRONG_DOCUMENT', 'BM25 postings filed under another document', wrongDoc.length, wrongDoc),
    );
  return index.size;
}

/** The built-in dense index's snapshot on disk, when one is built; returns its vector count. */
function checkDense(
  t: CheckTargets,
  chunks: Map<number, number>,
  storeVersion: number,
  findings: CheckFinding[],
): number | null {
  const buf = t.store.readArtifact(INDEX_ARTIFACT);
  if (buf === undefined) return null;
  const header = peekSnapshot(t.store, INDEX_ARTIFACT);
  const index =
    header === undefined
      ? undefined
      : deserializeVectorIndex(new Uint8Array(buf), { info: header.info, indexVersion: header.indexVersion });
  if (header === undefined || index === undefined) {
    findings.push(finding('DENSE_SNAPSHOT_CORRUPT', `${INDEX_ARTIFACT} cannot be decoded`, 1));
    return null;
  }
  if (header.indexVersion !== storeVersion) {
    findings.push(
      finding(
        'DENSE_SNAPSHOT_STALE',
        `${INDEX_ARTIFACT} is for index version ${header.indexVersion}, the store is at ${storeVersion}; it is rebuilt on the first dense query`,
        1,
        undefined,
        'warning',
      ),
    );
    return index.size;
  }
  const missing = [...chunks.keys()].filter((id) => !index.has(id));
  if (missing.length > 0)
    findings.push(
      finding('DENSE_MISSING_CHUNK', 'chunks in the store without a vector', missing.length, missing),
    );
  if (index.size > chunks.size - missing.length)
    findings.push(
      finding(
        'DENSE_EXTRA_VECTORS',
        'vectors of chunks that are not in the store',
        index.size - (chunks.size - missing.length),
      ),
    );
  return index.size;
}

/** Findings `repair` can fix: derived indexes and orphans. The rest need the documents re-ingested. */
export const REPAIRABLE: ReadonlySet<CheckCode> = new Set<CheckCode>([
  'ORPHAN_CHUNK',
  'ORPHAN_SECTION',
  'BM25_SNAPSHOT_CORRUPT',
  'BM25_SNAPSHOT_STALE',
  'BM25_MISSING_CHUNK',
  'BM25_EXTRA_CHUNK',
  'BM25_WRONG_DOCUMENT',
  'DENSE_SNAPSHOT_CORRUPT',
  'DENSE_SNAPSHOT_STALE',
  'DENSE_MISSING_CHUNK',
  'DENSE_EXTRA_VECTORS',
  'CATALOG_MISMATCH',
]);

/**
 * A DocumentStore as a library user would write it from the published interface alone: plain Maps in
 * memory, nothing imported but the public entry. It keeps the contract the way the SQLite store does —
 * a batch is applied to copies and swapped in only when all of it succeeded, keys and chunk ids are never
 * reused, the index version moves on every committed write — and passes the same conformance suite.
 */
import type {
  CatalogEntry,
  DocumentDraft,
  DocumentListOptions,
  DocumentMetadata,
  DocumentState,
  DocumentStore,
  DocumentWriteResult,
  FeedbackEntry,
  ParentSection,
  ReadGrant,
  Section,
  StoredChunk,
  StoredDocument,
  StoreIndexSettings,
  StoreStats,
  WriteBatch,
  WriteOutcome,
} from '../../src/index.js';

interface DocRecord {
  key: number;
  id: string;
  hash: string;
  text: string;
  meta: DocumentMetadata;
  sections: Section[];
  /** Chunk ids in ordinal order. */
  chunkIds: number[];
}

interface ChunkRecord {
  id: number;
  docKey: number;
  ordinal: number;
  section: number;
  start: number;
  end: number;
  tokenCount: number;
  text: string;
}

/** Everything a write changes, so a batch can work on a copy and commit by swapping it in. */
interface State {
  docs: Map<string, DocRecord>;
  chunks: Map<number, ChunkRecord>;
  nextKey: number;
  nextChunkId: number;
  version: number;
}

/** The visibility rule Quarry documents for `readableBy` (level, then users or groups, else unrestricted). */
function grants(g: ReadGrant | undefined, meta: DocumentMetadata): boolean {
  if (g === undefined) return true;
  if ((meta.security_level ?? 0) > g.clearance) return false;
  if (meta.access_users.length === 0 && meta.access_groups.length === 0) return true;
  if (g.userId !== undefined && meta.access_users.includes(g.userId)) return true;
  return meta.access_groups.some((x) => g.groups.includes(x));
}

/** Copies of nested values, so callers never share (and mutate) what the store holds. */
const clone = <T>(v: T): T => structuredClone(v);

export class MemoryStore implements DocumentStore {
  readonly dir: string;
  readonly settings: StoreIndexSettings;
  private state: State = {
    docs: new Map(),
    chunks: new Map(),
    nextKey: 1,
    nextChunkId: 1,
    version: 0,
  };
  private readonly artifacts = new Map<string, Buffer>();
  private readonly feedback: FeedbackEntry[] = [];
  private readonly createdAt = new Date().toISOString();
  closed = false;

  /** `dir`: a directory Quarry may keep side files in (embedding cache, PII vault) and the store's name. */
  constructor(dir: string, settings: StoreIndexSettings = { analyzer: {}, fields: 'multifield' }) {
    this.dir = dir;
    this.settings = settings;
  }

  private get live(): State {
    if (this.closed) throw new Error(`memory store ${this.dir} is closed`);
    return this.state;
  }

  indexVersion(): number {
    return this.live.version;
  }

  documentStates(ids: string[]): Map<string, DocumentState> {
    const out = new Map<string, DocumentState>();
    for (const id of ids) {
      const d = this.live.docs.get(id);
      if (d !== undefined) out.set(id, stateOf(d));
    }
    return out;
  }

  documentsUnderSource(source: string): DocumentState[] {
    const prefix = source.endsWith('/') ? source : `${source}/`;
    return [...this.live.docs.values()]
      .filter((d) => d.meta.source === source || d.meta.source.startsWith(prefix))
      .sort((a, b) => a.key - b.key)
      .map(stateOf);
  }

  write(batch: WriteBatch): WriteOutcome {
    const base = this.live;
    // Work on copies: a draft that fails halfway leaves the committed state untouched.
    const next: State = { ...base, docs: new Map(base.docs), chunks: new Map(base.chunks) };
    const now = new Date().toISOString();
    const results: DocumentWriteResult[] = [];
    for (const id of batch.deletes) {
      const d = next.docs.get(id);
      if (d === undefined) continue;
      for (const c of d.chunkIds) next.chunks.delete(c);
      next.docs.delete(id);
      results.push({ id, key: d.key, status: 'deleted', removedChunkIds: [...d.chunkIds], addedChunks: [] });
    }
    for (const draft of batch.upserts) results.push(upsert(next, clone(draft), now));
    if (!results.every((r) => r.status === 'unchanged')) next.version += 1;
    this.state = next;
    return { results, indexVersion: next.version };
  }

  getChunks(ids: number[]): Map<number, StoredChunk> {
    const out = new Map<number, StoredChunk>();
    for (const id of ids) {
      const c = this.live.chunks.get(id);
      if (c !== undefined) out.set(id, this.toStored(c));
    }
    return out;
  }

  getParentSection(chunkId: number): ParentSection | undefined {
    const c = this.live.chunks.get(chunkId);
    const d = c === undefined ? undefined : this.docByKey(c.docKey);
    const s = d?.sections.find((x) => x.ordinal === c!.section);
    if (c === undefined || d === undefined || s === undefined) return undefined;
    return {
      docId: d.id,
      chunkId,
      ordinal: s.ordinal,
      path: [...s.path],
      start: s.start,
      end: s.end,
      text: d.text.slice(s.start, s.end),
    };
  }

  addFeedback(entry: Omit<FeedbackEntry, 'at'>): FeedbackEntry {
    const stored: FeedbackEntry = { ...entry, at: new Date().toISOString() };
    this.feedback.push(stored);
    return { ...stored };
  }

  listFeedback(): FeedbackEntry[] {
    return this.feedback.map((f) => ({ ...f }));
  }

  sectionChunks(docId: string, sectionOrdinal: number): Array<{ id: number; start: number; end: number }> {
    const d = this.live.docs.get(docId);
    if (d === undefined) return [];
    return d.chunkIds
      .map((id) => this.live.chunks.get(id)!)
      .filter((c) => c.section === sectionOrdinal)
      .map((c) => ({ id: c.id, start: c.start, end: c.end }));
  }

  getDocument(id: string): (StoredDocument & { text: string }) | undefined {
    const d = this.live.docs.get(id);
    return d === undefined ? undefined : { ...summary(d), text: d.text };
  }

  listDocuments(opts: DocumentListOptions = {}): StoredDocument[] {
    const offset = opts.offset ?? 0;
    const visible = this.visible(opts.readableBy);
    return visible.slice(offset, opts.limit === undefined ? undefined : offset + opts.limit).map(summary);
  }

  countDocuments(opts: Pick<DocumentListOptions, 'readableBy'> = {}): number {
    return this.visible(opts.readableBy).length;
  }

  *catalog(): Iterable<CatalogEntry> {
    const docs = [...this.live.docs.values()].sort((a, b) => a.key - b.key);
    for (const d of docs) yield { key: d.key, id: d.id, meta: clone(d.meta) };
  }

  *iterateChunks(): Iterable<StoredChunk & { docKey: number }> {
    const chunks = [...this.live.chunks.values()].sort((a, b) => a.id - b.id);
    for (const c of chunks) yield { ...this.toStored(c), docKey: c.docKey };
  }

  stats(): StoreStats {
    const docs = [...this.live.docs.values()];
    const chunks = [...this.live.chunks.values()];
    return {
      documents: docs.length,
      chunks: chunks.length,
      sections: docs.reduce((n, d) => n + d.sections.length, 0),
      characters: docs.reduce((n, d) => n + d.text.length, 0),
      tokens: chunks.reduce((n, c) => n + c.tokenCount, 0),
      bytesOnDisk: 0,
      schemaVersion: 1,
      indexVersion: this.live.version,
      createdAt: this.createdAt,
    };
  }

  readArtifact(name: string): Buffer | undefined {
    const a = this.artifacts.get(name);
    return a === undefined ? undefined : Buffer.from(a);
  }

  readArtifactHead(name: string, bytes: number): Buffer | undefined {
    return this.readArtifact(name)?.subarray(0, bytes);
  }

  writeArtifact(name: string, data: Buffer | Uint8Array[]): void {
    // Replaced whole, so a reader sees the old artifact or the new one.
    this.artifacts.set(name, Buffer.concat(Array.isArray(data) ? data : [data]));
  }

  checkpoint(): void {
    // Nothing to flush: the Maps are the store.
  }

  close(): void {
    this.closed = true;
  }

  private visible(g: ReadGrant | undefined): DocRecord[] {
    return [...this.live.docs.values()]
      .filter((d) => grants(g, d.meta))
      .sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  }

  private docByKey(key: number): DocRecord | undefined {
    for (const d of this.live.docs.values()) if (d.key === key) return d;
    return undefined;
  }

  private toStored(c: ChunkRecord): StoredChunk {
    const d = this.docByKey(c.docKey)!;
    return {
      id: c.id,
      docId: d.id,
      ordinal: c.ordinal,
      sectionOrdinal: c.section,
      sectionPath: [...(d.sections.find((s) => s.ordinal === c.section)?.path ?? [])],
      start: c.start,
      end: c.end,
      text: c.text,
      tokenCount: c.tokenCount,
      title: d.meta.title,
    };
  }
}

function stateOf(d: DocRecord): DocumentState {
  return {
    key: d.key,
    id: d.id,
    hash: d.hash,
    source: d.meta.source,
    version: d.meta.version,
    created_at: d.meta.created_at,
  };
}

function summary(d: DocRecord): StoredDocument {
  return {
    id: d.id,
    hash: d.hash,
    meta: clone(d.meta),
    chunkCount: d.chunkIds.length,
    charCount: d.text.length,
  };
}

/** One draft into `s` (a copy): unchanged by hash, else a new version with new chunk ids. */
function upsert(s: State, draft: DocumentDraft, now: string): DocumentWriteResult {
  const old = s.docs.get(draft.id);
  if (old !== undefined && old.hash === draft.hash)
    return { id: draft.id, key: old.key, status: 'unchanged', removedChunkIds: [], addedChunks: [] };
  const ordinals = new Set(draft.sections.map((x) => x.ordinal));
  if (typeof draft.text !== 'string' || ordinals.size !== draft.sections.length)
    throw new Error(`document ${draft.id}: malformed draft (text or section ordinals)`);
  const key = old?.key ?? s.nextKey++;
  const meta: DocumentMetadata = {
    ...draft.meta,
    created_at: draft.meta.created_at ?? old?.meta.created_at ?? now,
    updated_at: draft.meta.updated_at ?? now,
    version: (old?.meta.version ?? 0) + 1,
  };
  for (const id of old?.chunkIds ?? []) s.chunks.delete(id);
  const record: DocRecord = {
    key,
    id: draft.id,
    hash: draft.hash,
    text: draft.text,
    meta,
    sections: draft.sections,
    chunkIds: [],
  };
  const added: StoredChunk[] = [];
  for (const c of [...draft.chunks].sort((a, b) => a.ordinal - b.ordinal)) {
    const id = s.nextChunkId++;
    s.chunks.set(id, { id, docKey: key, ...c });
    record.chunkIds.push(id);
    added.push({
      id,
      docId: draft.id,
      ordinal: c.ordinal,
      sectionOrdinal: c.section,
      sectionPath: [...(draft.sections[c.section]?.path ?? [])],
      start: c.start,
      end: c.end,
      text: c.text,
      tokenCount: c.tokenCount,
      title: meta.title,
    });
  }
  s.docs.set(draft.id, record);
  return {
    id: draft.id,
    key,
    status: old === undefined ? 'added' : 'updated',
    removedChunkIds: [...(old?.chunkIds ?? [])],
    addedChunks: added,
    meta: clone(meta),
  };
}

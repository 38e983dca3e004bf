/**
 * Embedding caches keyed by (model id, sha256 of the text), so re-ingesting unchanged text, re-running an eval
 * or repeating a query never pays for the same embedding twice. Two implementations: a bounded in-memory LRU
 * and a SQLite table in a file the caller chooses. `cachedEmbedder` puts one in front of any `Embedder` and
 * sends only the misses to the provider. Vectors are stored as little-endian Float32 bytes.
 */
import { createHash } from 'node:crypto';
import Database from 'better-sqlite3';
import { QuarryError } from '../errors.js';
import { type Embedder, type EmbedOptions, wrapEmbedder } from './types.js';

/** A key: the sha256 digest (32 bytes) of the text as the model sees it. */
export type TextHash = Uint8Array;

export interface EmbeddingCache {
  /** One entry per hash, `undefined` for a miss. Vectors are copies the caller may keep. */
  getMany(model: string, hashes: TextHash[]): Promise<(Float32Array | undefined)[]>;
  /** Stores (or replaces) vectors; the cache keeps copies. */
  putMany(model: string, entries: { hash: TextHash; vector: Float32Array }[]): Promise<void>;
  close?(): Promise<void>;
}

/** sha256 of the UTF-8 text. */
export function hashText(text: string): TextHash {
  return createHash('sha256').update(text, 'utf8').digest();
}

function vectorBytes(v: Float32Array): Buffer {
  return Buffer.from(v.buffer, v.byteOffset, v.byteLength);
}

/** Copies Float32 bytes (any alignment) into a fresh Float32Array; undefined when the length is off. */
function bytesToVector(bytes: Uint8Array, dim: number): Float32Array | undefined {
  if (bytes.byteLength !== dim * 4) return undefined;
  const out = new Float32Array(dim);
  new Uint8Array(out.buffer).set(bytes);
  return out;
}

// ---------------------------------------------------------------------------------------------------------
// In-memory LRU

export interface MemoryCacheOptions {
  /** At most this many vectors (default 100 000). */
  maxEntries?: number;
  /** At most about this many bytes of vectors and keys (default 256 MiB). */
  maxBytes?: number;
}

const ENTRY_OVERHEAD = 96; // Map entry, key string, typed array header: a rough, deliberately high figure

export class MemoryEmbeddingCache implements EmbeddingCache {
  private readonly map = new Map<string, Float32Array>();
  private readonly maxEntries: number;
  private readonly maxBytes: number;
  private used = 0;
  hits = 0;
  misses = 0;

  constructor(opts: MemoryCacheOptions = {}) {
    this.maxEntries = opts.maxEntries ?? 100_000;
    this.maxBytes = opts.maxBytes ?? 256 * 1024 * 1024;
    if (!(this.maxEntries >= 1) || !(this.maxBytes >= 1)) {
      throw new QuarryError('INVALID_CONFIG', 'cache maxEntries and maxBytes must be positive', { ...opts });
    }
  }

  get size(): number {
    return this.map.size;
  }

  get bytes(): number {
    return this.used;
  }

  private static key(model: string, hash: TextHash): string {
    return `${model}\u0000${Buffer.from(hash.buffer, hash.byteOffset, hash.byteLength).toString('base64')}`;
  }

  private static cost(key: string, v: Float32Array): number {
    return key.length * 2 + v.byteLength + ENTRY_OVERHEAD;
  }

  async getMany(model: string, hashes: TextHash[]): Promise<(Float32Array | undefined)[]> {
    return hashes.map((h) => {
      const key = MemoryEmbeddingCache.key(model, h);
      const v = this.map.get(key);
      if (!v) {
        this.misses++;
        return undefined;
      }
      this.hits++;
      this.map.delete(key); // move to the most-recent end
      this.map.set(key, v);
      return v.slice();
    });
  }

  async putMany(model: string, entries: { hash: TextHash; vector: Float32Array }[]): Promise<void> {
    for (const { hash, vector } of entries) {
      const key = MemoryEmbeddingCache.key(model, hash);
      const old = this.map.get(key);
      if (old) {
        this.used -= MemoryEmbeddingCache.cost(key, old);
        this.map.delete(key);
      }
      const cost = MemoryEmbeddingCache.cost(key, vector);
      if (cost > this.maxBytes) continue; // could never fit
      this.map.set(key, vector.slice());
      this.used += cost;
      this.evict();
    }
  }

  private evict(): void {
    while (this.map.size > this.maxEntries || this.used > this.maxBytes) {
      const oldest = this.map.entries().next();
      if (oldest.done) return;
      const [key, v] = oldest.value;
      this.map.delete(key);
      this.used -= MemoryEmbeddingCache.cost(key, v);
    }
  }

  async clear(): Promise<void> {
    this.map.clear();
    this.used = 0;
  }
}

// ---------------------------------------------------------------------------------------------------------
// SQLite

/**
 * A persistent cache in a SQLite file (created if missing; may be a database other tables live in too). The
 * table is `embedding_cache(model, hash, dim, vec) WITHOUT ROWID`, one row per (model, text hash).
 */
export class SqliteEmbeddingCache implements EmbeddingCache {
  private readonly db: Database.Database;
  private readonly getStmt: Database.Statement<[string, Buffer], { dim: number; vec: Buffer }>;
  private readonly putStmt: Database.Statement<[string, Buffer, number, Buffer]>;
  private readonly putTx: (model: string, entries: { hash: TextHash; vector: Float32Array }[]) => void;
  hits = 0;
  misses = 0;

  constructor(readonly path: string) {
    try {
      this.db = new Database(path);
      this.db.pragma('journal_mode = WAL');
      this.db.pragma('synchronous = NORMAL');
      this.db.pragma('busy_timeout = 5000');
      this.db.exec(
        `CREATE TABLE IF NOT EXISTS embedding_cache (
           model TEXT NOT NULL,
           hash BLOB NOT NULL,
           dim INTEGER NOT NULL,
           vec BLOB NOT NULL,
           PRIMARY KEY (model, hash)
         ) WITHOUT ROWID`,
      );
    } catch (e) {
      throw new QuarryError(
        'STORE_OPEN',
        `embedding cache ${path}: ${e instanceof Error ? e.message : String(e)}`,
        { path },
        e,
      );
    }
    this.getStmt = this.db.prepare('SELECT dim, vec FROM embedding_cache WHERE model = ? AND hash = ?');
    this.putStmt = this.db.prepare(
      'INSERT OR REPLACE INTO embedding_cache (model, hash, dim, vec) VALUES (?, ?, ?, ?)',
    );
    this.putTx = this.db.transaction((model: string, entries: { hash: TextHash; vector: Float32Array }[]) => {
      for (const { hash, vector } of entries) {
        this.putStmt.run(model, toBuffer(hash), vector.length, vectorBytes(vector));
      }
    });
  }

  async getMany(model: string, hashes: TextHash[]): Promise<(Float32Array | undefined)[]> {
    return hashes.map((h) => {
      const row = this.getStmt.get(model, toBuffer(h));
      const v = row ? bytesToVector(row.vec, row.dim) : undefined;
      if (v) this.hits++;
      else this.misses++;
      return v;
    });
  }

  async putMany(model: string, entries: { hash: TextHash; vector: Float32Array }[]): Promise<void> {
    if (entries.length > 0) this.putTx(model, entries);
  }

  /** Entries held, for one model or all. */
  count(model?: string): number {
    const row =
      model === undefined
        ? (this.db.prepare('SELECT count(*) AS n FROM embedding_cache').get() as { n: number })
        : (this.db.prepare('SELECT count(*) AS n FROM embedding_cache WHERE model = ?').get(model) as {
            n: number;
          });
    return row.n;
  }

  /** Drops every entry of one model (or all). */
  async clear(model?: string): Promise<void> {
    if (model === undefined) this.db.prepare('DELETE FROM embedding_cache').run();
    else this.db.prepare('DELETE FROM embedding_cache WHERE model = ?').run(model);
  }

  async close(): Promise<void> {
    if (this.db.open) this.db.close();
  }
}

function toBuffer(h: TextHash): Buffer {
  return Buffer.isBuffer(h) ? h : Buffer.from(h.buffer, h.byteOffset, h.byteLength);
}

// ---------------------------------------------------------------------------------------------------------
// The caching embedder

export interface CachedEmbedder extends Embedder {
  /** Texts served from the cache / sent to the provider, since creation. */
  readonly stats: { hits: number; misses: number };
}

/**
 * Puts `cache` in front of `embedder`: only texts not cached (for this model id) go to the provider, in one
 * `embed` call; the new vectors are stored. A cached vector whose length is not the provider's dimension is
 * ignored and replaced. When the provider's dimension is not known yet, one text is sent to it to learn it.
 */
export function cachedEmbedder(embedder: Embedder, cache: EmbeddingCache): CachedEmbedder {
  const stats = { hits: 0, misses: 0 };
  const keyOf = (text: string, opts: EmbedOptions): TextHash =>
    hashText(embedder.distinguishesKind ? `${opts.kind ?? 'document'}\u0000${text}` : text);

  const embed = async (texts: string[], opts: EmbedOptions = {}): Promise<Float32Array[]> => {
    if (texts.length === 0) return [];
    const model = embedder.id;
    const hashes = texts.map((t) => keyOf(t, opts));
    const cached = await cache.getMany(model, hashes);
    const out: (Float32Array | undefined)[] = new Array(texts.length);
    // Identical texts in one call are embedded once.
    const missing = new Map<string, number[]>();
    const addMiss = (i: number): void => {
      const k = texts[i]!;
      const list = missing.get(k);
      if (list) list.push(i);
      else missing.set(k, [i]);
    };
    const accept = (v: Float32Array | undefined): v is Float32Array =>
      v !== undefined && embedder.dimension > 0 && v.length === embedder.dimension;

    let pending: number[] = [];
    for (let i = 0; i < texts.length; i++) {
      const v = cached[i];
      if (v === undefined) addMiss(i);
      else if (embedder.dimension === 0) pending.push(i);
      else if (accept(v)) out[i] = v;
      else addMiss(i);
    }
    // The dimension is unknown: make sure at least one text goes to the provider to learn it.
    if (pending.length > 0 && missing.size === 0) {
      addMiss(pending[0]!);
      pending = pending.slice(1);
    }

    const fetchMissing = async (): Promise<void> => {
      if (missing.size === 0) return;
      const unique = [...missing.keys()];
      const vectors = await embedder.embed(unique, opts);
      if (vectors.length !== unique.length) {
        throw new QuarryError(
          'EMBEDDING_FAILED',
          `embedder "${model}" returned ${vectors.length} vector(s) for ${unique.length} text(s)`,
          { model, expected: unique.length, actual: vectors.length },
        );
      }
      const entries: { hash: TextHash; vector: Float32Array }[] = [];
      unique.forEach((text, u) => {
        const v = vectors[u]!;
        const idx = missing.get(text)!;
        for (const i of idx) out[i] = idx.length > 1 && i !== idx[0] ? v.slice() : v;
        entries.push({ hash: hashes[idx[0]!]!, vector: v });
      });
      stats.misses += unique.length;
      missing.clear();
      await cache.putMany(model, entries);
    };

    await fetchMissing();
    for (const i of pending) {
      if (accept(cached[i])) out[i] = cached[i];
      else addMiss(i);
    }
    await fetchMissing();
    for (let i = 0; i < texts.length; i++) if (out[i] === cached[i] && out[i] !== undefined) stats.hits++;
    return out as Float32Array[];
  };

  return wrapEmbedder(embedder, { stats, embed });
}

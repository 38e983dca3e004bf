import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  cachedEmbedder,
  type EmbeddingCache,
  hashText,
  MemoryEmbeddingCache,
  SqliteEmbeddingCache,
} from '../../src/embed/cache.js';
import type { Embedder, EmbedOptions } from '../../src/embed/types.js';

let root: string;
beforeAll(() => {
  root = mkdtempSync(join(tmpdir(), 'quarry-cache-'));
});
afterAll(() => {
  rmSync(root, { recursive: true, force: true });
});

/** A fake provider: the vector of a text is [length, first char code, …] padded to `dim`. */
class FakeEmbedder implements Embedder {
  calls: string[][] = [];
  dimension: number;
  constructor(
    readonly id: string,
    private readonly dim: number,
    lazy = false,
  ) {
    this.dimension = lazy ? 0 : dim;
  }
  async embed(texts: string[], _opts?: EmbedOptions): Promise<Float32Array[]> {
    this.calls.push(texts);
    this.dimension = this.dim;
    return texts.map((t) => vec(t, this.dim));
  }
}
const vec = (t: string, dim: number) => {
  const v = new Float32Array(dim);
  v[0] = t.length;
  if (dim > 1) v[1] = t.charCodeAt(0) || 0;
  for (let i = 2; i < dim; i++) v[i] = i + 0.25;
  return v;
};

let counter = 0;
const implementations: [string, () => EmbeddingCache][] = [
  ['memory', () => new MemoryEmbeddingCache()],
  ['sqlite', () => new SqliteEmbeddingCache(join(root, `cache-${counter++}.db`))],
];

describe.each(implementations)('%s embedding cache', (_name, make) => {
  it('returns what was put, per model, and misses otherwise', async () => {
    const cache = make();
    const a = hashText('a');
    const b = hashText('b');
    await cache.putMany('m1', [{ hash: a, vector: Float32Array.of(1, 2, 3) }]);
    const [hitA, missB] = await cache.getMany('m1', [a, b]);
    expect(Array.from(hitA!)).toEqual([1, 2, 3]);
    expect(missB).toBeUndefined();
    expect(await cache.getMany('m2', [a])).toEqual([undefined]);
    // Replacing works; returned vectors are copies.
    await cache.putMany('m1', [{ hash: a, vector: Float32Array.of(4, 5) }]);
    const [again] = await cache.getMany('m1', [a]);
    expect(Array.from(again!)).toEqual([4, 5]);
    again![0] = 99;
    expect(Array.from((await cache.getMany('m1', [a]))[0]!)).toEqual([4, 5]);
    await cache.close?.();
  });

  it('only sends misses to the provider, deduplicating within a call', async () => {
    const cache = make();
    const p = new FakeEmbedder('fake:1', 4);
    const e = cachedEmbedder(p, cache);
    const out1 = await e.embed(['x', 'yy', 'x']);
    expect(p.calls).toEqual([['x', 'yy']]);
    expect(out1.map((v) => v[0])).toEqual([1, 2, 1]);
    const out2 = await e.embed(['yy', 'zzz', 'x']);
    expect(p.calls).toEqual([['x', 'yy'], ['zzz']]);
    expect(out2.map((v) => v[0])).toEqual([2, 3, 1]);
    expect(e.stats).toEqual({ hits: 2, misses: 3 });
    // Another model id shares nothing.
    const q = new FakeEmbedder('fake:2', 4);
    await cachedEmbedder(q, cache).embed(['x']);
    expect(q.calls).toEqual([['x']]);
    await cache.close?.();
  });

  it('ignores and replaces a cached vector of the wrong dimension', async () => {
    const cache = make();
    await cache.putMany('fake:1', [{ hash: hashText('x'), vector: Float32Array.of(7, 7) }]);
    const p = new FakeEmbedder('fake:1', 4);
    const [v] = await cachedEmbedder(p, cache).embed(['x']);
    expect(v!.length).toBe(4);
    expect(p.calls).toEqual([['x']]);
    expect((await cache.getMany('fake:1', [hashText('x')]))[0]!.length).toBe(4);
    await cache.close?.();
  });

  it('learns an unknown dimension from the provider before trusting cached vectors', async () => {
    const cache = make();
    await cache.putMany('lazy:1', [
      { hash: hashText('a'), vector: vec('a', 3) },
      { hash: hashText('b'), vector: Float32Array.of(1, 2) }, // stale: wrong dimension
    ]);
    const p = new FakeEmbedder('lazy:1', 3, true);
    const e = cachedEmbedder(p, cache);
    const out = await e.embed(['a', 'b']);
    expect(out.map((v) => v.length)).toEqual([3, 3]);
    // 'a' was sent to learn the dimension, then 'b' because its cached vector was too short.
    expect(p.calls).toEqual([['a'], ['b']]);
    await e.embed(['a', 'b']);
    expect(p.calls).toHaveLength(2);
    await cache.close?.();
  });
});

describe('MemoryEmbeddingCache bounds', () => {
  it('evicts the least recently used entry beyond maxEntries', async () => {
    const cache = new MemoryEmbeddingCache({ maxEntries: 2 });
    const [a, b, c] = ['a', 'b', 'c'].map(hashText);
    await cache.putMany('m', [
      { hash: a!, vector: Float32Array.of(1) },
      { hash: b!, vector: Float32Array.of(2) },
    ]);
    await cache.getMany('m', [a!]); // a is now the most recent
    await cache.putMany('m', [{ hash: c!, vector: Float32Array.of(3) }]);
    const got = await cache.getMany('m', [a!, b!, c!]);
    expect(got.map((v) => v?.[0])).toEqual([1, undefined, 3]);
    expect(cache.size).toBe(2);
  });

  it('stays under maxBytes', async () => {
    const cache = new MemoryEmbeddingCache({ maxBytes: 10_000 });
    for (let i = 0; i < 50; i++) {
      await cache.putMany('m', [{ hash: hashText(String(i)), vector: new Float32Array(256) }]);
    }
    expect(cache.bytes).toBeLessThanOrEqual(10_000);
    expect(cache.size).toBe(8); // 1024 bytes of vector + key + overhead each
    expect((await cache.getMany('m', [hashText('49')]))[0]).toBeDefined();
    expect((await cache.getMany('m', [hashText('0')]))[0]).toBeUndefined();
  });
});

describe('SqliteEmbeddingCache', () => {
  it('persists across instances in the documented table layout', async () => {
    const path = join(root, 'persist.db');
    const c1 = new SqliteEmbeddingCache(path);
    await c1.putMany('openai:m', [{ hash: hashText('hello'), vector: Float32Array.of(0.5, -1.25, 3) }]);
    await c1.close();

    const db = new Database(path, { readonly: true });
    const row = db.prepare('SELECT model, hash, dim, vec FROM embedding_cache').get() as {
      model: string;
      hash: Buffer;
      dim: number;
      vec: Buffer;
    };
    const ddl = (
      db.prepare("SELECT sql FROM sqlite_master WHERE name = 'embedding_cache'").get() as { sql: string }
    ).sql;
    db.close();
    expect(row.model).toBe('openai:m');
    expect(row.hash.equals(Buffer.from(hashText('hello')))).toBe(true);
    expect(row.dim).toBe(3);
    expect(row.vec.length).toBe(12);
    expect(row.vec.readFloatLE(4)).toBe(-1.25);
    expect(ddl).toMatch(/PRIMARY KEY \(model, hash\)/);
    expect(ddl).toMatch(/WITHOUT ROWID/);

    const c2 = new SqliteEmbeddingCache(path);
    expect(Array.from((await c2.getMany('openai:m', [hashText('hello')]))[0]!)).toEqual([0.5, -1.25, 3]);
    expect(c2.count()).toBe(1);
    await c2.clear('openai:m');
    expect(c2.count('openai:m')).toBe(0);
    await c2.close();
  });

  it('treats a row whose bytes do not match its dimension as a miss', async () => {
    const path = join(root, 'corrupt.db');
    const c = new SqliteEmbeddingCache(path);
    const db = new Database(path);
    db.prepare('INSERT INTO embedding_cache VALUES (?, ?, ?, ?)').run(
      'm',
      Buffer.from(hashText('t')),
      4,
      Buffer.alloc(6),
    );
    db.close();
    expect(await c.getMany('m', [hashText('t')])).toEqual([undefined]);
    await c.close();
  });

  it('fails clearly when the file cannot be opened', () => {
    expect(() => new SqliteEmbeddingCache(join(root, 'missing-dir', 'x', 'c.db'))).toThrow(/embedding cache/);
  });
});

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { Quarry } from '../../src/pipeline/quarry.js';

const samples = path.resolve(import.meta.dirname, '../../samples/docs');
const dirs: string[] = [];
function tmp(): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'quarry-hybrid-'));
  dirs.push(d);
  return d;
}
afterEach(() => {
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

describe('parent sections', () => {
  it('returns the section a retrieved chunk belongs to, containing the chunk', async () => {
    const q = Quarry.open({
      store: tmp(),
      config: { chunking: { maxTokens: 48, overlapTokens: 8, parentMaxTokens: 1024 } },
    });
    await q.ingest([samples]);
    const { hits } = await q.search('what happens when a process is killed mid-ingest', { k: 3 });
    for (const h of hits) {
      const parent = q.getParentSection(h.chunk.id)!;
      expect(parent.docId).toBe(h.chunk.docId);
      expect(parent.path).toEqual(h.chunk.sectionPath);
      expect(parent.start).toBeLessThanOrEqual(h.chunk.start);
      expect(parent.end).toBeGreaterThanOrEqual(h.chunk.end);
      expect(parent.text).toBe(q.getDocument(h.chunk.docId)!.text.slice(parent.start, parent.end));
      expect(parent.text).toContain(h.chunk.text);
    }
    // Small chunks: at least one parent is larger than its chunk.
    expect(hits.some((h) => q.getParentSection(h.chunk.id)!.text.length > h.chunk.text.length)).toBe(true);
    expect(q.getParentSection(999_999)).toBeUndefined();
    q.close();
  });
});

describe('intent routing', () => {
  it('sets the result count and fusion weights from the query intent when enabled', async () => {
    const store = tmp();
    const routed = Quarry.open({ store, config: { retrieval: { intentWeights: true } } });
    await routed.ingest([samples]);
    const nav = await routed.search('where is the storage documentation', {
      retriever: 'hybrid',
      trace: true,
    });
    expect(nav.hits).toHaveLength(5); // navigational: a few precise results
    const fuse = nav.trace!.stages.find((s) => s.stage === 'fuse')!.detail;
    expect(fuse.weights).toMatchObject({ applied: { bm25: 0.85, dense: 0.15 }, source: 'intent' });
    expect((await routed.search('retrieval quality ideas overview')).hits).toHaveLength(20); // exploratory
    expect((await routed.search('where is the storage documentation', { k: 3 })).hits).toHaveLength(3); // caller wins
    routed.close();
    const plain = Quarry.open({ store });
    expect((await plain.search('where is the storage documentation')).hits).toHaveLength(10);
    plain.close();
  });
});

describe('hybrid retrieval on the bundled docs', () => {
  it('fuses BM25 and dense candidates, shows both in the trace, and applies filters to both', async () => {
    const store = tmp();
    const q = Quarry.open({ store });
    await q.ingest([samples]);
    const r = await q.search('how are chunks kept under the token budget', {
      k: 5,
      retriever: 'hybrid',
      trace: true,
    });
    expect(r.hits).toHaveLength(5);
    const stages = r.trace!.stages.map((s) => s.stage);
    expect(stages).toEqual([
      'cache',
      'filter.compile',
      'query.analyze',
      'retrieve.prepare',
      'retrieve.bm25',
      'retrieve.dense',
      'fuse',
      'hits.load',
    ]);
    const dense = r.trace!.stages.find((s) => s.stage === 'retrieve.dense')!.detail;
    expect(String(dense.model)).toMatch(/^local-lsa(\+ng)?:k\d+(\+d\d+)?:[0-9a-f]+$/);
    const fused = r.trace!.stages.find((s) => s.stage === 'fuse')!.detail.candidates as Array<{
      sources: Record<string, unknown>;
    }>;
    expect(fused.some((c) => c.sources.bm25 !== undefined && c.sources.dense !== undefined)).toBe(true);
    // Every hit carries per-retriever provenance, and ranks are 1..k.
    expect(r.hits.map((h) => h.rank)).toEqual([1, 2, 3, 4, 5]);
    for (const h of r.hits) expect(Object.keys(h.scores).length).toBeGreaterThan(0);
    expect(
      r.hits
        .map((h) => h.chunk.sectionPath.join(' '))
        .join(' | ')
        .toLowerCase(),
    ).toContain('chunk');

    // A restrictive filter holds for dense candidates too: only that document comes back.
    const only = await q.search('how are chunks kept under the token budget', {
      k: 5,
      retriever: 'hybrid',
      filter: { source: 'samples/docs/storage-and-durability.md' },
    });
    expect(only.hits.length).toBeGreaterThan(0);
    expect(new Set(only.hits.map((h) => h.document.source))).toEqual(
      new Set(['samples/docs/storage-and-durability.md']),
    );

    // Dense alone also answers, and returns nothing at all for words the embedder never saw.
    expect((await q.search('token budget chunk overlap', { retriever: 'dense', k: 3 })).hits).toHaveLength(3);
    // With character n-grams every string has a vector, so even gibberish gets nearest neighbours…
    expect((await q.search('zzyzx qwxv', { retriever: 'dense', k: 3 })).hits).toHaveLength(3);
    q.close();

    // …while an LSA-only embedder has no direction for words it never saw: no dense candidates, no error.
    const lsaOnly = Quarry.open({ store: tmp(), config: { retrieval: { dense: { ngramWeight: 0 } } } });
    await lsaOnly.ingest([samples]);
    expect((await lsaOnly.search('zzyzx qwxv', { retriever: 'dense', k: 3 })).hits).toHaveLength(0);
    expect(
      (await lsaOnly.search('zzyzx qwxv token budget', { retriever: 'hybrid', k: 3 })).hits.length,
    ).toBeGreaterThan(0);
    lsaOnly.close();
  });

  it('persists the embedder and vectors with the store, and keeps them in step with writes', async () => {
    const store = tmp();
    const docs = tmp();
    fs.cpSync(samples, docs, { recursive: true });
    const q = Quarry.open({ store });
    await q.ingest([docs]);
    const before = (await q.search('snapshot rebuilt from the store', { retriever: 'dense', k: 5 })).hits.map(
      (h) => h.chunk.id,
    );
    const model = q.dense.embedder!.id;
    const size = q.dense.size;
    expect(size).toBe(q.stats().chunks);
    q.close();

    const reopened = Quarry.open({ store });
    expect(reopened.dense.ensure()).toBe(true);
    expect(reopened.dense.loadedFrom).toBe('snapshot');
    expect(reopened.dense.embedder!.id).toBe(model);
    expect(
      (await reopened.search('snapshot rebuilt from the store', { retriever: 'dense', k: 5 })).hits.map(
        (h) => h.chunk.id,
      ),
    ).toEqual(before);

    // Deleting a document removes its vectors; the same model keeps serving (no silent retrain).
    const victim = path.join(docs, 'storage-and-durability.md');
    fs.rmSync(victim);
    const report = await reopened.ingest([docs]);
    expect(report.removed).toBe(1);
    expect(reopened.dense.ensure()).toBe(true);
    expect(reopened.dense.size).toBe(reopened.stats().chunks);
    expect(reopened.dense.embedder!.id).toBe(model);
    const after = await reopened.search('snapshot rebuilt from the store', { retriever: 'hybrid', k: 10 });
    expect(after.hits.every((h) => !h.document.source.endsWith('storage-and-durability.md'))).toBe(true);
    reopened.close();
  });
});

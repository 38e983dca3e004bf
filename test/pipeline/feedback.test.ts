import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { trainRanker } from '../../src/eval/train-ranker.js';
import { Quarry } from '../../src/pipeline/quarry.js';
import { loadLtrModel } from '../../src/rerank/ltr/model.js';

const samples = path.resolve(import.meta.dirname, '../../samples/docs');
const dirs: string[] = [];
function tmp(): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'quarry-feedback-'));
  dirs.push(d);
  return d;
}
afterEach(() => {
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

describe('stored user feedback', () => {
  it('records feedback durably, refuses unknown documents, and trains the reranker from it', async () => {
    const dir = tmp();
    const store = path.join(dir, 'store');
    const q = Quarry.open({ store });
    await q.ingest([samples]);
    const queries = ['how big are chunks', 'what does the trace show', 'how are deletes handled'];
    for (const query of queries) {
      const { hits } = await q.search(query, { k: 5, collapseDocuments: true });
      expect(hits.length).toBeGreaterThan(2);
      // The user liked the third result and not the first: something a ranker can learn from.
      q.recordFeedback({ query, docId: hits[2]!.chunk.docId, chunkId: hits[2]!.chunk.id, helpful: true });
      q.recordFeedback({ query, docId: hits[0]!.chunk.docId, helpful: false });
    }
    expect(() => q.recordFeedback({ query: 'x', docId: 'no-such-doc', helpful: true })).toThrow(
      /no-such-doc/,
    );
    expect(() => q.recordFeedback({ query: ' ', docId: q.listDocuments()[0]!.id, helpful: true })).toThrow(
      /non-empty/,
    );
    const other = q.listDocuments().find((d) => d.chunkCount > 0)!;
    expect(() => q.recordFeedback({ query: 'x', docId: other.id, chunkId: 999_999, helpful: true })).toThrow(
      /999999/,
    );
    q.close();

    const reopened = Quarry.open({ store });
    const recorded = reopened.store.listFeedback();
    expect(recorded).toHaveLength(6);
    expect(recorded[0]).toMatchObject({
      query: queries[0],
      helpful: true,
      at: expect.stringMatching(/^\d{4}-/),
    });
    reopened.close();

    const out = path.join(dir, 'model.json');
    const report = await trainRanker({ store, fromFeedback: true, out, retriever: 'bm25', depth: 20 });
    expect(report.dataset).toBeNull();
    expect(report.queries).toBe(3);
    expect(report.pairs).toBeGreaterThan(0);
    // Learned from exactly these judgments: the liked documents now rank above the disliked ones.
    expect(report.ndcgAfter).toBeGreaterThan(report.ndcgBefore);
    const model = loadLtrModel(out);
    expect(model.trainedOn).toMatchObject({ sources: ['stored-feedback'] });
  });

  it('refuses to train with neither a dataset nor recorded feedback', async () => {
    await expect(trainRanker({ out: path.join(tmp(), 'm.json') })).rejects.toThrow(/--from-feedback/);
    const store = path.join(tmp(), 'empty');
    Quarry.open({ store }).close();
    await expect(trainRanker({ store, fromFeedback: true, out: path.join(tmp(), 'm.json') })).rejects.toThrow(
      /no judged queries/,
    );
  });
});

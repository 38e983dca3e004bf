/**
 * The Reranker conformance suite: what every reranker — a built-in or a library user's object — must do
 * for the rerank stage to be right. `rerankerConformance(name, subject)` registers the tests for one.
 */
import { describe, expect, it } from 'vitest';
import type { Reranker } from '../../src/index.js';
import { hitsOf } from '../rerank/hits.js';
import { aborted, CORPUS, openWith, settlesWithin } from './corpus.js';

export interface RerankerSubject {
  make(): Reranker | Promise<Reranker>;
  /** The same reranker with its service down (or otherwise failing); omit when that cannot happen. */
  failing?(): Reranker | Promise<Reranker>;
  close?(r: Reranker): Promise<void> | void;
}

const QUERY = 'how does the store survive a crash';
const PASSAGES = [
  'Quarry ingests Markdown and PDF files.',
  'Every batch is one transaction, so the store survives a crash.',
  'A crash during ingest leaves each document present or absent.',
  'BM25 uses Lucene norms.',
  'The store is one SQLite directory.',
];

export function rerankerConformance(name: string, subject: RerankerSubject): void {
  const withReranker = async (fn: (r: Reranker) => Promise<void>): Promise<void> => {
    const r = await subject.make();
    try {
      await fn(r);
    } finally {
      await subject.close?.(r);
    }
  };

  describe(`Reranker conformance: ${name}`, () => {
    it('scores every hit exactly once by its index, with finite scores, the same on a second call', () =>
      withReranker(async (r) => {
        expect(typeof r.id).toBe('string');
        expect(r.id.length).toBeGreaterThan(0);
        const scores = await r.rerank({ query: QUERY, hits: hitsOf(PASSAGES) });
        expect(scores.map((s) => s.index).sort()).toEqual(PASSAGES.map((_, i) => i));
        for (const s of scores) expect(Number.isFinite(s.score)).toBe(true);
        const again = await r.rerank({ query: QUERY, hits: hitsOf(PASSAGES) });
        const byIndex = (xs: typeof scores) => [...xs].sort((a, b) => a.index - b.index).map((s) => s.score);
        const first = byIndex(scores);
        for (const [i, s] of byIndex(again).entries()) expect(s).toBeCloseTo(first[i]!, 6);
        expect(await r.rerank({ query: QUERY, hits: [] })).toEqual([]);
      }));

    it('honours an aborted signal: rejects promptly', () =>
      withReranker(async (r) => {
        const out = await settlesWithin(
          r.rerank({ query: QUERY, hits: hitsOf(PASSAGES), signal: aborted() }),
          5_000,
        );
        expect(out.ok).toBe(false);
      }));

    it('as components.reranker, reorders search results and keeps every hit it was given', () =>
      withReranker(async (r) => {
        const q = openWith({ reranker: r });
        try {
          await q.quarry.addDocuments(CORPUS);
          const fused = await q.quarry.search('store crash transaction lunch', { reranker: 'none', k: 4 });
          const reranked = await q.quarry.search('store crash transaction lunch', { k: 4 });
          expect(reranked.degraded).toEqual([]);
          expect(reranked.rerank).toMatchObject({ reranker: r.id });
          const ids = (x: typeof fused) => x.hits.map((h) => h.chunk.id).sort();
          expect(ids(reranked)).toEqual(ids(fused));
        } finally {
          q.close();
        }
      }));

    it.skipIf(subject.failing === undefined)(
      'failing, it degrades to the fused order with the reason',
      async () => {
        const r = await subject.failing!();
        const q = openWith({ reranker: r });
        try {
          await q.quarry.addDocuments(CORPUS);
          // Several fused hits, or there is nothing to rerank.
          const fused = await q.quarry.search('store crash transaction lunch keys', { reranker: 'none' });
          expect(fused.hits.length).toBeGreaterThan(1);
          const res = await q.quarry.search('store crash transaction lunch keys');
          expect(res.hits.map((h) => h.chunk.id)).toEqual(fused.hits.map((h) => h.chunk.id));
          expect(res.degraded.map((d) => d.stage)).toEqual(['rerank']);
          expect(res.degraded[0]!.reason).toContain(r.id);
        } finally {
          q.close();
          await subject.close?.(r);
        }
      },
    );
  });
}

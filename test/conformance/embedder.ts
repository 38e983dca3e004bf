/**
 * The Embedder conformance suite: what every embedder — a built-in or an object a library user writes —
 * must do for Quarry's dense retrieval to be right. Call `embedderConformance(name, subject)` from a test
 * file to register the tests for one implementation.
 */
import { describe, expect, it } from 'vitest';
import type { Embedder } from '../../src/index.js';
import { aborted, CORPUS, openWith, settlesWithin } from './corpus.js';

export interface EmbedderSubject {
  make(): Embedder | Promise<Embedder>;
  /** The same embedder with its service down (or otherwise failing); omit when that cannot happen. */
  failing?(): Embedder | Promise<Embedder>;
  close?(e: Embedder): Promise<void> | void;
  /** Two texts the model must tell apart (a tiny test vocabulary maps most words to one unknown token). */
  distinct?: [string, string];
}

const TEXTS = [
  'Every ingest batch is one transaction.',
  'BM25 ranks chunks by term frequency.',
  'The cafeteria serves lunch from noon.',
  'Ünïcode and 日本語 text embed too.',
];

function expectClose(a: Float32Array, b: Float32Array): void {
  expect(a.length).toBe(b.length);
  for (let i = 0; i < a.length; i++) expect(Math.abs(a[i]! - b[i]!)).toBeLessThan(1e-5);
}

export function embedderConformance(name: string, subject: EmbedderSubject): void {
  const withEmbedder = async (fn: (e: Embedder) => Promise<void>): Promise<void> => {
    const e = await subject.make();
    try {
      await fn(e);
    } finally {
      await subject.close?.(e);
    }
  };

  describe(`Embedder conformance: ${name}`, () => {
    it('has a stable id, and one vector per text of its (stable) dimension, in input order', () =>
      withEmbedder(async (e) => {
        expect(typeof e.id).toBe('string');
        expect(e.id.length).toBeGreaterThan(0);
        expect(Number.isInteger(e.dimension) && e.dimension >= 0).toBe(true);
        const id = e.id;
        const out = await e.embed(TEXTS);
        expect(out).toHaveLength(TEXTS.length);
        const dim = out[0]!.length;
        expect(dim).toBeGreaterThan(0);
        for (const v of out) {
          expect(v).toBeInstanceOf(Float32Array);
          expect(v.length).toBe(dim);
          expect(v.every(Number.isFinite)).toBe(true);
        }
        expect(e.dimension).toBe(dim); // known once it has embedded
        expect(e.id).toBe(id);
        expect((await e.embed(['one more text']))[0]!.length).toBe(dim);
        expect(await e.embed([])).toEqual([]);
      }));

    it('gives the same vector for a text alone, in a batch and when asked again', () =>
      withEmbedder(async (e) => {
        const batch = await e.embed(TEXTS);
        for (const [i, t] of TEXTS.entries()) {
          const [single] = await e.embed([t]);
          expectClose(single!, batch[i]!);
        }
        const [a, b] = await e.embed(subject.distinct ?? [TEXTS[0]!, TEXTS[1]!]);
        expect(Array.from(a!)).not.toEqual(Array.from(b!)); // different texts, different vectors
      }));

    it('embeds queries like documents unless it says it distinguishes them', () =>
      withEmbedder(async (e) => {
        const [q] = await e.embed([TEXTS[0]!], { kind: 'query' });
        const [d] = await e.embed([TEXTS[0]!], { kind: 'document' });
        if (e.distinguishesKind) expect(q!.length).toBe(d!.length);
        else expectClose(q!, d!);
      }));

    it('honours an aborted signal: rejects promptly instead of embedding', () =>
      withEmbedder(async (e) => {
        const r = await settlesWithin(e.embed(TEXTS, { signal: aborted() }), 5_000);
        expect(r.ok).toBe(false);
      }));

    it('serves dense retrieval as components.embedder', () =>
      withEmbedder(async (e) => {
        const q = openWith({ embedder: e }, { retrieval: { retriever: 'dense' } });
        try {
          await q.quarry.addDocuments(CORPUS);
          const r = await q.quarry.search('is the store safe after a crash', { trace: true });
          expect(r.degraded).toEqual([]);
          expect(r.hits.length).toBeGreaterThan(0);
          const prepare = r.trace!.stages.find((s) => s.stage === 'retrieve.prepare')!;
          expect(JSON.stringify(prepare.detail)).toContain('"custom"');
          expect(r.trace!.stages.some((s) => s.stage === 'retrieve.dense')).toBe(true);
          expect(q.quarry.stats().dense[0]).toMatchObject({ name: 'custom', provider: 'custom', vectors: 4 });
        } finally {
          q.close();
        }
      }));

    it.skipIf(subject.failing === undefined)(
      'failing, it degrades dense retrieval (BM25 answers, the result says why) instead of failing search',
      async () => {
        const e = await subject.failing!();
        const q = openWith({ embedder: e }, { retrieval: { retriever: 'hybrid' } });
        try {
          // The documents are written and BM25 finds them; the dense index reports it could not embed.
          await expect(q.quarry.addDocuments(CORPUS)).rejects.toMatchObject({ code: 'EMBEDDING_FAILED' });
          const r = await q.quarry.search('store crash transaction');
          expect(r.hits[0]!.document.id).toBe('crash');
          expect(r.degraded.map((d) => d.stage)).toContain('retrieve.dense');
        } finally {
          q.close();
          await subject.close?.(e);
        }
      },
    );
  });
}

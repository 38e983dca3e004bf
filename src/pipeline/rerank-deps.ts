/**
 * What the learning-to-rank reranker reads of an open pipeline: analysis, term statistics, BM25 parameters
 * and dense vectors, as plain functions (the reranker never sees the store or index classes).
 */
import type { DenseIndex } from '../indexes/dense/dense-index.js';
import type { LexicalIndex } from '../indexes/lexical/lexical-index.js';
import { ChunkTermsCache, type LtrDeps, titleText } from '../rerank/ltr/features.js';
import type { DocumentStore } from '../store/types.js';

/**
 * Feature dependencies from an open Quarry: its analyzer, idf, BM25 parameters and dense index. Average
 * field lengths are computed from the store once per index version (one pass over the chunks); analyzed
 * chunks are cached (20,000 by default) across queries.
 */
/** Chunk titles analyzed to estimate the title share of the flat BM25 field. */
const TITLE_SAMPLE = 2000;

export function ltrDepsFor(quarry: {
  lexical: LexicalIndex;
  store: DocumentStore;
  dense: DenseIndex;
}): LtrDeps {
  const lexical = quarry.lexical;
  let cached: { version: number; value: { title: number; body: number } } | undefined;
  return {
    analyze: (t) => lexical.analyzer.analyze(t),
    idf: (t) => lexical.idf(t),
    bm25: { k1: lexical.bm25.params.k1, b: lexical.bm25.params.b },
    avgLengths() {
      if (cached?.version !== lexical.indexVersion) {
        // BM25's own field statistics, not a pass over the corpus (that cost seconds after every write).
        // The flat layout indexes title and body as one field: its title share comes from a sample of
        // chunk titles, which are short and cheap to analyze.
        const bm25 = lexical.bm25;
        let body = bm25.averageLength('body');
        let title = bm25.averageLength('title');
        if (lexical.layout === 'flat') {
          const stride = Math.max(1, Math.floor(bm25.size / TITLE_SAMPLE));
          let n = 0;
          let i = 0;
          title = 0;
          for (const c of quarry.store.iterateChunks()) {
            if (i++ % stride !== 0) continue;
            n++;
            title += lexical.analyzer.analyze(titleText({ chunk: c })).length;
          }
          title = n > 0 ? title / n : 0;
          body = Math.max(0, bm25.averageLength('contents') - title);
        }
        cached = { version: lexical.indexVersion, value: { title, body } };
      }
      return cached.value;
    },
    embedQuery(query) {
      if (!quarry.dense.ensure()) return undefined;
      return quarry.dense.embedQuery(query);
    },
    chunkVectors: (ids) => quarry.dense.vectorsOf(ids),
    denseParts() {
      const e = quarry.dense.embedder;
      return e === undefined ? undefined : [e.lsa.dimension, e.ngrams?.dimension ?? 0];
    },
    chunkCache: new ChunkTermsCache(),
  };
}

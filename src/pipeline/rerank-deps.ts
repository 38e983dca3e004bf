/**
 * What the learning-to-rank reranker reads of an open pipeline: analysis, term statistics, BM25 parameters
 * and dense vectors, as plain functions (the reranker never sees the store or index classes).
 */
import type { DenseIndex } from '../indexes/dense/dense-index.js';
import type { VisibleStatistics } from '../indexes/lexical/bm25-index.js';
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
  // Per index version and hidden set ('' = store-wide): a few callers' views, dropped on every write.
  let cachedVersion = -1;
  const cached = new Map<string, { title: number; body: number }>();
  return {
    analyze: (t) => lexical.analyzer.analyze(t),
    idf: (t, statistics) => lexical.idf(t, statistics),
    bm25: { k1: lexical.bm25.params.k1, b: lexical.bm25.params.b },
    avgLengths(statistics) {
      if (cachedVersion !== lexical.indexVersion) {
        cached.clear();
        cachedVersion = lexical.indexVersion;
      }
      const hidden = statistics?.hiddenGroups;
      const key = hidden === undefined || hidden.size === 0 ? '' : statistics!.key;
      let value = cached.get(key);
      if (value === undefined) {
        value = averageLengths(quarry, key === '' ? undefined : statistics);
        if (cached.size >= 16) cached.clear();
        cached.set(key, value);
      }
      return value;
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

/**
 * Average title and body lengths from BM25's own field statistics (not a pass over the corpus: that cost
 * seconds after every write), over what `statistics`' caller may read when given. The flat layout indexes
 * title and body as one field: its title share comes from a sample of chunk titles (short and cheap to
 * analyze), the caller's hidden documents left out of it.
 */
function averageLengths(
  quarry: { lexical: LexicalIndex; store: DocumentStore },
  statistics: VisibleStatistics | undefined,
): { title: number; body: number } {
  const { lexical } = quarry;
  const bm25 = lexical.bm25;
  if (lexical.layout !== 'flat')
    return { title: bm25.averageLength('title', statistics), body: bm25.averageLength('body', statistics) };
  const hidden = statistics?.hiddenGroups;
  const stride = Math.max(1, Math.floor(bm25.size / TITLE_SAMPLE));
  let n = 0;
  let i = 0;
  let title = 0;
  for (const c of quarry.store.iterateChunks()) {
    if (hidden?.has(c.docKey) === true || i++ % stride !== 0) continue;
    n++;
    title += lexical.analyzer.analyze(titleText({ chunk: c })).length;
  }
  title = n > 0 ? title / n : 0;
  return { title, body: Math.max(0, bm25.averageLength('contents', statistics) - title) };
}

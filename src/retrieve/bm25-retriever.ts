/**
 * The lexical retriever: analyzes the query with the collection's analyzer and asks the BM25 index for the
 * top-k chunks that pass the document predicate. Dense and hybrid retrievers will sit beside it behind the
 * same `Retriever` shape.
 */
import type { SearchStats, VisibleStatistics } from '../indexes/lexical/bm25-index.js';
import type { LexicalIndex } from '../indexes/lexical/lexical-index.js';
import type { Candidate } from '../types.js';

export interface RetrieveRequest {
  query: string;
  /** Already-analyzed query terms (from query understanding); default: analyze `query`. */
  terms?: string[];
  /** Weights parallel to `terms` (query expansion); default 1 each. */
  weights?: number[];
  k: number;
  allowGroup?: (group: number) => boolean;
  /** One chunk per document (its best), for document-level ranking such as BEIR evaluation. */
  collapseDocuments?: boolean;
  /** The documents hidden from the caller, left out of BM25's statistics (`bm25.statistics: 'visible'`). */
  statistics?: VisibleStatistics | undefined;
}

export interface RetrieveResult {
  candidates: Array<Candidate & { group: number }>;
  queryTerms: string[];
  stats: SearchStats;
}

export interface Retriever {
  readonly name: string;
  retrieve(req: RetrieveRequest): RetrieveResult;
}

export function createBm25Retriever(lexical: LexicalIndex): Retriever {
  return {
    name: 'bm25',
    retrieve(req) {
      const terms =
        req.terms === undefined ? lexical.analyzeQuery(req.query) : lexical.termsPerField(req.terms);
      const stats: SearchStats = { terms: [], matched: 0, filteredOut: 0 };
      const scored = lexical.bm25.search(
        terms,
        {
          k: req.k,
          allowGroup: req.allowGroup,
          collapseGroups: req.collapseDocuments,
          statistics: req.statistics,
          ...(req.weights === undefined
            ? {}
            : { termWeights: Object.fromEntries(Object.keys(terms).map((f) => [f, req.weights!])) }),
        },
        stats,
      );
      return {
        candidates: scored.map((s, i) => ({
          chunkId: s.chunkId,
          group: s.group,
          score: s.score,
          rank: i + 1,
          retriever: 'bm25',
        })),
        queryTerms: Object.values(terms)[0] ?? [],
        stats,
      };
    },
  };
}

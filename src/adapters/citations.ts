/**
 * What the framework adapters (LangChain.js, LlamaIndex.TS, the AI SDK) hand their framework for each
 * retrieved chunk: the fields a caller needs to cite it — which document, which chunk, where in the
 * document's text, under which headings, how it ranked — and the search options they accept. Imports no
 * framework, so every adapter shares it.
 */
import type { SearchOptions } from '../pipeline/options.js';
import type { SearchHit } from '../types.js';

/**
 * The search options an adapter takes once, at construction, and passes to every `quarry.search`:
 * how many chunks (`k`), a metadata `filter`, who is asking (`principal`; missing = ANONYMOUS, so only
 * unrestricted documents), and the retrieval choices of a request.
 */
export type AdapterSearchOptions = Pick<
  SearchOptions,
  | 'k'
  | 'filter'
  | 'principal'
  | 'retriever'
  | 'reranker'
  | 'collapseDocuments'
  | 'freshness'
  | 'typos'
  | 'budgetMs'
  | 'cache'
>;

/** A retrieved chunk's citation: enough to show, link and verify where the text came from. */
export interface ChunkCitation {
  /** The Quarry document id (what `deleteDocuments` and `getDocument` take). */
  docId: string;
  /** The chunk id (store-wide, never reused; `getParentSection` takes it). */
  chunkId: number;
  /** Where the document came from: a file path, a URL, or `memory:<id>` for documents given in memory. */
  source: string;
  title: string;
  /** Headings above the chunk, outermost first (empty before the first heading). */
  sectionPath: string[];
  /** The chunk's span in the document text, end exclusive: `document.text.slice(start, end)` is the chunk. */
  start: number;
  end: number;
  /** 1-based position in this result list. */
  rank: number;
  /** The final score that ordered the list (fused, then reranked when a reranker ran); higher is better. */
  score: number;
  /** Each retriever's own score and rank for this chunk (`bm25`, `dense`, …). */
  scores: Record<string, { score: number; rank: number }>;
  docType: string;
  tags: string[];
  /** The document version the chunk belongs to (bumped on every content change). */
  version: number;
  updatedAt: string;
}

/** Where a passage stands: its document, chunk, source, title, section and span (what a citation shows). */
export type CitedSpan = Pick<
  ChunkCitation,
  'docId' | 'chunkId' | 'source' | 'title' | 'sectionPath' | 'start' | 'end'
>;

export function citationOf(hit: SearchHit): ChunkCitation {
  const { chunk, document } = hit;
  return {
    docId: chunk.docId,
    chunkId: chunk.id,
    source: document.source,
    title: document.title,
    sectionPath: [...chunk.sectionPath],
    start: chunk.start,
    end: chunk.end,
    rank: hit.rank,
    score: hit.score,
    scores: structuredClone(hit.scores),
    docType: document.doc_type,
    tags: [...document.tags],
    version: document.version,
    updatedAt: document.updated_at,
  };
}

/**
 * A hit's metadata as a framework document carries it: the document's own user fields first (so metadata
 * given at ingest comes back), then the citation fields, which win over a user field of the same name.
 */
export function hitMetadata(hit: SearchHit): Record<string, unknown> & ChunkCitation {
  return { ...structuredClone(hit.document.fields), ...citationOf(hit) };
}

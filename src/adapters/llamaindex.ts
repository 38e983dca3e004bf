/**
 * LlamaIndex.TS over Quarry (`quarry/llamaindex`; `llamaindex` is an optional peer dependency): a retriever
 * whose `retrieve({ query })` returns Quarry's hits as `NodeWithScore`s — a `TextNode` per chunk (id = the
 * chunk id, the citation fields in `metadata`, the span in `startCharIdx` / `endCharIdx`, the document as the
 * SOURCE relationship) with Quarry's score — so query engines and chat engines cite Quarry's sources.
 *
 * @example
 * const retriever = new QuarryRetriever({ quarry, k: 4 });
 * const nodes = await retriever.retrieve({ query: 'How long do refunds take?' });
 * nodes[0].node.metadata; // { docId, chunkId, source, title, sectionPath, start, end, rank, score, … }
 */
import {
  BaseRetriever,
  extractText,
  NodeRelationship,
  type NodeWithScore,
  type QueryBundle,
  TextNode,
} from 'llamaindex';
import { QuarryError } from '../errors.js';
import type { SearchResult } from '../pipeline/options.js';
import type { Quarry } from '../pipeline/quarry.js';
import type { SearchHit } from '../types.js';
import { type AdapterSearchOptions, type ChunkCitation, hitMetadata } from './citations.js';

export type { AdapterSearchOptions, ChunkCitation } from './citations.js';

/** A retrieved chunk's metadata: the document's user fields, then the citation fields (which win). */
export type QuarryNodeMetadata = Record<string, unknown> & ChunkCitation;

/**
 * Metadata keys left out of the text LlamaIndex builds for the LLM and for embedding (`MetadataMode.LLM` /
 * `EMBED`): ids, offsets and scores mean nothing to a model; source, title and section stay in.
 */
const NOT_FOR_MODELS = [
  'docId',
  'chunkId',
  'start',
  'end',
  'rank',
  'score',
  'scores',
  'version',
  'updatedAt',
];

export interface QuarryRetrieverOptions extends AdapterSearchOptions {
  quarry: Quarry;
  /** Sees each whole search result (degraded stages, query rewrite, usage, trace) before it is mapped. */
  onResult?: (result: SearchResult) => void;
}

/**
 * `quarry.search` as a LlamaIndex retriever: the top `k` chunks (default 10) in Quarry's order, scores
 * descending. `principal` decides what it may read (missing = ANONYMOUS: unrestricted documents only).
 */
export class QuarryRetriever extends BaseRetriever {
  readonly quarry: Quarry;
  /** The options every search of this retriever runs with. */
  readonly searchOptions: AdapterSearchOptions;
  private readonly onResult: ((result: SearchResult) => void) | undefined;

  constructor(options: QuarryRetrieverOptions) {
    super();
    const { quarry, onResult, ...searchOptions } = options ?? {};
    if (quarry === undefined || quarry === null)
      throw new QuarryError('INVALID_ARGUMENT', 'QuarryRetriever needs { quarry }: an open Quarry instance');
    this.quarry = quarry;
    this.searchOptions = searchOptions;
    this.onResult = onResult;
  }

  async _retrieve(params: QueryBundle): Promise<NodeWithScore<QuarryNodeMetadata>[]> {
    const query = extractText(params.query);
    const result = await this.quarry.search(query, this.searchOptions);
    this.onResult?.(result);
    return result.hits.map((hit) => ({ node: toTextNode(hit), score: hit.score }));
  }
}

/** A hit as a LlamaIndex node. */
export function toTextNode(hit: SearchHit): TextNode<QuarryNodeMetadata> {
  const metadata = hitMetadata(hit);
  const node = new TextNode<QuarryNodeMetadata>({
    id_: String(hit.chunk.id),
    text: hit.chunk.text,
    metadata,
    excludedLlmMetadataKeys: [...NOT_FOR_MODELS],
    excludedEmbedMetadataKeys: [...NOT_FOR_MODELS],
    relationships: {
      // The document the chunk is a slice of (LlamaIndex's `node.sourceNode`), as LlamaIndex links them.
      [NodeRelationship.SOURCE]: { nodeId: hit.chunk.docId, metadata },
    },
  });
  // Set here, not in the constructor: it drops a 0 offset (`if (startCharIdx)`), the start of every document.
  node.startCharIdx = hit.chunk.start;
  node.endCharIdx = hit.chunk.end;
  return node;
}

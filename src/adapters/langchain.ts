/**
 * LangChain.js over Quarry (`quarry/langchain`; `@langchain/core` is an optional peer dependency): a
 * retriever whose `invoke(query)` returns cited chunks as LangChain `Document`s, a vector store over Quarry's
 * hybrid search, and Quarry's embedders as LangChain `Embeddings`. Every read goes through `quarry.search`,
 * so metadata filters and access rules apply inside retrieval exactly as for any other caller.
 *
 * @example
 * const retriever = new QuarryRetriever({ quarry, k: 4, filter: { tags: 'billing' } });
 * const docs = await retriever.invoke('How long do refunds take?');
 * docs[0].metadata; // { docId, chunkId, source, title, sectionPath, start, end, rank, score, … }
 */
import { createHash } from 'node:crypto';
import type { CallbackManagerForRetrieverRun } from '@langchain/core/callbacks/manager';
import { Document, type DocumentInterface } from '@langchain/core/documents';
import { Embeddings, type EmbeddingsInterface, type EmbeddingsParams } from '@langchain/core/embeddings';
import { BaseRetriever, type BaseRetrieverInput } from '@langchain/core/retrievers';
import { VectorStore } from '@langchain/core/vectorstores';
import type { Embedder } from '../embed/types.js';
import { QuarryError } from '../errors.js';
import type { DocumentInput } from '../ingest/add-documents.js';
import type { SearchResult } from '../pipeline/options.js';
import type { Quarry } from '../pipeline/quarry.js';
import type { SearchHit } from '../types.js';
import { type AdapterSearchOptions, type ChunkCitation, hitMetadata } from './citations.js';

export type { AdapterSearchOptions, ChunkCitation } from './citations.js';

/** A retrieved chunk's metadata: the document's user fields, then the citation fields (which win). */
export type QuarryChunkMetadata = Record<string, unknown> & ChunkCitation;

/** A hit as a LangChain document: the chunk text, its citation in `metadata`, and its document id as `id`. */
function toDocument(hit: SearchHit): Document<QuarryChunkMetadata> {
  return new Document({ pageContent: hit.chunk.text, metadata: hitMetadata(hit), id: hit.chunk.docId });
}

// ---------------------------------------------------------------------------------------------------------
// Retriever

export interface QuarryRetrieverInput extends BaseRetrieverInput, AdapterSearchOptions {
  quarry: Quarry;
  /** Sees each whole search result (degraded stages, query rewrite, usage, trace) before it is mapped. */
  onResult?: (result: SearchResult) => void;
}

/**
 * `quarry.search` as a LangChain retriever: `invoke(query)` returns the top `k` chunks (default 10) as
 * `Document { pageContent, metadata, id }`, with the citation fields in `metadata`. `principal` decides what
 * it may read (missing = ANONYMOUS: unrestricted documents only); the store's configured retriever runs
 * unless `retriever` names one.
 */
export class QuarryRetriever extends BaseRetriever<QuarryChunkMetadata> {
  static override lc_name(): string {
    return 'QuarryRetriever';
  }

  lc_namespace = ['quarry', 'retrievers'];

  readonly quarry: Quarry;
  /** The options every search of this retriever runs with. */
  readonly searchOptions: AdapterSearchOptions;
  private readonly onResult: ((result: SearchResult) => void) | undefined;

  constructor(fields: QuarryRetrieverInput) {
    const { quarry, onResult, callbacks, tags, metadata, verbose, ...searchOptions } = fields;
    super({ callbacks, tags, metadata, verbose });
    if (quarry === undefined || quarry === null)
      throw new QuarryError('INVALID_ARGUMENT', 'QuarryRetriever needs { quarry }: an open Quarry instance');
    this.quarry = quarry;
    this.searchOptions = searchOptions;
    this.onResult = onResult;
  }

  override async _getRelevantDocuments(
    query: string,
    _runManager?: CallbackManagerForRetrieverRun,
  ): Promise<Document<QuarryChunkMetadata>[]> {
    const result = await this.quarry.search(query, this.searchOptions);
    this.onResult?.(result);
    return result.hits.map(toDocument);
  }
}

// ---------------------------------------------------------------------------------------------------------
// Embeddings

/** Either any Quarry `Embedder`, or an open store whose dense model (the first one unless `model`) embeds. */
export type QuarryEmbeddingsInput = EmbeddingsParams &
  ({ embedder: Embedder; quarry?: undefined } | { quarry: Quarry; model?: string; embedder?: undefined });

/**
 * A Quarry embedder as LangChain `Embeddings`. Given `{ quarry }`, it embeds with the store's own dense model,
 * so its vectors are comparable with the index: by default the built-in one, learned from the store's text
 * (no download, no network; deterministic for a given store), else a `components.embedder` or a configured
 * remote/ONNX model. Given `{ embedder }`, any object implementing Quarry's `Embedder`.
 */
export class QuarryEmbeddings extends Embeddings {
  readonly quarry: Quarry | undefined;
  private readonly fixed: Embedder | undefined;
  private readonly model: string | undefined;

  constructor(input: QuarryEmbeddingsInput) {
    const { embedder, quarry, ...rest } = input;
    const { model, ...params }: EmbeddingsParams & { model?: string } = rest;
    super(params);
    if (embedder === undefined && quarry === undefined)
      throw new QuarryError(
        'INVALID_ARGUMENT',
        'QuarryEmbeddings needs { quarry } (embed with the store’s dense model) or { embedder }',
      );
    this.fixed = embedder;
    this.quarry = quarry;
    this.model = model;
  }

  /** Embeds with `quarry`'s dense model; the same as `new QuarryEmbeddings({ quarry, model })`. */
  static fromQuarry(quarry: Quarry, model?: string): QuarryEmbeddings {
    return new QuarryEmbeddings(model === undefined ? { quarry } : { quarry, model });
  }

  async embedDocuments(documents: string[]): Promise<number[][]> {
    const embedder = await this.embedder();
    const vectors = await embedder.embed(documents, { kind: 'document' });
    return vectors.map((v) => Array.from(v));
  }

  async embedQuery(document: string): Promise<number[]> {
    const embedder = await this.embedder();
    const [v] = await embedder.embed([document], { kind: 'query' });
    if (v === undefined)
      throw new QuarryError('EMBEDDING_FAILED', `embedder "${embedder.id}" returned no vector for the query`);
    return Array.from(v);
  }

  /** The model the vectors come from (e.g. `local-lsa+ng:k256+d1024:…`, `openai:text-embedding-3-small`). */
  async modelId(): Promise<string> {
    return (await this.embedder()).id;
  }

  /** The vector length (known once the model is loaded; a remote one may learn it from its first reply). */
  async dimension(): Promise<number> {
    return (await this.embedder()).dimension;
  }

  private async embedder(): Promise<Embedder> {
    if (this.fixed !== undefined) return this.fixed;
    const quarry = this.quarry!;
    const models = quarry.denseModels.models;
    const name = this.model ?? models[0]!.name;
    const model = quarry.denseModels.get(name);
    if (model === undefined)
      throw new QuarryError(
        'INVALID_ARGUMENT',
        `no dense model "${name}" in this store (its models: ${models.map((m) => m.name).join(', ')})`,
        { model: name },
      );
    if (model.provider === 'builtin') {
      const embedder = model.index.ensure() ? model.index.embedder : undefined;
      if (embedder === undefined)
        throw new QuarryError(
          'EMBEDDING_MODEL_LOAD',
          `the built-in embedder is learned from the store's own text, and this store (${quarry.stats().chunks} chunks) ` +
            'has too little to learn from; add documents first, or pass your own: new QuarryEmbeddings({ embedder })',
          { model: name },
        );
      return embedder;
    }
    // Remote/ONNX models start on first use; a sync starts them (and catches their index up, as a search would).
    if (model.index.embedder === undefined) await quarry.syncDense();
    const embedder = model.index.embedder;
    if (embedder === undefined)
      throw new QuarryError('EMBEDDING_MODEL_LOAD', `dense model "${name}" did not start`, { model: name });
    return embedder;
  }
}

// ---------------------------------------------------------------------------------------------------------
// Vector store

export interface QuarryVectorStoreArgs extends Omit<AdapterSearchOptions, 'k' | 'filter'> {
  quarry: Quarry;
  /** How `pageContent` is read: plain text (default) or Markdown, whose headings become citation sections. */
  format?: 'text' | 'markdown';
}

export interface QuarryAddDocumentsOptions {
  /** One id per document; otherwise `document.id`, then `metadata.id`, else one derived from the content. */
  ids?: string[];
}

/**
 * A LangChain vector store whose index is a Quarry store. `addDocuments` ingests LangChain documents (each is
 * one Quarry document, chunked by Quarry); `similaritySearch` and `similaritySearchWithScore` run Quarry's
 * hybrid search (BM25 and dense, fused; `retriever` changes it) on the query text, with `filter` as Quarry's
 * metadata filter applied inside retrieval; `delete({ ids })` removes documents from every index. Metadata
 * keys `source` and `title` (strings) become the document's source and title; `tags`, `doc_type`,
 * `access_groups`, `access_users` and `security_level` are Quarry's own (see `DocumentInput.metadata`); the
 * rest are user fields, filterable by name and returned in every hit's metadata.
 *
 * Raw vectors are not accepted (`addVectors`, `similaritySearchVectorWithScore` throw): Quarry embeds with
 * the model its index was built with and applies filters and access rules inside retrieval, which a vector
 * computed elsewhere would bypass.
 */
export class QuarryVectorStore extends VectorStore {
  declare FilterType: Record<string, unknown> | string;

  readonly quarry: Quarry;
  private readonly args: Omit<QuarryVectorStoreArgs, 'quarry' | 'format'>;
  private readonly format: 'text' | 'markdown';

  _vectorstoreType(): string {
    return 'quarry';
  }

  constructor(embeddings: QuarryEmbeddings | undefined, fields: QuarryVectorStoreArgs) {
    const { quarry, format = 'text', ...args } = fields ?? {};
    if (quarry === undefined || quarry === null)
      throw new QuarryError(
        'INVALID_ARGUMENT',
        'QuarryVectorStore needs { quarry }: an open Quarry instance',
      );
    const own = embeddings ?? QuarryEmbeddings.fromQuarry(quarry);
    if (!(own instanceof QuarryEmbeddings) || (own.quarry !== undefined && own.quarry !== quarry))
      throw new QuarryError(
        'INVALID_ARGUMENT',
        'QuarryVectorStore embeds with the model its Quarry index was built with; pass QuarryEmbeddings.fromQuarry(quarry) ' +
          '(or nothing). To embed with another model, give it to Quarry: Quarry.open({ components: { embedder } })',
      );
    if (format !== 'text' && format !== 'markdown')
      throw new QuarryError('INVALID_ARGUMENT', `format must be "text" or "markdown", got ${String(format)}`);
    super(own, { format, retriever: args.retriever ?? 'hybrid' });
    this.quarry = quarry;
    this.format = format;
    this.args = { ...args, retriever: args.retriever ?? 'hybrid' };
  }

  /** Ingests `documents` (parsed, chunked, indexed by Quarry) and returns their ids, in order. */
  async addDocuments(
    documents: DocumentInterface[],
    options: QuarryAddDocumentsOptions = {},
  ): Promise<string[]> {
    if (!Array.isArray(documents))
      throw new QuarryError('INVALID_ARGUMENT', 'addDocuments expects an array of LangChain documents');
    const { ids } = options;
    if (ids !== undefined && (!Array.isArray(ids) || ids.length !== documents.length))
      throw new QuarryError(
        'INVALID_ARGUMENT',
        `options.ids must give one id per document (${documents.length}), got ${Array.isArray(ids) ? ids.length : typeof ids}`,
      );
    if (ids !== undefined && new Set(ids).size !== ids.length)
      throw new QuarryError('INVALID_ARGUMENT', 'options.ids has the same id twice');
    const out: string[] = [];
    const inputs = new Map<string, DocumentInput>();
    documents.forEach((doc, i) => {
      const { input, derived } = this.toQuarryDocument(doc, ids?.[i], i);
      out.push(input.id);
      if (inputs.has(input.id)) {
        // A derived id is the content's: the same document twice in one call is one document.
        if (derived) return;
        throw new QuarryError(
          'INVALID_ARGUMENT',
          `documents ${out.indexOf(input.id)} and ${i} have the same id "${input.id}"`,
          {
            id: input.id,
          },
        );
      }
      inputs.set(input.id, input);
    });
    if (inputs.size > 0) await this.quarry.addDocuments([...inputs.values()]);
    return out;
  }

  override async similaritySearch(
    query: string,
    k = 4,
    filter?: this['FilterType'],
  ): Promise<Document<QuarryChunkMetadata>[]> {
    return (await this.search(query, k, filter)).map(toDocument);
  }

  override async similaritySearchWithScore(
    query: string,
    k = 4,
    filter?: this['FilterType'],
  ): Promise<[Document<QuarryChunkMetadata>, number][]> {
    return (await this.search(query, k, filter)).map((hit) => [toDocument(hit), hit.score]);
  }

  /** Deletes documents by the ids `addDocuments` returned; nothing of them stays retrievable. */
  override async delete(params: { ids?: string[] } = {}): Promise<void> {
    const { ids } = params;
    if (!Array.isArray(ids) || ids.some((id) => typeof id !== 'string'))
      throw new QuarryError(
        'INVALID_ARGUMENT',
        'delete needs { ids: string[] } (the ids addDocuments returned)',
      );
    this.quarry.deleteDocuments(ids);
  }

  /** Not supported: Quarry computes each chunk's vector itself (see the class comment). */
  async addVectors(_vectors: number[][], _documents: DocumentInterface[]): Promise<string[]> {
    throw new QuarryError(
      'INVALID_ARGUMENT',
      'QuarryVectorStore does not take precomputed vectors: Quarry embeds every chunk with the model its index ' +
        'records, so vectors from another model never mix into it. Call addDocuments(documents) instead',
    );
  }

  /** Not supported: Quarry searches by query text (see the class comment). */
  async similaritySearchVectorWithScore(
    _query: number[],
    _k: number,
    _filter?: this['FilterType'],
  ): Promise<[Document<QuarryChunkMetadata>, number][]> {
    throw new QuarryError(
      'INVALID_ARGUMENT',
      'QuarryVectorStore searches by query text, not by a vector: Quarry embeds the query with its index’s own ' +
        'model, fuses dense with BM25, and applies the filter and the principal’s access rules inside retrieval. ' +
        'Call similaritySearch(query, k, filter) or similaritySearchWithScore(query, k, filter) instead',
    );
  }

  /** A store over `quarry` holding `texts` (with `metadatas`: one object per text, or one for all). */
  static override async fromTexts(
    texts: string[],
    metadatas: object[] | object,
    embeddings: EmbeddingsInterface | undefined,
    dbConfig: QuarryVectorStoreArgs,
  ): Promise<QuarryVectorStore> {
    const docs = texts.map(
      (pageContent, i) =>
        new Document({
          pageContent,
          metadata: { ...(Array.isArray(metadatas) ? (metadatas[i] as object | undefined) : metadatas) },
        }),
    );
    return QuarryVectorStore.fromDocuments(docs, embeddings, dbConfig);
  }

  /** A store over `dbConfig.quarry` holding `docs`. `embeddings`: QuarryEmbeddings of that store, or nothing. */
  static override async fromDocuments(
    docs: DocumentInterface[],
    embeddings: EmbeddingsInterface | undefined,
    dbConfig: QuarryVectorStoreArgs,
  ): Promise<QuarryVectorStore> {
    const store = new QuarryVectorStore(embeddings as QuarryEmbeddings | undefined, dbConfig);
    await store.addDocuments(docs);
    return store;
  }

  private async search(
    query: string,
    k: number,
    filter: this['FilterType'] | undefined,
  ): Promise<SearchHit[]> {
    const result = await this.quarry.search(query, {
      ...this.args,
      k,
      ...(filter === undefined ? {} : { filter }),
    });
    return result.hits;
  }

  private toQuarryDocument(
    doc: DocumentInterface,
    given: string | undefined,
    index: number,
  ): { input: DocumentInput; derived: boolean } {
    if (doc === null || typeof doc !== 'object' || typeof doc.pageContent !== 'string')
      throw new QuarryError('INVALID_ARGUMENT', `document ${index} has no pageContent string`, { index });
    const fields: Record<string, unknown> = { ...(doc.metadata ?? {}) };
    const fromMetadata = typeof fields.id === 'string' && fields.id !== '' ? fields.id : undefined;
    const chosen = given ?? (doc.id || undefined) ?? fromMetadata;
    const id = chosen ?? derivedId(doc.pageContent, fields);
    if (typeof id !== 'string' || id.trim() === '')
      throw new QuarryError('INVALID_ARGUMENT', `document ${index}: its id must be a non-empty string`, {
        index,
      });
    if (fields.id === id) delete fields.id;
    const source = typeof fields.source === 'string' && fields.source !== '' ? fields.source : undefined;
    const title = typeof fields.title === 'string' ? fields.title : undefined;
    if (source !== undefined) delete fields.source;
    if (title !== undefined) delete fields.title;
    const input: DocumentInput = {
      id,
      [this.format]: doc.pageContent,
      ...(source === undefined ? {} : { source }),
      ...(title === undefined ? {} : { title }),
      metadata: fields,
    };
    return { input, derived: chosen === undefined };
  }
}

/** An id from the content and metadata alone, so adding the same document again finds it unchanged. */
function derivedId(pageContent: string, metadata: Record<string, unknown>): string {
  const hash = createHash('sha256').update(JSON.stringify([pageContent, sortedKeys(metadata)]));
  return `lc-${hash.digest('hex').slice(0, 24)}`;
}

function sortedKeys(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(sortedKeys);
  if (v === null || typeof v !== 'object') return v;
  return Object.fromEntries(
    Object.keys(v)
      .sort()
      .map((k) => [k, sortedKeys((v as Record<string, unknown>)[k])]),
  );
}

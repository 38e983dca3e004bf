/**
 * Components as objects: a library user hands Quarry their own embedder, reranker, LLM, tokenizer or store (any
 * object implementing the published interface) instead of choosing a built-in by configuration. Checked
 * here, at the boundary, so a missing method is an error at `createQuarry`, not halfway through a query.
 */
import type { Embedder } from '../embed/types.js';
import { QuarryError } from '../errors.js';
import { type ConfiguredLlmProvider, contextWindowFor } from '../generate/llm/create.js';
import type { LlmProvider } from '../generate/llm/types.js';
import type { Reranker } from '../rerank/types.js';
import type { DocumentStore } from '../store/types.js';
import type { Tokenizer } from '../types.js';

/** An LLM object, optionally saying how large its context window is and how much output to reserve. */
export interface LanguageModel extends LlmProvider {
  /** Tokens the model accepts, prompt and answer together. Default: `llm.contextWindow`, the known-model table, else 8192. */
  readonly contextWindow?: number;
  /** Output tokens to reserve per answer. Default: `llm.maxTokens` when configured, else 1024. */
  readonly maxTokens?: number;
}

/**
 * Objects that replace the configured built-ins. Each one is used wherever its family is: the embedder is
 * the dense model `custom` (first, so the default; use it with `retrieval.retriever: 'dense' | 'hybrid'`),
 * the reranker reorders every search unless a request names another (`reranker: 'none'` turns it off), the
 * LLM writes answers (and serves query rewriting, LLM reranking and self-critique), the tokenizer measures
 * chunks and the answer's context budget, the store holds documents, sections and chunks instead of the
 * embedded SQLite one (every index is rebuilt from it, and snapshots go to its artifacts). Quarry never
 * closes them: they belong to the caller.
 *
 * @example
 * const quarry = await createQuarry({
 *   store: '.quarry',
 *   config: { retrieval: { retriever: 'hybrid' } },
 *   components: { embedder: myEmbedder, reranker: myReranker, llm: myLlm },
 * });
 */
export interface QuarryComponents {
  embedder?: Embedder;
  reranker?: Reranker;
  llm?: LanguageModel;
  tokenizer?: Tokenizer;
  /**
   * Replaces the embedded SQLite store (then `store`, the directory, is not given). Its `dir` is where Quarry
   * keeps side files (the embedding cache of remote models, the PII vault) and, with `stats().createdAt`, the
   * store's identity in shared cache keys. `quarry check` needs the SQLite store.
   */
  store?: DocumentStore;
}

/** The DocumentStore methods Quarry calls (`readArtifactHead` is optional). */
const STORE_METHODS = [
  'indexVersion',
  'documentStates',
  'documentsUnderSource',
  'write',
  'getChunks',
  'getParentSection',
  'addFeedback',
  'listFeedback',
  'sectionChunks',
  'getDocument',
  'listDocuments',
  'countDocuments',
  'catalog',
  'iterateChunks',
  'stats',
  'readArtifact',
  'writeArtifact',
  'checkpoint',
  'close',
];

const REQUIRED: Record<keyof QuarryComponents, { props: string[]; methods: string[] }> = {
  embedder: { props: ['id', 'dimension'], methods: ['embed'] },
  reranker: { props: ['id'], methods: ['rerank'] },
  llm: { props: ['id', 'model'], methods: ['stream', 'complete'] },
  tokenizer: { props: ['id'], methods: ['count'] },
  store: { props: ['dir', 'settings'], methods: STORE_METHODS },
};

/** Throws INVALID_ARGUMENT naming the component and what it lacks; returns the components unchanged. */
export function checkComponents(components: QuarryComponents | undefined): QuarryComponents {
  if (components === undefined) return {};
  if (components === null || typeof components !== 'object')
    throw new QuarryError(
      'INVALID_ARGUMENT',
      'components must be an object { embedder, reranker, llm, tokenizer, store }',
    );
  for (const key of Object.keys(components)) {
    const spec = REQUIRED[key as keyof QuarryComponents];
    if (spec === undefined)
      throw new QuarryError(
        'INVALID_ARGUMENT',
        `unknown component "${key}" (components are ${Object.keys(REQUIRED).join(', ')})`,
        { component: key },
      );
    const value = (components as Record<string, unknown>)[key];
    if (value === undefined) continue;
    if (value === null || typeof value !== 'object')
      throw new QuarryError('INVALID_ARGUMENT', `components.${key} must be an object`, { component: key });
    const obj = value as Record<string, unknown>;
    const missing = [
      ...spec.props.filter((p) => !(p in obj)),
      ...spec.methods.filter((m) => typeof obj[m] !== 'function').map((m) => `${m}()`),
    ];
    if (missing.length > 0)
      throw new QuarryError('INVALID_ARGUMENT', `components.${key} lacks ${missing.join(', ')}`, {
        component: key,
        missing,
      });
    // A store is known by its directory, the others by their model id.
    const idProp = key === 'store' ? 'dir' : 'id';
    if (typeof obj[idProp] !== 'string' || obj[idProp] === '')
      throw new QuarryError('INVALID_ARGUMENT', `components.${key}.${idProp} must be a non-empty string`, {
        component: key,
      });
  }
  return components;
}

/** A user LLM as the answer path needs it: window and output reserve resolved, no circuit breaker. */
export function configuredLlm(
  llm: LanguageModel,
  config: { contextWindow?: number | undefined; maxTokens?: number | undefined } | undefined,
): ConfiguredLlmProvider {
  return {
    id: llm.id,
    model: llm.model,
    contextWindow: llm.contextWindow ?? contextWindowFor(llm.model, config?.contextWindow),
    maxTokens: llm.maxTokens ?? config?.maxTokens ?? 1024,
    stream: (request) => llm.stream(request),
    complete: (request) => llm.complete(request),
  };
}

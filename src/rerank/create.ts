/**
 * Builds the configured reranker. Each implementation lives in its own file and heavy ones (ONNX runtime)
 * load only when chosen.
 */
import type { QuarryConfig } from '../config/config.js';
import { QuarryError } from '../errors.js';
import type { Reranker } from './types.js';

export type RerankerName = QuarryConfig['rerank']['reranker'];

/** What rerankers may read of the indexes (plain functions, so any store backend can provide them). */
export interface RerankerDeps {
  analyze(text: string): string[];
  idf(term: string): number;
}

export async function createReranker(
  name: RerankerName,
  config: QuarryConfig,
  deps: RerankerDeps,
): Promise<Reranker> {
  void config;
  void deps;
  throw new QuarryError('INVALID_CONFIG', `rerank.reranker: "${name}" is not available`);
}

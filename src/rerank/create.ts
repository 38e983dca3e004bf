/**
 * Builds the configured reranker. Each implementation lives in its own file and heavy ones (the ONNX runtime)
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
  name: Exclude<RerankerName, 'none'>,
  config: QuarryConfig,
  deps: RerankerDeps,
  env: NodeJS.ProcessEnv = process.env,
): Promise<Reranker> {
  const cfg = config.rerank;
  switch (name) {
    case 'onnx': {
      if (cfg.onnx === undefined)
        throw new QuarryError(
          'INVALID_CONFIG',
          'rerank.onnx: set { "dir": "<model directory>" } to use the ONNX reranker',
        );
      const { createOnnxCrossEncoder } = await import('./onnx-cross-encoder.js');
      return createOnnxCrossEncoder(cfg.onnx);
    }
    case 'http': {
      if (cfg.http === undefined)
        throw new QuarryError(
          'INVALID_CONFIG',
          'rerank.http: set { "flavor", "baseURL", "model" } to use an HTTP reranker',
        );
      const { createHttpReranker } = await import('./http-reranker.js');
      const apiKey = cfg.http.apiKey ?? env.QUARRY_RERANK_API_KEY;
      return createHttpReranker({ ...cfg.http, ...(apiKey === undefined ? {} : { apiKey }) });
    }
    default:
      void deps;
      throw new QuarryError('INVALID_CONFIG', `rerank.reranker: "${name}" is not available`);
  }
}

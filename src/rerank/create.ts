/**
 * Builds the configured reranker. Each implementation lives in its own file and heavy ones (the ONNX runtime)
 * load only when chosen.
 */

import { basename } from 'node:path';
import type { QuarryConfig } from '../config/config.js';
import { QuarryError } from '../errors.js';
import type { LlmProvider } from '../generate/llm/types.js';
import type { LtrDeps } from './ltr/features.js';
import type { Reranker } from './types.js';

export type RerankerName = QuarryConfig['rerank']['reranker'];

/** What rerankers may use of the pipeline (plain functions, so any store backend can provide them). */
export interface RerankerDeps {
  /** Index statistics and vectors for learning-to-rank features. */
  features(): LtrDeps;
  /** The configured LLM (for LLM relevance grading); undefined when none is configured. */
  llm(): LlmProvider | undefined;
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
    case 'ltr': {
      const { createLtrReranker } = await import('./ltr/ltr-reranker.js');
      const { defaultLtrModel, loadLtrModel } = await import('./ltr/model.js');
      const model = cfg.ltrModel === undefined ? defaultLtrModel() : loadLtrModel(cfg.ltrModel);
      return createLtrReranker(model, deps.features(), {
        name: cfg.ltrModel === undefined ? 'default' : basename(cfg.ltrModel, '.json'),
      });
    }
    case 'llm': {
      const provider = deps.llm();
      if (provider === undefined)
        throw new QuarryError(
          'INVALID_CONFIG',
          'rerank.reranker "llm" needs an LLM: configure the llm section',
        );
      const { createLlmReranker } = await import('./llm-reranker.js');
      return createLlmReranker(provider, cfg.llm ?? {});
    }
  }
}

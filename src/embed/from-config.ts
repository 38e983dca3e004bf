/**
 * Embedders from configuration: the validated settings of an OpenAI-compatible endpoint or a local ONNX
 * model directory, turned into an `Embedder`. The API key is read from a named environment variable, never
 * from the configuration itself, so config files can be shared.
 */
import { z } from 'zod';
import { QuarryError } from '../errors.js';
import { createOnnxEmbedder } from './providers/onnx.js';
import { createOpenAIEmbedder } from './providers/openai.js';
import type { Embedder } from './types.js';

const positive = z.number().int().min(1);
const prefixes = {
  /** Prepended to queries / documents for models trained with instructions (e5: `query: ` / `passage: `). */
  queryPrefix: z.string().min(1).optional(),
  documentPrefix: z.string().min(1).optional(),
};

export const OpenAIEmbedderConfigSchema = z.object({
  provider: z.literal('openai'),
  /** API root including the version; default `https://api.openai.com/v1`. */
  baseURL: z.url({ protocol: /^https?$/ }).optional(),
  /** The model name the server knows, e.g. `text-embedding-3-small`, `nomic-embed-text`. */
  model: z.string().trim().min(1),
  /** Requested output dimension (models that support shortening). */
  dimensions: positive.max(65_536).optional(),
  /** Model id recorded in the index (default `openai:<model>`); a different id is a different index. */
  id: z.string().trim().min(1).optional(),
  /** NAME of the environment variable holding the key (default OPENAI_API_KEY, which may be unset). */
  apiKeyEnv: z
    .string()
    .regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'must be an environment variable name, not a key')
    .optional(),
  /** Texts per request (default 128). */
  batchSize: positive.max(2048).optional(),
  /** Requests in flight at once (default 4). */
  concurrency: positive.max(64).optional(),
  maxRetries: z.number().int().min(0).max(10).optional(),
  initialBackoffMs: z.number().int().min(0).max(60_000).optional(),
  connectTimeoutMs: positive.max(600_000).optional(),
  readTimeoutMs: positive.max(600_000).optional(),
  encodingFormat: z.enum(['float', 'base64']).optional(),
  headers: z.record(z.string().min(1), z.string()).optional(),
  ...prefixes,
});

export const OnnxEmbedderConfigSchema = z.object({
  provider: z.literal('onnx'),
  /** Directory holding `model.onnx` (or `onnx/model.onnx`) and `tokenizer.json`; nothing is downloaded. */
  dir: z.string().min(1),
  modelFile: z.string().min(1).optional(),
  /** Worker threads, each with its own inference session (default 1). */
  poolSize: positive.max(64).optional(),
  threads: positive.max(256).optional(),
  batchSize: positive.max(4096).optional(),
  maxLength: positive.max(65_536).optional(),
  pooling: z.enum(['mean', 'cls']).optional(),
  normalize: z.boolean().optional(),
  outputName: z.string().min(1).optional(),
  ...prefixes,
});

export type OpenAIEmbedderConfig = z.infer<typeof OpenAIEmbedderConfigSchema>;
export type OnnxEmbedderConfig = z.infer<typeof OnnxEmbedderConfigSchema>;
export type EmbedderConfig = OpenAIEmbedderConfig | OnnxEmbedderConfig;

/**
 * The model id an embedder built from `config` will report, when it is known without loading anything
 * (remote models); undefined for ONNX models, whose id is a hash of the model file.
 */
export function configuredModelId(config: EmbedderConfig): string | undefined {
  return config.provider === 'openai' ? (config.id ?? `openai:${config.model}`) : undefined;
}

/** Drops undefined values so optional settings keep the providers' own defaults. */
function defined<T extends object>(o: T): { [K in keyof T]: Exclude<T[K], undefined> } {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as {
    [K in keyof T]: Exclude<T[K], undefined>;
  };
}

/**
 * Builds the embedder `config` describes. Remote: reads the key from `env[apiKeyEnv]` (a named variable that
 * is unset is an error; the default OPENAI_API_KEY may be absent for local servers). ONNX: loads the model
 * into its worker pool (throws `EMBEDDING_MODEL_LOAD` naming what is missing).
 */
export async function createEmbedderFromConfig(
  config: EmbedderConfig,
  env: Record<string, string | undefined> = process.env,
): Promise<Embedder> {
  if (config.provider === 'onnx') {
    const { provider: _p, ...rest } = config;
    return createOnnxEmbedder(defined(rest));
  }
  const { provider: _p, apiKeyEnv, ...rest } = config;
  const apiKey = env[apiKeyEnv ?? 'OPENAI_API_KEY'];
  if (apiKeyEnv !== undefined && (apiKey === undefined || apiKey === '')) {
    throw new QuarryError(
      'INVALID_CONFIG',
      `apiKeyEnv names the environment variable ${apiKeyEnv}, which is not set`,
      { apiKeyEnv },
    );
  }
  return createOpenAIEmbedder({ ...defined(rest), ...(apiKey ? { apiKey } : {}) });
}

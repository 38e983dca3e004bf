/**
 * Building the configured LLM provider: the `llm` configuration section (validated here, at the boundary)
 * and the factory that picks the wire protocol, reads the API key from the named environment variable and
 * resolves the model's context window for context assembly.
 */
import { z } from 'zod';
import { QuarryError } from '../../errors.js';
import { createAnthropicProvider } from './anthropic.js';
import { createOpenAIChatProvider } from './openai-chat.js';
import type { HttpLlmProvider, LlmClientOptions, LlmRetryInfo } from './transport.js';
import type { LlmProvider } from './types.js';

/** USD per 1M input/output tokens of one model. */
export const PriceSchema = z.object({ input: z.number().min(0), output: z.number().min(0) });

export const LlmConfigSchema = z.object({
  provider: z.enum(['openai', 'anthropic']).default('openai'),
  /** API root; default `https://api.openai.com/v1` or `https://api.anthropic.com`. */
  baseURL: z.url({ protocol: /^https?$/ }).optional(),
  model: z.string().trim().min(1),
  /** NAME of the environment variable holding the key (default OPENAI_API_KEY / ANTHROPIC_API_KEY). */
  apiKeyEnv: z
    .string()
    .regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'must be an environment variable name, not a key')
    .optional(),
  temperature: z.number().min(0).max(2).optional(),
  /** Output tokens per request unless the request says otherwise. */
  maxTokens: z.number().int().min(1).max(1_000_000).default(1024),
  stop: z.array(z.string().min(1)).max(16).optional(),
  /** Model context window in tokens; default from the known-model table, else 8192. */
  contextWindow: z.number().int().min(512).max(10_000_000).optional(),
  /** SSE streaming on the wire; false for servers without it (connectTimeoutMs then covers generation). */
  stream: z.boolean().default(true),
  connectTimeoutMs: z.number().int().min(1).max(600_000).default(30_000),
  readTimeoutMs: z.number().int().min(1).max(600_000).default(60_000),
  maxRetries: z.number().int().min(0).max(10).default(3),
  initialBackoffMs: z.number().int().min(0).max(60_000).default(500),
  maxBackoffMs: z.number().int().min(0).max(600_000).default(20_000),
  maxRetryAfterMs: z.number().int().min(0).max(3_600_000).default(60_000),
  circuitBreaker: z
    .object({
      failureThreshold: z.number().int().min(1).max(1000).default(5),
      cooldownMs: z.number().int().min(0).max(3_600_000).default(30_000),
    })
    .prefault({}),
  /** USD per 1M input/output tokens, by model name (dated names fall back to their prefix). */
  prices: z.record(z.string().min(1), PriceSchema).default({}),
  /** Extra request headers (proxies, organisation ids). */
  headers: z.record(z.string().min(1), z.string()).default({}),
});

export type LlmConfig = z.infer<typeof LlmConfigSchema>;
export type LlmConfigInput = z.input<typeof LlmConfigSchema>;

const DEFAULT_CONTEXT_WINDOW = 8192;

/** Context windows of well-known models, matched like prices: exact name or `-`-separated prefix. */
const CONTEXT_WINDOWS: Record<string, number> = {
  'gpt-4o': 128_000,
  'gpt-4o-mini': 128_000,
  'gpt-4.1': 1_047_576,
  'gpt-4.1-mini': 1_047_576,
  'gpt-4.1-nano': 1_047_576,
  'o4-mini': 200_000,
  'gpt-3.5-turbo': 16_385,
  claude: 200_000,
  'llama3.1': 131_072,
  'llama3.2': 131_072,
  'qwen2.5': 32_768,
};

/** The configured window, else the longest matching known model name, else 8192. */
export function contextWindowFor(model: string, configured?: number): number {
  if (configured !== undefined) return configured;
  const name = model.toLowerCase();
  let best: string | undefined;
  for (const known of Object.keys(CONTEXT_WINDOWS)) {
    const matches = name === known || name.startsWith(`${known}-`) || name.startsWith(`${known}:`);
    if (matches && (best === undefined || known.length > best.length)) best = known;
  }
  return best === undefined ? DEFAULT_CONTEXT_WINDOW : CONTEXT_WINDOWS[best]!;
}

/** The configured provider with what the rest of the pipeline needs to know about it. */
export interface ConfiguredLlmProvider extends LlmProvider {
  /** Tokens the model accepts, prompt and answer together. */
  readonly contextWindow: number;
  /** Output tokens reserved per request by default. */
  readonly maxTokens: number;
  /** The circuit breaker's state (traces, metrics); absent for an LLM supplied as a library object. */
  circuit?: HttpLlmProvider['circuit'];
}

const DEFAULT_KEY_ENV = { openai: 'OPENAI_API_KEY', anthropic: 'ANTHROPIC_API_KEY' } as const;

/**
 * Validates `config` and builds its provider. The key is read from `env[apiKeyEnv]`: a named variable
 * that is unset is an error; the default variable may be absent (local servers need no key).
 */
export function createLlmProvider(
  config: LlmConfigInput,
  env: Record<string, string | undefined> = process.env,
  hooks: { onRetry?: (info: LlmRetryInfo) => void } = {},
): ConfiguredLlmProvider & Pick<HttpLlmProvider, 'circuit'> {
  const parsed = LlmConfigSchema.safeParse(config);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const path = issue?.path.join('.') || '(root)';
    throw new QuarryError('INVALID_CONFIG', `llm.${path}: ${issue?.message ?? 'invalid'}`, {
      path: `llm.${path}`,
      issues: parsed.error.issues.map((i) => ({ path: i.path.join('.'), message: i.message })),
    });
  }
  const c = parsed.data;
  const keyEnv = c.apiKeyEnv ?? DEFAULT_KEY_ENV[c.provider];
  const apiKey = env[keyEnv];
  if (c.apiKeyEnv !== undefined && (apiKey === undefined || apiKey === '')) {
    throw new QuarryError(
      'INVALID_CONFIG',
      `llm.apiKeyEnv names the environment variable ${c.apiKeyEnv}, which is not set`,
      { apiKeyEnv: c.apiKeyEnv },
    );
  }
  const options: LlmClientOptions = {
    model: c.model,
    ...(c.baseURL !== undefined ? { baseURL: c.baseURL } : {}),
    ...(apiKey ? { apiKey } : {}),
    ...(c.temperature !== undefined ? { temperature: c.temperature } : {}),
    maxTokens: c.maxTokens,
    ...(c.stop !== undefined ? { stop: c.stop } : {}),
    stream: c.stream,
    connectTimeoutMs: c.connectTimeoutMs,
    readTimeoutMs: c.readTimeoutMs,
    maxRetries: c.maxRetries,
    initialBackoffMs: c.initialBackoffMs,
    maxBackoffMs: c.maxBackoffMs,
    maxRetryAfterMs: c.maxRetryAfterMs,
    circuitBreaker: c.circuitBreaker,
    prices: c.prices,
    headers: c.headers,
    ...(hooks.onRetry ? { onRetry: hooks.onRetry } : {}),
  };
  const provider =
    c.provider === 'anthropic' ? createAnthropicProvider(options) : createOpenAIChatProvider(options);
  return Object.assign(provider, {
    contextWindow: contextWindowFor(c.model, c.contextWindow),
    maxTokens: c.maxTokens,
  });
}

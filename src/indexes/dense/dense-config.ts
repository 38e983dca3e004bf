/**
 * Which dense models a store keeps indexes for, and which one answers a query. Each named model has its own
 * dense index; the router picks one per query by its length (e.g. a small fast model for keyword queries).
 * Validated here, at the configuration boundary: names are unique, routes name configured models.
 */
import { z } from 'zod';
import { OnnxEmbedderConfigSchema, OpenAIEmbedderConfigSchema } from '../../embed/from-config.js';

/** Part of the index file name, so kept to a portable alphabet. */
const ModelName = z
  .string()
  .regex(/^[A-Za-z0-9][A-Za-z0-9_-]{0,39}$/, 'letters, digits, _ and - (at most 40), starting alphanumeric');

export const DenseModelConfigSchema = z.discriminatedUnion('provider', [
  /** The corpus-trained embedder (no downloads); settings from `retrieval.dense.dimensions`/`ngramWeight`. */
  z.object({ name: ModelName, provider: z.literal('builtin') }),
  OpenAIEmbedderConfigSchema.extend({ name: ModelName }),
  OnnxEmbedderConfigSchema.extend({ name: ModelName }),
]);

export const DenseRouteSchema = z.object({
  /** Taken when the query has at most this many words… */
  maxQueryWords: z.number().int().min(1).optional(),
  /** …and at most this many characters. A route with neither limit takes every query. */
  maxQueryChars: z.number().int().min(1).optional(),
  /** Name of a configured model. */
  model: ModelName,
});

export const DEFAULT_DENSE_MODELS = [{ name: 'builtin', provider: 'builtin' as const }];

/** The `retrieval.dense` fields for the models and the router (merged into that section by the config). */
export const DenseModelsConfigShape = {
  /** Named dense models, one index each; the first is the default. */
  models: z.array(DenseModelConfigSchema).min(1).max(16).default(DEFAULT_DENSE_MODELS),
  /** First matching route wins; no match (or no router) = the first model. */
  router: z.array(DenseRouteSchema).max(16).optional(),
  /** Chunks per embedding call when a remote or ONNX index catches up with the store. */
  syncBatchSize: z.number().int().min(1).max(100_000).default(512),
};

type DenseModelsSection = {
  models: Array<{ name: string; provider: string }>;
  router?: Array<{ model: string }> | undefined;
};

/** Cross-field checks for the section: unique names, one built-in model at most, routes to known models. */
export function checkDenseModels(section: DenseModelsSection, ctx: z.RefinementCtx): void {
  const names = new Set<string>();
  section.models.forEach((m, i) => {
    if (names.has(m.name))
      ctx.addIssue({
        code: 'custom',
        path: ['models', i, 'name'],
        message: `duplicate model name "${m.name}"`,
      });
    names.add(m.name);
  });
  if (section.models.filter((m) => m.provider === 'builtin').length > 1)
    ctx.addIssue({ code: 'custom', path: ['models'], message: 'at most one builtin model' });
  section.router?.forEach((r, i) => {
    if (!names.has(r.model))
      ctx.addIssue({
        code: 'custom',
        path: ['router', i, 'model'],
        message: `no model named "${r.model}" in retrieval.dense.models`,
      });
  });
}

export type DenseModelConfig = z.infer<typeof DenseModelConfigSchema>;
export type DenseRoute = z.infer<typeof DenseRouteSchema>;

export interface DenseRouteDecision {
  model: string;
  /** Index of the route taken; -1 when no route matched (or there is no router) and the default answered. */
  route: number;
  words: number;
  chars: number;
}

/** First route whose limits the query fits; otherwise the default model. */
export function routeQuery(
  query: string,
  defaultModel: string,
  router: readonly DenseRoute[] | undefined,
): DenseRouteDecision {
  const t = query.trim();
  const words = t.length === 0 ? 0 : t.split(/\s+/u).length;
  let chars = 0;
  for (const _ of t) chars++;
  const routes = router ?? [];
  for (let i = 0; i < routes.length; i++) {
    const r = routes[i]!;
    if (r.maxQueryWords !== undefined && words > r.maxQueryWords) continue;
    if (r.maxQueryChars !== undefined && chars > r.maxQueryChars) continue;
    return { model: r.model, route: i, words, chars };
  }
  return { model: defaultModel, route: -1, words, chars };
}

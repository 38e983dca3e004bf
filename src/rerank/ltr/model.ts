/**
 * The learning-to-rank model: a linear function of standardized features, stored as versioned JSON
 * (`format: 'quarry-ltr'`). Loading validates the file and refuses features this version cannot compute, so a
 * model trained elsewhere fails loudly instead of scoring with zeros.
 */
import fs from 'node:fs';
import { z } from 'zod';
import { QuarryError } from '../../errors.js';
import { FEATURE_INDEX, FEATURE_NAMES } from './features.js';

const finite = z.number().refine(Number.isFinite, 'must be a finite number');

export const LtrModelSchema = z
  .object({
    format: z.literal('quarry-ltr'),
    version: z.literal(1),
    /** Feature names (see FEATURE_NAMES), parallel to weights and normalization. */
    features: z.array(z.string()).min(1),
    weights: z.array(finite),
    bias: finite,
    /** Standardization applied before the weights: (x − mean) / std, fitted on the training pools. */
    normalization: z.object({
      mean: z.array(finite),
      std: z.array(finite.refine((s) => s > 0, 'must be > 0')),
    }),
    /** Provenance: dataset, split, retriever, depth, method, seed… */
    trainedOn: z.record(z.string(), z.unknown()),
    /** Measured figures, e.g. train nDCG@10 before/after. */
    metrics: z.record(z.string(), finite),
  })
  .superRefine((m, ctx) => {
    const n = m.features.length;
    for (const [key, len] of [
      ['weights', m.weights.length],
      ['normalization.mean', m.normalization.mean.length],
      ['normalization.std', m.normalization.std.length],
    ] as const) {
      if (len !== n) {
        ctx.addIssue({
          code: 'custom',
          path: key.split('.'),
          message: `has ${len} entries, expected ${n} (one per feature)`,
        });
      }
    }
    const seen = new Set<string>();
    m.features.forEach((f, i) => {
      if (seen.has(f)) ctx.addIssue({ code: 'custom', path: ['features', i], message: `duplicate "${f}"` });
      seen.add(f);
    });
  });

export type LtrModel = z.infer<typeof LtrModelSchema>;

/**
 * Validates a parsed model. Unknown features are reported by name with the list this version knows, since
 * that is the mistake a hand-edited or newer model makes.
 */
export function parseLtrModel(input: unknown, source = 'model'): LtrModel {
  const parsed = LtrModelSchema.safeParse(input);
  if (!parsed.success) {
    const issues = parsed.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ');
    throw new QuarryError('RANKER_MODEL', `${source}: ${issues}`, { source, issues: parsed.error.issues });
  }
  const unknown = parsed.data.features.filter((f) => !FEATURE_INDEX.has(f));
  if (unknown.length > 0) {
    throw new QuarryError(
      'RANKER_MODEL',
      `${source}: unknown feature${unknown.length > 1 ? 's' : ''} ${unknown.map((f) => `"${f}"`).join(', ')} (known: ${FEATURE_NAMES.join(', ')})`,
      { source, unknown },
    );
  }
  return parsed.data;
}

/** Reads and validates a model JSON file. */
export function loadLtrModel(file: string): LtrModel {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    throw new QuarryError('RANKER_MODEL', `cannot read ${file}`, { file }, e);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new QuarryError('RANKER_MODEL', `${file}: malformed JSON (${(e as Error).message})`, { file }, e);
  }
  return parseLtrModel(json, file);
}

/** The bundled model (trained on scifact train only; see default-model.json's trainedOn). */
export function defaultLtrModel(): LtrModel {
  return loadLtrModel(new URL('./default-model.json', import.meta.url).pathname);
}

/** A model compiled for scoring: feature positions resolved once. */
export interface CompiledModel {
  readonly model: LtrModel;
  score(row: Float64Array): number;
}

export function compileModel(model: LtrModel): CompiledModel {
  const idx = model.features.map((f) => FEATURE_INDEX.get(f)!);
  const w = model.weights.map((x, i) => x / model.normalization.std[i]!);
  let offset = model.bias;
  for (let i = 0; i < idx.length; i++) offset -= w[i]! * model.normalization.mean[i]!;
  return {
    model,
    score(row) {
      let s = offset;
      for (let i = 0; i < idx.length; i++) s += w[i]! * row[idx[i]!]!;
      return s;
    },
  };
}

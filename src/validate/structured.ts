/**
 * Structured output from an LLM: ask for JSON (the provider's JSON mode plus the schema in the prompt),
 * validate it against a JSON Schema, and give the model one chance to fix what the validator reported.
 * Self-critique, and any stage that needs a typed reply, goes through here instead of parsing free text.
 */
import type { ErrorObject, ValidateFunction } from 'ajv';
import { QuarryError } from '../errors.js';
import type { ChatMessage, Completion, LlmProvider, TokenUsage } from '../generate/llm/types.js';
import { lazyModule } from '../lazy.js';

// ajv loads with the first schema compiled: structured output is opt-in, and ajv costs ~140 ms to load.
const ajvDraft07 = lazyModule<typeof import('ajv')>('ajv');
const ajvDraft2019 = lazyModule<typeof import('ajv/dist/2019.js')>('ajv/dist/2019.js');
const ajvDraft2020 = lazyModule<typeof import('ajv/dist/2020.js')>('ajv/dist/2020.js');
const ajvFormats = lazyModule<typeof import('ajv-formats')>('ajv-formats');

/** A JSON Schema object (draft-07 by default; `$schema` selects 2019-09 or 2020-12). */
export type JsonSchema = Record<string, unknown>;

export interface StructuredOptions {
  /** Default 0: the same question should get the same structure. */
  temperature?: number;
  maxTokens?: number;
  signal?: AbortSignal;
}

export interface StructuredResult<T> {
  value: T;
  /** 1, or 2 when the first reply had to be corrected. */
  attempts: number;
  /** Raw reply that validated. */
  text: string;
  /** Summed over attempts (cost only when every attempt had a price). */
  usage: TokenUsage;
  model: string;
}

/** One problem the validator found, as the model is told about it. */
export interface SchemaProblem {
  /** JSON Pointer into the reply (`/unsupported/2`), `` for the root. */
  path: string;
  message: string;
}

const compiled = new WeakMap<JsonSchema, ValidateFunction>();

function validatorFor(schema: unknown): ValidateFunction {
  if (typeof schema !== 'object' || schema === null || Array.isArray(schema))
    throw new QuarryError('INVALID_ARGUMENT', 'a JSON Schema must be an object', { schema });
  const s = schema as JsonSchema;
  const cached = compiled.get(s);
  if (cached !== undefined) return cached;
  const draft = typeof s.$schema === 'string' ? s.$schema : '';
  // Annotation keywords from other vocabularies (OpenAPI's `example`, …) are common in real schemas.
  const opts = { allErrors: true, strict: false };
  const ajv = draft.includes('2020-12')
    ? new (ajvDraft2020().Ajv2020)(opts)
    : draft.includes('2019-09')
      ? new (ajvDraft2019().Ajv2019)(opts)
      : new (ajvDraft07().Ajv)(opts);
  // The plugin is CommonJS with `exports.default`.
  ajvFormats().default(ajv);
  let validate: ValidateFunction;
  try {
    validate = ajv.compile(s);
  } catch (e) {
    throw new QuarryError(
      'INVALID_ARGUMENT',
      `invalid JSON Schema: ${e instanceof Error ? e.message : String(e)}`,
      { schema: s },
      e,
    );
  }
  compiled.set(s, validate);
  return validate;
}

/** Validates a JSON Schema without calling a model (INVALID_ARGUMENT when it is not one). */
export function compileJsonSchema(schema: unknown): (value: unknown) => SchemaProblem[] {
  const validate = validatorFor(schema);
  return (value) => (validate(value) ? [] : describeErrors(validate.errors ?? []));
}

function describeErrors(errors: ErrorObject[]): SchemaProblem[] {
  return errors.map((e) => {
    let message = e.message ?? 'is invalid';
    if (e.keyword === 'enum') {
      const allowed = (e.params as { allowedValues?: unknown[] }).allowedValues ?? [];
      message += `: ${allowed.map((v) => JSON.stringify(v)).join(', ')}`;
    } else if (e.keyword === 'additionalProperties') {
      message += `: ${JSON.stringify((e.params as { additionalProperty?: string }).additionalProperty)}`;
    }
    return { path: e.instancePath, message };
  });
}

/** The JSON value in a reply: the whole text, or the content of a ```json fence around it. */
export function extractJson(text: string): unknown {
  const trimmed = text.trim();
  const fenced = /^```[ \t]*(?:json|JSON)?[ \t]*\r?\n([\s\S]*?)\r?\n?```\s*$/.exec(trimmed);
  return JSON.parse(fenced?.[1] ?? trimmed);
}

function schemaInstruction(schema: JsonSchema): string {
  return `Respond with a single JSON object, and nothing else, that conforms to this JSON Schema:\n${JSON.stringify(schema)}`;
}

function withInstruction(messages: readonly ChatMessage[], schema: JsonSchema): ChatMessage[] {
  const instruction = schemaInstruction(schema);
  const [first, ...rest] = messages;
  if (first?.role === 'system')
    return [{ role: 'system', content: `${first.content}\n\n${instruction}` }, ...rest];
  return [{ role: 'system', content: instruction }, ...messages];
}

function addUsage(a: TokenUsage | undefined, b: TokenUsage): TokenUsage {
  if (a === undefined) return { ...b };
  const cost = a.costUsd !== undefined && b.costUsd !== undefined ? a.costUsd + b.costUsd : undefined;
  return {
    inputTokens: a.inputTokens + b.inputTokens,
    outputTokens: a.outputTokens + b.outputTokens,
    ...(cost !== undefined ? { costUsd: cost } : {}),
  };
}

type Check = { ok: true; value: unknown } | { ok: false; problems: SchemaProblem[] };

function check(text: string, validate: ValidateFunction): Check {
  let value: unknown;
  try {
    value = extractJson(text);
  } catch (e) {
    return { ok: false, problems: [{ path: '', message: `is not valid JSON (${(e as Error).message})` }] };
  }
  return validate(value)
    ? { ok: true, value }
    : { ok: false, problems: describeErrors(validate.errors ?? []) };
}

const formatProblems = (problems: SchemaProblem[]): string =>
  problems.map((p) => `- ${p.path === '' ? '(root)' : p.path}: ${p.message}`).join('\n');

/**
 * Asks `provider` for a JSON reply to `messages` that conforms to `jsonSchema`. A reply that is not JSON or
 * does not validate is sent back once with the validator's findings; a second failure is a QuarryError
 * (LLM_OUTPUT_INVALID) listing them. Provider errors pass through unchanged.
 */
export async function generateStructured<T = unknown>(
  provider: LlmProvider,
  messages: readonly ChatMessage[],
  jsonSchema: JsonSchema,
  opts: StructuredOptions = {},
): Promise<StructuredResult<T>> {
  const validate = validatorFor(jsonSchema);
  const conversation = withInstruction(messages, jsonSchema);
  let usage: TokenUsage | undefined;
  let last: { completion: Completion; problems: SchemaProblem[] } | undefined;
  for (let attempt = 1; attempt <= 2; attempt++) {
    const completion = await provider.complete({
      messages: conversation,
      json: true,
      temperature: opts.temperature ?? 0,
      ...(opts.maxTokens !== undefined ? { maxTokens: opts.maxTokens } : {}),
      ...(opts.signal !== undefined ? { signal: opts.signal } : {}),
    });
    usage = addUsage(usage, completion.usage);
    const result = check(completion.text, validate);
    if (result.ok)
      return {
        value: result.value as T,
        attempts: attempt,
        text: completion.text,
        usage,
        model: completion.model,
      };
    last = { completion, problems: result.problems };
    conversation.push(
      { role: 'assistant', content: completion.text },
      {
        role: 'user',
        content: `That reply does not conform to the JSON Schema:\n${formatProblems(result.problems)}\nReply with the corrected JSON object only.`,
      },
    );
  }
  const problems = last!.problems;
  throw new QuarryError(
    'LLM_OUTPUT_INVALID',
    `${provider.id} returned JSON that does not match the schema twice: ${problems
      .map((p) => `${p.path === '' ? '(root)' : p.path} ${p.message}`)
      .join('; ')}`,
    { provider: provider.id, problems, output: last!.completion.text.slice(0, 2000) },
  );
}

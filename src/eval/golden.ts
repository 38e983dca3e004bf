/**
 * QA golden sets: the questions a team expects its RAG to answer (or to decline), with the answers and the
 * source documents it should cite, for `quarry eval <golden.jsonl> --corpus <dir>`. One zod schema is the
 * source of truth: it validates every item on load (errors name the line and the field) and exports the
 * JSON Schema committed as docs/golden-set.schema.json.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { z } from 'zod';
import { QuarryError } from '../errors.js';

export const GoldenItemSchema = z
  .object({
    id: z
      .string()
      .min(1)
      .optional()
      .describe('Stable id of the question (default: "q<line>" for JSONL, "q<index+1>" for JSON).'),
    question: z.string().trim().min(1).describe('The question, as a user would ask it.'),
    answers: z
      .array(z.string().trim().min(1))
      .default([])
      .describe(
        'Acceptable answers (short spans); exact match and token F1 take the best of them. Empty for unanswerable questions.',
      ),
    sources: z
      .array(z.string().min(1))
      .default([])
      .describe(
        'Ids of the documents the answer should cite: record ids for JSON/JSONL corpora, file paths relative to the corpus directory (posix separators) for files.',
      ),
    answerable: z
      .boolean()
      .default(true)
      .describe('False when the corpus does not hold the answer: the answerer should abstain.'),
    tags: z
      .array(z.string().min(1))
      .default([])
      .describe('Free labels; the report breaks metrics down per tag.'),
    draft: z
      .boolean()
      .optional()
      .describe('Set by `quarry eval --generate`: drafted automatically, to be reviewed (then removed).'),
    context: z
      .string()
      .optional()
      .describe('Where a drafted question came from (the source sentence), to help the reviewer.'),
  })
  .strict()
  .refine((item) => item.answerable || item.answers.length === 0, {
    message: 'an unanswerable question ("answerable": false) cannot list expected "answers"',
    path: ['answers'],
  })
  .describe('One golden-set question.')
  .meta({ id: 'GoldenItem' });

export type GoldenItem = z.output<typeof GoldenItemSchema>;
export type GoldenItemInput = z.input<typeof GoldenItemSchema>;

const GoldenFileSchema = z.union([
  GoldenItemSchema,
  z.array(GoldenItemSchema),
  z
    .object({
      corpus: z
        .string()
        .min(1)
        .optional()
        .describe('The corpus to ingest (a directory or file), relative to the golden-set file.'),
      items: z.array(GoldenItemSchema),
    })
    .strict(),
]);

/** The JSON Schema of a golden set (docs/golden-set.schema.json is this, pretty-printed). */
export function goldenSetJsonSchema(): Record<string, unknown> {
  return {
    ...z.toJSONSchema(GoldenFileSchema, { io: 'input' }),
    $id: 'https://quarry.dev/schemas/golden-set.schema.json',
    title: 'Quarry QA golden set',
    description:
      'A golden set for `quarry eval`: a JSONL file whose every line is one item, or a JSON file holding an array of items or {"corpus", "items"}. Pass the corpus with --corpus unless the JSON form names it.',
  };
}

export interface GoldenSet {
  /** The file's base name without extension, e.g. `handbook-golden`. */
  name: string;
  file: string;
  items: Array<GoldenItem & { id: string }>;
  /** The corpus the set names (absolute), when its JSON form does. */
  corpus?: string;
}

function issueText(issues: readonly z.core.$ZodIssue[]): string {
  return issues
    .map((i) => {
      const field = i.path.length === 0 ? '(item)' : `field "${i.path.map(String).join('.')}"`;
      return `${field}: ${i.message}`;
    })
    .join('; ');
}

function parseItem(value: unknown, file: string, where: string): GoldenItem {
  const parsed = GoldenItemSchema.safeParse(value);
  if (!parsed.success)
    throw new QuarryError('DATASET', `${file}:${where}: ${issueText(parsed.error.issues)}`, {
      file,
      at: where,
      issues: parsed.error.issues.map((i) => ({ path: i.path.map(String).join('.'), message: i.message })),
    });
  return parsed.data;
}

/** Loads and validates a golden set (`.jsonl`/`.ndjson`: one item per line; `.json`: array or object). */
export async function loadGoldenSet(file: string): Promise<GoldenSet> {
  const abs = path.resolve(file);
  let text: string;
  try {
    text = await readFile(abs, 'utf8');
  } catch (e) {
    throw new QuarryError('DATASET', `cannot read golden set ${abs}`, { file: abs }, e);
  }
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
  const items: Array<GoldenItem & { id: string }> = [];
  let corpus: string | undefined;
  if (/\.json$/i.test(abs)) {
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch (e) {
      throw new QuarryError('DATASET', `${abs}: malformed JSON (${(e as Error).message})`, { file: abs }, e);
    }
    const list = Array.isArray(value)
      ? value
      : typeof value === 'object' && value !== null && 'items' in value
        ? (value as { items: unknown }).items
        : undefined;
    if (!Array.isArray(list))
      throw new QuarryError('DATASET', `${abs}: expected an array of items or {"corpus", "items": [...]}`, {
        file: abs,
      });
    const wrapper = Array.isArray(value) ? undefined : (value as Record<string, unknown>);
    if (wrapper !== undefined) {
      const extra = Object.keys(wrapper).filter((k) => k !== 'items' && k !== 'corpus');
      if (extra.length > 0)
        throw new QuarryError('DATASET', `${abs}: unknown top-level field "${extra[0]}"`, { file: abs });
      if (wrapper.corpus !== undefined && (typeof wrapper.corpus !== 'string' || wrapper.corpus === ''))
        throw new QuarryError('DATASET', `${abs}: field "corpus" must be a non-empty string`, { file: abs });
      if (typeof wrapper.corpus === 'string') corpus = path.resolve(path.dirname(abs), wrapper.corpus);
    }
    list.forEach((v, i) => {
      const item = parseItem(v, abs, `item ${i + 1}`);
      items.push({ ...item, id: item.id ?? `q${i + 1}` });
    });
  } else {
    const lines = text.split(/\r?\n/);
    lines.forEach((line, i) => {
      if (line.trim() === '') return;
      let v: unknown;
      try {
        v = JSON.parse(line);
      } catch (e) {
        throw new QuarryError('DATASET', `${abs}:${i + 1}: malformed JSON (${(e as Error).message})`, {
          file: abs,
          line: i + 1,
        });
      }
      const item = parseItem(v, abs, String(i + 1));
      items.push({ ...item, id: item.id ?? `q${i + 1}` });
    });
  }
  if (items.length === 0)
    throw new QuarryError('DATASET', `${abs}: the golden set has no items`, { file: abs });
  const seen = new Set<string>();
  for (const item of items) {
    if (seen.has(item.id))
      throw new QuarryError('DATASET', `${abs}: duplicate item id "${item.id}"`, { file: abs, id: item.id });
    seen.add(item.id);
  }
  return {
    name: path.basename(abs).replace(/\.(?:jsonl|ndjson|json)$/i, ''),
    file: abs,
    items,
    ...(corpus === undefined ? {} : { corpus }),
  };
}

/** Is this path a golden-set file (rather than a BEIR dataset directory)? */
export function isGoldenSetPath(p: string): boolean {
  return /\.(?:jsonl|ndjson|json)$/i.test(p);
}

/**
 * The id golden sets use for a document: its record id, or for a file document (whose id is its path) the
 * path relative to the corpus directory, so a set stays valid wherever the corpus is ingested from.
 */
export function corpusDocKey(doc: { docId: string; source: string }, corpusRoot: string): string {
  if (doc.docId !== doc.source || /^[a-z][a-z0-9+.-]*:\/\//i.test(doc.docId)) return doc.docId;
  const rel = path.relative(corpusRoot, path.resolve(doc.docId));
  if (rel === '') return path.basename(doc.docId);
  return rel.startsWith('..') || path.isAbsolute(rel) ? doc.docId : rel.split(path.sep).join('/');
}

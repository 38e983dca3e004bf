/**
 * Batch answering (`quarry ask --batch questions.jsonl`, `quarry.askBatch`): every question is validated up
 * front, embedded in one pass, retrieved and answered concurrently with bounded concurrency, and the answers
 * are emitted in input order as soon as each one and all before it are done.
 */
import { z } from 'zod';
import { ANONYMOUS } from '../access/principal.js';
import { narrowToGroups, requestPrincipal } from '../access/visibility.js';
import { createLimiter } from '../embed/types.js';
import { describeError, QuarryError } from '../errors.js';
import type { Answer } from '../types.js';
import type { AskOptions, Quarry } from './quarry.js';

export const BatchQuestionSchema = z
  .object({
    id: z.union([z.string().min(1), z.number()]).optional(),
    question: z.string().trim().min(1, 'question must be a non-empty string'),
    filter: z.unknown().optional(),
    k: z.number().int().min(1).max(10_000).optional(),
    groups: z.array(z.string()).optional(),
  })
  .strict();

export type BatchQuestion = z.infer<typeof BatchQuestionSchema>;

/** One output line: the answer with its citations, or the error that question hit. */
export interface BatchAnswer {
  id: string;
  question: string;
  answer?: Omit<Answer, 'hits' | 'trace'> & {
    sources: Array<{ rank: number; docId: string; chunkId: number }>;
  };
  error?: { code: string; message: string };
}

/**
 * Options for every question. `principal` (default ANONYMOUS) is who asks; a question's `groups` narrow it to
 * those groups (see `narrowToGroups`), never widen it.
 */
export interface BatchOptions extends Omit<AskOptions, 'filter' | 'scope' | 'k' | 'queryVectors'> {
  /** Questions answered at once (generation is the slow part; default 4). */
  concurrency?: number;
}

/** Parse a JSONL batch; every bad line is reported (by number) before any work starts. */
export function parseBatchJsonl(text: string, name = 'batch'): BatchQuestion[] {
  const out: BatchQuestion[] = [];
  const problems: string[] = [];
  text.split(/\r?\n/).forEach((line, i) => {
    if (line.trim() === '') return;
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch (e) {
      problems.push(`line ${i + 1}: not JSON (${(e as Error).message})`);
      return;
    }
    const parsed = BatchQuestionSchema.safeParse(value);
    if (!parsed.success) {
      const why = parsed.error.issues.map((x) => `${x.path.join('.') || '(line)'}: ${x.message}`).join('; ');
      problems.push(`line ${i + 1}: ${why}`);
      return;
    }
    out.push(parsed.data);
  });
  if (problems.length > 0)
    throw new QuarryError('INVALID_ARGUMENT', `${name}: ${problems.slice(0, 10).join('; ')}`, { problems });
  if (out.length === 0) throw new QuarryError('INVALID_ARGUMENT', `${name}: no questions`);
  return out;
}

export async function* askBatch(
  quarry: Quarry,
  questions: BatchQuestion[],
  options: BatchOptions = {},
): AsyncGenerator<BatchAnswer> {
  const { concurrency = 4, ...ask } = options;
  const principal = requestPrincipal({ principal: ask.principal ?? ANONYMOUS });
  const limiter = createLimiter(concurrency);
  // One embedding pass for all questions: a remote embedder gets batched requests, the built-in one a tight loop.
  const queryVectors = await quarry.embedQueries(
    questions.map((q) => q.question),
    ask.retriever,
  );
  const results = questions.map((q, i) =>
    limiter.run(async (): Promise<BatchAnswer> => {
      const id = q.id === undefined ? String(i + 1) : String(q.id);
      try {
        const a = await quarry.ask(q.question, {
          ...ask,
          queryVectors,
          ...(q.filter === undefined ? {} : { filter: q.filter }),
          ...(q.k === undefined ? {} : { k: q.k }),
          principal: q.groups === undefined ? principal : narrowToGroups(principal, q.groups),
        });
        const { hits, trace: _trace, ...rest } = a;
        return {
          id,
          question: q.question,
          answer: {
            ...rest,
            sources: hits.map((h) => ({ rank: h.rank, docId: h.chunk.docId, chunkId: h.chunk.id })),
          },
        };
      } catch (e) {
        return { id, question: q.question, error: describeError(e) };
      }
    }),
  );
  for (const r of results) yield await r;
}

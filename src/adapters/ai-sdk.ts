/**
 * Quarry as Vercel AI SDK tools (`quarry/ai-sdk`; `ai` is an optional peer dependency): `search` returns
 * passages with their sources, `ask` a cited answer, both as JSON for the model. Pass them to
 * `generateText` / `streamText` and the model looks things up in Quarry's store itself. Who the tools read
 * as (`principal`) and any base filter are fixed by the application; the model can narrow a search with
 * its own filter, never widen it.
 *
 * @example
 * const { text } = await generateText({
 *   model,
 *   tools: quarryTools(quarry, { principal }),
 *   stopWhen: stepCountIs(3),
 *   prompt: 'How long do refunds take? Cite your source.',
 * });
 */
import { type Tool, tool } from 'ai';
import { z } from 'zod';
import type { Quarry } from '../pipeline/quarry.js';
import { compileFilter } from '../retrieve/filter.js';
import type { AdapterSearchOptions, CitedSpan } from './citations.js';

export type { AdapterSearchOptions } from './citations.js';

export interface QuarryToolsOptions extends AdapterSearchOptions {
  /** Passages a search returns when the model does not say (default 5), and the passages `ask` answers from (default: Quarry's). */
  k?: number;
  /** The most passages the model may ask for (default 20). */
  maxK?: number;
}

/** What the `search` tool hands the model. */
export interface QuarrySearchToolOutput {
  query: string;
  results: Array<
    CitedSpan & {
      /** 1-based rank. */
      rank: number;
      score: number;
      text: string;
    }
  >;
  /** Stages that ran in a reduced form (e.g. dense retrieval unavailable), when any did. */
  degraded?: string[];
}

/** What the `ask` tool hands the model. */
export interface QuarryAskToolOutput {
  question: string;
  /** The answer, with `[n]` markers pointing to `citations`. */
  answer: string;
  /** True when the documents did not support an answer and Quarry said so instead of guessing. */
  abstained: boolean;
  /** 0–1: how well the retrieved text covers the question. */
  confidence: number;
  citations: Array<
    CitedSpan & {
      marker: number;
      /** The cited text, exactly as it stands in the document. */
      quote: string;
    }
  >;
}

const searchInput = z.object({
  query: z.string().min(1).describe('What to look for: a question or keywords'),
  k: z.number().int().min(1).optional().describe('How many passages to return'),
  filter: z
    .record(z.string(), z.unknown())
    .optional()
    .describe(
      'Optional metadata filter, MongoDB-style, e.g. {"tags": "billing"} or {"year": {"$gte": 2024}}',
    ),
});

const askInput = z.object({
  question: z.string().min(1).describe('The question to answer from the documents'),
});

/** A type, not an interface, so it is assignable to the AI SDK's `ToolSet` (an index signature). */
export type QuarryTools = {
  search: Tool<z.infer<typeof searchInput>, QuarrySearchToolOutput>;
  ask: Tool<z.infer<typeof askInput>, QuarryAskToolOutput>;
};

/**
 * The `search` and `ask` tools over `quarry`. `options` are the application's: `principal` (missing =
 * ANONYMOUS: unrestricted documents only), a base `filter` every call keeps, `k` and `maxK`, and the
 * retrieval choices of a request.
 */
export function quarryTools(quarry: Quarry, options: QuarryToolsOptions = {}): QuarryTools {
  const { k: defaultK = 5, maxK = 20, filter: baseFilter, ...rest } = options;
  // Validated now, so a bad base filter fails here and not at the model's first call.
  const base = baseFilter === undefined ? undefined : compileFilter(baseFilter).source;
  const filterWith = (own: Record<string, unknown> | undefined): unknown => {
    if (own === undefined) return base;
    return base === undefined ? own : { $and: [base, own] };
  };
  return {
    search: tool({
      description:
        'Search the document collection. Returns the most relevant passages, best first, each with its ' +
        'source, title and section so you can cite it. Use it to find facts before you answer.',
      inputSchema: searchInput,
      execute: async ({ query, k, filter }, { abortSignal }): Promise<QuarrySearchToolOutput> => {
        const result = await quarry.search(query, {
          ...rest,
          k: Math.min(k ?? defaultK, maxK),
          ...withFilter(filterWith(filter)),
          ...(abortSignal === undefined ? {} : { signal: abortSignal }),
        });
        return {
          query,
          results: result.hits.map((h) => ({
            rank: h.rank,
            docId: h.chunk.docId,
            chunkId: h.chunk.id,
            source: h.document.source,
            title: h.document.title,
            sectionPath: [...h.chunk.sectionPath],
            start: h.chunk.start,
            end: h.chunk.end,
            score: h.score,
            text: h.chunk.text,
          })),
          ...(result.degraded.length === 0
            ? {}
            : { degraded: result.degraded.map((d) => `${d.stage}: ${d.reason}`) }),
        };
      },
    }),
    ask: tool({
      description:
        'Answer a question from the document collection. Returns an answer whose [n] markers point to ' +
        'citations (source, title, quoted text); abstained is true when the documents do not support an answer.',
      inputSchema: askInput,
      execute: async ({ question }, { abortSignal }): Promise<QuarryAskToolOutput> => {
        const answer = await quarry.ask(question, {
          ...rest,
          ...(options.k === undefined ? {} : { k: options.k }),
          ...withFilter(base),
          ...(abortSignal === undefined ? {} : { signal: abortSignal }),
        });
        return {
          question,
          answer: answer.text,
          abstained: answer.abstained,
          confidence: answer.confidence,
          citations: answer.citations.map((c) => ({
            marker: c.marker,
            docId: c.docId,
            chunkId: c.chunkId,
            source: c.source,
            title: c.title,
            sectionPath: [...c.sectionPath],
            start: c.start,
            end: c.end,
            quote: c.quote,
          })),
        };
      },
    }),
  };
}

function withFilter(filter: unknown): { filter?: unknown } {
  return filter === undefined ? {} : { filter };
}

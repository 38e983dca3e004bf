/**
 * Stage "assemble", answer side: packs the retrieved hits into the LLM's context window — real token
 * counts for the model, the output budget reserved, parent sections expanded and sentences compressed
 * where configured — and numbers the sources the answer will cite. Trace: `context.assemble` (budget,
 * tokens, sources, what was dropped). Does not degrade: what does not fit is dropped and listed.
 * The search side of this stage (ranked candidates → hits) is in ./hits.ts.
 */
import type { QuarryConfig } from '../config/config.js';
import type { ConfiguredLlmProvider } from '../generate/llm/create.js';
import type { PromptTemplate } from '../generate/prompt.js';
import type { StageContext } from '../stage.js';
import type { ParentSection } from '../store/types.js';
import type { SearchHit, Tokenizer } from '../types.js';
import { assembleContext } from './context.js';
import { countTokenizerMessages } from './tokenizer.js';
import type { ContextWindow } from './types.js';

export interface AssembleDeps {
  config: QuarryConfig;
  provider: Pick<ConfiguredLlmProvider, 'model' | 'contextWindow' | 'maxTokens'>;
  tokenizer: Tokenizer;
  template: PromptTemplate;
  analyze(text: string): string[];
  idf(term: string): number;
  getParentSection(chunkId: number): ParentSection | undefined;
  sectionChunks(docId: string, section: number): Array<{ id: number; start: number; end: number }>;
}

export function assemble(
  question: string,
  hits: SearchHit[],
  today: Date,
  deps: AssembleDeps,
  ctx: StageContext,
): ContextWindow {
  const { config, provider, tokenizer } = deps;
  return ctx.trace.stage(
    'context.assemble',
    () =>
      assembleContext(
        question,
        hits,
        {
          ...config.context,
          // The model decides the window and the output it needs; the context section tunes the rest.
          window: provider.contextWindow,
          reservedOutput: provider.maxTokens,
          template: deps.template,
          today,
        },
        {
          analyze: deps.analyze,
          idf: deps.idf,
          countTokens: (t) => tokenizer.count(t),
          countMessages: (m) => countTokenizerMessages(tokenizer, m),
          getParentSection: deps.getParentSection,
          sectionChunks: deps.sectionChunks,
        },
      ),
    (c) => ({
      model: provider.model,
      tokenizer: tokenizer.id,
      budget: c.budget,
      tokens: c.tokens,
      ordering: c.ordering,
      compressedSentences: c.compressedSentences,
      sources: c.sources.map((s) => ({
        n: s.n,
        kind: s.kind,
        chunkIds: s.chunkIds,
        tokens: s.tokens,
        score: Math.round(s.score * 10000) / 10000,
      })),
      dropped: c.dropped,
    }),
  );
}

/**
 * The budget property: whatever the question, hits, budget, ordering, compression and model, the fully
 * rendered prompt (every message, counted with the model's tokenizer) fits window − reservedOutput, and every
 * source segment is the exact document slice it claims. When not even the empty prompt fits, assembly fails
 * with CONTEXT_BUDGET instead of overflowing.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { assembleContext } from '../../src/assemble/context.js';
import { tokenizerFor } from '../../src/assemble/tokenizer.js';
import { isQuarryError } from '../../src/errors.js';
import { buildPrompt, DEFAULT_PROMPT_TEMPLATE, type PromptTemplate } from '../../src/generate/prompt.js';
import { buildCorpus, type Corpus, expectExactSegments } from './corpus.js';

const WORDS = [
  'index',
  'token',
  'budget',
  'parent',
  'section',
  'chunk',
  'overlap',
  'window',
  'citation',
  'source',
  'retrieval',
  'dense',
  'lexical',
  'Überprüfung',
  'naïve',
  'café',
  '検索',
  '生成',
  'данные',
  'شبكة',
  '🙂',
  'e.g.',
  'v2.3.1',
  'ERR_42',
  '{{question}}',
  '<|endoftext|>',
];

function document(seed: number, sections: number): string {
  let x = seed;
  const next = (): number => {
    x = (x * 1103515245 + 12345) % 2147483648;
    return x;
  };
  const sentence = (): string => {
    const n = 3 + (next() % 18);
    const words = Array.from({ length: n }, () => WORDS[next() % WORDS.length]!);
    return `${words.join(' ').replace(/^./, (c) => c.toUpperCase())}${['.', '!', '?', '.'][next() % 4]}`;
  };
  const parts = [`# Document ${seed}`];
  for (let s = 0; s < sections; s++) {
    parts.push(`## Part ${s}`);
    const paragraphs = 1 + (next() % 4);
    for (let p = 0; p < paragraphs; p++)
      parts.push(Array.from({ length: 1 + (next() % 7) }, sentence).join(' '));
  }
  return `${parts.join('\n\n')}\n`;
}

const MODELS = ['gpt-4o', 'gpt-4', 'claude-sonnet-4-5', 'mistral-small'];
const files = Object.fromEntries([1, 2, 3, 4, 5].map((i) => [`doc${i}`, document(i * 7919, 2 + (i % 4))]));
// Two chunkings: tiny chunks (many overlapping children per section) and larger ones.
const corpora: Corpus[] = [
  buildCorpus(files, { maxTokens: 20, overlapTokens: 8, parentMaxTokens: 200 }),
  buildCorpus(files, { maxTokens: 64, overlapTokens: 16, parentMaxTokens: 400 }),
];

const TERSE: PromptTemplate = { system: '', user: '{{sources}}\n{{question}}', source: '{{n}}:{{text}}' };

const question = fc.oneof(
  fc.string({ maxLength: 40 }),
  fc.string({ unit: 'grapheme', maxLength: 200 }),
  fc.string({ unit: 'binary', maxLength: 80 }),
  fc.array(fc.constantFrom(...WORDS), { maxLength: 30 }).map((w) => w.join(' ')),
  fc
    .integer({ min: 200, max: 3000 })
    .map((n) => 'why is the token budget exceeded '.repeat(Math.ceil(n / 8))),
);

const scenario = fc.record({
  corpus: fc.nat({ max: corpora.length - 1 }),
  model: fc.constantFrom(...MODELS),
  question,
  picks: fc.array(fc.nat({ max: 10_000 }), { maxLength: 40 }),
  /** Extra hits on the chunks of one section (many children of one parent). */
  sectionBurst: fc.option(fc.nat({ max: 10_000 }), { nil: undefined }),
  window: fc.integer({ min: 64, max: 6000 }),
  reservedShare: fc.double({ min: 0, max: 0.9, noNaN: true }),
  ordering: fc.constantFrom('relevance' as const, 'document' as const, 'edges' as const),
  compression: fc.constantFrom('off' as const, 'auto' as const, 'always' as const),
  minChildren: fc.integer({ min: 1, max: 4 }),
  parentExpansion: fc.boolean(),
  sectionChunks: fc.boolean(),
  terse: fc.boolean(),
});

describe('assembleContext never overflows', () => {
  it('holds for random questions, hits, budgets, orderings and models', () => {
    let fitted = 0;
    let refused = 0;
    let withSources = 0;
    fc.assert(
      fc.property(scenario, (sc) => {
        const corpus = corpora[sc.corpus]!;
        const all = [...corpus.chunks.values()];
        const tokenizer = tokenizerFor(sc.model);
        const ids = sc.picks.map((p) => all[p % all.length]!.id);
        if (sc.sectionBurst !== undefined) {
          const anchor = all[sc.sectionBurst % all.length]!;
          for (const c of all)
            if (c.docId === anchor.docId && c.sectionOrdinal === anchor.sectionOrdinal) ids.push(c.id);
        }
        const hits = ids.map((id, i) => corpus.hit(id, 1 / (1 + i)));
        const reservedOutput = Math.floor(sc.window * sc.reservedShare);
        const template = sc.terse ? TERSE : DEFAULT_PROMPT_TEMPLATE;
        const { sectionChunks, ...baseDeps } = corpus.deps;
        const deps = {
          ...baseDeps,
          ...(sc.sectionChunks && sectionChunks ? { sectionChunks } : {}),
          countTokens: tokenizer.count,
          countMessages: tokenizer.countMessages,
        };
        const limit = sc.window - reservedOutput;
        const options = {
          window: sc.window,
          reservedOutput,
          ordering: sc.ordering,
          compression: sc.compression,
          parentExpansion: { enabled: sc.parentExpansion, minChildren: sc.minChildren },
          template,
          today: '2025-05-05',
        };
        let window: ReturnType<typeof assembleContext>;
        try {
          window = assembleContext(sc.question, hits, options, deps);
        } catch (e) {
          if (!isQuarryError(e) || e.code !== 'CONTEXT_BUDGET') throw e;
          // Refused only when the prompt without sources really does not fit.
          const empty = tokenizer.countMessages(
            buildPrompt(template, sc.question, { sources: [], today: '2025-05-05' }),
          );
          expect(empty).toBeGreaterThan(limit);
          refused++;
          return;
        }
        const prompt = buildPrompt(template, sc.question, window);
        expect(tokenizer.countMessages(prompt)).toBeLessThanOrEqual(limit);
        expect(window.tokens).toBeLessThanOrEqual(window.budget.available);
        expect(window.budget.available).toBe(limit - window.budget.promptOverhead);
        expectExactSegments(window, (id) => corpus.docs.get(id)!.text);
        expect(window.sources.map((s) => s.n)).toEqual(window.sources.map((_, i) => i + 1));
        // No chunk is shown twice, and every hit is either shown or accounted for.
        const shown = window.sources.flatMap((s) => s.chunkIds);
        expect(new Set(shown).size).toBe(shown.length);
        const accounted = new Set([...shown, ...window.dropped.map((d) => d.chunkId)]);
        for (const id of ids) expect(accounted.has(id)).toBe(true);
        fitted++;
        if (window.sources.length > 0) withSources++;
      }),
      { numRuns: 250, seed: 20250505 },
    );
    // The generator must exercise both outcomes, and mostly windows that hold sources.
    expect(refused).toBeGreaterThan(0);
    expect(fitted).toBeGreaterThan(100);
    expect(withSources).toBeGreaterThan(50);
  });
});

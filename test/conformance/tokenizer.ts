/**
 * The Tokenizer conformance suite: what every tokenizer — a built-in or a library user's object — must do
 * for chunk sizes and the context budget to hold. `tokenizerConformance(name, make)` registers the tests.
 */
import { describe, expect, it } from 'vitest';
import type { GenerateRequest, LanguageModel, LlmEvent, Tokenizer } from '../../src/index.js';
import { CORPUS, openWith } from './corpus.js';

const SAMPLES = [
  'Every ingest batch is one transaction, so the store survives a crash.',
  'naïve café — Ünïcode, 日本語のテキスト, emoji 🚀 and code `fn(x) => x + 1`.',
  'a',
  '   spaced    out   ',
  '<|endoftext|> is just text in a document.',
];

/** An LLM that always answers with one supported sentence, to exercise the context budget. */
const echoLlm = (): LanguageModel => {
  const stream = async function* (_: GenerateRequest): AsyncGenerator<LlmEvent> {
    yield { type: 'delta', text: 'On Fridays there is a pizza buffet [1].' };
    yield { type: 'done', finishReason: 'stop', model: 'echo', usage: { inputTokens: 1, outputTokens: 1 } };
  };
  return {
    id: 'test:echo',
    model: 'echo',
    contextWindow: 2048,
    stream,
    complete: async () => ({
      text: 'On Fridays there is a pizza buffet [1].',
      finishReason: 'stop',
      model: 'echo',
      usage: { inputTokens: 1, outputTokens: 1 },
      attempts: 1,
    }),
  };
};

export function tokenizerConformance(name: string, make: () => Tokenizer): void {
  describe(`Tokenizer conformance: ${name}`, () => {
    it('counts 0 for "", a positive integer for text, the same every time', () => {
      const t = make();
      expect(typeof t.id).toBe('string');
      expect(t.count('')).toBe(0);
      for (const s of SAMPLES) {
        const n = t.count(s);
        expect(Number.isInteger(n) && n > 0, s).toBe(true);
        expect(t.count(s)).toBe(n);
      }
    });

    it('counts consistently with encode, where it has one', () => {
      const t = make();
      if (t.encode === undefined) return;
      expect(t.encode('')).toEqual([]);
      for (const s of SAMPLES) {
        const ids = t.encode(s);
        expect(ids.every(Number.isInteger)).toBe(true);
        expect(t.count(s)).toBe(ids.length);
      }
    });

    it('is nearly additive: joined text counts no more than its parts (plus a separator)', () => {
      const t = make();
      for (const a of SAMPLES)
        for (const b of SAMPLES)
          expect(t.count(`${a}\n${b}`)).toBeLessThanOrEqual(t.count(a) + t.count(b) + 2);
      const long = SAMPLES[0]!.repeat(8);
      expect(t.count(long)).toBeGreaterThanOrEqual(t.count(SAMPLES[0]!));
    });

    it('counts a chat request as at least its messages', () => {
      const t = make();
      if (t.countMessages === undefined) return;
      const messages = [
        { role: 'system' as const, content: SAMPLES[0]! },
        { role: 'user' as const, content: SAMPLES[1]! },
      ];
      expect(t.countMessages(messages)).toBeGreaterThanOrEqual(t.count(SAMPLES[0]!) + t.count(SAMPLES[1]!));
    });

    it('as components.tokenizer, measures every chunk and the context budget', async () => {
      const t = make();
      const maxTokens = 16;
      const q = openWith(
        { tokenizer: t, llm: echoLlm() },
        { chunking: { maxTokens, overlapTokens: 4, parentMaxTokens: 64 } },
      );
      try {
        await q.quarry.addDocuments(CORPUS);
        const chunks = [...q.quarry.store.iterateChunks()];
        expect(chunks.length).toBeGreaterThanOrEqual(CORPUS.length);
        for (const c of chunks) {
          expect(c.tokenCount).toBe(t.count(c.text));
          expect(c.tokenCount).toBeLessThanOrEqual(maxTokens);
        }
        const answer = await q.quarry.ask('Is there pizza on Fridays?', { trace: true });
        const context = answer.trace!.stages.find((s) => s.stage === 'context.assemble')!;
        expect(context.detail.tokenizer).toBe(t.id);
      } finally {
        q.close();
      }
    });
  });
}

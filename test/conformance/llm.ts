/**
 * The LLM conformance suite: what every LLM — a built-in provider or a library user's object — must do
 * for generation, validation and the extractive fallback to work. `llmConformance(name, subject)` registers
 * the tests for one. The subject's model must answer every request with `REPLY` (a fake server scripted
 * so, or a user object that does).
 */
import { describe, expect, it } from 'vitest';
import type { LanguageModel, LlmEvent } from '../../src/index.js';
import { aborted, CORPUS, openWith, settlesWithin } from './corpus.js';

/** What the subject's model says to every request: a claim from the corpus, citing source 1. */
export const REPLY = ['Signing keys are rotated ', 'every ninety days by the ', 'vault operator [1].'];

export interface LlmSubject {
  make(): LanguageModel | Promise<LanguageModel>;
  /** The same LLM with its service down (or otherwise failing); omit when that cannot happen. */
  failing?(): LanguageModel | Promise<LanguageModel>;
}

const REQUEST = {
  messages: [{ role: 'user' as const, content: 'When are signing keys rotated?' }],
  maxTokens: 64,
};

async function drain(stream: AsyncIterable<LlmEvent>): Promise<LlmEvent[]> {
  const events: LlmEvent[] = [];
  for await (const e of stream) events.push(e);
  return events;
}

export function llmConformance(name: string, subject: LlmSubject): void {
  describe(`LLM conformance: ${name}`, () => {
    it('streams deltas ending in exactly one done, whose text is what complete() returns', async () => {
      const llm = await subject.make();
      expect(typeof llm.id).toBe('string');
      expect(typeof llm.model).toBe('string');
      const events = await drain(llm.stream(REQUEST));
      const done = events.filter((e) => e.type === 'done');
      expect(done).toHaveLength(1);
      expect(events.at(-1)!.type).toBe('done');
      const streamed = events.map((e) => (e.type === 'delta' ? e.text : '')).join('');
      expect(streamed).toBe(REPLY.join(''));
      const completion = await llm.complete(REQUEST);
      expect(completion.text).toBe(streamed);
      for (const u of [completion.usage, (done[0] as Extract<LlmEvent, { type: 'done' }>).usage]) {
        expect(Number.isInteger(u.inputTokens) && u.inputTokens >= 0).toBe(true);
        expect(Number.isInteger(u.outputTokens) && u.outputTokens >= 0).toBe(true);
      }
      expect(typeof completion.finishReason).toBe('string');
    });

    it('honours an aborted signal: stream and complete reject promptly', async () => {
      const llm = await subject.make();
      const s = await settlesWithin(drain(llm.stream({ ...REQUEST, signal: aborted() })), 5_000);
      expect(s.ok).toBe(false);
      const c = await settlesWithin(llm.complete({ ...REQUEST, signal: aborted() }), 5_000);
      expect(c.ok).toBe(false);
    });

    it('as components.llm, writes the answer of ask (validated, with citations)', async () => {
      const llm = await subject.make();
      const q = openWith({ llm });
      try {
        await q.quarry.addDocuments(CORPUS);
        const answer = await q.quarry.ask('When are signing keys rotated by the vault operator?');
        expect(answer.answerer).toBe(llm.id);
        expect(answer.fallback).toBeUndefined();
        expect(answer.degraded).toEqual([]);
        expect(answer.text).toContain('every ninety days by the vault operator');
        expect(answer.citations.map((c) => c.docId)).toContain('keys');
      } finally {
        q.close();
      }
    });

    it.skipIf(subject.failing === undefined)(
      'failing, ask degrades to the extractive answer and says why',
      async () => {
        const llm = await subject.failing!();
        const q = openWith({ llm });
        try {
          await q.quarry.addDocuments(CORPUS);
          const answer = await q.quarry.ask('When are signing keys rotated by the vault operator?');
          expect(answer.fallback).toMatchObject({ from: llm.id });
          expect(answer.degraded.map((d) => d.stage)).toContain('answer.generate');
          expect(answer.text).toContain('ninety days');
        } finally {
          q.close();
        }
      },
    );
  });
}

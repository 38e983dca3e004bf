/**
 * `quarry eval --generate`: rule-based drafts (a cloze question blanking a date, number or name out of a
 * chunk's most informative sentence) have the golden-set shape, load back through the validator, cite
 * their document by its corpus-relative path, and are identical on every run; with an LLM (a loopback fake
 * speaking the OpenAI chat protocol) the LLM writes the questions, and a draft whose answer is not in the
 * chunk is rejected in favour of the rule-based one.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  clozeDraft,
  evenlySpaced,
  GOLDEN_DRAFT_PROMPT,
  generateGoldenSet,
} from '../../src/eval/generate-golden.js';
import { loadGoldenSet } from '../../src/eval/golden.js';
import { type FakeLlmServer, startFakeOpenAIChatServer } from '../generate/llm/fake-openai-chat-server.js';

const corpus = path.resolve(import.meta.dirname, 'fixtures/islay');
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'quarry-generate-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

describe('rule-based drafts', () => {
  it('blank a fact out of an informative sentence', () => {
    const deps = {
      analyze: (t: string) =>
        t
          .toLowerCase()
          .split(/\W+/)
          .filter((w) => w.length > 2),
      idf: () => 1,
    };
    const d = clozeDraft(
      'Short one. The ferry to Islay leaves Kennacraig at 07:00 every morning in 2024.',
      deps,
    );
    expect(d).toEqual({
      question: 'Fill in the blank: The ferry to Islay leaves Kennacraig at 07:00 every morning in _____.',
      answer: '2024',
      sentence: 'The ferry to Islay leaves Kennacraig at 07:00 every morning in 2024.',
    });
    expect(clozeDraft('nothing here to ask about at all really.', deps)).toBeUndefined();
    expect(evenlySpaced(10, 3)).toEqual([0, 3, 6]);
    expect(evenlySpaced(2, 5)).toEqual([0, 1]);
  });

  it('write a valid golden set, the same on every run', async () => {
    const a = await generateGoldenSet({ corpus, out: path.join(tmp, 'a.jsonl'), count: 3 });
    const b = await generateGoldenSet({ corpus, out: path.join(tmp, 'b.jsonl'), count: 3 });
    expect(fs.readFileSync(a.file, 'utf8')).toBe(fs.readFileSync(b.file, 'utf8'));
    expect(a.drafter).toBe('rule-based');
    expect(a.items).toHaveLength(3);
    const set = await loadGoldenSet(a.file);
    for (const item of set.items) {
      expect(item).toMatchObject({ answerable: true, draft: true, tags: ['draft', 'rule-based'] });
      expect(item.question).toMatch(/^Fill in the blank: .*_____/);
      expect(item.sources).toHaveLength(1);
      const doc = fs.readFileSync(path.join(corpus, item.sources[0]!), 'utf8');
      // The answer is in the cited document, and the question is the context with the answer blanked.
      expect(doc).toContain(item.answers[0]);
      expect(item.context).toBeDefined();
      expect(doc).toContain(item.context);
      expect(item.question.replace('Fill in the blank: ', '').replace('_____', item.answers[0]!)).toBe(
        item.context,
      );
    }
  });
});

describe('LLM drafts', () => {
  let llm: FakeLlmServer;
  beforeAll(async () => {
    llm = await startFakeOpenAIChatServer();
  });
  afterAll(async () => {
    await llm?.close();
  });

  it('uses the LLM, and rejects a draft whose answer is not in the chunk', async () => {
    let call = 0;
    llm.respond = (body) => {
      const user = (body.messages as Array<{ content: string }>)[1]?.content ?? '';
      call++;
      // The second chunk's draft invents its answer: it must be rejected, and the rule-based draft kept.
      if (call === 2)
        return {
          kind: 'reply',
          deltas: [JSON.stringify({ question: 'Who owns it?', answer: 'Nobody Known' })],
        };
      const passage = user.split('\n').slice(1).join(' ');
      const word = passage.split(/\s+/).find((w) => /^[A-Z][a-z]{3,}$/.test(w)) ?? 'Islay';
      return {
        kind: 'reply',
        deltas: [JSON.stringify({ question: `What is said about ${word}?`, answer: word })],
      };
    };
    const r = await generateGoldenSet({
      corpus,
      out: path.join(tmp, 'llm.jsonl'),
      count: 3,
      config: { llm: { provider: 'openai', baseURL: llm.url, model: 'gpt-4o-mini', maxRetries: 0 } },
    });
    expect(r.drafter).toBe('llm');
    expect(r.llmRejected).toBe(1);
    expect(r.firstLlmError).toMatch(/"Nobody Known" is not in the passage/);
    const tags = r.items.map((i) => i.tags?.[1]);
    expect(tags.filter((t) => t === GOLDEN_DRAFT_PROMPT.version)).toHaveLength(2);
    expect(tags.filter((t) => t === 'rule-based')).toHaveLength(1);
    expect(llm.requests[0]?.body.messages).toEqual(
      expect.arrayContaining([
        expect.objectContaining({
          role: 'system',
          content: expect.stringContaining(GOLDEN_DRAFT_PROMPT.system.slice(0, 30)),
        }),
      ]),
    );
    expect((await loadGoldenSet(r.file)).items).toHaveLength(3);
  });
});

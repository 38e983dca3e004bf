/**
 * Answer evaluation end to end on a small golden set over a real store: the default extractive answerer
 * answers the answerable questions and abstains on the near misses (the corpus covers the topic, not the
 * answer); the report carries the answer metrics, per-tag and per-intent breakdowns and the worst answers,
 * and `record` keeps them per query. With an LLM configured (a loopback fake speaking the OpenAI chat
 * protocol), faithfulness is judged by the LLM under the versioned prompt and its agreement with the
 * support scorer is reported; a judge that fails is reported and the support scorer scores instead.
 */

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FAITHFULNESS_JUDGE_PROMPT } from '../../src/eval/faithfulness.js';
import { runEval } from '../../src/eval/run-eval.js';
import { EvalRuns } from '../../src/eval/runs.js';
import { type FakeLlmServer, startFakeOpenAIChatServer } from '../generate/llm/fake-openai-chat-server.js';

const fixtures = path.resolve(import.meta.dirname, 'fixtures');
const golden = path.join(fixtures, 'islay-golden.jsonl');
const corpus = path.join(fixtures, 'islay');
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'quarry-answer-eval-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

describe('golden-set eval with the extractive answerer', () => {
  it('answers the answerable questions and abstains on the near misses', async () => {
    const record = path.join(tmp, 'runs');
    const r = await runEval({ dataset: golden, corpus, record });
    const m = r.metrics;
    expect(r.golden).toMatchObject({ corpus, items: 6, drafts: 0 });
    expect(r.queries).toBe(6);
    expect(r.answers?.abstention).toEqual({
      answerable: { questions: 3, abstained: 0 },
      unanswerable: { questions: 3, abstained: 3 },
    });
    expect(m.abstention_correct).toBe(1);
    expect(m.abstention_correct_unanswerable).toBe(1);
    expect(m.abstention_rate).toBe(0.5);
    // Every answer quotes the expected document, and the quote holds the gold answer.
    expect(m['answer_hit@1']).toBe(1);
    expect(m.citation_precision).toBe(1);
    expect(m.citation_recall).toBe(1);
    // Quotes are verbatim: every sentence is supported by the chunk it cites.
    expect(m.faithfulness).toBe(1);
    expect(m.answer_relevance).toBeGreaterThan(0.5);
    // Sentences are not short spans: exact match fails, token F1 is partial.
    expect(m.exact_match).toBe(0);
    expect(m.token_f1).toBeGreaterThan(0);
    expect(m.token_f1).toBeLessThan(0.5);
    // Retrieval metrics over the answerable items' expected sources.
    expect(m['recall@5']).toBe(1);
    expect(r.answers?.faithfulness).toEqual({ scorer: 'support', minSupport: 0.5 });
    expect(r.answers?.breakdown?.tag['near-miss']).toMatchObject({
      questions: 3,
      metrics: { abstention_correct: 1, abstention_rate: 1 },
    });
    expect(r.answers?.breakdown?.tag.ferry?.questions).toBe(2);
    expect(Object.keys(r.answers?.breakdown?.intent ?? {}).length).toBeGreaterThan(0);
    expect(r.answers?.worst?.length).toBe(6);
    expect(r.answers?.usage).toMatchObject({ inputTokens: 0, outputTokens: 0 });
    // Recorded per query with the answer metrics, unanswerable questions included.
    const runs = EvalRuns.open(record);
    try {
      const run = runs.get(r.recorded!.runId, { worst: 10 });
      const captain = run.worst.find((w) => w.queryId === 'captain');
      expect(captain?.metrics).toMatchObject({ abstention_rate: 1, abstention_correct_unanswerable: 1 });
      const ferry = run.worst.find((w) => w.queryId === 'ferry-time');
      expect(ferry?.metrics).toMatchObject({ 'answer_hit@1': 1, 'recall@5': 1, faithfulness: 1 });
    } finally {
      runs.close();
    }
  });

  it('a grounded answer that does not address the question is not confident', async () => {
    // "When" asks for a time; the quoted sentences hold none, so confidence is at most half the support.
    const r = await runEval({
      dataset: writeSet([{ id: 't', question: 'When can otters and seals be seen along the rocky shore?' }]),
      corpus,
    });
    const q = r.answers?.worst?.[0];
    expect(q?.answer).not.toBe('(abstained)');
    expect(q?.metrics.confidence).toBeLessThanOrEqual(0.5);
    expect(q?.metrics.answer_relevance).toBeLessThanOrEqual(0.5);
  });

  it('says which corpus is missing', async () => {
    await expect(runEval({ dataset: golden })).rejects.toThrow(/names no corpus: pass --corpus/);
  });
});

function writeSet(items: unknown[]): string {
  const f = path.join(tmp, `set-${Math.random().toString(36).slice(2)}.jsonl`);
  fs.writeFileSync(f, items.map((i) => JSON.stringify(i)).join('\n'));
  return f;
}

describe('LLM faithfulness judge', () => {
  let llm: FakeLlmServer;
  let judgeFails = false;
  beforeAll(async () => {
    llm = await startFakeOpenAIChatServer();
    llm.respond = (body) => {
      const messages = body.messages as Array<{ role: string; content: string }>;
      const system = messages[0]?.content ?? '';
      if (system.startsWith(FAITHFULNESS_JUDGE_PROMPT.system.slice(0, 40))) {
        if (judgeFails) return { kind: 'status', status: 500, message: 'judge down' };
        // Sentence 1 supported, sentence 2 (the invented one) not.
        return {
          kind: 'reply',
          deltas: [
            JSON.stringify({
              verdicts: [
                { sentence: 1, supported: true },
                { sentence: 2, supported: false },
              ],
            }),
          ],
          usage: { input: 300, output: 20 },
        };
      }
      return {
        kind: 'reply',
        deltas: [
          'The ferry to Islay leaves Kennacraig at 07:00 every morning [1]. ',
          'The captain is called Angus MacLeod [1].',
        ],
        usage: { input: 500, output: 30 },
      };
    };
  });
  afterAll(async () => {
    await llm?.close();
  });
  const config = () => ({
    llm: {
      provider: 'openai' as const,
      baseURL: llm.url,
      model: 'gpt-4o-mini',
      maxRetries: 0,
      prices: { 'gpt-4o-mini': { input: 0.15, output: 0.6 } },
    },
  });
  const set = () =>
    writeSet([
      {
        id: 'f',
        question: 'When does the ferry leave Kennacraig?',
        answers: ['07:00'],
        sources: ['ferry.md'],
      },
    ]);

  it('judges with the versioned prompt and reports its agreement with the support scorer', async () => {
    judgeFails = false;
    const r = await runEval({ dataset: set(), corpus, config: config() });
    const f = r.answers?.faithfulness;
    expect(f?.scorer).toBe('llm-judge');
    expect(f?.judge).toMatchObject({
      promptVersion: 'faithfulness-judge/1',
      model: 'openai:gpt-4o-mini',
      judged: 1,
      errors: 0,
      sentences: 2,
      inputTokens: 300,
      outputTokens: 20,
    });
    // The judge said 1 of 2 sentences is supported.
    expect(r.metrics.faithfulness).toBe(0.5);
    // The support scorer finds the invented captain unsupported too (the LLM answer's validation kept
    // only the supported sentence's citation): agreement on both sentences.
    expect(f?.judge?.agreement).toBe(1);
    expect(f?.judge?.supportFaithfulness).toBe(0.5);
    // Tokens and cost per query from the answer's usage.
    expect(r.metrics.tokens_per_query).toBe(530);
    expect(r.metrics.cost_usd_per_query).toBeCloseTo((500 * 0.15 + 30 * 0.6) / 1e6, 12);
    expect(r.answers?.answerer).toBe('openai:gpt-4o-mini');
    const judgeCall = llm.requests.find((q) => JSON.stringify(q.body).includes('Answer sentences:'));
    expect(JSON.stringify(judgeCall?.body)).toContain('The captain is called Angus MacLeod');
  });

  it('a failing judge is reported and the support scorer scores instead', async () => {
    judgeFails = true;
    const r = await runEval({ dataset: set(), corpus, config: config() });
    const f = r.answers?.faithfulness;
    expect(f?.judge).toMatchObject({ judged: 0, errors: 1, agreement: null });
    expect(f?.judge?.firstError).toMatch(/judge down|500/);
    expect(r.metrics.faithfulness).toBe(0.5);
  });
});

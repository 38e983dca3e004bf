import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { tokenizerFor } from '../../src/assemble/tokenizer.js';
import type { QuarryConfigInput } from '../../src/config/config.js';
import type { ChatMessage } from '../../src/generate/llm/types.js';
import type { AskEvent } from '../../src/pipeline/llm-answer.js';
import { Quarry } from '../../src/pipeline/quarry.js';
import type { Answer } from '../../src/types.js';
import { startFakeAnthropicServer } from '../generate/llm/fake-anthropic-server.js';
import { SAMPLES, useSamplesStoreWithLlm } from './samples-store.js';

const env = useSamplesStoreWithLlm('quarry-llm-ask-');

function open(llm: Record<string, unknown> = {}, extra: QuarryConfigInput = {}): Quarry {
  return Quarry.open({
    store: env.store,
    config: {
      llm: {
        provider: 'openai',
        baseURL: env.server.url,
        model: 'gpt-4o-mini',
        maxTokens: 200,
        contextWindow: 1200,
        maxRetries: 0,
        prices: { 'gpt-4o-mini': { input: 0.15, output: 0.6 } },
        ...llm,
      },
      ...extra,
    },
  });
}

/** The sources block of the prompt the server received, by number. */
function sourcesOf(body: Record<string, unknown>): Map<number, string> {
  const messages = body.messages as Array<{ role: string; content: string }>;
  const user = messages.find((m) => m.role === 'user')!.content;
  const out = new Map<number, string>();
  for (const m of user.matchAll(/<source id="(\d+)"[^>]*>\n([\s\S]*?)\n<\/source>/g))
    out.set(Number(m[1]), m[2]!);
  return out;
}

/** A faithful model: states `claim`, citing the first source that contains `needle`. */
function groundedReply(
  needle: RegExp,
  claim = 'By default Quarry splits documents into chunks of 256 tokens',
) {
  return (body: Record<string, unknown>) => {
    for (const [n, text] of sourcesOf(body)) {
      if (!needle.test(text)) continue;
      const words = `${claim} [${n}].`.split(/(?<= )/);
      return { kind: 'reply' as const, deltas: words, usage: { input: 900, output: words.length } };
    }
    return { kind: 'reply' as const, deltas: ["I don't have enough information."] };
  };
}

async function collect(
  q: Quarry,
  question: string,
  options = {},
): Promise<{ events: AskEvent[]; answer: Answer }> {
  const events: AskEvent[] = [];
  for await (const e of q.askStream(question, options)) events.push(e);
  const last = events.at(-1)!;
  if (last.type !== 'answer') throw new Error('stream did not end with an answer');
  return { events, answer: last.answer };
}

function expectVerbatim(q: Quarry, a: Answer): void {
  for (const c of a.citations) {
    const doc = q.getDocument(c.docId)!;
    expect(doc.text.slice(c.start, c.end)).toBe(c.quote);
    const chunk = q.store.getChunks([c.chunkId]).get(c.chunkId)!;
    expect(chunk.docId).toBe(c.docId);
    expect(chunk.text.slice(c.chunkStart, c.chunkEnd)).toBe(c.quote);
  }
}

describe('ask with an LLM (OpenAI-compatible wire protocol)', () => {
  it('streams a cited answer token by token, validates its citations and records usage and cost', async () => {
    env.server.respond = groundedReply(/256/);
    const q = open();
    const { events, answer } = await collect(q, 'What is the default chunk size?', { trace: true });
    const deltas = events.filter((e) => e.type === 'delta').map((e) => (e as { text: string }).text);
    expect(deltas.length).toBeGreaterThan(3);
    expect(deltas.join('')).toBe(answer.text);
    expect(events[0]!.type).toBe('retrieved');
    expect(events.some((e) => e.type === 'context')).toBe(true);
    expect(events.filter((e) => e.type === 'citation')).toEqual([
      { type: 'citation', sources: [1], unknown: [] },
    ]);
    expect(answer.answerer).toBe('openai:gpt-4o-mini');
    expect(answer.fallback).toBeUndefined();
    expect(answer.abstained).toBe(false);
    expect(answer.text).toMatch(/256.*\[1\]/);
    expect(answer.citations.length).toBeGreaterThan(0);
    expect(answer.citations[0]!.quote).toContain('256');
    expectVerbatim(q, answer);
    expect(answer.confidence).toBeGreaterThan(0.5);
    expect(answer.validation).toMatchObject({ supported: 1, unknownMarkers: [] });
    expect(answer.usage).toMatchObject({ inputTokens: 900, outputTokens: deltas.length });
    expect(answer.usage!.costUsd).toBeCloseTo((900 * 0.15 + deltas.length * 0.6) / 1e6, 12);

    // The prompt carries the rules, delimited numbered sources with metadata, and the question; it fits the window.
    const body = env.server.requests[0]!.body;
    const messages = body.messages as ChatMessage[];
    expect(messages[0]!.content).toContain("I don't have enough information");
    expect(messages[1]!.content).toMatch(
      /^Sources:\n\n<source id="1" title=".+" origin="samples\/docs\/.+" section=".+" updated="\d{4}-\d\d-\d\d" version="1">\n/,
    );
    expect(messages[1]!.content).toContain('Question: What is the default chunk size?');
    expect(body.max_tokens).toBe(200);
    expect(body.stream).toBe(true);
    const promptTokens = tokenizerFor('gpt-4o-mini').countMessages(messages);
    expect(promptTokens).toBeLessThanOrEqual(1200 - 200);
    const stages = answer.trace!.stages.map((s) => s.stage);
    for (const s of ['retrieve.bm25', 'context.assemble', 'answer.generate', 'answer.validate'])
      expect(stages).toContain(s);
    const assemble = answer.trace!.stages.find((s) => s.stage === 'context.assemble')!.detail;
    expect((assemble.budget as { available: number }).available).toBeLessThan(1000);
    q.close();
  });

  it('flags a citation of a source that was not in the context as soon as it streams', async () => {
    env.server.queue({
      kind: 'reply',
      deltas: ['Quarry stores chunks in SQLite [', '9]. ', 'It counts tokens with a BPE tokenizer [1].'],
    });
    const q = open();
    const { events, answer } = await collect(q, 'Where does Quarry store chunks?');
    const citations = events.filter((e) => e.type === 'citation');
    expect(citations[0]).toEqual({ type: 'citation', sources: [9], unknown: [9] });
    // The unknown marker was reported before the rest of the answer streamed.
    const idx = events.indexOf(citations[0]!);
    expect(events.slice(idx + 1).some((e) => e.type === 'delta')).toBe(true);
    expect(answer.validation!.unknownMarkers).toEqual([9]);
    expect(answer.citations.every((c) => c.marker !== 9)).toBe(true);
    q.close();
  });

  it('flags or removes a sentence the cited source does not support', async () => {
    const wrong = (body: Record<string, unknown>) => {
      const grounded = groundedReply(/256/)(body);
      if (grounded.kind !== 'reply') return grounded;
      return {
        ...grounded,
        deltas: [...grounded.deltas, ' The maximum parent section size is 9,999 tokens [1].'],
      };
    };
    env.server.respond = wrong;
    const flagging = open();
    const flagged = await flagging.ask('What is the default chunk size?');
    expect(flagged.text).toContain('9,999');
    expect(flagged.validation!.unsupported.map((u) => u.text).join(' ')).toContain('9,999');
    flagging.close();
    const removing = open({}, { validation: { unsupportedPolicy: 'remove' } });
    const removed = await removing.ask('What is the default chunk size?');
    expect(removed.text).not.toContain('9,999');
    expect(removed.text).toContain('256');
    expect(removed.validation!.removed).toBe(1);
    removing.close();
  });

  it('abstains when the model says the sources do not contain the answer', async () => {
    env.server.queue({ kind: 'reply', deltas: ["I don't have enough ", 'information.'] });
    const q = open();
    const a = await q.ask('What is the capital of Mongolia?');
    expect(a.abstained).toBe(true);
    expect(a.citations).toEqual([]);
    expect(a.answerer).toBe('openai:gpt-4o-mini');
    q.close();
  });

  it('falls back to the extractive answerer when the LLM fails, and marks it', async () => {
    env.server.queue({ kind: 'status', status: 500, message: 'boom' });
    const q = open();
    const a = await q.ask('What is the default chunk size?');
    expect(a.answerer).toBe('extractive');
    expect(a.fallback).toMatchObject({ from: 'openai:gpt-4o-mini' });
    expect(a.fallback!.reason).toMatch(/500/);
    expect(a.text).toContain('256');
    expectVerbatim(q, a);
    // A fallback is not cached: the next ask tries the LLM again.
    env.server.respond = groundedReply(/256/);
    const again = await q.ask('What is the default chunk size?');
    expect(again.answerer).toBe('openai:gpt-4o-mini');
    expect(env.server.requests).toHaveLength(2);
    q.close();
  });

  it('voids streamed text when the stream breaks mid-answer and answers extractively', async () => {
    env.server.queue({ kind: 'disconnect', after: ['The default chunk ', 'size is'] });
    const q = open();
    const { events, answer } = await collect(q, 'What is the default chunk size?');
    const kinds = events.map((e) => e.type);
    expect(kinds.indexOf('reset')).toBeGreaterThan(kinds.indexOf('delta'));
    expect(answer.fallback).toBeDefined();
    expect(answer.answerer).toBe('extractive');
    q.close();
  });

  it('stops generation at the request deadline and falls back within it', async () => {
    env.server.queue({ kind: 'stall', after: ['The default'], ms: 5000 });
    const q = open({ readTimeoutMs: 60_000 });
    const t0 = performance.now();
    const a = await q.ask('What is the default chunk size?', { budgetMs: 400, trace: true });
    expect(performance.now() - t0).toBeLessThan(3000);
    expect(a.fallback!.reason).toMatch(/budget/);
    const gen = a.trace!.stages.find((s) => s.stage === 'answer.generate')!;
    expect(gen.detail.error).toMatch(/budget/);
    q.close();
  });

  it('opens the circuit after repeated failures and stops calling the LLM until the cooldown', async () => {
    const q = open(
      { circuitBreaker: { failureThreshold: 2, cooldownMs: 60_000 } },
      { cache: { responses: false } },
    );
    env.server.queue({ kind: 'status', status: 503 }, { kind: 'status', status: 503 });
    await q.ask('What is the default chunk size?');
    await q.ask('What is the default chunk size?');
    expect(env.server.requests).toHaveLength(2);
    const a = await q.ask('What is the default chunk size?');
    expect(env.server.requests).toHaveLength(2);
    expect(a.fallback!.reason).toMatch(/unavailable|circuit/i);
    expect(a.answerer).toBe('extractive');
    q.close();
  });

  it('answers a repeated question from the response cache until the index changes', async () => {
    env.server.respond = groundedReply(/256/);
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'quarry-llm-cache-'));
    fs.cpSync(SAMPLES, path.join(dir, 'docs'), { recursive: true });
    const q = Quarry.open({
      store: path.join(dir, 'store'),
      config: { llm: { provider: 'openai', baseURL: env.server.url, model: 'gpt-4o-mini', maxRetries: 0 } },
    });
    await q.ingest([path.join(dir, 'docs')]);
    const first = await q.ask('What is the default chunk size?');
    const second = await q.ask('What is the default chunk size?', { trace: true });
    expect(env.server.requests).toHaveLength(1);
    expect(second.cached).toBe(true);
    expect(second.text).toBe(first.text);
    expect(second.trace!.stages.map((s) => s.stage)).toEqual(['cache']);
    // Another caller's scope is another cache entry.
    await q.ask('What is the default chunk size?', { scope: { groups: ['hr'] } });
    expect(env.server.requests).toHaveLength(2);
    // A write changes the index version: the cached answer is not served again.
    fs.writeFileSync(
      path.join(dir, 'docs', 'new.md'),
      '# New\n\nA new page about chunk sizes and budgets.\n',
    );
    await q.ingest([path.join(dir, 'docs')]);
    const third = await q.ask('What is the default chunk size?');
    expect(third.cached).toBeUndefined();
    expect(env.server.requests).toHaveLength(3);
    q.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });
});

describe('prompt templates', () => {
  it('uses an overriding template and refuses one that misses a required placeholder when the store opens', async () => {
    env.server.respond = groundedReply(/256/);
    const q = open(
      {},
      {
        prompt: {
          system: 'Answer from the sources only; cite as [n]. House rule: be brief.',
          user: 'Q: {{question}}\n\n{{sources}}',
          source: '({{n}}) {{title}}\n{{text}}',
        },
      },
    );
    await q.ask('What is the default chunk size?');
    const messages = env.server.requests[0]!.body.messages as ChatMessage[];
    expect(messages[0]!.content).toContain('House rule: be brief.');
    expect(messages[1]!.content.startsWith('Q: What is the default chunk size?')).toBe(true);
    expect(messages[1]!.content).toMatch(/\(1\) /);
    q.close();
    expect(() =>
      open({}, { prompt: { system: 'x', user: 'Sources: {{sources}}', source: '{{n}} {{text}}' } }),
    ).toThrow(/question/);
    expect(() =>
      open(
        {},
        { prompt: { system: 'x', user: '{{question}} {{sources}} {{colour}}', source: '{{n}} {{text}}' } },
      ),
    ).toThrow(/colour/);
  });
});

describe('structured output and self-critique', () => {
  const schema = {
    type: 'object',
    properties: { chunkTokens: { type: 'integer' }, evidence: { type: 'string' } },
    required: ['chunkTokens', 'evidence'],
    additionalProperties: false,
  };

  it('returns JSON valid against the schema, retrying once with the validation errors', async () => {
    env.server.queue(
      { kind: 'reply', deltas: ['{"chunkTokens": "256", "evidence": "x"}'] },
      {
        kind: 'reply',
        deltas: [
          '{"chunkTokens": 256, "evidence": "By default Quarry splits documents into chunks of 256 tokens [1]."}',
        ],
      },
    );
    const q = open();
    const a = await q.ask('What is the default chunk size?', { jsonSchema: schema, trace: true });
    expect(a.fallback).toBeUndefined();
    expect(a.data).toEqual({ chunkTokens: 256, evidence: expect.stringContaining('256 tokens') });
    expect(JSON.parse(a.text)).toEqual(a.data);
    expect(env.server.requests).toHaveLength(2);
    const retry = JSON.stringify(env.server.requests[1]!.body.messages);
    expect(retry).toContain('chunkTokens');
    expect(retry).toMatch(/integer/);
    expect(env.server.requests[0]!.body.response_format).toEqual({ type: 'json_object' });
    expect(a.citations.length).toBeGreaterThan(0);
    expectVerbatim(q, a);
    const gen = a.trace!.stages.find((s) => s.stage === 'answer.generate')!.detail;
    expect(gen.attempts).toBe(2);
    q.close();
  });

  it('fails with the schema errors when the second reply is still invalid, and refuses without an LLM', async () => {
    env.server.queue(
      { kind: 'reply', deltas: ['{"chunkTokens": "a"}'] },
      { kind: 'reply', deltas: ['{"chunkTokens": "b"}'] },
    );
    const q = open();
    await expect(q.ask('What is the default chunk size?', { jsonSchema: schema })).rejects.toMatchObject({
      code: 'LLM_OUTPUT_INVALID',
    });
    q.close();
    const plain = Quarry.open({ store: env.store });
    await expect(plain.ask('What is the default chunk size?', { jsonSchema: schema })).rejects.toMatchObject({
      code: 'INVALID_ARGUMENT',
    });
    plain.close();
  });

  it('lets a self-critique pass flag sentences and lower the confidence', async () => {
    const sentence = 'By default Quarry splits documents into chunks of 256 tokens';
    env.server.respond = (body) => {
      const system = (body.messages as ChatMessage[])[0]!.content;
      if (system.startsWith('You check an answer'))
        return {
          kind: 'reply',
          deltas: [JSON.stringify({ verdict: 'unsupported', unsupported: [`${sentence} [1].`] })],
        };
      return groundedReply(/256/, sentence)(body);
    };
    const plain = open();
    const before = await plain.ask('What is the default chunk size?');
    plain.close();
    const critical = open({}, { validation: { critique: true } });
    const a = await critical.ask('What is the default chunk size?', { trace: true });
    expect(a.validation!.critique).toEqual({
      verdict: 'unsupported',
      unsupported: [expect.stringContaining('256 tokens')],
    });
    expect(a.confidence).toBeCloseTo(before.confidence * 0.5, 2);
    expect(a.trace!.stages.some((s) => s.stage === 'answer.critique')).toBe(true);
    critical.close();
  });
});

describe('ask with an LLM (Anthropic Messages API)', () => {
  it('streams and validates an answer the same way', async () => {
    const anthropic = await startFakeAnthropicServer();
    try {
      anthropic.respond = groundedReply(/256/);
      const q = Quarry.open({
        store: env.store,
        config: {
          llm: { provider: 'anthropic', baseURL: anthropic.url, model: 'claude-sonnet-4-5', maxRetries: 0 },
        },
      });
      const a = await q.ask('What is the default chunk size?');
      expect(a.answerer).toBe('anthropic:claude-sonnet-4-5');
      expect(a.citations.length).toBeGreaterThan(0);
      expectVerbatim(q, a);
      const body = anthropic.requests[0]!.body;
      expect(typeof body.system).toBe('string');
      expect(body.system).toContain('numbered sources');
      q.close();
    } finally {
      await anthropic.close();
    }
  });
});

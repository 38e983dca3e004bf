/**
 * Model routing by question complexity: the rule on a set of example questions, and end to end with two
 * OpenAI-compatible LLM servers on 127.0.0.1, where the server that received the generation request shows
 * which model answered; the decision is on the answer and in the `answer.route` trace stage.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { resolveConfig } from '../../src/config/config.js';
import { QuarryError } from '../../src/errors.js';
import { countTokens } from '../../src/ingest/tokens.js';
import { Quarry } from '../../src/pipeline/quarry.js';
import { ComplexityRuleSchema, classifyComplexity, queryComplexity } from '../../src/query/complexity.js';
import type { Answer } from '../../src/types.js';
import { type FakeLlmServer, startFakeOpenAIChatServer } from './llm/fake-openai-chat-server.js';

const SAMPLES = path.resolve(import.meta.dirname, '../../samples/docs');
const rule = ComplexityRuleSchema.parse({});
const tier = (q: string, strategy?: string) =>
  classifyComplexity(queryComplexity(q, { countTokens, strategy }), rule);

describe('question complexity rule', () => {
  it.each([
    'What is the default chunk size?',
    'How do I install Quarry?',
    'chunk size',
    'Where is the config file?',
    'What does BM25 stand for?',
    'Which file format does Quarry use for its configuration?',
    'Is the response cache shared between processes?',
  ])('simple: %s → small', (q) => {
    expect(tier(q)).toEqual({ tier: 'small', reason: 'simple question' });
  });

  it.each([
    ['Compare the default chunk size with the maximum parent section size', /multi-hop.*compare/],
    ['What are the differences between hybrid and dense retrieval?', /difference between/],
    ['Do both ingest and search use the same tokenizer?', /both/],
    ['Ingest the folder and then list the chunks that changed', /and then/],
    ['Which retriever is faster, BM25 or dense?', /comparison intent/],
    [
      'Which of the documents that mention the dense retriever were written by the team that owns ingestion?',
      /which … that/,
    ],
    [
      'If a document is deleted while an ingest runs, what happens to its chunks, and when does the cache notice?',
      /^\d+ clauses/,
    ],
    ['Did Alice Smith move from Paris to Berlin in 2019?', /^4 named things/],
    [
      'Explain in detail how the ingestion pipeline handles very large PDF files with embedded images tables and scanned pages when memory is limited on a small machine',
      /^long question \(\d+ > 24 tokens\)/,
    ],
  ])('complex: %s → large', (q, reason) => {
    const d = tier(q);
    expect(d.tier).toBe('large');
    expect(d.reason).toMatch(reason);
  });

  it('reports the features it decided on', () => {
    const f = queryComplexity('Did Alice Smith move from Paris to Berlin in 2019?', { countTokens });
    expect(f).toMatchObject({ clauses: 1, entities: 4, multiHopCues: [] });
    expect(f.tokens).toBe(countTokens('Did Alice Smith move from Paris to Berlin in 2019?'));
  });

  it('follows the retrieval strategy signal, and each rule can be turned off or loosened', () => {
    expect(tier('What is the default chunk size?', 'multi-stage')).toEqual({
      tier: 'large',
      reason: 'multi-stage retrieval strategy',
    });
    const loose = ComplexityRuleSchema.parse({
      multiHop: false,
      followStrategy: false,
      maxSimpleClauses: 10,
    });
    const f = queryComplexity('Compare the default chunk size with the maximum parent section size', {
      countTokens,
      strategy: 'multi-stage',
    });
    expect(classifyComplexity(f, loose).tier).toBe('small');
  });
});

describe('routing configuration', () => {
  it('needs the llm section and a small or large model; unknown keys are rejected', () => {
    const small = { provider: 'openai', model: 'gpt-4o-mini', baseURL: 'http://127.0.0.1:1/v1' } as const;
    const codeOf = (input: unknown): string | undefined => {
      try {
        resolveConfig(input);
        return undefined;
      } catch (e) {
        return e instanceof QuarryError ? `${e.code}: ${e.message}` : String(e);
      }
    };
    expect(codeOf({ routing: { small } })).toMatch(/^INVALID_CONFIG: .*routing: needs the llm section/);
    expect(codeOf({ llm: small, routing: {} })).toMatch(/INVALID_CONFIG.*small or a large model/);
    expect(codeOf({ llm: small, routing: { small, rule: { maxSimpleTokenz: 3 } } })).toMatch(
      /INVALID_CONFIG.*maxSimpleTokenz/,
    );
    const ok = resolveConfig({ llm: small, routing: { small } });
    expect(ok.routing?.rule).toEqual(rule);
  });
});

describe('routing between two LLM servers', () => {
  let store: string;
  let smallServer: FakeLlmServer;
  let largeServer: FakeLlmServer;

  beforeAll(async () => {
    store = fs.mkdtempSync(path.join(os.tmpdir(), 'quarry-routing-'));
    const q = Quarry.open({ store });
    await q.ingest([SAMPLES]);
    q.close();
    smallServer = await startFakeOpenAIChatServer();
    largeServer = await startFakeOpenAIChatServer();
  });
  afterAll(async () => {
    await smallServer?.close();
    await largeServer?.close();
    if (store) fs.rmSync(store, { recursive: true, force: true });
  });
  beforeEach(() => {
    smallServer.reset();
    largeServer.reset();
  });

  function open(): Quarry {
    return Quarry.open({
      store,
      config: {
        llm: { provider: 'openai', baseURL: largeServer.url, model: 'gpt-4o', maxRetries: 0 },
        routing: {
          small: { provider: 'openai', baseURL: smallServer.url, model: 'gpt-4o-mini', maxRetries: 0 },
        },
        cache: { responses: false, retrievals: false },
      },
    });
  }

  const reply = { kind: 'reply' as const, deltas: ["I don't have enough information."] };

  it('answers a simple question with the small model and a multi-hop one with the large model', async () => {
    smallServer.respond = () => reply;
    largeServer.respond = () => reply;
    const q = open();
    const simple: Answer = await q.ask('What is the default chunk size?', { trace: true });
    expect(smallServer.requests).toHaveLength(1);
    expect(largeServer.requests).toHaveLength(0);
    expect(smallServer.requests[0]!.body.model).toBe('gpt-4o-mini');
    expect(simple.answerer).toBe('openai:gpt-4o-mini');
    expect(simple.route).toMatchObject({
      tier: 'small',
      provider: 'openai:gpt-4o-mini',
      model: 'gpt-4o-mini',
      reason: 'simple question',
      features: { clauses: 1, multiHopCues: [], strategy: 'standard' },
    });
    const stage = simple.trace!.stages.find((s) => s.stage === 'answer.route');
    expect(stage?.detail).toMatchObject({ tier: 'small', provider: 'openai:gpt-4o-mini', rule });
    // The route is decided before generation, which the chosen model then does.
    const names = simple.trace!.stages.map((s) => s.stage);
    expect(names.indexOf('answer.route')).toBeLessThan(names.indexOf('answer.generate'));
    expect(simple.usage?.byComponent).toEqual([
      expect.objectContaining({ component: 'generate', model: 'gpt-4o-mini', calls: 1 }),
    ]);

    const hop = await q.ask('Compare the default chunk size with the maximum parent section size', {
      trace: true,
    });
    expect(smallServer.requests).toHaveLength(1);
    expect(largeServer.requests).toHaveLength(1);
    expect(largeServer.requests[0]!.body.model).toBe('gpt-4o');
    expect(hop.answerer).toBe('openai:gpt-4o');
    expect(hop.route).toMatchObject({ tier: 'large', reason: 'multi-hop wording (compare)' });
    expect(hop.trace!.stages.find((s) => s.stage === 'answer.route')?.detail).toMatchObject({
      tier: 'large',
      features: { multiHopCues: ['compare'] },
    });
    q.close();
  });

  it('without routing the llm section answers everything and no route is reported', async () => {
    largeServer.respond = () => reply;
    const q = Quarry.open({
      store,
      config: { llm: { provider: 'openai', baseURL: largeServer.url, model: 'gpt-4o', maxRetries: 0 } },
    });
    const a = await q.ask('What is the default chunk size?', { trace: true, cache: false });
    expect(largeServer.requests).toHaveLength(1);
    expect(smallServer.requests).toHaveLength(0);
    expect(a.route).toBeUndefined();
    expect(a.trace!.stages.some((s) => s.stage === 'answer.route')).toBe(false);
    q.close();
  });
});

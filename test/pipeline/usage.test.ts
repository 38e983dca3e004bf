/**
 * Per-request usage: one ask that rewrites its question, embeds each query with a remote model, grades the
 * pool with the LLM reranker and generates reports every one of those calls, with the tokens the fake
 * servers (real HTTP on 127.0.0.1, OpenAI wire formats) reported and the cost from the price table; a model
 * without a price makes the cost unknown, not 0; a cached answer reports nothing used.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { QuarryConfigInput } from '../../src/config/config.js';
import { UsageMeter } from '../../src/observability/usage.js';
import { Quarry } from '../../src/pipeline/quarry.js';
import type { ComponentUsage, RequestUsage } from '../../src/types.js';
import { FakeOpenAIServer } from '../embed/providers/fake-openai-server.js';
import { type FakeLlmServer, startFakeOpenAIChatServer } from '../generate/llm/fake-openai-chat-server.js';

const SAMPLES = path.resolve(import.meta.dirname, '../../samples/docs');
const QUESTION = 'What is the default chunk size of a document?';
const REWRITE = { rewritten: 'default chunk size tokens', variants: [], subQueries: [] };

let store: string;
let llm: FakeLlmServer;
let embeddings: FakeOpenAIServer;

beforeAll(async () => {
  llm = await startFakeOpenAIChatServer();
  embeddings = await new FakeOpenAIServer({ dim: 8 }).start();
  store = fs.mkdtempSync(path.join(os.tmpdir(), 'quarry-usage-'));
});
afterAll(async () => {
  await llm?.close();
  await embeddings?.close();
  if (store) fs.rmSync(store, { recursive: true, force: true });
});
beforeEach(() => {
  llm.reset();
  embeddings.reset();
});

type Kind = 'rewrite' | 'rerank' | 'generate';
const kindOf = (body: Record<string, unknown>): Kind => {
  const system = (body.messages as Array<{ content: string }>)[0]!.content;
  if (system.includes('rewrite questions')) return 'rewrite';
  if (system.includes('grade search results')) return 'rerank';
  return 'generate';
};

/** Replies per kind of call, each with its own reported usage. */
function script(): void {
  llm.respond = (body) => {
    const kind = kindOf(body);
    if (kind === 'rewrite')
      return { kind: 'reply', deltas: [JSON.stringify(REWRITE)], usage: { input: 40, output: 25 } };
    if (kind === 'rerank') {
      const n = (String((body.messages as Array<{ content: string }>)[1]!.content).match(/^\[\d+\]/gm) ?? [])
        .length;
      const scores = Array.from({ length: n }, (_, i) => ({ id: i + 1, score: 10 - i }));
      return { kind: 'reply', deltas: [JSON.stringify({ scores })], usage: { input: 200, output: 12 } };
    }
    return {
      kind: 'reply',
      deltas: ["I don't have ", 'enough information.'],
      usage: { input: 900, output: 7 },
    };
  };
}

function config(models: { llm: string; embed: string }, extra: QuarryConfigInput = {}): QuarryConfigInput {
  return {
    llm: {
      provider: 'openai',
      baseURL: llm.url,
      model: models.llm,
      maxRetries: 0,
      prices: { 'gpt-4o-mini': { input: 0.15, output: 0.6 } },
    },
    query: { rewrite: { mode: 'always', variants: 0, maxSubQueries: 0 } },
    rerank: { reranker: 'llm', pool: 10, llm: { batchSize: 5, concurrency: 1 } },
    retrieval: {
      retriever: 'hybrid',
      dense: {
        models: [
          {
            name: models.embed,
            provider: 'openai',
            baseURL: embeddings.url,
            model: models.embed,
            maxRetries: 0,
          },
        ],
      },
    },
    ...extra,
  } as QuarryConfigInput;
}

async function open(models: { llm: string; embed: string }, extra?: QuarryConfigInput): Promise<Quarry> {
  const q = Quarry.open({ store, config: config(models, extra) });
  // Documents are embedded now, so every embedding request after the reset is a query embedding.
  if (q.stats().documents === 0) await q.ingest([SAMPLES]);
  await q.syncDense();
  embeddings.reset();
  return q;
}

const part = (u: RequestUsage, component: string): ComponentUsage | undefined =>
  u.byComponent.find((c) => c.component === component);

describe('usage of a whole request', () => {
  it('sums rewrite, embedding, rerank and generation calls with the servers’ tokens and priced cost', async () => {
    script();
    const q = await open({ llm: 'gpt-4o-mini', embed: 'text-embedding-3-small' });
    const a = await q.ask(QUESTION, { trace: true });
    const u = a.usage!;
    const calls = (k: Kind) => llm.requests.filter((r) => kindOf(r.body) === k).length;
    expect(calls('rewrite')).toBe(1);
    expect(calls('rerank')).toBe(2); // a pool of 10 in batches of 5
    expect(calls('generate')).toBe(1);
    // The original and the rewritten query, each embedded once (the fake counts 3 tokens per text).
    expect(embeddings.requests.map((r) => r.body.input)).toHaveLength(2);

    const gpt = (i: number, o: number) => (i * 0.15 + o * 0.6) / 1e6;
    const emb = (i: number) => (i * 0.02) / 1e6;
    expect(part(u, 'rewrite')).toEqual({
      component: 'rewrite',
      model: 'gpt-4o-mini',
      calls: 1,
      inputTokens: 40,
      outputTokens: 25,
      costUsd: gpt(40, 25),
    });
    expect(part(u, 'embed')).toEqual({
      component: 'embed',
      model: 'text-embedding-3-small',
      calls: 2,
      inputTokens: 6,
      outputTokens: 0,
      costUsd: emb(6),
    });
    expect(part(u, 'rerank')).toMatchObject({ calls: 2, inputTokens: 400, outputTokens: 24 });
    expect(part(u, 'rerank')!.costUsd).toBeCloseTo(gpt(400, 24), 15);
    expect(part(u, 'generate')).toMatchObject({ calls: 1, inputTokens: 900, outputTokens: 7 });
    expect(u.calls).toBe(6);
    expect(u.inputTokens).toBe(40 + 6 + 400 + 900);
    expect(u.outputTokens).toBe(25 + 24 + 7);
    expect(u.costUsd).toBeCloseTo(gpt(40 + 400 + 900, 25 + 24 + 7) + emb(6), 15);
    expect(u.unpricedModels).toBeUndefined();
    expect(u.estimated).toBeUndefined();

    // Asked again: the response cache answers, nothing is called, nothing is charged.
    llm.reset();
    embeddings.reset();
    const again = await q.ask(QUESTION);
    expect(again.cached).toBe(true);
    expect(again.usage).toEqual({
      inputTokens: 0,
      outputTokens: 0,
      costUsd: 0,
      cached: true,
      calls: 0,
      byComponent: [],
    });
    expect(llm.requests).toHaveLength(0);
    expect(embeddings.requests).toHaveLength(0);
    q.close();
  });

  it('search reports its own calls (no generation), and a cached search reports none', async () => {
    script();
    const q = await open({ llm: 'gpt-4o-mini', embed: 'text-embedding-3-small' });
    const r = await q.search('How are chunks split into sections?', { k: 5 });
    expect(r.usage!.byComponent.map((c) => c.component).sort()).toEqual(['embed', 'rerank', 'rewrite']);
    expect(r.usage!.calls).toBe(llm.requests.length + embeddings.requests.length);
    const cached = await q.search('How are chunks split into sections?', { k: 5 });
    expect(cached.strategy).toBe('cache');
    expect(cached.usage).toMatchObject({ calls: 0, costUsd: 0, cached: true });
    q.close();
  });

  it('a model without a price makes the cost unknown, never 0, and names the model', async () => {
    script();
    const q = await open({ llm: 'local-llama', embed: 'local-embed' });
    const a = await q.ask('Which tokenizer measures the chunk budget?', { cache: false });
    const u = a.usage!;
    expect(u.calls).toBeGreaterThanOrEqual(5);
    expect(u.inputTokens).toBeGreaterThan(0);
    expect(u.costUsd).toBeUndefined();
    expect(u.unpricedModels).toEqual(['local-embed', 'local-llama']);
    for (const c of u.byComponent) expect(c.costUsd, c.component).toBeUndefined();
    q.close();
  });

  it('counts every structured-output attempt, the failed one included', async () => {
    const q = await open(
      { llm: 'gpt-4o-mini', embed: 'text-embedding-3-small' },
      { query: { rewrite: { mode: 'off' } }, rerank: { reranker: 'none' } },
    );
    llm.queue(
      { kind: 'reply', deltas: ['{"size": "big"}'], usage: { input: 500, output: 6 } },
      { kind: 'reply', deltas: ['{"size": 256}'], usage: { input: 530, output: 5 } },
    );
    const schema = {
      type: 'object',
      properties: { size: { type: 'integer' } },
      required: ['size'],
      additionalProperties: false,
    };
    const a = await q.ask('What is the default chunk size?', { jsonSchema: schema, cache: false });
    expect(a.data).toEqual({ size: 256 });
    expect(llm.requests).toHaveLength(2);
    expect(part(a.usage!, 'generate')).toMatchObject({ calls: 2, inputTokens: 1030, outputTokens: 11 });
    expect(part(a.usage!, 'embed')).toMatchObject({ calls: 1, inputTokens: 3 });

    // Two invalid replies fail the request; a caller's own meter still holds what was spent.
    llm.queue(
      { kind: 'reply', deltas: ['{"size": "big"}'], usage: { input: 500, output: 6 } },
      { kind: 'reply', deltas: ['{"size": "huge"}'], usage: { input: 530, output: 6 } },
    );
    const meter = new UsageMeter();
    await expect(
      q.ask('What is the maximum parent section size?', { jsonSchema: schema, cache: false, usage: meter }),
    ).rejects.toMatchObject({ code: 'LLM_OUTPUT_INVALID' });
    expect(part(meter.report(), 'generate')).toMatchObject({ calls: 2, inputTokens: 1030, outputTokens: 12 });
    q.close();
  });
});

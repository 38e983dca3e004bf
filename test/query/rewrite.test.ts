import { describe, expect, it } from 'vitest';
import { rewriteQuery } from '../../src/query/rewrite.js';
import { startFakeOpenAIChatServer } from '../generate/llm/fake-openai-chat-server.js';
import { failFastProvider, useFakeLlmServer } from '../generate/llm/helpers.js';

const server = useFakeLlmServer(startFakeOpenAIChatServer);

const provider = () => failFastProvider(server);
const reply = (payload: unknown) => ({ kind: 'reply' as const, deltas: [JSON.stringify(payload)] });

describe('rewriteQuery', () => {
  it('returns the rewritten query and distinct variants from one JSON-mode call', async () => {
    server.queue(
      reply({
        rewritten: 'default chunk size   in tokens',
        variants: [
          'chunk size default',
          'Default chunk size in tokens',
          'how many tokens per chunk',
          '',
          'x'.repeat(500),
        ],
        subQueries: [],
      }),
    );
    const r = await rewriteQuery(provider(), '  whats the chunk size default?? ', { variants: 3 });
    expect(r).toMatchObject({
      original: 'whats the chunk size default??',
      rewritten: 'default chunk size in tokens',
      variants: ['chunk size default', 'how many tokens per chunk'],
      subQueries: [],
      rewrittenByLlm: true,
    });
    expect(r.fallbackReason).toBeUndefined();
    expect(r.usage?.inputTokens).toBe(12);
    expect(server.requests).toHaveLength(1);
    const body = server.requests[0]!.body;
    expect(body).toMatchObject({ response_format: { type: 'json_object' }, temperature: 0, max_tokens: 400 });
    const [system, user] = body.messages as { content: string }[];
    expect(system!.content).toContain('"variants": 3 different phrasings');
    expect(user!.content).toBe('whats the chunk size default??');
  });

  it('decomposes a multi-hop question into at most maxSubQueries sub-questions', async () => {
    server.queue(
      reply({
        rewritten: 'BM25 k1 default versus dense fusion weight',
        variants: ['a', 'b', 'c'],
        subQueries: [
          'What is the default BM25 k1?',
          'What is the default dense fusion weight?',
          'Third hop?',
        ],
      }),
    );
    const r = await rewriteQuery(provider(), 'Is k1 larger than the dense weight?', {
      variants: 1,
      maxSubQueries: 2,
    });
    expect(r.variants).toEqual(['a']);
    expect(r.subQueries).toEqual([
      'What is the default BM25 k1?',
      'What is the default dense fusion weight?',
    ]);
  });

  it('treats a single sub-question as no decomposition', async () => {
    server.queue(reply({ rewritten: 'chunk size', variants: [], subQueries: ['chunk size?'] }));
    expect((await rewriteQuery(provider(), 'chunk size?')).subQueries).toEqual([]);
  });

  it('accepts a reply wrapped in code fences', async () => {
    server.queue({ kind: 'reply', deltas: ['```json\n{"rewritten": "wal mode readers"}\n```'] });
    const r = await rewriteQuery(provider(), 'wal readers');
    expect(r).toMatchObject({
      rewritten: 'wal mode readers',
      variants: [],
      subQueries: [],
      rewrittenByLlm: true,
    });
  });

  it.each([
    [
      'prose',
      { kind: 'reply' as const, deltas: ['Sure! The query is about chunks.'] },
      'the reply is not JSON',
    ],
    ['wrong shape', reply({ query: 'x', variants: 'y' }), 'does not match the schema: rewritten'],
    ['empty rewrite', reply({ rewritten: '   ', variants: ['v'] }), 'no usable rewritten query'],
    ['server error', { kind: 'status' as const, status: 500 }, 'LLM call failed'],
  ])('falls back to the original query on %s, saying why', async (_, scripted, reason) => {
    server.queue(scripted);
    const r = await rewriteQuery(provider(), 'original question');
    expect(r).toMatchObject({
      original: 'original question',
      rewritten: 'original question',
      variants: [],
      subQueries: [],
      rewrittenByLlm: false,
    });
    expect(r.fallbackReason).toContain(reason);
  });

  it('makes no call for an empty query', async () => {
    const r = await rewriteQuery(provider(), '   ');
    expect(r.fallbackReason).toBe('empty query');
    expect(server.requests).toHaveLength(0);
  });

  it('rejects with the abort reason when the caller cancels', async () => {
    server.queue({ kind: 'stall', beforeHeaders: true, ms: 10_000 });
    const ctl = new AbortController();
    const p = rewriteQuery(provider(), 'q', { signal: ctl.signal });
    setTimeout(() => ctl.abort(new Error('deadline')), 50);
    await expect(p).rejects.toThrow('deadline');
  });
});

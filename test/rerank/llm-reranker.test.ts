import { describe, expect, it } from 'vitest';
import { createLlmReranker, parseGrades } from '../../src/rerank/llm-reranker.js';
import { startFakeOpenAIChatServer } from '../generate/llm/fake-openai-chat-server.js';
import { failFastProvider, useFakeLlmServer } from '../generate/llm/helpers.js';
import { hitsOf } from './hits.js';

const server = useFakeLlmServer(startFakeOpenAIChatServer);

const provider = () => failFastProvider(server);

/** The fake grader: 9 for passages that mention "WAL", 1 otherwise, read from the prompt it was sent. */
function grader(body: Record<string, unknown>) {
  const messages = body.messages as { role: string; content: string }[];
  const user = messages.find((m) => m.role === 'user')!.content;
  const scores = [...user.matchAll(/^\[(\d+)\][^\n]*/gm)].map((m) => ({
    id: Number(m[1]),
    score: /WAL/.test(m[0]) ? 9 : 1,
  }));
  return { kind: 'reply' as const, deltas: [JSON.stringify({ scores })] };
}

const texts = [
  'Chunks are 256 tokens by default.',
  'The store runs SQLite in WAL mode so readers never block the writer.',
  'BM25 uses k1 = 0.9 and b = 0.4.',
  'Each ingest batch is one transaction; WAL keeps readers consistent.',
  'Fusion defaults to min-max with weights 0.6 and 0.4.',
];

const order = (scores: { index: number; score: number }[]) =>
  [...scores].sort((a, b) => b.score - a.score).map((s) => s.index);

describe('LLM reranker', () => {
  it('grades passages in batches in JSON mode and reorders by grade, ties in fused order', async () => {
    server.respond = grader;
    const r = createLlmReranker(provider(), { batchSize: 2, concurrency: 1 });
    expect(r.id).toBe('llm:openai:gpt-4o-mini');
    const report = await r.rerankWithReport({ query: 'Why do readers not block?', hits: hitsOf(texts) });
    expect(order(report.scores)).toEqual([1, 3, 0, 2, 4]);
    expect(report.ungraded).toEqual([]);
    expect(report.calls).toBe(3);
    expect(server.requests).toHaveLength(3);
    const first = server.requests[0]!.body;
    expect(first).toMatchObject({ response_format: { type: 'json_object' }, temperature: 0 });
    const user = (first.messages as { content: string }[])[1]!.content;
    expect(user).toContain('Query: Why do readers not block?');
    expect(user).toContain(`[1] ${texts[0]}`);
    expect(user).toContain(`[2] ${texts[1]}`);
    expect(report.usage.inputTokens).toBe(36);
  });

  it('keeps a neutral grade for passages the reply skipped or garbled, and reports them', async () => {
    server.queue({
      kind: 'reply',
      deltas: [
        '```json\n{"scores":[{"id":"1","score":"8"},{"id":2,"score":"high"},{"id":9,"score":10}]}\n```',
      ],
    });
    const report = await createLlmReranker(provider(), { batchSize: 3 }).rerankWithReport({
      query: 'q',
      hits: hitsOf(texts.slice(0, 3)),
    });
    expect(report.ungraded).toEqual([
      { index: 1, reason: 'not graded in the reply' },
      { index: 2, reason: 'not graded in the reply' },
    ]);
    expect(order(report.scores)).toEqual([0, 1, 2]);
    expect(report.scores[0]!.score).toBeGreaterThan(8);
    expect(report.scores[1]!.score).toBeCloseTo(5, 2);
  });

  it('a failed batch leaves its passages neutral while other batches are graded', async () => {
    server.queue(
      { kind: 'status', status: 500 },
      { kind: 'reply', deltas: ['{"scores":[{"id":1,"score":0},{"id":2,"score":10}]}'] },
    );
    const report = await createLlmReranker(provider(), { batchSize: 2, concurrency: 1 }).rerankWithReport({
      query: 'q',
      hits: hitsOf(texts.slice(0, 4)),
    });
    expect(report.ungraded.map((u) => u.index)).toEqual([0, 1]);
    expect(report.ungraded[0]!.reason).toContain('HTTP 500');
    expect(order(report.scores)).toEqual([3, 0, 1, 2]);
  });

  it('throws RERANK_FAILED when nothing could be graded', async () => {
    server.queue({ kind: 'reply', deltas: ['I think passage one is best.'] });
    await expect(
      createLlmReranker(provider()).rerank({ query: 'q', hits: hitsOf(texts.slice(0, 2)) }),
    ).rejects.toMatchObject({ code: 'RERANK_FAILED' });
  });

  it('stops when the request is aborted', async () => {
    server.queue({ kind: 'stall', beforeHeaders: true, ms: 10_000 });
    const ctl = new AbortController();
    const p = createLlmReranker(provider()).rerank({ query: 'q', hits: hitsOf(texts), signal: ctl.signal });
    setTimeout(() => ctl.abort(new Error('rerank budget spent')), 50);
    await expect(p).rejects.toThrow('rerank budget spent');
    expect(server.requests).toHaveLength(1);
  });

  it('validates its config', () => {
    expect(() => createLlmReranker(provider(), { batchSize: 0 })).toThrow(/rerank\.llm\.batchSize/);
  });
});

describe('parseGrades', () => {
  it('reads the shapes LLMs actually produce', () => {
    expect([...parseGrades('{"scores":[{"id":1,"score":7},{"id":2,"score":11}]}', 2).grades]).toEqual([
      [1, 7],
      [2, 10],
    ]);
    expect([...parseGrades('Here you go: {"scores": {"2": 3, "1": "4.5"}} hope it helps', 2).grades]).toEqual(
      [
        [1, 4.5],
        [2, 3],
      ],
    );
    expect([...parseGrades('[3, 8]', 2).grades]).toEqual([
      [1, 3],
      [2, 8],
    ]);
    expect(parseGrades('no json here', 2)).toEqual({ grades: new Map(), error: 'the reply is not JSON' });
    expect(parseGrades('{"scores":[]}', 2).error).toBe('the reply graded no passage');
  });
});

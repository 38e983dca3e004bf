import { describe, expect, it } from 'vitest';
import { Quarry } from '../../src/pipeline/quarry.js';
import { useSamplesStoreWithLlm } from './samples-store.js';

const env = useSamplesStoreWithLlm('quarry-multistage-');

function open(mode: 'auto' | 'always' | 'off' = 'auto'): Quarry {
  return Quarry.open({
    store: env.store,
    config: {
      llm: { provider: 'openai', baseURL: env.server.url, model: 'gpt-4o-mini', maxRetries: 0 },
      query: { rewrite: { mode } },
    },
  });
}

const COMPARISON = 'Compare the default chunk size with the maximum parent section size';
const REWRITE = {
  rewritten: 'default chunk size and maximum parent section size',
  variants: ['chunk token budget defaults'],
  subQueries: ['What is the default chunk size?', 'What is the maximum parent section size?'],
};

describe('retrieval strategy router and multi-stage retrieval', () => {
  it('rewrites a multi-hop question, retrieves every sub-question and fuses them with RRF', async () => {
    env.server.queue({ kind: 'reply', deltas: [JSON.stringify(REWRITE)] });
    const q = open();
    const r = await q.search(COMPARISON, { k: 5, trace: true });
    expect(r.strategy).toBe('multi-stage');
    expect(env.server.requests).toHaveLength(1);
    const body = env.server.requests[0]!.body;
    expect(JSON.stringify(body.messages)).toContain(COMPARISON);
    const stages = r.trace!.stages;
    const rewrite = stages.find((s) => s.stage === 'query.rewrite')!.detail;
    expect(rewrite).toMatchObject({
      strategy: 'multi-stage',
      reason: 'multi-hop wording',
      rewrittenByLlm: true,
    });
    // Original, rewritten, one variant and two sub-questions: five retrievals, one fusion.
    expect(stages.filter((s) => s.stage === 'retrieve.bm25')).toHaveLength(5);
    const fuse = stages.find((s) => s.stage === 'fuse')!.detail;
    expect(fuse.method).toBe('rrf');
    expect(fuse.queries).toEqual([COMPARISON, REWRITE.rewritten, ...REWRITE.variants, ...REWRITE.subQueries]);
    // A fused result carries its rank in each query's list.
    expect(Object.keys(r.hits[0]!.scores).some((k) => /^q\d$/.test(k))).toBe(true);
    expect(r.hits.map((h) => h.rank)).toEqual([1, 2, 3, 4, 5]);
    expect(r.hits.some((h) => h.chunk.text.includes('256'))).toBe(true);
    q.close();
  });

  it('keeps simple queries on the standard path and never calls the LLM for them', async () => {
    const q = open();
    const r = await q.search('chunk size', { k: 3 });
    expect(r.strategy).toBe('standard');
    expect(env.server.requests).toHaveLength(0);
    q.close();
  });

  it('falls back to the original query when the rewrite fails, and still answers', async () => {
    env.server.queue({ kind: 'status', status: 500 });
    const q = open('always');
    const plain = open('off');
    const r = await q.search('default chunk size', { k: 5, trace: true });
    const baseline = await plain.search('default chunk size', { k: 5 });
    expect(r.hits.map((h) => h.chunk.id)).toEqual(baseline.hits.map((h) => h.chunk.id));
    const rewrite = r.trace!.stages.find((s) => s.stage === 'query.rewrite')!.detail;
    expect(rewrite.rewrittenByLlm).toBe(false);
    expect(String(rewrite.fallbackReason)).toMatch(/500/);
    q.close();
    plain.close();
  });

  it('routes a long question to multi-stage retrieval in ask as well', async () => {
    env.server.respond = (body) => {
      const system = (body.messages as Array<{ content: string }>)[0]!.content;
      if (system.includes('rewrite questions')) return { kind: 'reply', deltas: [JSON.stringify(REWRITE)] };
      return { kind: 'reply', deltas: ["I don't have enough information."] };
    };
    const q = open();
    const events = [];
    for await (const e of q.askStream(COMPARISON)) events.push(e);
    expect(events[0]).toMatchObject({ type: 'retrieved', strategy: 'multi-stage' });
    expect(env.server.requests).toHaveLength(2);
    q.close();
  });
});

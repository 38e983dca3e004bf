/**
 * quarry/llamaindex against the real llamaindex package and a real store: `retrieve` returns NodeWithScore
 * with TextNodes that cite Quarry's chunks, best first, as the retriever's principal and filter allow.
 */
import { MetadataMode, NodeRelationship, TextNode } from 'llamaindex';
import { describe, expect, it } from 'vitest';
import { TRUSTED_LOCAL, userPrincipal } from '../../src/access/principal.js';
import { QuarryRetriever } from '../../src/adapters/llamaindex.js';
import { FERRY, useAdapterStore } from './store.js';

describe('QuarryRetriever (LlamaIndex)', () => {
  const ctx = useAdapterStore('quarry-llamaindex-', { islay: true });

  it('retrieve({ query }) returns TextNodes citing the chunks, scores descending', async () => {
    const nodes = await new QuarryRetriever({ quarry: ctx.quarry, k: 5 }).retrieve({
      query: 'When does the ferry leave Kennacraig?',
    });
    expect(nodes).toHaveLength(5);
    const first = nodes[0]!;
    expect(first.node).toBeInstanceOf(TextNode);
    expect(first.node.metadata).toMatchObject({
      docId: FERRY.id,
      source: 'timetables/islay.md',
      title: 'Islay ferries',
      sectionPath: ['Islay ferries', 'Kennacraig'],
      topic: 'ferries',
      year: 2024,
      rank: 1,
    });
    const scores = nodes.map((n) => n.score!);
    expect(scores.every((s) => typeof s === 'number')).toBe(true);
    expect(scores).toEqual([...scores].sort((a, b) => b - a));
    expect(scores[0]).toBeGreaterThan(scores[4]!);
    for (const [i, { node, score }] of nodes.entries()) {
      expect(node).toBeInstanceOf(TextNode);
      const text = node as TextNode;
      const m = text.metadata;
      // id_ is the chunk id; the span, the SOURCE relationship and the score are Quarry's.
      expect(text.id_).toBe(String(m.chunkId));
      expect(m.rank).toBe(i + 1);
      expect(m.score).toBe(score);
      const doc = ctx.quarry.getDocument(m.docId, { principal: TRUSTED_LOCAL })!;
      expect(doc.text.slice(m.start, m.end)).toBe(text.text);
      expect([text.startCharIdx, text.endCharIdx]).toEqual([m.start, m.end]);
      expect(text.sourceNode?.nodeId).toBe(m.docId);
      expect(text.relationships[NodeRelationship.SOURCE]).toBeDefined();
    }
  });

  it('gives the LLM the text with its source and title, not ids, offsets or scores', async () => {
    const [first] = await new QuarryRetriever({ quarry: ctx.quarry, k: 1 }).retrieve('ferry Kennacraig');
    const forLlm = first!.node.getContent(MetadataMode.LLM);
    expect(forLlm).toContain('source: timetables/islay.md');
    expect(forLlm).toContain('title: Islay ferries');
    expect(forLlm).toContain('leaves Kennacraig at 07:00');
    expect(forLlm).not.toMatch(/chunkId|docId|score|start:/);
    expect(first!.node.getContent(MetadataMode.ALL)).toMatch(/chunkId: \d+/);
  });

  it("reads as its principal and within its filter, like any of Quarry's callers", async () => {
    const query = 'harbour master emergency code pier gate';
    const anonymous = await new QuarryRetriever({ quarry: ctx.quarry, k: 20 }).retrieve({ query });
    expect(anonymous.map((n) => n.node.metadata.docId)).not.toContain('harbour-code');
    const staff = new QuarryRetriever({
      quarry: ctx.quarry,
      principal: userPrincipal({ groups: ['harbour-staff'] }),
    });
    const seen = await staff.retrieve({ query });
    expect(seen[0]!.node.metadata.docId).toBe('harbour-code');
    const tides = new QuarryRetriever({ quarry: ctx.quarry, filter: { topic: 'tides' } });
    expect((await tides.retrieve({ query: 'Port Ellen ferry' })).map((n) => n.node.metadata.docId)).toEqual([
      'islay-tides',
    ]);
  });
});

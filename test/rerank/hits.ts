/** Search hits as the rerank stage receives them, built from passage texts. */
import type { SearchHit } from '../../src/types.js';

export function hitsOf(texts: string[], title = ''): SearchHit[] {
  return texts.map((text, i) => ({
    rank: i + 1,
    score: 1 / (i + 1),
    chunk: {
      id: 100 + i,
      docId: `doc-${i}`,
      ordinal: 0,
      sectionOrdinal: 0,
      sectionPath: [],
      start: 0,
      end: text.length,
      text,
      tokenCount: text.split(/\s+/).length,
      title,
    },
    document: {
      id: `doc-${i}`,
      source: `docs/${i}.md`,
      title,
      created_at: '2024-01-01T00:00:00.000Z',
      updated_at: '2024-01-01T00:00:00.000Z',
      version: 1,
      doc_type: 'markdown',
      tags: [],
      access_groups: [],
      access_users: [],
      fields: {},
    },
    scores: { bm25: { score: 1 / (i + 1), rank: i + 1 } },
  }));
}

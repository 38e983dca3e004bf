/**
 * The exact-match retriever: chunks that contain an entity from the query (a quoted phrase, an error code, a
 * path) verbatim, case-insensitively. BM25 on the entity's terms proposes candidates; the chunk text decides.
 * Query understanding chooses which entities are routed here; the pipeline promotes or fuses the result.
 */
import type { VisibleStatistics } from '../indexes/lexical/bm25-index.js';
import type { StoredChunk } from '../types.js';
import type { Retriever } from './bm25-retriever.js';

export interface ExactMatchDeps {
  bm25: Retriever;
  analyze(text: string): string[];
  loadChunks(ids: number[]): ReadonlyMap<number, StoredChunk>;
}

export interface ExactCandidate {
  chunkId: number;
  group: number;
  score: number;
  rank: number;
  retriever: 'exact';
}

/** Chunks containing any of `texts` verbatim, ordered by the summed BM25 score of the entities they contain. */
export function retrieveExactMatches(
  deps: ExactMatchDeps,
  texts: string[],
  depth: number,
  allowGroup: ((g: number) => boolean) | undefined,
  statistics?: VisibleStatistics,
): ExactCandidate[] {
  const out = new Map<number, { chunkId: number; group: number; score: number }>();
  for (const text of texts) {
    const terms = deps.analyze(text);
    if (terms.length === 0) continue;
    const found = deps.bm25.retrieve({ query: text, terms, k: depth, allowGroup, statistics }).candidates;
    const chunks = deps.loadChunks(found.map((c) => c.chunkId));
    const needle = text.toLowerCase();
    for (const c of found) {
      if (!chunks.get(c.chunkId)?.text.toLowerCase().includes(needle)) continue;
      const prev = out.get(c.chunkId);
      out.set(c.chunkId, { chunkId: c.chunkId, group: c.group, score: (prev?.score ?? 0) + c.score });
    }
  }
  return [...out.values()]
    .sort((a, b) => b.score - a.score || a.chunkId - b.chunkId)
    .map((c, i) => ({ ...c, rank: i + 1, retriever: 'exact' as const }));
}

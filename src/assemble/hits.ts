/**
 * Stage "assemble", search side: the ranked candidates become search hits — each with its chunk and its
 * document's metadata, loaded from the store — and fused lists lose repeated passages. Trace: `hits.load`.
 * Does not degrade: a candidate whose chunk or document is gone (index/store drift) is dropped, never
 * returned.
 */
import { collapseDuplicates } from '../fuse/fusion.js';
import type { RankedCandidate } from '../fuse/stage.js';
import type { CatalogDocument } from '../retrieve/catalog.js';
import type { StageContext } from '../stage.js';
import type { SearchHit, StoredChunk } from '../types.js';

export interface HitsDeps {
  getChunks(ids: number[]): ReadonlyMap<number, StoredChunk>;
  document(group: number): CatalogDocument | undefined;
}

type LoadedHit = SearchHit & { docId: string; start: number; end: number; text: string; chunkId: number };

/** The top `k` hits of `ranked`; `dedupe` (fused lists) looks at 2k candidates to fill k after collapsing. */
export function loadHits(
  ranked: RankedCandidate[],
  opts: { k: number; dedupe: boolean },
  deps: HitsDeps,
  ctx: StageContext,
): SearchHit[] {
  return ctx.trace.stage(
    'hits.load',
    () => {
      const window = ranked.slice(0, opts.dedupe ? opts.k * 2 : opts.k);
      const chunks = deps.getChunks(window.map((c) => c.chunkId));
      const loaded: LoadedHit[] = [];
      for (const c of window) {
        const chunk = chunks.get(c.chunkId);
        const doc = deps.document(c.group);
        if (chunk === undefined || doc === undefined) continue;
        loaded.push({
          rank: 0,
          score: c.score,
          chunk,
          document: doc,
          scores: c.scores,
          docId: chunk.docId,
          start: chunk.start,
          end: chunk.end,
          text: chunk.text,
          chunkId: chunk.id,
        });
      }
      // Fused lists bring the same passage in twice (overlapping neighbours, copies found by different
      // retrievers): keep the better-ranked one. A single retriever's list is returned as ranked.
      const { kept } = opts.dedupe ? collapseDuplicates(loaded) : { kept: loaded };
      return kept
        .slice(0, opts.k)
        .map(({ docId: _d, start: _s, end: _e, text: _t, chunkId: _c, ...h }, i) => ({
          ...h,
          rank: i + 1,
        }));
    },
    (h) => ({ loaded: h.length, tokens: h.reduce((a, x) => a + x.chunk.tokenCount, 0) }),
  );
}

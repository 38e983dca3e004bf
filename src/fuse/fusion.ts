/**
 * Fusion: merges the ranked lists of several retrievers (BM25, dense, …) into one. Reciprocal Rank Fusion is
 * rank-based and needs no score calibration; min-max and z-score fusion combine per-query normalized scores
 * with weights, which measured better when one retriever is much weaker than the other (see benchmarks).
 * Every fused candidate keeps each retriever's rank and score for the trace.
 */
import type { Candidate } from '../types.js';

export type FusionMethod = 'rrf' | 'minmax' | 'zscore';

export interface FusionOptions {
  method: FusionMethod;
  /** Per-retriever weights (missing = 1). */
  weights?: Record<string, number>;
  /** Per-candidate override, e.g. by the document's doc_type; falls back to `weights`. */
  weightsFor?: (group: number) => Record<string, number> | undefined;
  /** RRF constant k in 1/(k + rank); 60 is the value of Cormack et al. */
  rrfK?: number;
  /** Candidates to return. */
  limit?: number;
}

export interface FusedCandidate {
  chunkId: number;
  group: number;
  score: number;
  rank: number;
  /** Per-retriever provenance: rank and raw score where the retriever returned the chunk. */
  sources: Record<string, { rank: number; score: number; normalized?: number }>;
}

export type RankedList = { retriever: string; candidates: Array<Candidate & { group: number }> };

function normalizer(method: FusionMethod, scores: number[]): (s: number) => number {
  if (scores.length === 0) return () => 0;
  if (method === 'zscore') {
    const mean = scores.reduce((a, b) => a + b, 0) / scores.length;
    const sd = Math.sqrt(scores.reduce((a, b) => a + (b - mean) ** 2, 0) / scores.length);
    return sd > 0 ? (s) => (s - mean) / sd : () => 0;
  }
  const min = Math.min(...scores);
  const max = Math.max(...scores);
  return max > min ? (s) => (s - min) / (max - min) : () => 1;
}

/**
 * Fuse ranked lists. A chunk missing from a list contributes nothing for that list (RRF) or the list's
 * minimum normalized score (min-max: 0; z-score: the list's lowest z), so a chunk found by one retriever
 * only is not rewarded for absence.
 */
export function fuse(lists: RankedList[], opts: FusionOptions): FusedCandidate[] {
  const byChunk = new Map<number, FusedCandidate>();
  const weight = (r: string, group: number): number =>
    opts.weightsFor?.(group)?.[r] ?? opts.weights?.[r] ?? 1;
  const floor = new Map<string, number>();
  for (const list of lists) {
    const norm = normalizer(
      opts.method,
      list.candidates.map((c) => c.score),
    );
    let lowest = Number.POSITIVE_INFINITY;
    for (const c of list.candidates) {
      let f = byChunk.get(c.chunkId);
      if (f === undefined) {
        f = { chunkId: c.chunkId, group: c.group, score: 0, rank: 0, sources: {} };
        byChunk.set(c.chunkId, f);
      }
      const n = opts.method === 'rrf' ? undefined : norm(c.score);
      f.sources[list.retriever] = {
        rank: c.rank,
        score: c.score,
        ...(n === undefined ? {} : { normalized: n }),
      };
      const w = weight(list.retriever, c.group);
      if (opts.method === 'rrf') f.score += w / ((opts.rrfK ?? 60) + c.rank);
      else {
        f.score += w * n!;
        lowest = Math.min(lowest, n!);
      }
    }
    if (opts.method !== 'rrf') floor.set(list.retriever, Number.isFinite(lowest) ? Math.min(lowest, 0) : 0);
  }
  if (opts.method === 'zscore') {
    // Absent from a list = as bad as that list's worst candidate (not z = 0, which would be "average").
    for (const f of byChunk.values()) {
      for (const list of lists) {
        if (f.sources[list.retriever] === undefined)
          f.score += weight(list.retriever, f.group) * floor.get(list.retriever)!;
      }
    }
  }
  const fused = [...byChunk.values()].sort((a, b) => b.score - a.score || a.chunkId - b.chunkId);
  const limited = opts.limit === undefined ? fused : fused.slice(0, opts.limit);
  limited.forEach((f, i) => {
    f.rank = i + 1;
  });
  return limited;
}

/** What near-duplicate detection needs to know about a chunk. */
export interface DedupeItem {
  chunkId: number;
  docId: string;
  start: number;
  end: number;
  text: string;
}

/**
 * Collapse duplicates, keeping the better-ranked item: the same text (after whitespace/case folding) from
 * any document, or overlapping spans of the same document (neighbouring chunks with overlap) when the
 * overlap covers most of the shorter one. Returns the kept items and what each removed item duplicated.
 */
export function collapseDuplicates<T extends DedupeItem>(
  ranked: T[],
  opts: { minOverlap?: number } = {},
): { kept: T[]; removed: Array<{ chunkId: number; duplicateOf: number; reason: 'same-text' | 'overlap' }> } {
  const minOverlap = opts.minOverlap ?? 0.5;
  const kept: T[] = [];
  const removed: Array<{ chunkId: number; duplicateOf: number; reason: 'same-text' | 'overlap' }> = [];
  const byText = new Map<string, number>();
  for (const item of ranked) {
    const key = item.text.replace(/\s+/g, ' ').trim().toLowerCase();
    const same = byText.get(key);
    if (same !== undefined) {
      removed.push({ chunkId: item.chunkId, duplicateOf: same, reason: 'same-text' });
      continue;
    }
    const overlapping = kept.find((k) => {
      if (k.docId !== item.docId) return false;
      const inter = Math.min(k.end, item.end) - Math.max(k.start, item.start);
      return inter > 0 && inter >= minOverlap * Math.min(k.end - k.start, item.end - item.start);
    });
    if (overlapping !== undefined) {
      removed.push({ chunkId: item.chunkId, duplicateOf: overlapping.chunkId, reason: 'overlap' });
      continue;
    }
    byText.set(key, item.chunkId);
    kept.push(item);
  }
  return { kept, removed };
}

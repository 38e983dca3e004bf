/**
 * Citation checks, the last stage before an answer leaves Quarry: every citation must point to a chunk that
 * was in the answer's context, and its quoted span must exist verbatim at the stated offsets.
 */
import type { Citation, StoredChunk } from '../types.js';

export interface CitationProblem {
  marker: number;
  chunkId: number;
  problem: 'not-in-context' | 'span-mismatch' | 'span-out-of-range';
}

export interface CitationCheck {
  ok: boolean;
  checked: number;
  problems: CitationProblem[];
}

export function checkCitations(
  citations: Citation[],
  context: ReadonlyMap<number, StoredChunk>,
): CitationCheck {
  const problems: CitationProblem[] = [];
  for (const c of citations) {
    const chunk = context.get(c.chunkId);
    if (chunk === undefined) {
      problems.push({ marker: c.marker, chunkId: c.chunkId, problem: 'not-in-context' });
      continue;
    }
    if (c.chunkStart < 0 || c.chunkEnd > chunk.text.length || c.chunkStart >= c.chunkEnd) {
      problems.push({ marker: c.marker, chunkId: c.chunkId, problem: 'span-out-of-range' });
      continue;
    }
    const inChunk = chunk.text.slice(c.chunkStart, c.chunkEnd) === c.quote;
    const inDocument = c.start === chunk.start + c.chunkStart && c.end === chunk.start + c.chunkEnd;
    if (!inChunk || !inDocument)
      problems.push({ marker: c.marker, chunkId: c.chunkId, problem: 'span-mismatch' });
  }
  return { ok: problems.length === 0, checked: citations.length, problems };
}

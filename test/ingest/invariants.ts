/**
 * Shared checks for chunker output: the contract every later stage (index, citations) relies on. Collects all
 * violations into one thrown error, so a failing fixture shows every broken chunk at once.
 */
import type { ChunkedDocument, ChunkOptions } from '../../src/ingest/chunker.js';
import { countTokens } from '../../src/ingest/tokens.js';
import type { ParsedDocument } from '../../src/types.js';

export function assertChunkInvariants(
  doc: ParsedDocument,
  out: ChunkedDocument,
  opts: Pick<ChunkOptions, 'maxTokens'> & { countTokens?: (s: string) => number },
): void {
  const count = opts.countTokens ?? countTokens;
  const problems: string[] = [];
  const { text } = doc;
  const isSpace = (ch: string | undefined) => ch !== undefined && /\s/.test(ch);

  out.sections.forEach((s, i) => {
    if (s.ordinal !== i) problems.push(`section ${i}: ordinal ${s.ordinal}`);
    if (!(s.start >= 0 && s.start < s.end && s.end <= text.length)) {
      problems.push(`section ${i}: bad range ${s.start}..${s.end} (text length ${text.length})`);
    }
    if (isSpace(text[s.start]) || isSpace(text[s.end - 1])) problems.push(`section ${i}: not trimmed`);
    const prev = out.sections[i - 1];
    if (prev && s.start < prev.end) problems.push(`section ${i}: overlaps section ${i - 1}`);
  });

  out.chunks.forEach((c, i) => {
    const where = `chunk ${i} (${c.start}..${c.end})`;
    if (c.ordinal !== i) problems.push(`${where}: ordinal ${c.ordinal}`);
    if (c.text !== text.slice(c.start, c.end)) problems.push(`${where}: text is not the slice`);
    if (c.text.length === 0 || c.text.trim() !== c.text) problems.push(`${where}: not trimmed / empty`);
    const n = count(c.text);
    if (n > opts.maxTokens) problems.push(`${where}: ${n} tokens > ${opts.maxTokens}`);
    if (c.tokenCount !== n) problems.push(`${where}: tokenCount ${c.tokenCount} but counted ${n}`);
    const section = out.sections[c.section];
    if (!section) problems.push(`${where}: section ${c.section} does not exist`);
    else if (c.start < section.start || c.end > section.end) problems.push(`${where}: outside its section`);
    const prev = out.chunks[i - 1];
    if (prev && (c.start <= prev.start || c.section < prev.section))
      problems.push(`${where}: out of text order`);
  });

  // Coverage: every non-whitespace character of every section lies in a chunk of that section.
  out.sections.forEach((s, si) => {
    const covered = new Uint8Array(s.end - s.start);
    for (const c of out.chunks) {
      if (c.section !== si) continue;
      covered.fill(1, c.start - s.start, c.end - s.start);
    }
    for (let p = s.start; p < s.end; p++) {
      if (!covered[p - s.start] && !isSpace(text[p])) {
        problems.push(`section ${si}: char ${p} ${JSON.stringify(text[p])} not covered`);
        break;
      }
    }
  });

  if (problems.length > 0) {
    throw new Error(`chunk invariants violated:\n${problems.slice(0, 20).join('\n')}`);
  }
}

/** Every non-whitespace character inside a block is inside some section (nothing a parser found is dropped). */
export function assertBlocksCovered(doc: ParsedDocument, out: ChunkedDocument): void {
  for (const b of doc.blocks) {
    for (let p = b.start; p < b.end; p++) {
      if (/\s/.test(doc.text[p]!)) continue;
      if (!out.sections.some((s) => s.start <= p && p < s.end)) {
        throw new Error(`block char ${p} ${JSON.stringify(doc.text[p])} is in no section`);
      }
    }
  }
}

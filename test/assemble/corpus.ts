/**
 * Test corpus for context assembly: markdown documents parsed and chunked by the real parser and chunker
 * (small chunks with overlap, so merging and parent expansion have real material), with the assembly deps
 * backed by those documents and the real analyzer. Also the invariant every assembled window must satisfy.
 */
import { expect } from 'vitest';
import type { AssembleDeps, ChunkSpan } from '../../src/assemble/context.js';
import type { ContextWindow } from '../../src/assemble/types.js';
import { createAnalyzer } from '../../src/indexes/lexical/analyzer.js';
import { chunkDocument } from '../../src/ingest/chunker.js';
import { parseMarkdown } from '../../src/ingest/parsers/markdown.js';
import { countTokens } from '../../src/ingest/tokens.js';
import type { ParentSection } from '../../src/store/types.js';
import type { DocumentMetadata, SearchHit, Section, StoredChunk } from '../../src/types.js';

export interface TestDoc {
  id: string;
  text: string;
  meta: DocumentMetadata & { id: string };
  sections: Section[];
  chunks: StoredChunk[];
}

export interface Corpus {
  docs: Map<string, TestDoc>;
  chunks: Map<number, StoredChunk>;
  deps: AssembleDeps;
  hit(chunkId: number, score?: number): SearchHit;
}

export function buildCorpus(
  files: Record<string, string>,
  chunking = { maxTokens: 24, overlapTokens: 12, parentMaxTokens: 400 },
  countText: (text: string) => number = countTokens,
): Corpus {
  const docs = new Map<string, TestDoc>();
  const chunks = new Map<number, StoredChunk>();
  let nextId = 1;
  let day = 1;
  for (const [id, markdown] of Object.entries(files)) {
    const parsed = parseMarkdown(markdown);
    const { sections, chunks: drafts } = chunkDocument(parsed, { ...chunking, countTokens });
    const date = `2024-0${(day++ % 9) + 1}-15T10:00:00.000Z`;
    const meta = {
      id,
      source: `docs/${id}.md`,
      title: parsed.title ?? id,
      created_at: date,
      updated_at: date,
      version: 1,
      doc_type: 'markdown',
      tags: [],
      access_groups: [],
      access_users: [],
      fields: {},
    };
    const stored: StoredChunk[] = drafts.map((d) => ({
      id: nextId++,
      docId: id,
      ordinal: d.ordinal,
      sectionOrdinal: d.section,
      sectionPath: sections[d.section]?.path ?? [],
      start: d.start,
      end: d.end,
      text: d.text,
      tokenCount: d.tokenCount,
      title: meta.title,
    }));
    for (const c of stored) chunks.set(c.id, c);
    docs.set(id, { id, text: parsed.text, meta, sections, chunks: stored });
  }

  const analyzer = createAnalyzer();
  const df = new Map<string, number>();
  for (const c of chunks.values())
    for (const t of new Set(analyzer.analyze(c.text))) df.set(t, (df.get(t) ?? 0) + 1);
  const n = chunks.size;

  const deps: AssembleDeps = {
    countTokens: countText,
    analyze: (text) => analyzer.analyze(text),
    idf: (term) => {
      const d = df.get(term) ?? 0;
      return Math.log(1 + (n - d + 0.5) / (d + 0.5));
    },
    getParentSection(chunkId): ParentSection | undefined {
      const c = chunks.get(chunkId);
      const doc = c && docs.get(c.docId);
      const s = doc?.sections[c!.sectionOrdinal];
      if (!c || !doc || !s) return undefined;
      return {
        docId: doc.id,
        chunkId,
        ordinal: s.ordinal,
        path: s.path,
        start: s.start,
        end: s.end,
        text: doc.text.slice(s.start, s.end),
      };
    },
    sectionChunks(docId, ordinal): ChunkSpan[] {
      return (docs.get(docId)?.chunks ?? []).filter((c) => c.sectionOrdinal === ordinal);
    },
  };

  return {
    docs,
    chunks,
    deps,
    hit(chunkId, score = 1) {
      const chunk = chunks.get(chunkId);
      if (!chunk) throw new Error(`no chunk ${chunkId}`);
      const doc = docs.get(chunk.docId)!;
      return { rank: 0, score, chunk, document: doc.meta, scores: { bm25: { score, rank: 0 } } };
    },
  };
}

/**
 * Every source's text is its segments joined by " … ", each segment is the exact document slice it claims,
 * and its chunk id names a chunk of that document whose start is `chunkStart`.
 */
export function expectExactSegments(
  window: ContextWindow,
  documentText: (docId: string) => string,
  chunkStart?: (chunkId: number) => number | undefined,
): void {
  for (const s of window.sources) {
    const text = documentText(s.docId);
    let rebuilt = '';
    for (const seg of s.segments) {
      expect(seg.length).toBeGreaterThan(0);
      if (rebuilt.length > 0 && seg.textStart > rebuilt.length)
        rebuilt += s.text.slice(rebuilt.length, seg.textStart);
      expect(seg.textStart).toBe(rebuilt.length);
      const claimed = text.slice(seg.docStart, seg.docStart + seg.length);
      expect(s.text.slice(seg.textStart, seg.textStart + seg.length)).toBe(claimed);
      rebuilt += claimed;
      if (chunkStart) expect(chunkStart(seg.chunkId)).toBe(seg.chunkStart);
    }
    expect(rebuilt).toBe(s.text);
    // Only the documented joiner may appear between pieces.
    const gaps = s.segments.slice(1).map((seg, i) => {
      const prev = s.segments[i]!;
      return s.text.slice(prev.textStart + prev.length, seg.textStart);
    });
    for (const g of gaps) expect(['', ' … ']).toContain(g);
  }
}

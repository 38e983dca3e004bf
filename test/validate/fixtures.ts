/**
 * Realistic sources for validation tests: two documents cut into chunks the way the store cuts them (exact
 * slices with document offsets), context sources built from them as context assembly does (pieces joined by
 * " … ", each mapped back by a segment), and the index's real analyzer with Lucene's idf over the chunks.
 */
import type { ContextSource, SourceSegment } from '../../src/assemble/types.js';
import { createAnalyzer } from '../../src/indexes/lexical/analyzer.js';
import type { StoredChunk } from '../../src/types.js';
import type { SupportDeps } from '../../src/validate/support.js';

export interface Doc {
  id: string;
  title: string;
  source: string;
  text: string;
  chunks: StoredChunk[];
}

const STORAGE = `# Storage and durability

Quarry keeps everything in one directory: a SQLite database in WAL mode plus index snapshots. Every ingest batch is written in one transaction, so a process killed during ingest leaves each document either fully present or fully absent.

## Versions

Re-ingesting an unchanged document does not create a new version. When the content hash changes, the document version is bumped and its old chunks are deleted. Chunk ids are never reused, so a citation to an old chunk cannot silently point at new text.

## Snapshots

The BM25 index is persisted as a snapshot tagged with the store's index version. A stale snapshot is rebuilt from the store on startup, which takes about 4 seconds for 100,000 chunks. Snapshots were introduced on 2024-03-15.
`;

const CHUNKING = `# Chunking

Documents are split along their headings first, then into chunks of at most 256 tokens. Consecutive chunks of a section overlap by 32 tokens, so a sentence cut at a boundary is still retrievable in one piece. Token counts use a BPE tokenizer, not a word count.

## Parents

Each heading section is a parent: when a small chunk is retrieved, context assembly can hand the model the whole section instead, up to 1024 tokens. Parent expansion never crosses a heading of the same level.
`;

/** Chunks at the given paragraph boundaries: each chunk is an exact slice of the document text. */
function chunkDoc(id: string, title: string, source: string, text: string, firstId: number): Doc {
  const chunks: StoredChunk[] = [];
  const paragraphs = [...text.matchAll(/[^\n]+/g)];
  let ordinal = 0;
  let section: string[] = [];
  for (const p of paragraphs) {
    const line = p[0];
    const heading = /^(#+)\s+(.*)$/.exec(line);
    if (heading) {
      const level = heading[1]!.length;
      section = [...section.slice(0, level - 1), heading[2]!];
      continue;
    }
    const start = p.index!;
    chunks.push({
      id: firstId + ordinal,
      docId: id,
      ordinal,
      sectionOrdinal: 0,
      sectionPath: section,
      start,
      end: start + line.length,
      text: line,
      tokenCount: line.split(/\s+/).length,
      title,
    });
    ordinal++;
  }
  return { id, title, source, text, chunks };
}

export const storageDoc = chunkDoc(
  'storage',
  'Storage and durability',
  'docs/storage-and-durability.md',
  STORAGE,
  100,
);
export const chunkingDoc = chunkDoc('chunking', 'Chunking', 'docs/chunking.md', CHUNKING, 200);
export const docs = [storageDoc, chunkingDoc];

/**
 * A context source made of document pieces (each inside one chunk), joined by " … " when not adjacent, the
 * way context assembly joins compressed or parent text.
 */
export function makeSource(
  n: number,
  doc: Doc,
  pieces: Array<{ chunk: StoredChunk; from?: number; to?: number }>,
): ContextSource {
  let text = '';
  const segments: SourceSegment[] = [];
  for (const p of pieces) {
    const docStart = p.chunk.start + (p.from ?? 0);
    const docEnd = p.chunk.start + (p.to ?? p.chunk.text.length);
    if (text.length > 0) text += ' … ';
    segments.push({
      textStart: text.length,
      docStart,
      length: docEnd - docStart,
      chunkId: p.chunk.id,
      chunkStart: p.chunk.start,
    });
    text += doc.text.slice(docStart, docEnd);
  }
  const first = pieces[0]!.chunk;
  return {
    n,
    docId: doc.id,
    title: doc.title,
    source: doc.source,
    date: '2024-06-01T00:00:00.000Z',
    version: 1,
    sectionPath: first.sectionPath,
    kind: pieces.length > 1 ? 'parent' : 'chunk',
    chunkIds: [...new Set(pieces.map((p) => p.chunk.id))],
    score: 1 / n,
    text,
    tokens: Math.ceil(text.length / 4),
    segments,
  };
}

const analyzer = createAnalyzer();
const allChunks = docs.flatMap((d) => d.chunks);
const df = new Map<string, number>();
for (const c of allChunks) for (const t of new Set(analyzer.analyze(c.text))) df.set(t, (df.get(t) ?? 0) + 1);

/** The real analysis chain and Lucene's idf over the fixture chunks (unseen terms get the highest idf). */
export const deps: SupportDeps = {
  analyze: (t) => analyzer.analyze(t),
  idf: (t) => {
    const n = df.get(t) ?? 0;
    return Math.log(1 + (allChunks.length - n + 0.5) / (n + 0.5));
  },
};

export function chunk(doc: Doc, containing: string): StoredChunk {
  const c = doc.chunks.find((x) => x.text.includes(containing));
  if (c === undefined) throw new Error(`no chunk contains ${containing}`);
  return c;
}

export function contextMap(): Map<number, StoredChunk> {
  return new Map(allChunks.map((c) => [c.id, c]));
}

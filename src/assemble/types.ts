/**
 * What context assembly hands prompt construction and validation: numbered sources that fit the model's
 * window, each able to map any span of its text back to exact document offsets (so citations stay verifiable
 * after parent expansion and sentence compression).
 */

/** `text.slice(textStart, textStart + length) === documentText.slice(docStart, docStart + length)`. */
export interface SourceSegment {
  textStart: number;
  docStart: number;
  length: number;
  /** The stored chunk this piece lies in (for parent text: the chunk of the section it overlaps most). */
  chunkId: number;
  /** That chunk's start offset in the document, so `docStart - chunkStart` is the offset inside the chunk. */
  chunkStart: number;
}

export interface ContextSource {
  /** 1-based number shown in the prompt and cited as `[n]`. */
  n: number;
  docId: string;
  title: string;
  source: string;
  /** ISO timestamp (document `updated_at`), shown so the model can mention possibly outdated facts. */
  date: string;
  version: number;
  sectionPath: string[];
  /** `chunk`: a retrieved chunk (maybe compressed); `parent`: its whole heading section (parent-child). */
  kind: 'chunk' | 'parent';
  /** Retrieved chunks this source stands for. */
  chunkIds: number[];
  /** Best retrieval/rerank score among them. */
  score: number;
  /** Text shown to the model. Pieces that are not contiguous in the document are joined by " … ". */
  text: string;
  /** Real tokens of `text` (the configured model's tokenizer), plus the source's header line. */
  tokens: number;
  segments: SourceSegment[];
}

export interface ContextBudget {
  /** Model context window in tokens. */
  window: number;
  /** Tokens reserved for the answer. */
  reservedOutput: number;
  /** Tokens of the prompt around the sources (system text, question, source headers' fixed part). */
  promptOverhead: number;
  /** window − reservedOutput − promptOverhead: what the sources may use. */
  available: number;
}

export interface ContextWindow {
  sources: ContextSource[];
  /** Tokens used by the sources (≤ budget.available, always). */
  tokens: number;
  budget: ContextBudget;
  ordering: 'relevance' | 'document' | 'edges';
  /** Candidates left out, and why (`duplicate`, `budget`, `merged-into-parent`, …). */
  dropped: Array<{ chunkId: number; reason: string }>;
  /** Sentences removed by compression, total. */
  compressedSentences: number;
  /** The day (`YYYY-MM-DD`) the budget was measured with; prompt construction shows it as `{{today}}`. */
  today?: string;
}

/**
 * The shapes of the API responses the web UI renders, as the server sends them (src/server/schemas.ts and
 * the stored query records of src/server/traces.ts). Only what the views read is typed.
 */

export interface Whoami {
  kind: 'user' | 'trusted' | 'anonymous';
  keyId?: string;
  tenant?: string;
  scopes: string[];
  groups: string[];
}

export interface CollectionInfo {
  name: string;
  tenant: string;
  createdAt: string;
}

export interface Degradation {
  stage: string;
  reason: string;
}

export interface Citation {
  marker: number;
  docId: string;
  source: string;
  title: string;
  sectionPath?: string[];
  chunkId: number;
  start: number;
  end: number;
  chunkStart?: number;
  chunkEnd?: number;
  quote: string;
}

export interface HitChunk {
  id: number;
  docId: string;
  sectionPath: string[];
  start: number;
  end: number;
  text: string;
  title: string;
}

export interface Hit {
  rank: number;
  score: number;
  chunk: HitChunk;
  document: { id?: string; source?: string; title?: string } & Record<string, unknown>;
  scores: Record<string, { score: number; rank: number }>;
}

export interface ValidationSummary {
  policy: 'flag' | 'remove';
  sentences: number;
  supported: number;
  unsupported: Array<{ text: string; support: number; markers: number[] }>;
  removed: number;
  unknownMarkers: number[];
  critique?: { verdict: string; unsupported: string[] };
}

export interface Answer {
  queryId: string;
  question: string;
  text: string;
  citations: Citation[];
  abstained: boolean;
  confidence: number;
  answerer: string;
  degraded: Degradation[];
  hits?: Hit[];
  validation?: ValidationSummary;
}

/** The events of `POST /v1/ask` with `stream: true`. */
export type AskEvent =
  | { event: 'meta'; data: { queryId: string; requestId: string } }
  | {
      event: 'retrieved';
      data: { strategy: string; hits: Array<{ rank: number; docId: string; title: string }> };
    }
  | { event: 'context'; data: { sources: number; tokens: number; available: number } }
  | { event: 'delta'; data: { text: string } }
  | { event: 'citation'; data: { sources: number[]; unknown: number[] } }
  | { event: 'reset'; data: { reason: string } }
  | { event: 'validation'; data: ValidationSummary }
  | { event: 'degraded'; data: Degradation[] }
  | { event: 'answer'; data: Answer }
  | { event: 'error'; data: { code: string; message: string } }
  | { event: 'done'; data: Record<string, never> };

export interface StageReport {
  stage: string;
  offsetMs: number;
  durationMs: number;
  detail: Record<string, unknown>;
}

export interface TraceRecord {
  queryId: string;
  createdAt: string;
  collection: string;
  kind: 'search' | 'ask' | 'chat';
  query: string;
  trace?: { query: string; totalMs: number; stages: StageReport[]; degraded?: Degradation[] };
  answer?: { text: string; abstained: boolean; confidence: number; answerer: string };
  citations?: Array<{ marker: number; docId: string; chunkId: number }>;
  hits?: Array<{ rank: number; docId: string; chunkId: number; score: number }>;
  degraded?: Degradation[];
}

export interface DocumentView {
  id: string;
  status: string;
  meta: { source?: string; title?: string; updated_at?: string; tags?: string[] } & Record<string, unknown>;
  chunkCount: number;
  charCount: number;
  text?: string;
}

export interface DocumentPage {
  documents: DocumentView[];
  limit: number;
  offset: number;
  nextOffset: number | null;
}

export interface IngestResult {
  added: number;
  updated: number;
  unchanged: number;
  failed: number;
  chunks: number;
  documents: Array<{
    id?: string;
    source?: string;
    status: 'added' | 'updated' | 'unchanged' | 'failed';
    code?: string;
    message?: string;
  }>;
}

/** Upload progress as the UI shows it: bytes sent, then the server's ingest progress. */
export interface UploadProgress {
  phase: string;
  done: number;
  total: number;
}

/**
 * Stage "chunk": one parsed document → a draft ready to write. Merges the source's metadata with the
 * options added to every document, redacts PII when the context redacts (before anything is chunked, so no
 * chunk, title or field holds the original), and cuts the text into sections and retrieval chunks
 * (src/ingest/chunker.ts) measured by the configured tokenizer.
 * Input: a `ParsedDocument` with its identity (id, source, content hash, doc type, metadata). Output: a
 * `DocumentDraft`. Progress: the redaction counts per PII kind (into `redactions`, reported at the end).
 * Degrades: it does not; the chunker never fails on parsed text.
 */
import { type DocumentRedactor, redactDocument, redactDraft } from '../privacy/redact.js';
import type { DocumentDraft, ParsedDocument } from '../types.js';
import { chunkDocument } from './chunker.js';
import type { SourceMeta } from './parsers/records.js';
import { countTokens } from './tokens.js';
import type { IngestContext, IngestOptions } from './types.js';

/** One parsed document and what identifies it in the store. */
export interface ChunkInput {
  id: string;
  source: string;
  /** Content hash (src/ingest/hash.ts): what the next run compares to skip the document. */
  hash: string;
  doc: ParsedDocument;
  docType: string;
  meta: SourceMeta;
  /** Title when the document carries none (the file name, the record id, or '' in memory). */
  fallbackTitle: string;
}

export type ChunkDeps = Pick<IngestContext, 'config' | 'redact' | 'tokenizer'>;

/** Redact (when configured), chunk and assemble one parsed document into a draft ready to write. */
export function chunkParsed(
  input: ChunkInput,
  opts: Pick<IngestOptions, 'tags' | 'accessGroups' | 'fields'>,
  deps: ChunkDeps,
  redactions: Record<string, number>,
): DocumentDraft {
  const { meta } = input;
  const merged = { ...meta.fields, ...opts.fields };
  delete merged.title;
  const parts = { doc: input.doc, title: input.doc.title?.trim() || input.fallbackTitle, fields: merged };
  const { doc, title, fields } = deps.redact ? redactDocument(deps.redact, parts, redactions) : parts;
  const tokenizer = deps.tokenizer;
  const count = tokenizer === undefined ? countTokens : (t: string) => tokenizer.count(t);
  const { sections, chunks } = chunkDocument(doc, { ...deps.config.chunking, countTokens: count });
  return {
    id: input.id,
    hash: input.hash,
    text: doc.text,
    meta: {
      source: input.source,
      title,
      doc_type: meta.doc_type ?? input.docType,
      tags: [...new Set([...(meta.tags ?? []), ...(opts.tags ?? [])])],
      access_groups: [...new Set([...(meta.access_groups ?? []), ...(opts.accessGroups ?? [])])],
      access_users: meta.access_users ?? [],
      ...(meta.security_level === undefined ? {} : { security_level: meta.security_level }),
      fields,
      ...(meta.created_at ? { created_at: meta.created_at } : {}),
      ...(meta.updated_at ? { updated_at: meta.updated_at } : {}),
    },
    sections,
    chunks,
  };
}

/** A draft built by the caller (already chunked): only redaction applies, with the built-in token counter. */
export function redactPrebuilt(
  draft: DocumentDraft,
  redact: DocumentRedactor | undefined,
  redactions: Record<string, number>,
): DocumentDraft {
  return redact ? redactDraft(redact, draft, countTokens, redactions) : draft;
}

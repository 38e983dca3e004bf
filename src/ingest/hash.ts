/**
 * Content hashes for incremental ingest: a document whose hash matches the stored one is `unchanged` and is
 * neither parsed nor written again. Every hash includes the change fingerprint, so other chunking settings,
 * options added to every document, redaction or tokenizer make every document "changed".
 */
import { createHash } from 'node:crypto';
import type { IngestContext, IngestOptions } from './types.js';

export function sha256(...parts: Array<string | Uint8Array>): string {
  const h = createHash('sha256');
  for (const p of parts) h.update(p);
  return h.digest('hex');
}

/**
 * What besides its content makes a document "changed": the chunking settings, the options added to every
 * document, and the redaction settings (other ones must rewrite stored text). Part of every content hash.
 */
export function changeFingerprint(
  ctx: Pick<IngestContext, 'config' | 'redact' | 'tokenizer'>,
  opts: Pick<IngestOptions, 'tags' | 'accessGroups' | 'fields'>,
): string {
  return JSON.stringify({
    chunking: ctx.config.chunking,
    extra: [opts.tags, opts.accessGroups, opts.fields],
    ...(ctx.redact ? { redact: ctx.redact.fingerprint } : {}),
    // Another tokenizer measures chunks differently: every document is re-chunked with it.
    ...(ctx.tokenizer ? { tokenizer: ctx.tokenizer.id } : {}),
  });
}

/** Stored hashes of `ids` (absent = not stored), to compare before parsing. */
export type StoredHashes = ReadonlyMap<string, { hash: string }>;

export function isUnchanged(stored: StoredHashes, id: string, hash: string): boolean {
  return stored.get(id)?.hash === hash;
}

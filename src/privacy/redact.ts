/**
 * PII redaction, applied to parsed documents before chunking (so nothing sensitive reaches the store or the
 * indexes) and to answers on their way out. `mask` replaces a value by its kind (`[EMAIL]`); `reversible`
 * by a stable keyed placeholder (`[EMAIL_9f86d081884c7d65]`) whose original is kept encrypted in the vault.
 */

import { createHash } from 'node:crypto';
import path from 'node:path';
import { z } from 'zod';
import type { Block, DocumentDraft, ParsedDocument } from '../types.js';
import {
  BUILTIN_PII_KINDS,
  CustomPatternSchema,
  createPiiDetector,
  type PiiDetector,
  type PiiKind,
} from './pii.js';
import { PiiVault, readVaultKey, VAULT_FILE } from './vault.js';

export const PrivacyConfigSchema = z.object({
  /** Off by default: redaction rewrites stored text, which an operator must opt into. */
  enabled: z.boolean().default(false),
  /** Where to redact: documents at ingest, generated answers, or both. */
  at: z.enum(['ingest', 'answers', 'both']).default('both'),
  kinds: z.array(z.enum(BUILTIN_PII_KINDS)).default([...BUILTIN_PII_KINDS]),
  /** `mask`: `[EMAIL]`, irreversible. `reversible`: keyed placeholders, originals in the encrypted vault. */
  mode: z.enum(['mask', 'reversible']).default('mask'),
  /** Name of the environment variable holding the vault key (the key itself never goes in a config file). */
  keyEnv: z
    .string()
    .regex(/^[A-Za-z_][A-Za-z0-9_]*$/)
    .default('QUARRY_PII_KEY'),
  /** Region for national phone numbers; international `+…` numbers are found regardless. */
  phoneRegion: z
    .string()
    .regex(/^[A-Z]{2}$/)
    .default('US'),
  custom: z.array(CustomPatternSchema).default([]),
  /** Vault file; default `<storeDir>/pii-vault.sqlite`. Put it on another volume to keep it apart. */
  vaultPath: z.string().min(1).optional(),
});
export type PrivacyConfig = z.infer<typeof PrivacyConfigSchema>;
export type PrivacyConfigInput = z.input<typeof PrivacyConfigSchema>;

/** A redacted span: no plaintext, only where it was and where its placeholder now is. */
export interface RedactionFinding {
  kind: PiiKind;
  /** Span of the original value in the input text. */
  start: number;
  end: number;
  /** Span of the placeholder in the redacted text. */
  outStart: number;
  outEnd: number;
}

export interface RedactionResult {
  text: string;
  findings: RedactionFinding[];
}

export interface Redactor {
  readonly mode: 'mask' | 'reversible';
  /** Changes whenever redaction would produce different text (kinds, patterns, mode, key), never the key. */
  readonly fingerprint: string;
  redact(text: string): RedactionResult;
  /** Put originals back in place of placeholders this vault knows (reversible mode only). */
  restore?(text: string): string;
  /** The vault behind reversible mode (restore with an audit trail: ./restore.ts). */
  readonly vault?: PiiVault;
  close(): void;
}

export interface RedactorOptions {
  /** The store directory; the vault lives beside the store, in its own file. */
  storeDir: string;
  /** Where to read `keyEnv` from (default `process.env`). */
  env?: NodeJS.ProcessEnv;
}

/** Whether the configured redaction applies at a stage. */
export function redactsAt(config: PrivacyConfig, stage: 'ingest' | 'answers'): boolean {
  return config.enabled && (config.at === 'both' || config.at === stage);
}

/** A reversible placeholder: kind label and keyed token. */
export const PLACEHOLDER_TOKEN = /\[([A-Z][A-Z0-9_]{0,31})_([0-9a-f]{16})\]/g;

function label(kind: string): string {
  return kind.toUpperCase();
}

/**
 * Build the redactor a configuration asks for. Disabled → a pass-through redactor; `reversible` opens the
 * vault (and fails now, not mid-ingest, on a missing or wrong key).
 */
export function createRedactor(input: PrivacyConfigInput, opts: RedactorOptions): Redactor {
  const config = PrivacyConfigSchema.parse(input);
  if (!config.enabled) {
    return { mode: config.mode, fingerprint: 'off', redact: (text) => ({ text, findings: [] }), close() {} };
  }
  const detector = createPiiDetector({
    kinds: config.kinds,
    phoneRegion: config.phoneRegion,
    custom: config.custom,
  });
  const settings = {
    kinds: detector.kinds,
    phoneRegion: config.phoneRegion,
    custom: config.custom,
    mode: config.mode,
  };
  if (config.mode === 'mask') {
    const fingerprint = digest(settings);
    return {
      mode: 'mask',
      fingerprint,
      redact: (text) => replaceFindings(text, detector, (kind) => `[${label(kind)}]`),
      close() {},
    };
  }

  const key = readVaultKey(config.keyEnv, opts.env);
  const vault = PiiVault.open({ file: config.vaultPath ?? path.join(opts.storeDir, VAULT_FILE), key });
  // The key enters the fingerprint only through a keyed token, so a new key re-redacts without revealing it.
  const fingerprint = digest({ ...settings, key: vault.token('fingerprint', 'quarry') });
  return {
    mode: 'reversible',
    fingerprint,
    vault,
    redact(text) {
      const entries = new Map<string, string>();
      const result = replaceFindings(text, detector, (kind, value) => {
        const placeholder = `[${label(kind)}_${vault.token(kind, value)}]`;
        entries.set(placeholder, value);
        return placeholder;
      });
      // Written before the caller stores the redacted text, so no stored placeholder lacks its original.
      vault.putMany([...entries].map(([placeholder, value]) => ({ placeholder, value })));
      return result;
    },
    restore(text) {
      return text.replace(PLACEHOLDER_TOKEN, (placeholder) => vault.get(placeholder) ?? placeholder);
    },
    close: () => vault.close(),
  };
}

function digest(value: unknown): string {
  return createHash('sha256').update(JSON.stringify(value)).digest('hex').slice(0, 16);
}

function replaceFindings(
  text: string,
  detector: PiiDetector,
  placeholder: (kind: PiiKind, value: string) => string,
): RedactionResult {
  const found = detector.detect(text);
  if (found.length === 0) return { text, findings: [] };
  const parts: string[] = [];
  const findings: RedactionFinding[] = [];
  let cursor = 0;
  let out = 0;
  for (const f of found) {
    const before = text.slice(cursor, f.start);
    parts.push(before);
    out += before.length;
    const p = placeholder(f.kind, f.text);
    parts.push(p);
    findings.push({ kind: f.kind, start: f.start, end: f.end, outStart: out, outEnd: out + p.length });
    out += p.length;
    cursor = f.end;
  }
  parts.push(text.slice(cursor));
  return { text: parts.join(''), findings };
}

// --- documents ----------------------------------------------------------------------------------------------

/** What the ingest hook needs of a redactor. */
export type DocumentRedactor = Pick<Redactor, 'redact' | 'fingerprint'>;

export interface DocumentParts {
  doc: ParsedDocument;
  title: string;
  fields: Record<string, unknown>;
}

/**
 * Redact a parsed document before it is chunked: the text (with every block offset moved to the redacted
 * text, so chunks stay exact slices and headings keep their blocks), heading texts (they become section
 * paths), the title and every string inside the user fields. Values redacted are added to `counts` per kind.
 */
export function redactDocument(
  redactor: DocumentRedactor,
  parts: DocumentParts,
  counts: Record<string, number> = {},
): DocumentParts {
  const run = counting(redactor, counts);
  const body = run(parts.doc.text);
  const blocks = parts.doc.blocks.map((b): Block => {
    const moved: Block = {
      ...b,
      start: mapOffset(body.findings, b.start, 'start'),
      end: mapOffset(body.findings, b.end, 'end'),
    };
    // Not counted: a heading's text is also in the body, where it was counted.
    if (b.heading !== undefined) moved.heading = redactor.redact(b.heading).text;
    return moved;
  });
  const title = run(parts.title).text;
  // The format's own metadata (`doc.fields`) has already been lifted into `fields` by the parser.
  const doc: ParsedDocument = { text: body.text, title, blocks };
  return { doc, title, fields: redactValue(parts.fields, run) as Record<string, unknown> };
}

/**
 * Redact a document that arrives already chunked (library `addDocuments`): sections and chunks are moved
 * to the redacted text and chunk texts re-sliced; a placeholder longer than its value can push a chunk a
 * few tokens over the chunker's budget.
 */
export function redactDraft(
  redactor: DocumentRedactor,
  draft: DocumentDraft,
  countTokens: (text: string) => number,
  counts: Record<string, number> = {},
): DocumentDraft {
  const run = counting(redactor, counts);
  const body = run(draft.text);
  const move = <T extends { start: number; end: number }>(r: T): T => ({
    ...r,
    start: mapOffset(body.findings, r.start, 'start'),
    end: mapOffset(body.findings, r.end, 'end'),
  });
  return {
    ...draft,
    text: body.text,
    meta: {
      ...draft.meta,
      title: run(draft.meta.title).text,
      fields: redactValue(draft.meta.fields, run) as Record<string, unknown>,
    },
    sections: draft.sections.map((s) => ({ ...move(s), path: s.path.map((h) => redactor.redact(h).text) })),
    chunks: draft.chunks.map((c) => {
      const moved = move(c);
      const text = body.text.slice(moved.start, moved.end);
      return { ...moved, text, tokenCount: text === c.text ? c.tokenCount : countTokens(text) };
    }),
  };
}

function counting(redactor: DocumentRedactor, counts: Record<string, number>) {
  return (s: string): RedactionResult => {
    const r = redactor.redact(s);
    for (const f of r.findings) counts[f.kind] = (counts[f.kind] ?? 0) + 1;
    return r;
  };
}

/**
 * Where an offset of the original text lands in the redacted text. An offset inside a redacted value
 * snaps outward (a block start to the placeholder's start, an end to its end), so a block never cuts a
 * placeholder in half.
 */
export function mapOffset(
  findings: readonly RedactionFinding[],
  offset: number,
  side: 'start' | 'end',
): number {
  // Findings are sorted and disjoint: find the last one starting before `offset`.
  let lo = 0;
  let hi = findings.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (findings[mid]!.start < offset) lo = mid + 1;
    else hi = mid;
  }
  const prev = findings[lo - 1];
  if (prev === undefined) return offset;
  if (offset >= prev.end) return prev.outEnd + (offset - prev.end);
  return side === 'start' ? prev.outStart : prev.outEnd;
}

function redactValue(value: unknown, run: (s: string) => RedactionResult): unknown {
  if (typeof value === 'string') return run(value).text;
  if (Array.isArray(value)) return value.map((v) => redactValue(v, run));
  if (value !== null && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[k] = redactValue(v, run);
    return out;
  }
  return value;
}

/**
 * In-memory ingest (the library's `addDocuments`): documents handed over as strings take the same parse →
 * chunk → index/write → embed path as files (src/ingest/runner.ts), and are incremental by content hash the
 * same way. This module is that path's source for memory: it checks every input's shape (a QuarryError
 * naming the document and the field), says what its hash covers, and parses it as a file of its format
 * would be, lifting `metadata` and `access`. Every input is checked and parsed before anything is written,
 * so a bad one changes nothing that is stored.
 */
import { ERRORS, QuarryError } from '../errors.js';
import type { ParsedDocumentFile } from './parse.js';
import { parseContent } from './parse.js';
import { type IsolationLimits, isolationOf } from './parse-workers.js';
import { liftMeta } from './parsers/records.js';
import { ingestMemory, type MemorySource } from './runner.js';
import type { IngestContext, IngestOptions, IngestReport } from './types.js';

/**
 * One document given as content. Exactly one of `text`, `markdown` or `html` carries it; it is parsed as a
 * file of that format would be (Markdown headings and front matter, HTML structure and `<title>`).
 *
 * @example
 * await quarry.addDocuments([
 *   { id: 'faq-12', markdown: '# Refunds\n\nRefunds take 5 days.', metadata: { team: 'billing' } },
 *   { id: 'note-1', text: 'Keys rotate every 90 days.', access: ['ops'] },
 * ]);
 */
export interface DocumentInput {
  /** The document id: adding the same id again replaces the document (or leaves it if nothing changed). */
  id: string;
  /** Plain text (paragraphs are runs of non-blank lines). */
  text?: string;
  /** Markdown: headings become sections; front matter is read like a file's. */
  markdown?: string;
  /** HTML: structure and `<title>` as for an .html file. */
  html?: string;
  /** Title; default the one the content carries (first `#` heading, `<title>`), else none. */
  title?: string;
  /**
   * User fields, filterable by name. `tags`, `doc_type`, `created_at`, `updated_at` and `access_groups` are
   * Quarry's own keys, read as in front matter or a JSON record.
   */
  metadata?: Record<string, unknown>;
  /**
   * Who may read the document: a list of groups (added to `metadata.access_groups`), or
   * `{ groups, users, level }` (added to `access_groups` / `access_users`; `level` sets `security_level`,
   * an integer ≥ 0). Nothing given = everyone.
   */
  access?: string[] | DocumentAccessInput;
  /** Where it came from (a URL, a path…), shown with citations. Default `memory:<id>`. */
  source?: string;
}

/** The object form of `DocumentInput.access`. */
export interface DocumentAccessInput {
  groups?: string[];
  users?: string[];
  /** Readers need at least this clearance (integer ≥ 0). */
  level?: number;
}

/** The options of file ingest that make sense for documents given in memory. */
export type AddDocumentsOptions = Pick<IngestOptions, 'tags' | 'accessGroups' | 'fields'>;

const CONTENT_FIELDS = ['text', 'markdown', 'html'] as const;
type ContentField = (typeof CONTENT_FIELDS)[number];
const KNOWN_FIELDS = new Set(['id', ...CONTENT_FIELDS, 'title', 'metadata', 'access', 'source']);

interface CheckedInput {
  input: DocumentInput;
  field: ContentField;
  content: string;
}

/** Parse, chunk and write `inputs`; returns the same report as file ingest (`files` = documents given). */
export async function addDocuments(
  ctx: IngestContext,
  inputs: readonly DocumentInput[],
  opts: AddDocumentsOptions = {},
): Promise<IngestReport> {
  const started = performance.now();
  if (!Array.isArray(inputs))
    throw new QuarryError(
      'INVALID_ARGUMENT',
      `addDocuments expects an array of documents, got ${kind(inputs)}`,
    );
  const maxBytes = ctx.config.ingest.maxFileBytes;
  const { isolation } = isolationOf(ctx.config.ingest);
  const sources = checkInputs(inputs).map(
    (c, index): MemorySource => ({
      id: c.input.id,
      source: c.input.source ?? `memory:${c.input.id}`,
      hashParts: hashParts(c),
      parse: () => parse(c, index, maxBytes, isolation),
    }),
  );
  return ingestMemory(ctx, sources, opts, started);
}

/** What a document's content hash covers: everything given for it (key order of `metadata` ignored). */
function hashParts({ input, field, content }: CheckedInput): unknown[] {
  return [
    field,
    content,
    input.title ?? null,
    sorted(input.metadata ?? {}),
    input.access ?? [],
    input.source ?? null,
  ];
}

async function parse(
  c: CheckedInput,
  index: number,
  maxBytes: number,
  isolation: IsolationLimits | undefined,
): Promise<ParsedDocumentFile> {
  const { input, field, content } = c;
  const bytes = Buffer.from(content, 'utf8');
  if (bytes.length > maxBytes)
    throw new QuarryError(
      'FILE_TOO_LARGE',
      `${where(index, input.id)}: "${field}" is ${bytes.length} bytes, over the ${maxBytes}-byte limit (ingest.maxFileBytes)`,
      { index, id: input.id, field, bytes: bytes.length, maxBytes },
    );
  let parsed: ParsedDocumentFile;
  try {
    parsed = await parseContent(field, field, bytes, isolation);
  } catch (e) {
    if (!(e instanceof QuarryError)) throw e;
    throw new QuarryError(
      e.code,
      `${where(index, input.id)}: ${e.message.slice(ERRORS[e.code].message.length + 2)}`,
      { index, id: input.id, field },
      e,
    );
  }
  const lifted = liftUserMetadata(input, index, parsed.meta);
  const doc =
    input.title === undefined
      ? parsed.doc
      : { ...parsed.doc, title: input.title.replace(/\s+/g, ' ').trim() };
  return { ...parsed, doc, meta: lifted };
}

/** Merge `metadata` and `access` into what the content itself carried (front matter, HTML meta). */
function liftUserMetadata(
  input: DocumentInput,
  index: number,
  fromContent: ParsedDocumentFile['meta'],
): ParsedDocumentFile['meta'] {
  const lifted = liftMeta(input.metadata ?? {});
  if (typeof lifted === 'string')
    throw new QuarryError('INVALID_ARGUMENT', `${where(index, input.id)}: metadata ${lifted}`, {
      index,
      id: input.id,
      field: 'metadata',
    });
  const access = accessOf(input.access);
  const groups = [
    ...(fromContent.access_groups ?? []),
    ...(lifted.access_groups ?? []),
    ...(access.groups ?? []),
  ];
  const users = [
    ...(fromContent.access_users ?? []),
    ...(lifted.access_users ?? []),
    ...(access.users ?? []),
  ];
  // Several levels given (front matter, metadata, access): the strictest holds.
  const levels = [fromContent.security_level, lifted.security_level, access.level].filter(
    (l): l is number => l !== undefined,
  );
  const tags = [...(fromContent.tags ?? []), ...(lifted.tags ?? [])];
  return {
    ...fromContent,
    ...lifted,
    fields: { ...fromContent.fields, ...lifted.fields },
    ...(tags.length > 0 ? { tags: [...new Set(tags)] } : {}),
    ...(groups.length > 0 ? { access_groups: [...new Set(groups)] } : {}),
    ...(users.length > 0 ? { access_users: [...new Set(users)] } : {}),
    ...(levels.length > 0 ? { security_level: Math.max(...levels) } : {}),
  };
}

/** The array form is the groups; the object form as given. */
function accessOf(access: DocumentInput['access']): DocumentAccessInput {
  if (access === undefined) return {};
  return Array.isArray(access) ? { groups: access } : access;
}

function checkAccess(access: unknown, fail: (field: string, what: string) => never): void {
  const names = (v: unknown): boolean =>
    Array.isArray(v) && v.every((g) => typeof g === 'string' && g.trim() !== '');
  if (Array.isArray(access)) {
    if (!names(access))
      fail('access', `"access" must be a list of non-empty group names, got ${kind(access)}`);
    return;
  }
  if (access === null || typeof access !== 'object')
    fail('access', `"access" must be a list of group names or { groups, users, level }, got ${kind(access)}`);
  const a = access as Record<string, unknown>;
  for (const key of Object.keys(a))
    if (key !== 'groups' && key !== 'users' && key !== 'level')
      fail(`access.${key}`, `unknown field "access.${key}" (access has groups, users, level)`);
  for (const key of ['groups', 'users'] as const)
    if (a[key] !== undefined && !names(a[key]))
      fail(`access.${key}`, `"access.${key}" must be a list of non-empty names, got ${kind(a[key])}`);
  if (a.level !== undefined && (typeof a.level !== 'number' || !Number.isSafeInteger(a.level) || a.level < 0))
    fail('access.level', `"access.level" must be an integer ≥ 0, got ${kind(a.level)}`);
}

/** Shape checks for every input before anything is parsed: each error names the document and the field. */
function checkInputs(inputs: readonly DocumentInput[]): CheckedInput[] {
  const firstIndexOf = new Map<string, number>();
  return inputs.map((input, index) => {
    const fail = (field: string, what: string): never => {
      throw new QuarryError('INVALID_ARGUMENT', `${where(index, idOf(input))}: ${what}`, {
        index,
        ...(idOf(input) === undefined ? {} : { id: idOf(input) }),
        field,
      });
    };
    if (input === null || typeof input !== 'object' || Array.isArray(input))
      fail('(document)', `expected an object { id, text | markdown | html, … }, got ${kind(input)}`);
    for (const key of Object.keys(input))
      if (!KNOWN_FIELDS.has(key))
        fail(key, `unknown field "${key}" (a document has ${[...KNOWN_FIELDS].join(', ')})`);
    if (typeof input.id !== 'string' || input.id.trim() === '')
      fail('id', `"id" must be a non-empty string, got ${kind(input.id)}`);
    const earlier = firstIndexOf.get(input.id);
    if (earlier !== undefined) fail('id', `duplicate id "${input.id}" (also document ${earlier})`);
    firstIndexOf.set(input.id, index);
    const given = CONTENT_FIELDS.filter((f) => input[f] !== undefined);
    if (given.length === 0) fail('text', 'no content: give exactly one of "text", "markdown" or "html"');
    if (given.length > 1)
      fail(
        given[1]!,
        `give exactly one of "text", "markdown" or "html", not ${given.map((f) => `"${f}"`).join(' and ')}`,
      );
    const field = given[0]!;
    const content = input[field];
    if (typeof content !== 'string') return fail(field, `"${field}" must be a string, got ${kind(content)}`);
    for (const f of ['title', 'source'] as const)
      if (input[f] !== undefined && typeof input[f] !== 'string')
        fail(f, `"${f}" must be a string, got ${kind(input[f])}`);
    if (
      input.metadata !== undefined &&
      (input.metadata === null || typeof input.metadata !== 'object' || Array.isArray(input.metadata))
    )
      fail('metadata', `"metadata" must be an object, got ${kind(input.metadata)}`);
    if (input.access !== undefined) checkAccess(input.access, fail);
    return { input, field, content };
  });
}

function where(index: number, id: string | undefined): string {
  return `addDocuments: document ${index}${id === undefined ? '' : ` (id "${id}")`}`;
}

function idOf(input: unknown): string | undefined {
  if (input === null || typeof input !== 'object') return undefined;
  const id = (input as { id?: unknown }).id;
  return typeof id === 'string' && id.trim() !== '' ? id : undefined;
}

function kind(v: unknown): string {
  if (v === null) return 'null';
  if (v === undefined) return 'nothing';
  if (Array.isArray(v)) return 'an array';
  if (typeof v === 'object') return 'an object';
  const s = JSON.stringify(v) ?? String(v);
  return `${typeof v} ${s.length > 40 ? `${s.slice(0, 40)}…` : s}`;
}

/** A JSON value with object keys sorted, so `{a, b}` and `{b, a}` hash alike. */
function sorted(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(sorted);
  if (v === null || typeof v !== 'object') return v;
  return Object.fromEntries(
    Object.keys(v)
      .sort()
      .map((k) => [k, sorted((v as Record<string, unknown>)[k])]),
  );
}

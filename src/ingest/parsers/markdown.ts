/**
 * Markdown → ParsedDocument. The text stays the file itself so chunk offsets point into the original file;
 * mdast node positions give exact block offsets, and ATX/setext headings become the section tree.
 */
import { fromMarkdown } from 'mdast-util-from-markdown';
import type { Block, BlockKind, ParsedDocument } from '../../types.js';

type Root = ReturnType<typeof fromMarkdown>;
type TopNode = Root['children'][number];
interface InlineNode {
  type: string;
  value?: string;
  alt?: string | null;
  children?: InlineNode[];
}

/** `text` must already be decoded and newline-normalised (see decodeText). */
export function parseMarkdown(text: string): ParsedDocument {
  const fm = splitFrontMatter(text);
  // Blank the front matter instead of cutting it off: node offsets then index `text` directly, and the
  // `---` fences cannot turn into a thematic break plus a setext heading.
  const source = fm ? text.slice(0, fm.end).replace(/[^\n]/g, ' ') + text.slice(fm.end) : text;
  const tree = fromMarkdown(source);

  const blocks: Block[] = [];
  let firstH1: string | undefined;
  for (const node of tree.children) {
    const start = node.position?.start.offset;
    const end = node.position?.end.offset;
    if (start === undefined || end === undefined || end <= start) continue;
    if (node.type === 'heading') {
      const heading = inlineText(node as InlineNode);
      // An empty `#` is an authoring slip, not a label: it must not open a section with a blank path.
      if (!heading) continue;
      if (node.depth === 1 && firstH1 === undefined && heading) firstH1 = heading;
      blocks.push({ kind: 'heading', level: node.depth, heading, start, end });
      continue;
    }
    const kind = blockKind(node, text.slice(start, end));
    if (kind) blocks.push({ kind, start, end });
  }

  const doc: ParsedDocument = { text, blocks };
  const fields = { ...(fm?.fields ?? {}) };
  const fmTitle = fields.title;
  delete fields.title;
  const title = typeof fmTitle === 'string' && fmTitle.trim() ? fmTitle.trim() : firstH1;
  if (title) doc.title = title;
  if (Object.keys(fields).length > 0) doc.fields = fields;
  return doc;
}

function blockKind(node: TopNode, source: string): BlockKind | undefined {
  switch (node.type) {
    case 'list':
      return 'list';
    case 'code':
      return 'code';
    case 'blockquote':
      return 'quote';
    case 'thematicBreak':
      return undefined;
    case 'paragraph':
      // Without the GFM extension tables parse as paragraphs; recognise them by their delimiter row.
      return isPipeTable(source) ? 'table' : 'paragraph';
    default:
      // html, definitions, anything an extension adds: still text a reader may search for.
      return 'paragraph';
  }
}

const DELIMITER_ROW = /^\s*\|?\s*:?-+:?\s*(\|\s*:?-+:?\s*)*\|?\s*$/;

function isPipeTable(source: string): boolean {
  const nl = source.indexOf('\n');
  if (nl === -1 || !source.slice(0, nl).includes('|')) return false;
  const next = source.indexOf('\n', nl + 1);
  const row = source.slice(nl + 1, next === -1 ? undefined : next);
  return row.includes('-') && DELIMITER_ROW.test(row);
}

/** Heading text as a reader sees it: inline markup dropped, code and image alt text kept, whitespace collapsed. */
function inlineText(node: InlineNode): string {
  const parts: string[] = [];
  const walk = (n: InlineNode): void => {
    if (n.type === 'text' || n.type === 'inlineCode') parts.push(n.value ?? '');
    else if (n.type === 'image' || n.type === 'imageReference') parts.push(n.alt ?? '');
    else if (n.type === 'break') parts.push(' ');
    n.children?.forEach(walk);
  };
  walk(node);
  return parts.join('').replace(/\s+/g, ' ').trim();
}

export interface FrontMatter {
  /** Offset just past the closing fence line. */
  end: number;
  fields: Record<string, unknown>;
}

/**
 * YAML front matter, read the simple way (no YAML dependency): `key: value` lines, `[a, b]` flow lists and
 * `- item` block lists. Nested maps are skipped; anything fancier belongs in a real metadata file.
 */
export function splitFrontMatter(text: string): FrontMatter | undefined {
  const open = /^---[ \t]*\n/.exec(text);
  if (!open) return undefined;
  const close = /^(?:---|\.\.\.)[ \t]*$/m;
  const body = text.slice(open[0].length);
  const m = close.exec(body);
  if (!m) return undefined;
  const closeEnd = open[0].length + m.index + m[0].length;
  const end = text[closeEnd] === '\n' ? closeEnd + 1 : closeEnd;
  return { end, fields: parseFrontMatterLines(body.slice(0, m.index).split('\n')) };
}

function parseFrontMatterLines(lines: string[]): Record<string, unknown> {
  const fields: Record<string, unknown> = {};
  // `key:` with nothing after it is a null unless `- item` lines follow.
  const bare = new Set<string>();
  let listKey: string | undefined;
  for (const line of lines) {
    if (!line.trim() || line.trimStart().startsWith('#')) continue;
    const item = /^\s*-\s+(.*)$/.exec(line);
    if (item && listKey !== undefined) {
      const list = fields[listKey];
      if (Array.isArray(list)) list.push(scalar(item[1]!));
      bare.delete(listKey);
      continue;
    }
    listKey = undefined;
    if (/^\s/.test(line)) continue; // nested mapping: not supported, skip rather than misread it
    const kv = /^([A-Za-z_][\w.-]*)\s*:(?:\s+(.*))?$/.exec(line);
    if (!kv) continue;
    const key = kv[1]!;
    bare.delete(key);
    let raw = (kv[2] ?? '').trim();
    if (!/^["']/.test(raw)) raw = raw.replace(/(^|\s)#.*$/, '').trim();
    if (raw === '') {
      fields[key] = [];
      listKey = key;
      bare.add(key);
    } else if (raw.startsWith('[') && raw.endsWith(']')) {
      const inner = raw.slice(1, -1).trim();
      fields[key] = inner ? inner.split(',').map((s) => scalar(s.trim())) : [];
    } else {
      fields[key] = scalar(raw);
    }
  }
  for (const k of bare) fields[k] = null;
  return fields;
}

function scalar(raw: string): unknown {
  const s = raw.trim();
  if (s.length >= 2 && ((s.startsWith('"') && s.endsWith('"')) || (s.startsWith("'") && s.endsWith("'")))) {
    return s.slice(1, -1);
  }
  if (s === 'true') return true;
  if (s === 'false') return false;
  if (s === 'null' || s === '~') return null;
  if (/^-?(?:0|[1-9]\d*)(?:\.\d+)?$/.test(s)) return Number(s);
  return s;
}

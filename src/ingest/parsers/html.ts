/**
 * HTML → ParsedDocument (also the back half of DOCX, via mammoth's HTML). Extracts readable text block by
 * block, drops chrome (scripts, styles, navigation) and text hidden from readers (the `hidden` attribute,
 * `aria-hidden`, inline `display:none`, `visibility:hidden`, `font-size:0`, `opacity:0`, white on white) —
 * the classic carrier of prompt injections a person reviewing the page never sees — turns h1–h6 into the
 * section tree and <meta> into fields.
 */
import * as cheerio from 'cheerio';
import type { ParsedDocument } from '../../types.js';
import { BlockTextBuilder } from './text.js';

/** The slice of domhandler's node shape we rely on (kept structural so we don't import a transitive package). */
interface DomNode {
  type: string;
  name?: string;
  data?: string;
  attribs?: Record<string, string>;
  children?: DomNode[];
}

/** Inline styles that make an element's text invisible (stylesheets are not evaluated). */
const HIDING_STYLE =
  /(?:^|;)\s*(?:display\s*:\s*none|visibility\s*:\s*(?:hidden|collapse)|font-size\s*:\s*0(?:\.0+)?(?:px|pt|em|rem|%)?\s*(?:!important)?\s*(?:;|$)|opacity\s*:\s*0(?:\.0+)?\s*(?:!important)?\s*(?:;|$))/i;
const WHITE = /^(?:#fff(?:fff)?|white|rgba?\(\s*255\s*,\s*255\s*,\s*255\s*(?:,\s*1(?:\.0+)?\s*)?\))$/i;

/** An element whose content a reader does not see (the element and everything under it is dropped). */
function hiddenFromReaders(node: DomNode): boolean {
  const a = node.attribs;
  if (a === undefined) return false;
  if ('hidden' in a) return true;
  if ((a['aria-hidden'] ?? '').trim().toLowerCase() === 'true') return true;
  const style = a.style;
  if (style === undefined) return false;
  if (HIDING_STYLE.test(style)) return true;
  // White text on a white background, both set on the element itself.
  const decl = (prop: string): string | undefined =>
    new RegExp(`(?:^|;)\\s*${prop}\\s*:\\s*([^;!]+)`, 'i').exec(style)?.[1]?.trim();
  const color = decl('color');
  const background = decl('background-color') ?? decl('background');
  return color !== undefined && background !== undefined && WHITE.test(color) && WHITE.test(background);
}

/** Never rendered as reading text. `svg`/`canvas` hold icon labels and drawing code, not prose. */
const DROP = new Set(['script', 'style', 'nav', 'noscript', 'template', 'head', 'svg', 'canvas', 'iframe']);

const BLOCK = new Set([
  'address',
  'article',
  'aside',
  'blockquote',
  'body',
  'caption',
  'center',
  'dd',
  'details',
  'dialog',
  'dir',
  'div',
  'dl',
  'dt',
  'fieldset',
  'figcaption',
  'figure',
  'footer',
  'form',
  'h1',
  'h2',
  'h3',
  'h4',
  'h5',
  'h6',
  'header',
  'hgroup',
  'hr',
  'html',
  'legend',
  'li',
  'main',
  'menu',
  'ol',
  'option',
  'p',
  'pre',
  'section',
  'summary',
  'table',
  'tbody',
  'td',
  'tfoot',
  'th',
  'thead',
  'tr',
  'ul',
]);

const HEADING = /^h([1-6])$/;
const META_FIELDS = new Set(['description', 'keywords', 'author']);

/** Parses an HTML document or fragment (mammoth emits fragments). */
export function parseHtml(html: string): ParsedDocument {
  return extract(cheerio.load(html));
}

/** For HTML bytes that declare a legacy charset: cheerio sniffs BOM / <meta charset> and decodes. */
export function parseHtmlBuffer(bytes: Buffer): ParsedDocument {
  return extract(cheerio.loadBuffer(bytes));
}

function extract($: cheerio.CheerioAPI): ParsedDocument {
  const out = new BlockTextBuilder();
  let inline: string[] = [];
  let firstH1: string | undefined;

  const flush = (): void => {
    if (inline.length > 0) out.add('paragraph', cleanLines(inline.join('')));
    inline = [];
  };

  const walk = (node: DomNode): void => {
    if (node.type === 'text') {
      inline.push(collapse(node.data));
      return;
    }
    if (node.type !== 'tag' && node.type !== 'root') return; // comments, scripts, styles, directives
    const name = node.name?.toLowerCase() ?? '';
    if (DROP.has(name) || hiddenFromReaders(node)) return;
    if (name === 'br') {
      inline.push('\n');
      return;
    }
    const h = HEADING.exec(name);
    if (h) {
      flush();
      const heading = oneLine(lines(node));
      const level = Number(h[1]);
      if (level === 1 && firstH1 === undefined && heading) firstH1 = heading;
      out.add('heading', heading, { level, heading });
    } else if (name === 'pre') {
      flush();
      out.add('code', preText(node));
    } else if (name === 'ul' || name === 'ol' || name === 'dl' || name === 'menu') {
      flush();
      out.add('list', lines(node));
    } else if (name === 'table') {
      flush();
      out.add('table', tableText(node));
    } else if (name === 'blockquote') {
      flush();
      out.add('quote', lines(node));
    } else if (BLOCK.has(name) || node.type === 'root') {
      flush();
      node.children?.forEach(walk);
      flush();
    } else {
      node.children?.forEach(walk);
    }
  };

  const body = ($('body').get(0) ?? $.root().get(0)) as unknown as DomNode | undefined;
  if (body) walk(body);
  flush();

  const doc = out.build();
  const title = oneLine($('head > title').first().text()) || firstH1;
  if (title) doc.title = title;
  const fields: Record<string, unknown> = {};
  $('meta[name]').each((_, el) => {
    const name = ($(el).attr('name') ?? '').toLowerCase();
    const content = oneLine($(el).attr('content') ?? '');
    if (!META_FIELDS.has(name) || !content || name in fields) return;
    fields[name] =
      name === 'keywords'
        ? content
            .split(',')
            .map((k) => k.trim())
            .filter(Boolean)
        : content;
  });
  if (Object.keys(fields).length > 0) doc.fields = fields;
  return doc;
}

/** Visible text of a subtree, one line per block-level descendant or <br>, whitespace collapsed per line. */
function lines(node: DomNode): string {
  const parts: string[] = [];
  const walk = (n: DomNode): void => {
    if (n.type === 'text') parts.push(collapse(n.data));
    if (n.type !== 'tag') return;
    const name = n.name?.toLowerCase() ?? '';
    if (DROP.has(name) || hiddenFromReaders(n)) return;
    if (name === 'br') {
      parts.push('\n');
      return;
    }
    const block = BLOCK.has(name);
    if (block) parts.push('\n');
    n.children?.forEach(walk);
    if (block) parts.push('\n');
  };
  node.children?.forEach(walk);
  return cleanLines(parts.join(''));
}

/** <pre> keeps its layout: only the outer blank lines go (the builder trims the rest). */
function preText(node: DomNode): string {
  const parts: string[] = [];
  const walk = (n: DomNode): void => {
    if (n.type === 'text') parts.push(n.data ?? '');
    else if (n.type === 'tag' && n.name === 'br') parts.push('\n');
    else if (n.type === 'tag' && !DROP.has(n.name ?? '') && !hiddenFromReaders(n)) n.children?.forEach(walk);
  };
  node.children?.forEach(walk);
  return parts
    .join('')
    .replace(/\r\n?/g, '\n')
    .replace(/[ \t]+$/gm, '');
}

/** One line per row, cells joined by " | ": keeps a row's values together for retrieval and quoting. */
function tableText(node: DomNode): string {
  const rows: string[] = [];
  const visit = (n: DomNode): void => {
    if (n.type !== 'tag' || hiddenFromReaders(n)) return;
    const name = n.name?.toLowerCase() ?? '';
    if (name === 'caption') {
      rows.push(oneLine(lines(n)));
    } else if (name === 'tr') {
      const cells = (n.children ?? [])
        .filter((c) => c.type === 'tag' && (c.name === 'td' || c.name === 'th') && !hiddenFromReaders(c))
        .map((c) => oneLine(lines(c)));
      if (cells.some(Boolean)) rows.push(cells.join(' | '));
    } else if (name === 'thead' || name === 'tbody' || name === 'tfoot') {
      n.children?.forEach(visit);
    }
  };
  node.children?.forEach(visit);
  return rows.filter(Boolean).join('\n');
}

/** Source line breaks are just whitespace in HTML; only <br> and block edges (inserted as \n) break lines. */
function collapse(data: string | undefined): string {
  return (data ?? '').replace(/\s+/g, ' ');
}

function cleanLines(s: string): string {
  return s.split('\n').map(oneLine).filter(Boolean).join('\n');
}

function oneLine(s: string): string {
  return s.replace(/\s+/g, ' ').trim();
}

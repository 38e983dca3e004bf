/**
 * Plain-text parsing and the byte-level checks every text format shares (NUL bytes, strict UTF-8, BOM and
 * line-ending normalisation). Markdown and JSON records decode through here so they fail the same way.
 */
import { QuarryError } from '../../errors.js';
import type { Block, ParsedDocument } from '../../types.js';

const utf8 = new TextDecoder('utf-8', { fatal: true });

/**
 * Decodes a text file strictly. Offsets in the result must line up with the file, so the only changes are a
 * dropped leading BOM and CRLF/CR → LF (one character per line break either way keeps line numbers intact).
 */
export function decodeText(path: string, bytes: Uint8Array): string {
  if (
    bytes.length >= 2 &&
    ((bytes[0] === 0xff && bytes[1] === 0xfe) || (bytes[0] === 0xfe && bytes[1] === 0xff))
  ) {
    throw new QuarryError(
      'INVALID_UTF8',
      `${path} starts with a UTF-16 byte-order mark; re-save it as UTF-8`,
      { file: path, offset: 0 },
    );
  }
  const nul = bytes.indexOf(0);
  if (nul !== -1) {
    throw new QuarryError(
      'BINARY_FILE',
      `${path} contains a NUL byte at offset ${nul}; it looks like a binary file, not text`,
      { file: path, offset: nul },
    );
  }
  let text: string;
  try {
    text = utf8.decode(bytes);
  } catch (e) {
    const offset = firstInvalidUtf8(bytes);
    const where = offset === -1 ? '' : ` at byte ${offset} (line ${lineOfByte(bytes, offset)})`;
    throw new QuarryError(
      'INVALID_UTF8',
      `${path} has an invalid UTF-8 sequence${where}; convert it to UTF-8`,
      { file: path, ...(offset === -1 ? {} : { offset }) },
      e,
    );
  }
  return normalizeNewlines(text);
}

export function normalizeNewlines(text: string): string {
  const noBom = text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;
  return noBom.includes('\r') ? noBom.replace(/\r\n?/g, '\n') : noBom;
}

/** Whether `bytes` would pass {@link decodeText}: used to sniff files that have no known extension. */
export function looksLikeText(bytes: Uint8Array): boolean {
  if (bytes.indexOf(0) !== -1) return false;
  try {
    utf8.decode(bytes);
    return true;
  } catch {
    return false;
  }
}

/** Plain text: paragraphs are runs of non-blank lines; no headings, no title (the file name is the caller's). */
export function parseText(text: string): ParsedDocument {
  return { text, blocks: paragraphBlocks(text, 0, text.length) };
}

/**
 * Paragraph blocks for `text[from, to)`: runs of lines that contain non-whitespace, trimmed. A hand-rolled
 * line scan rather than one regex, because regexes with `\S` between greedy runs go quadratic on long blank lines.
 */
export function paragraphBlocks(text: string, from: number, to: number): Block[] {
  const blocks: Block[] = [];
  let paraStart = -1;
  let paraEnd = -1;
  let lineStart = from;
  while (lineStart <= to) {
    let lineEnd = text.indexOf('\n', lineStart);
    if (lineEnd === -1 || lineEnd > to) lineEnd = to;
    const first = firstNonSpace(text, lineStart, lineEnd);
    if (first === -1) {
      if (paraStart !== -1) blocks.push({ kind: 'paragraph', start: paraStart, end: paraEnd });
      paraStart = -1;
    } else {
      if (paraStart === -1) paraStart = first;
      paraEnd = lastNonSpace(text, lineStart, lineEnd) + 1;
    }
    lineStart = lineEnd + 1;
  }
  if (paraStart !== -1) blocks.push({ kind: 'paragraph', start: paraStart, end: paraEnd });
  return blocks;
}

const SPACE = /\s/;

function firstNonSpace(text: string, from: number, to: number): number {
  for (let i = from; i < to; i++) if (!SPACE.test(text[i]!)) return i;
  return -1;
}

function lastNonSpace(text: string, from: number, to: number): number {
  for (let i = to - 1; i >= from; i--) if (!SPACE.test(text[i]!)) return i;
  return -1;
}

function lineOfByte(bytes: Uint8Array, offset: number): number {
  let line = 1;
  for (let i = 0; i < offset; i++) if (bytes[i] === 0x0a) line++;
  return line;
}

/** Offset of the first byte that breaks UTF-8 (RFC 3629: no overlongs, no surrogates, ≤ U+10FFFF), or -1. */
export function firstInvalidUtf8(bytes: Uint8Array): number {
  const n = bytes.length;
  let i = 0;
  while (i < n) {
    const b = bytes[i]!;
    if (b < 0x80) {
      i++;
      continue;
    }
    let need: number;
    let lo = 0x80;
    let hi = 0xbf;
    if (b >= 0xc2 && b <= 0xdf) need = 1;
    else if (b >= 0xe0 && b <= 0xef) {
      need = 2;
      if (b === 0xe0) lo = 0xa0;
      if (b === 0xed) hi = 0x9f;
    } else if (b >= 0xf0 && b <= 0xf4) {
      need = 3;
      if (b === 0xf0) lo = 0x90;
      if (b === 0xf4) hi = 0x8f;
    } else return i;
    for (let k = 1; k <= need; k++) {
      const c = bytes[i + k];
      if (c === undefined) return i;
      const min = k === 1 ? lo : 0x80;
      const max = k === 1 ? hi : 0xbf;
      if (c < min || c > max) return i;
    }
    i += need + 1;
  }
  return -1;
}

/**
 * Assembles extracted text (HTML, DOCX, PDF) block by block. Blocks are separated by a blank line so the
 * canonical text reads naturally and paragraph splitting downstream sees the same boundaries as the blocks.
 */
export class BlockTextBuilder {
  private readonly parts: string[] = [];
  private length = 0;
  readonly blocks: Block[] = [];

  /** Appends a block; whitespace-only text is dropped so no block is ever empty. */
  add(kind: Block['kind'], text: string, heading?: { level: number; heading: string }): void {
    const t = text.trim();
    if (!t) return;
    if (this.length > 0) {
      this.parts.push('\n\n');
      this.length += 2;
    }
    const start = this.length;
    this.parts.push(t);
    this.length += t.length;
    this.blocks.push(
      heading
        ? { kind, level: heading.level, heading: heading.heading, start, end: this.length }
        : { kind, start, end: this.length },
    );
  }

  build(): ParsedDocument {
    return { text: this.parts.join(''), blocks: this.blocks };
  }
}

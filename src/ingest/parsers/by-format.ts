/**
 * One document's bytes → its `ParsedDocument`, by format. The same function runs in the parse workers
 * (`parse-worker.ts`, isolated with memory and time limits) and, with isolation off, in-process.
 */
import { isQuarryError } from '../../errors.js';
import type { ParsedDocument } from '../../types.js';
import { decodeText, parseText } from './text.js';
import { checkZipArchive, type ZipLimits } from './zip-guard.js';

/** Formats with a single-document parser (records — JSON, JSONL — are parsed by `records.ts`). */
export type DocumentFormat = 'markdown' | 'text' | 'html' | 'pdf' | 'docx';

export async function parseDocument(
  path: string,
  format: DocumentFormat,
  bytes: Buffer,
  zip: ZipLimits,
): Promise<ParsedDocument> {
  switch (format) {
    // Each format's parser library (micromark, cheerio, unpdf, mammoth) loads with the first file of that
    // format, so a process that never parses, or parses only text, does not pay for the others.
    case 'markdown': {
      const { parseMarkdown } = await import('./markdown.js');
      return parseMarkdown(decodeText(path, bytes));
    }
    case 'html':
      return parseHtmlBytes(path, bytes, await import('./html.js'));
    case 'pdf': {
      const { parsePdf } = await import('./pdf.js');
      return parsePdf(path, bytes);
    }
    case 'docx': {
      const { parseDocx } = await import('./docx.js');
      // The guard refuses a decompression bomb before mammoth inflates a byte of it.
      checkZipArchive(path, 'docx', bytes, zip);
      return parseDocx(path, bytes);
    }
    default:
      return parseText(decodeText(path, bytes));
  }
}

/** HTML may legitimately declare a legacy charset or be UTF-16; only undeclared non-UTF-8 is an error. */
function parseHtmlBytes(
  path: string,
  bytes: Buffer,
  { parseHtml, parseHtmlBuffer }: typeof import('./html.js'),
): ParsedDocument {
  const utf16 = (bytes[0] === 0xff && bytes[1] === 0xfe) || (bytes[0] === 0xfe && bytes[1] === 0xff);
  if (utf16) return parseHtmlBuffer(bytes);
  try {
    return parseHtml(decodeText(path, bytes));
  } catch (e) {
    if (isQuarryError(e) && e.code === 'INVALID_UTF8' && declaresLegacyCharset(bytes))
      return parseHtmlBuffer(bytes);
    throw e;
  }
}

function declaresLegacyCharset(bytes: Buffer): boolean {
  const head = bytes.subarray(0, 4096).toString('latin1');
  const m = /<meta[^>]+charset\s*=\s*["']?\s*([\w.:-]+)/i.exec(head);
  return m !== null && !/^utf-?8$/i.test(m[1]!);
}

/**
 * DOCX → ParsedDocument: mammoth maps Word styles to HTML (Heading 1 → <h1>, lists, tables), then the HTML
 * parser builds blocks, so Word headings drive sections exactly like HTML headings do.
 */
import mammoth from 'mammoth';
import { QuarryError } from '../../errors.js';
import type { ParsedDocument } from '../../types.js';
import { parseHtml } from './html.js';

// Images carry no text; dropping them keeps mammoth from base64-inlining every picture into the HTML.
const noImages = mammoth.images.imgElement(async () => ({ src: '' }));

export async function parseDocx(path: string, bytes: Buffer): Promise<ParsedDocument> {
  let html: string;
  try {
    const result = await mammoth.convertToHtml(
      { buffer: bytes },
      { convertImage: noImages, externalFileAccess: false },
    );
    html = result.value;
  } catch (e) {
    throw new QuarryError(
      'PARSE_FAILED',
      `${path}: not a readable DOCX file (${e instanceof Error ? e.message : String(e)})`,
      { file: path, format: 'docx' },
      e,
    );
  }
  return parseHtml(html);
}

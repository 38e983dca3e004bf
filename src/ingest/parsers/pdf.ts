/**
 * PDF → ParsedDocument via unpdf (pdf.js). PDFs carry no reliable heading structure, so each page becomes a
 * `page` block and the chunker splits pages by paragraphs and sentences; the info dictionary supplies fields.
 */
import { extractText, getDocumentProxy } from 'unpdf';
import { QuarryError } from '../../errors.js';
import type { ParsedDocument } from '../../types.js';
import { BlockTextBuilder } from './text.js';

const INFO_FIELDS: Record<string, string> = { Author: 'author', Subject: 'subject', Keywords: 'keywords' };

export async function parsePdf(path: string, bytes: Uint8Array): Promise<ParsedDocument> {
  let pdf: Awaited<ReturnType<typeof getDocumentProxy>>;
  try {
    // pdf.js transfers (detaches) the buffer it is given: hand it a copy so the caller's bytes survive.
    pdf = await getDocumentProxy(new Uint8Array(bytes), { verbosity: 0 });
  } catch (e) {
    const reason =
      e instanceof Error && e.name === 'PasswordException'
        ? 'it is password-protected'
        : `it is not a readable PDF (${e instanceof Error ? e.message : String(e)})`;
    throw new QuarryError('PARSE_FAILED', `${path}: ${reason}`, { file: path, format: 'pdf' }, e);
  }
  try {
    const { text: pages } = await extractText(pdf, { mergePages: false });
    const out = new BlockTextBuilder();
    for (const page of pages) out.add('page', cleanPage(page));
    const doc = out.build();

    const { info } = (await pdf.getMetadata().catch(() => ({ info: {} }))) as {
      info?: Record<string, unknown>;
    };
    const title = typeof info?.Title === 'string' ? info.Title.trim() : '';
    if (title) doc.title = title;
    const fields: Record<string, unknown> = {};
    for (const [key, name] of Object.entries(INFO_FIELDS)) {
      const v = info?.[key];
      if (typeof v === 'string' && v.trim()) fields[name] = v.trim();
    }
    if (Object.keys(fields).length > 0) doc.fields = fields;
    return doc;
  } catch (e) {
    throw new QuarryError(
      'PARSE_FAILED',
      `${path}: text extraction failed (${e instanceof Error ? e.message : String(e)})`,
      { file: path, format: 'pdf' },
      e,
    );
  } finally {
    await pdf.destroy().catch(() => undefined);
  }
}

/** pdf.js emits runs of spaces and ragged line ends; keep the line structure but not the noise. */
function cleanPage(page: string): string {
  return page
    .replace(/\r\n?/g, '\n')
    .replace(/[^\S\n]+/g, ' ')
    .replace(/ ?\n ?/g, '\n')
    .replace(/\n{3,}/g, '\n\n')
    .trim();
}

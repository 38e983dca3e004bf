/**
 * Library example: ingest the bundled docs into a temporary store, search with a filter, ask a question.
 * Run: npx tsx examples/library.ts
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createQuarry } from '../src/index.js';

const store = fs.mkdtempSync(path.join(os.tmpdir(), 'quarry-example-'));
const quarry = await createQuarry({ store });
try {
  const report = await quarry.ingest([path.join(import.meta.dirname, '../samples/docs')]);
  console.log(`ingested: ${report.added} added, ${report.chunks} chunks, ${report.errors.length} errors`);

  const { hits } = await quarry.search('parent sections', { k: 3, filter: { tags: { $in: ['chunking'] } } });
  for (const h of hits) console.log(`${h.rank}. ${h.document.title} › ${h.chunk.sectionPath.join(' › ')}`);

  const answer = await quarry.ask('What is the default chunk size?');
  console.log(answer.text);
  for (const c of answer.citations) console.log(`[${c.marker}] ${c.source} chars ${c.start}-${c.end}`);
} finally {
  quarry.close();
  fs.rmSync(store, { recursive: true, force: true });
}

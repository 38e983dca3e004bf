/**
 * The store the adapter tests share: a real Quarry store in a temporary directory holding the bundled sample
 * docs (enough text for the built-in dense model to learn from, so hybrid search really fuses BM25 and dense)
 * and, when asked, three short documents about Islay: one per topic, one readable by `harbour-staff` only.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll } from 'vitest';
import type { DocumentInput } from '../../src/ingest/add-documents.js';
import { Quarry } from '../../src/pipeline/quarry.js';

export const SAMPLES = path.resolve(import.meta.dirname, '../../samples/docs');

export const FERRY: DocumentInput = {
  id: 'islay-ferry',
  markdown:
    '# Islay ferries\n\n## Kennacraig\n\nThe ferry to Port Ellen leaves Kennacraig at 07:00 every weekday.\n',
  source: 'timetables/islay.md',
  metadata: { topic: 'ferries', year: 2024 },
};

export const TIDES: DocumentInput = {
  id: 'islay-tides',
  text: 'Tide tables: the spring tide at Port Ellen rises 1.2 metres, and the ferry pier dries at low water.',
  title: 'Port Ellen tides',
  metadata: { topic: 'tides', year: 2023 },
};

export const HARBOUR: DocumentInput = {
  id: 'harbour-code',
  text: "The harbour master's emergency code for the Port Ellen pier gate is 4417.",
  title: 'Pier gate',
  metadata: { topic: 'harbour' },
  access: ['harbour-staff'],
};

/** Registers the hooks; read `quarry` and `dir` inside tests (they are set in beforeAll). */
export function useAdapterStore(
  prefix: string,
  opts: { islay?: boolean } = {},
): { readonly quarry: Quarry; readonly dir: string } {
  const state = {} as { quarry: Quarry; dir: string };
  beforeAll(async () => {
    state.dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
    state.quarry = Quarry.open({ store: state.dir });
    const report = await state.quarry.ingest([SAMPLES]);
    if (report.errors.length > 0) throw new Error(`sample ingest failed: ${JSON.stringify(report.errors)}`);
    if (opts.islay) await state.quarry.addDocuments([FERRY, TIDES, HARBOUR]);
  });
  afterAll(() => {
    state.quarry?.close();
    if (state.dir) fs.rmSync(state.dir, { recursive: true, force: true });
  });
  return state;
}

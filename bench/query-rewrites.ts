/**
 * How often query understanding changes what a dataset's queries search for: queries with a typo correction,
 * and queries whose exact-match entities were promoted verbatim (the `retrieve.exact` stage found chunks).
 * Reads both from the trace, so it counts the same way on any version that has those stages. Runs against
 * a store `quarry eval --store <dir>` left behind. Not a test.
 *
 *   npx tsx bench/query-rewrites.ts --store /tmp/store-scifact ../shared/datasets/scifact [--split test]
 */
import { loadBeirDataset } from '../src/eval/beir.js';
import { Quarry } from '../src/pipeline/quarry.js';

const args = process.argv.slice(2);
const opt = (name: string): string | undefined => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : undefined;
};
const store = opt('store');
const datasetDir = args.find((a, i) => !a.startsWith('--') && !args[i - 1]?.startsWith('--'));
if (store === undefined || datasetDir === undefined) {
  console.error('usage: bench/query-rewrites.ts --store <eval store> <dataset dir> [--split test]');
  process.exit(2);
}
const dataset = await loadBeirDataset(datasetDir, opt('split') ?? 'test');
const quarry = Quarry.open({ store, config: { cache: { responses: false, retrievals: false } } });
let corrected = 0;
let promoted = 0;
const examples: string[] = [];
for (const q of dataset.queries) {
  const r = await quarry.search(q.text, { k: 100, collapseDocuments: true, trace: true });
  const stages = r.trace?.stages ?? [];
  const analyze = stages.find((s) => s.stage === 'query.analyze')?.detail;
  const corrections = (analyze?.corrections ?? []) as Array<{ from: string; to: string }>;
  if (corrections.length > 0) {
    corrected++;
    if (examples.length < 8) examples.push(corrections.map((c) => `${c.from}→${c.to}`).join(', '));
  }
  const exact = stages.find((s) => s.stage === 'retrieve.exact')?.detail;
  if (((exact?.candidates ?? []) as unknown[]).length > 0) promoted++;
}
quarry.close();
console.log(
  JSON.stringify({ dataset: dataset.name, queries: dataset.queries.length, corrected, promoted, examples }),
);

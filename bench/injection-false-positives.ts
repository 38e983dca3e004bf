/**
 * False positives of the prompt-injection detector (src/generate/guard.ts): the share of real passages it
 * flags, on BEIR corpora that contain no injection (scifact, nfcorpus; squad-v1.1-dev and cranfield when
 * present, as natural English prose). Every flagged passage is a false positive; the first few are printed
 * so a pattern that trips on ordinary text can be fixed. Corpora that are absent are skipped.
 *
 *   npx tsx bench/injection-false-positives.ts [--corpora scifact,nfcorpus,squad-v1.1-dev,cranfield] [--show 5]
 */
import fs from 'node:fs';
import path from 'node:path';
import { readCorpus } from '../src/eval/beir.js';
import { detectInjection } from '../src/generate/guard.js';

const args = process.argv.slice(2);
const opt = (name: string, dflt: string): string => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 && args[i + 1] !== undefined ? args[i + 1]! : dflt;
};
const CORPORA = opt('corpora', 'scifact,nfcorpus,squad-v1.1-dev,cranfield').split(',').filter(Boolean);
const SHOW = Number(opt('show', '5'));
const datasets = path.resolve(import.meta.dirname, '../../shared/datasets');

interface Row {
  corpus: string;
  passages: number;
  flagged: number;
  byKind: Record<string, number>;
  ms: number;
}

const rows: Row[] = [];
for (const name of CORPORA) {
  const file = path.join(datasets, name, 'corpus.jsonl');
  if (!fs.existsSync(file)) {
    console.log(`${name}: skipped (no ${path.relative(process.cwd(), file)})`);
    continue;
  }
  const row: Row = { corpus: name, passages: 0, flagged: 0, byKind: {}, ms: 0 };
  const examples: string[] = [];
  const t0 = performance.now();
  for await (const doc of readCorpus(file)) {
    row.passages++;
    // What the guard scans for a source: its title and its text.
    const findings = detectInjection(`${doc.title}\n${doc.text}`);
    if (findings.length === 0) continue;
    row.flagged++;
    for (const f of findings) row.byKind[f.kind] = (row.byKind[f.kind] ?? 0) + 1;
    if (examples.length < SHOW)
      examples.push(`  ${doc.id}: ${findings.map((f) => `${f.kind} ${JSON.stringify(f.match)}`).join(', ')}`);
  }
  row.ms = performance.now() - t0;
  rows.push(row);
  if (examples.length > 0) console.log(`${name}: flagged examples\n${examples.join('\n')}`);
}

const pct = (a: number, b: number): string => (b === 0 ? '—' : `${((100 * a) / b).toFixed(3)} %`);
console.log('\n| corpus | passages | flagged | share | by kind | µs / passage |');
console.log('|---|---:|---:|---:|---|---:|');
let total = 0;
let flagged = 0;
for (const r of rows) {
  total += r.passages;
  flagged += r.flagged;
  const kinds =
    Object.entries(r.byKind)
      .map(([k, n]) => `${k} ${n}`)
      .join(', ') || '—';
  console.log(
    `| ${r.corpus} | ${r.passages.toLocaleString('en')} | ${r.flagged} | ${pct(r.flagged, r.passages)} | ${kinds} | ${((1000 * r.ms) / Math.max(1, r.passages)).toFixed(1)} |`,
  );
}
if (rows.length > 0)
  console.log(`| all | ${total.toLocaleString('en')} | ${flagged} | ${pct(flagged, total)} | | |`);
console.log('\nnpx tsx bench/injection-false-positives.ts');

/**
 * CLI cold start: wall time, CPU time and peak RSS of whole `quarry` processes, as a shell loop pays them.
 * Each command runs a few times after one warm-up (so the OS file cache is warm, as in a loop); the median
 * is printed. Pass `--bin` several times to compare checkouts side by side in one run (e.g. an older commit's
 * bin/quarry.js), alternating between them so machine load affects both alike.
 *
 *   npx tsx bench/cli-startup.ts [--bin bin/quarry.js ...] [--store .quarry] [--runs 7]
 *
 * The store must exist (the quick start creates ./.quarry).
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

const args = process.argv.slice(2);
const all = (name: string): string[] => args.flatMap((a, i) => (a === `--${name}` ? [args[i + 1]!] : []));
const opt = (name: string, dflt: string): string => all(name)[0] ?? dflt;
const bins = all('bin').length > 0 ? all('bin') : ['bin/quarry.js'];
const store = path.resolve(opt('store', '.quarry'));
const runs = Number(opt('runs', '7'));
if (!fs.existsSync(store)) throw new Error(`no store at ${store}: run the quick start first`);

const commands: Array<{ name: string; argv: string[] }> = [
  { name: '--version', argv: ['--version'] },
  { name: '--help', argv: ['--help'] },
  { name: 'stats', argv: ['stats', '--store', store] },
  { name: 'search', argv: ['search', 'token budget', '-k', '5', '--store', store] },
  { name: 'ask', argv: ['ask', 'What is the default chunk size?', '--store', store] },
];

interface Sample {
  exit: number | null;
  wallMs: number;
  cpuMs: number;
  rssMb: number;
}

/** One process under /usr/bin/time, which reports its CPU time and peak RSS. */
function measure(bin: string, argv: string[]): Sample {
  const t0 = performance.now();
  const r = spawnSync('/usr/bin/time', ['-f', '%U %S %M', process.execPath, bin, ...argv], {
    encoding: 'utf8',
  });
  const wallMs = performance.now() - t0;
  const last = r.stderr.trim().split('\n').at(-1) ?? '';
  const [user, sys, rssKb] = last.split(' ').map(Number);
  if (rssKb === undefined || Number.isNaN(rssKb))
    throw new Error(`${bin} ${argv.join(' ')}: no timing from /usr/bin/time (${r.status}): ${r.stderr}`);
  // A non-zero exit is reported, not fatal: an older checkout may not know a command (--version).
  return { exit: r.status, wallMs, cpuMs: (user! + sys!) * 1000, rssMb: rssKb / 1024 };
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
};

console.log(`# CLI cold start, median of ${runs} runs (store ${path.relative(process.cwd(), store) || '.'})`);
console.log('| command | bin | wall (s) | CPU (s) | peak RSS (MB) | exit |');
console.log('|---|---|---|---|---|---|');
for (const c of commands) {
  const samples = new Map<string, Sample[]>(bins.map((b) => [b, []]));
  for (const b of bins) measure(b, c.argv); // warm-up
  for (let i = 0; i < runs; i++) for (const b of bins) samples.get(b)!.push(measure(b, c.argv));
  for (const b of bins) {
    const s = samples.get(b)!;
    console.log(
      `| ${c.name} | ${b} | ${(median(s.map((x) => x.wallMs)) / 1000).toFixed(2)} | ${(median(s.map((x) => x.cpuMs)) / 1000).toFixed(2)} | ${median(s.map((x) => x.rssMb)).toFixed(0)} | ${s[0]!.exit} |`,
    );
  }
}

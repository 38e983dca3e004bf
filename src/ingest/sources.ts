/**
 * What an ingest of paths reads: files given directly and files under folders (walked in name order,
 * skipping hidden entries and tool folders), each named by its source — a posix path relative to the working
 * directory. A path that cannot be read is an `UNREADABLE_FILE` error for the report, never a throw.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { IngestFileError } from './types.js';

export interface FileTask {
  abs: string;
  source: string;
}

/** The files to ingest, and the folders walked (pruning removes what vanished under them). */
export interface IngestSources {
  files: FileTask[];
  roots: string[];
}

const SKIP_DIRS = new Set(['node_modules', '.git', '.quarry', '.hg', '.svn']);

/** Sources are posix paths relative to `base` (the working directory by default; absolute outside it). */
export function toSource(abs: string, base: string = process.cwd()): string {
  const rel = path.relative(base, abs);
  const chosen = rel !== '' && !rel.startsWith('..') && !path.isAbsolute(rel) ? rel : abs;
  return chosen.split(path.sep).join('/');
}

export function collectSources(
  inputs: string[],
  errors: IngestFileError[],
  base: string = process.cwd(),
): IngestSources {
  const tasks: FileTask[] = [];
  const roots: string[] = [];
  for (const input of inputs) {
    const abs = path.resolve(input);
    let st: fs.Stats;
    try {
      st = fs.statSync(abs);
    } catch (e) {
      errors.push({
        path: input,
        code: 'UNREADABLE_FILE',
        message: `Cannot read ${input}: ${(e as Error).message}`,
      });
      continue;
    }
    if (st.isDirectory()) {
      roots.push(toSource(abs, base));
      walk(abs, tasks, errors, base);
    } else tasks.push({ abs, source: toSource(abs, base) });
  }
  // The same file reached twice (a folder and a file in it, overlapping folders) is ingested once.
  return { files: [...new Map(tasks.map((t) => [t.abs, t])).values()], roots };
}

function walk(dir: string, out: FileTask[], errors: IngestFileError[], base: string): void {
  let entries: fs.Dirent[];
  try {
    entries = fs.readdirSync(dir, { withFileTypes: true });
  } catch (e) {
    errors.push({
      path: toSource(dir, base),
      code: 'UNREADABLE_FILE',
      message: `Cannot read directory: ${(e as Error).message}`,
    });
    return;
  }
  entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  for (const e of entries) {
    if (e.name.startsWith('.')) continue;
    const abs = path.join(dir, e.name);
    if (e.isDirectory()) {
      if (!SKIP_DIRS.has(e.name)) walk(abs, out, errors, base);
    } else if (e.isFile()) out.push({ abs, source: toSource(abs, base) });
  }
}

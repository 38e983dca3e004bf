/**
 * What an ingest of paths reads: files given directly and files under folders (walked in name order,
 * skipping hidden entries and tool folders), each named by its source — a posix path relative to the working
 * directory. A path that cannot be read is an `UNREADABLE_FILE` error for the report, never a throw. Symbolic
 * links inside a folder are reported as skipped unless the caller asks to follow them.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { IngestFileError, IngestSkipped } from './types.js';

export interface FileTask {
  abs: string;
  source: string;
}

/** The files to ingest, and the folders walked (pruning removes what vanished under them). */
export interface IngestSources {
  files: FileTask[];
  roots: string[];
  /** Entries deliberately not read (symbolic links not followed), with the reason. */
  skipped: IngestSkipped[];
}

interface Walk {
  out: FileTask[];
  errors: IngestFileError[];
  skipped: IngestSkipped[];
  followSymlinks: boolean;
  /** Real paths of the folders walked: a link back up the tree is not walked again. */
  visited: Set<string>;
  /** Sources are named relative to this folder. */
  base: string;
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
  opts: { followSymlinks?: boolean | undefined; base?: string | undefined } = {},
): IngestSources {
  const tasks: FileTask[] = [];
  const roots: string[] = [];
  const w: Walk = {
    out: tasks,
    errors,
    skipped: [],
    followSymlinks: opts.followSymlinks === true,
    visited: new Set(),
    base: opts.base ?? process.cwd(),
  };
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
      roots.push(toSource(abs, w.base));
      walk(abs, w);
    } else tasks.push({ abs, source: toSource(abs, w.base) });
  }
  // The same file reached twice (a folder and a file in it, overlapping folders) is ingested once.
  return { files: [...new Map(tasks.map((t) => [t.abs, t])).values()], roots, skipped: w.skipped };
}

function walk(dir: string, w: Walk): void {
  const { out, errors } = w;
  try {
    const real = fs.realpathSync(dir);
    if (w.visited.has(real)) return;
    w.visited.add(real);
  } catch {
    // readdirSync below reports an unreadable folder.
  }
  let entries: fs.Dirent[];
  try {
    entries = fs.readdirSync(dir, { withFileTypes: true });
  } catch (e) {
    errors.push({
      path: toSource(dir, w.base),
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
      if (!SKIP_DIRS.has(e.name)) walk(abs, w);
    } else if (e.isFile()) out.push({ abs, source: toSource(abs, w.base) });
    else if (e.isSymbolicLink()) symlink(abs, w);
  }
}

/** A link met in a folder: skipped with the reason, or followed to the file or folder it names. */
function symlink(abs: string, w: Walk): void {
  const source = toSource(abs, w.base);
  if (!w.followSymlinks) {
    w.skipped.push({
      path: source,
      reason: 'symbolic link, not followed (follow links with --follow-symlinks / followSymlinks: true)',
    });
    return;
  }
  let st: fs.Stats;
  try {
    st = fs.statSync(abs);
  } catch (e) {
    w.errors.push({
      path: source,
      code: 'UNREADABLE_FILE',
      message: `Cannot read ${source}: symbolic link to a missing or unreadable target (${(e as Error).message})`,
    });
    return;
  }
  if (st.isDirectory()) walk(abs, w);
  else if (st.isFile()) w.out.push({ abs, source });
  else
    w.skipped.push({
      path: source,
      reason: 'symbolic link to something that is neither a file nor a folder',
    });
}

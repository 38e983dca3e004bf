/**
 * Keeps docs/architecture.md true to the code: every source file it names exists, and imports point one way
 * (nothing under a stage, index, store or shared module imports the pipeline or a shell).
 */
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

const REPO = path.resolve(import.meta.dirname, '..');
const SRC = path.join(REPO, 'src');

function sourceFiles(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) return sourceFiles(p);
    return /\.(ts|mjs)$/.test(e.name) ? [p] : [];
  });
}

/** Top-level area of a file under src/: `pipeline`, `cli`, `query`, … or the file name for shared files. */
function area(file: string): string {
  return path.relative(SRC, file).split(path.sep)[0]!;
}

// Shells sit on top: the CLI, the HTTP server, evaluation, the MCP server, the framework adapters, the HTTP
// client and the web UI.
const SHELLS = new Set(['cli', 'server', 'eval', 'mcp', 'adapters', 'client', 'ui']);

describe('docs/architecture.md', () => {
  const doc = fs.readFileSync(path.join(REPO, 'docs/architecture.md'), 'utf8');

  it('names only source files that exist', () => {
    const named = [...new Set(doc.match(/src\/[\w./-]+\.ts/g) ?? [])];
    expect(named.length).toBeGreaterThan(10);
    const missing = named.filter((f) => !fs.existsSync(path.join(REPO, f)));
    expect(missing).toEqual([]);
  });

  it('names every stage file of the query path', () => {
    const stages = sourceFiles(SRC)
      .filter((f) => path.basename(f) === 'stage.ts')
      .map((f) => path.relative(REPO, f).split(path.sep).join('/'));
    expect(stages.length).toBeGreaterThanOrEqual(7);
    for (const s of stages) expect(doc, s).toContain(s);
  });

  it('names every stage the ingest runner puts in order', () => {
    const runner = fs.readFileSync(path.join(SRC, 'ingest/runner.ts'), 'utf8');
    const header = runner.slice(0, runner.indexOf('*/'));
    const stages = [...new Set(header.match(/src\/ingest\/[\w-]+\.ts/g) ?? [])];
    expect(stages.length).toBeGreaterThanOrEqual(6);
    for (const s of stages) {
      expect(fs.existsSync(path.join(REPO, s)), s).toBe(true);
      expect(doc, s).toContain(s);
    }
  });

  it('imports point one way: shells → pipeline → stages → store and shared modules', () => {
    const wrong: string[] = [];
    for (const file of sourceFiles(SRC)) {
      const from = area(file);
      const text = fs.readFileSync(file, 'utf8');
      for (const m of text.matchAll(/(?:from|import\()\s*'(\.{1,2}\/[^']+)'/g)) {
        const to = area(path.resolve(path.dirname(file), m[1]!));
        const lower = from !== 'pipeline' && !SHELLS.has(from) && from !== 'index.ts';
        if ((lower && (to === 'pipeline' || SHELLS.has(to))) || (from === 'pipeline' && SHELLS.has(to)))
          wrong.push(`${path.relative(REPO, file)} → ${m[1]}`);
        // Shells are side by side: the server and evaluation never reach into the CLI.
        if ((from === 'eval' || from === 'server') && to === 'cli')
          wrong.push(`${path.relative(REPO, file)} → ${m[1]}`);
      }
    }
    expect(wrong).toEqual([]);
  });

  it('the HTTP client imports only types of the API contract (it runs in browsers, without zod or Node)', () => {
    const wrong: string[] = [];
    for (const file of sourceFiles(path.join(SRC, 'client'))) {
      const text = fs.readFileSync(file, 'utf8');
      for (const m of text.matchAll(/^import\s+(type\s+)?[^;]*?from\s+'([^']+)'/gms)) {
        const [, typeOnly, spec] = m;
        if (spec === 'eventsource-parser' || spec!.startsWith('./')) continue;
        if (typeOnly === undefined) wrong.push(`${path.relative(REPO, file)} → ${spec}`);
      }
    }
    expect(wrong).toEqual([]);
  });
});

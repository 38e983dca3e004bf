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

/** Bare package specifiers a file imports (static, dynamic and side-effect imports). */
function packagesImported(text: string): string[] {
  return [...text.matchAll(/(?:from|import\(|import)\s*'([^'./][^']*)'/g)].map((m) => m[1]!);
}

/** The optional peer dependency (framework) a package specifier belongs to, if any. */
function framework(spec: string): 'langchain' | 'llamaindex' | 'ai-sdk' | undefined {
  if (/^@langchain\//.test(spec)) return 'langchain';
  if (/^(llamaindex|@llamaindex\/)/.test(spec)) return 'llamaindex';
  if (/^(ai|@ai-sdk\/[^/]+)(\/|$)/.test(spec)) return 'ai-sdk';
  return undefined;
}

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
        // Shells are side by side: the server, evaluation and MCP never reach into the CLI, the framework
        // adapters into no other shell.
        if ((from === 'eval' || from === 'server' || from === 'mcp') && to === 'cli')
          wrong.push(`${path.relative(REPO, file)} → ${m[1]}`);
        if (from === 'adapters' && SHELLS.has(to) && to !== 'adapters')
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

  it('keeps the frameworks optional: only src/adapters imports them, each adapter only its own', () => {
    const wrong: string[] = [];
    for (const file of sourceFiles(SRC)) {
      const rel = path.relative(SRC, file).split(path.sep).join('/');
      const text = fs.readFileSync(file, 'utf8');
      // Importing 'quarry' must work without @langchain/core, llamaindex or ai installed: nothing outside
      // src/adapters imports them, nor an adapter (src/index.ts least of all).
      if (area(file) !== 'adapters') {
        for (const spec of packagesImported(text)) if (framework(spec)) wrong.push(`${rel} → ${spec}`);
        for (const m of text.matchAll(/(?:from|import\(|import)\s*'(\.{1,2}\/[^']+)'/g))
          if (area(path.resolve(path.dirname(file), m[1]!)) === 'adapters') wrong.push(`${rel} → ${m[1]}`);
        continue;
      }
      // src/adapters/langchain.ts imports LangChain only, and so on; shared adapter modules none.
      const own = path.basename(file, '.ts');
      for (const spec of packagesImported(text)) {
        const f = framework(spec);
        if (f !== undefined && f !== own) wrong.push(`${rel} → ${spec}`);
      }
    }
    expect(wrong).toEqual([]);
    // The rule above has something to check: each adapter does import its framework.
    const adapters = ['langchain', 'llamaindex', 'ai-sdk'].map((name) => {
      const text = fs.readFileSync(path.join(SRC, 'adapters', `${name}.ts`), 'utf8');
      return packagesImported(text).some((spec) => framework(spec) === name);
    });
    expect(adapters).toEqual([true, true, true]);
  });
});

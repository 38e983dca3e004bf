/**
 * The package as a user gets it: `npm pack`, then a fresh project installs the tarball with `npm ci --offline`
 * (from the local npm cache, no network) and uses Quarry through plain Node, the `quarry` command and
 * TypeScript. Nothing here runs from the repository's sources.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { consumerLock } from './consumer-lock.js';

const repo = path.resolve(import.meta.dirname, '../..');
const version = (JSON.parse(fs.readFileSync(path.join(repo, 'package.json'), 'utf8')) as { version: string })
  .version;
const env = {
  ...process.env,
  npm_config_nodedir: process.env.npm_config_nodedir ?? '/usr',
  ONNXRUNTIME_NODE_INSTALL: 'skip',
};

let work: string;
let project: string;
let packed: { filename: string; size: number; unpackedSize: number; files: Array<{ path: string }> };

function run(cmd: string, args: string[], { cwd = project, timeout = 120_000 } = {}) {
  const r = spawnSync(cmd, args, { cwd, env, encoding: 'utf8', timeout });
  return { code: r.status, signal: r.signal, out: r.stdout, err: r.stderr };
}

beforeAll(() => {
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'quarry-package-'));
  // dist/ is already built by the suite's global setup; --ignore-scripts keeps prepack from rebuilding it
  // under the other tests' feet.
  const json = execFileSync('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', work], {
    cwd: repo,
    env,
    encoding: 'utf8',
  });
  packed = (JSON.parse(json) as (typeof packed)[])[0]!;
  project = path.join(work, 'consumer');
  fs.mkdirSync(path.join(project, 'docs'), { recursive: true });
  const { dependencies, lock } = consumerLock({
    quarryLock: path.join(repo, 'package-lock.json'),
    tarball: path.join(work, packed.filename),
    tarballSpec: `file:../${packed.filename}`,
    extra: ['typescript', '@types/node'],
  });
  const allowScripts = { 'better-sqlite3': true, 'hnswlib-node': true, 'onnxruntime-node': false };
  const manifest = {
    name: 'consumer',
    version: '1.0.0',
    private: true,
    type: 'module',
    dependencies,
    allowScripts,
    // What the README asks of a project on Node 20: fastify's test-injection helper wants cookie 2, which
    // declares Node ≥ 22; cookie 1.1.1 has the same API and runs on Node 20.
    overrides: { 'light-my-request': { cookie: '1.1.1' } },
  };
  fs.writeFileSync(path.join(project, 'package.json'), JSON.stringify(manifest, null, 2));
  fs.writeFileSync(path.join(project, 'package-lock.json'), JSON.stringify(lock, null, 2));
  // better-sqlite3 and hnswlib-node compile from source here (no prebuilt binaries offline): minutes, not seconds.
  const install = run('npm', ['ci', '--offline', '--no-audit', '--no-fund'], { timeout: 840_000 });
  if (install.code !== 0)
    throw new Error(
      `npm ci --offline failed (exit ${install.code}, signal ${install.signal}):\n${install.err}\n${install.out}`.slice(
        -4000,
      ),
    );
  fs.writeFileSync(
    path.join(project, 'docs', 'tides.md'),
    '# Tides\n\nThe tide at Port Ellen rises 1.2 metres on a spring tide.\n\n## Currents\n\nCurrents in the sound reach four knots at mid-flood.\n',
  );
  fs.writeFileSync(
    path.join(project, 'docs', 'ferries.md'),
    '# Ferries\n\nThe ferry to Islay leaves Kennacraig at 07:00 every day except Sunday.\n',
  );
}, 900_000);

afterAll(() => {
  if (work !== undefined) fs.rmSync(work, { recursive: true, force: true });
});

describe('the packed tarball', () => {
  it('holds the built code, its types and run-time assets, and no sources, tests or benchmarks', () => {
    const files = packed.files.map((f) => f.path);
    for (const f of [
      'bin/quarry.js',
      'dist/index.js',
      'dist/index.d.ts',
      'dist/cli/main.js',
      'dist/rerank/ltr/default-model.json',
      'dist/embed/providers/onnx-worker.mjs',
      'dist/rerank/onnx-cross-encoder-worker.mjs',
      'dist/ui/index.html',
    ])
      expect(files).toContain(f);
    expect(
      files.filter((f) => /^(src|test|bench|samples|scripts)\//.test(f) || f.endsWith('.tsbuildinfo')),
    ).toEqual([]);
    console.log(
      `tarball ${(packed.size / 1024).toFixed(1)} kB, unpacked ${(packed.unpackedSize / 1024 / 1024).toFixed(2)} MB, ${files.length} files`,
    );
  });

  it('is imported by plain Node: ingest Markdown, search and ask with citations', () => {
    fs.writeFileSync(
      path.join(project, 'use.mjs'),
      `import { createQuarry } from 'quarry';
const quarry = await createQuarry({ store: '.store' });
const report = await quarry.ingest(['docs']);
const { hits } = await quarry.search('ferry Kennacraig', { k: 3 });
const answer = await quarry.ask('Which ferry leaves Kennacraig every day?');
console.log(JSON.stringify({ added: report.added, top: hits[0]?.document.title, answer: answer.text,
  cited: answer.citations.map((c) => c.source) }));
quarry.close();
`,
    );
    const r = run(process.execPath, ['use.mjs']);
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    const out = JSON.parse(r.out) as { added: number; top: string; answer: string; cited: string[] };
    expect(out.added).toBe(2);
    expect(out.top).toBe('Ferries');
    expect(out.answer).toContain('07:00');
    expect(out.cited).toEqual([expect.stringMatching(/ferries\.md$/)]);
  });

  it('installs the quarry command: --version, --help and ask work from the project', () => {
    const v = run('npx', ['quarry', '--version']);
    expect(v.code).toBe(0);
    expect(v.out.trim()).toBe(version);
    const help = run('npx', ['quarry', '--help']);
    expect(help.code).toBe(0);
    expect(help.out).toMatch(/ingest/);
    expect(help.out).toMatch(/ask/);
    const ingest = run('npx', ['quarry', 'ingest', 'docs', '--store', 'cli-store']);
    expect(ingest.code).toBe(0);
    expect(ingest.out).toMatch(/2 added/);
    const ask = run('npx', [
      'quarry',
      'ask',
      'Which ferry leaves Kennacraig every day?',
      '--store',
      'cli-store',
    ]);
    expect(ask.code).toBe(0);
    expect(ask.out).toMatch(/07:00.*\[1\]/);
    expect(ask.out).toMatch(/\[1\] Ferries — .*ferries\.md/);
  }, 180_000);

  it('type-checks a TypeScript file that uses the public types (strict, no skipLibCheck)', () => {
    fs.writeFileSync(
      path.join(project, 'typed.ts'),
      `import { type Answer, createQuarry, QuarryError, type SearchResult } from 'quarry';
const quarry = await createQuarry({ store: '.store' });
const result: SearchResult = await quarry.search('tide', { k: 2 });
const answer: Answer = await quarry.ask('tide?');
const count: number = result.hits.length + answer.citations.length;
// @ts-expect-error k is a number: the published types must reject this, or they are not types at all
await quarry.search('tide', { k: 'two' });
console.log(count, QuarryError.name);
`,
    );
    fs.writeFileSync(
      path.join(project, 'tsconfig.json'),
      JSON.stringify({
        compilerOptions: {
          target: 'ES2023',
          module: 'NodeNext',
          moduleResolution: 'NodeNext',
          strict: true,
          noEmit: true,
          types: ['node'],
        },
        files: ['typed.ts'],
      }),
    );
    const r = run(process.execPath, [path.join(project, 'node_modules/typescript/bin/tsc'), '-p', '.']);
    expect(r.out + r.err).toBe('');
    expect(r.code).toBe(0);
  }, 180_000);
});

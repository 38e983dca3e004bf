#!/usr/bin/env node
// Builds the published package into dist/: tsc compiles src/ (JS, .d.ts, source maps with their sources
// inlined), then the files tsc does not emit are copied beside the code that loads them at run time: the
// ONNX worker modules (.mjs and their .d.mts types) and the shipped learning-to-rank weights (.json). Then
// esbuild bundles the web UI (src/ui, Preact) into dist/ui/: one minified script and one stylesheet with
// content hashes in their names, and index.html pointing at them; the bundle sizes are printed.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import * as esbuild from 'esbuild';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const src = path.join(root, 'src');
const dist = path.join(root, 'dist');
const ASSETS = ['.mjs', '.d.mts', '.json'];
const UI_SRC = path.join(src, 'ui');
const UI_OUT = path.join(dist, 'ui');

if (process.argv.includes('--clean')) fs.rmSync(dist, { recursive: true, force: true });
const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
execFileSync(process.execPath, [tsc, '-p', path.join(root, 'tsconfig.build.json')], { stdio: 'inherit' });

let copied = 0;
for (const rel of fs.readdirSync(src, { recursive: true, encoding: 'utf8' })) {
  if (!ASSETS.some((ext) => rel.endsWith(ext)) || rel.startsWith(`ui${path.sep}`)) continue;
  const to = path.join(dist, rel);
  fs.mkdirSync(path.dirname(to), { recursive: true });
  fs.copyFileSync(path.join(src, rel), to);
  copied++;
}
console.log(`built dist/ (${copied} asset file(s) copied)`);

// The web UI: rebuilt whole each time (esbuild takes a fraction of a second), so no stale hashed files remain.
fs.rmSync(UI_OUT, { recursive: true, force: true });
const ui = await esbuild.build({
  entryPoints: { app: path.join(UI_SRC, 'main.tsx') },
  outdir: UI_OUT,
  entryNames: '[name]-[hash]',
  bundle: true,
  minify: true,
  format: 'esm',
  platform: 'browser',
  target: ['es2022', 'chrome110', 'firefox115', 'safari16'],
  tsconfig: path.join(UI_SRC, 'tsconfig.json'),
  jsx: 'automatic',
  jsxImportSource: 'preact',
  sourcemap: 'linked',
  sourcesContent: false,
  legalComments: 'none',
  metafile: true,
  logLevel: 'warning',
});
const outputs = Object.keys(ui.metafile.outputs).map((f) => path.resolve(root, f));
const js = outputs.find((f) => f.endsWith('.js'));
const css = outputs.find((f) => f.endsWith('.css'));
if (js === undefined || css === undefined)
  throw new Error('the UI build produced no script or no stylesheet');
const html = fs
  .readFileSync(path.join(UI_SRC, 'index.html'), 'utf8')
  .replace('"app.js"', `"${path.basename(js)}"`)
  .replace('"app.css"', `"${path.basename(css)}"`);
fs.writeFileSync(path.join(UI_OUT, 'index.html'), html);
fs.copyFileSync(path.join(UI_SRC, 'favicon.svg'), path.join(UI_OUT, 'favicon.svg'));
const kb = (n) => `${(n / 1024).toFixed(1)} kB`;
const size = (f) => {
  const bytes = fs.readFileSync(f);
  return `${path.basename(f)} ${kb(bytes.length)} (${kb(gzipSync(bytes, { level: 9 }).length)} gzip)`;
};
console.log(`built dist/ui/ (${size(js)}, ${size(css)})`);

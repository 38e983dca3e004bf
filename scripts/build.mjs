#!/usr/bin/env node
// Builds the published package into dist/: tsc compiles src/ (JS, .d.ts, source maps with their sources
// inlined), then the files tsc does not emit are copied beside the code that loads them at run time: the
// ONNX worker modules (.mjs and their .d.mts types) and the shipped learning-to-rank weights (.json).
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const src = path.join(root, 'src');
const dist = path.join(root, 'dist');
const ASSETS = ['.mjs', '.d.mts', '.json'];

if (process.argv.includes('--clean')) fs.rmSync(dist, { recursive: true, force: true });
const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
execFileSync(process.execPath, [tsc, '-p', path.join(root, 'tsconfig.build.json')], { stdio: 'inherit' });

let copied = 0;
for (const rel of fs.readdirSync(src, { recursive: true, encoding: 'utf8' })) {
  if (!ASSETS.some((ext) => rel.endsWith(ext))) continue;
  const to = path.join(dist, rel);
  fs.mkdirSync(path.dirname(to), { recursive: true });
  fs.copyFileSync(path.join(src, rel), to);
  copied++;
}
console.log(`built dist/ (${copied} asset file(s) copied)`);

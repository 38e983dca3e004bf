/**
 * Vitest global setup: builds dist/ (incrementally, a few seconds when nothing changed) before any test runs,
 * because the CLI tests run `bin/quarry.js`, which runs the compiled code, and the package test packs it.
 */
import { execFileSync } from 'node:child_process';

export default function setup(): void {
  execFileSync(process.execPath, ['scripts/build.mjs'], { stdio: ['ignore', 'ignore', 'inherit'] });
}

#!/usr/bin/env node
// The `quarry` command: runs the compiled CLI in dist/ (built by `npm run build`, shipped in the package).
import { existsSync } from 'node:fs';

const entry = new URL('../dist/cli/main.js', import.meta.url);
if (!existsSync(entry)) {
  process.stderr.write(
    'error: Quarry is not built (dist/cli/main.js is missing): run `npm run build` first\n',
  );
  process.exit(5);
}
const { main } = await import(entry.href);
process.exitCode = await main(process.argv);

// Writes docs/golden-set.schema.json from the golden-set zod schema (src/eval/golden.ts, built into dist/):
// the schema file is generated, never edited by hand. Run `node scripts/build.mjs` first.
import { writeFileSync } from 'node:fs';

const { goldenSetJsonSchema } = await import(new URL('../dist/eval/golden.js', import.meta.url).href);
const out = new URL('../docs/golden-set.schema.json', import.meta.url);
writeFileSync(out, `${JSON.stringify(goldenSetJsonSchema(), null, 2)}\n`);
process.stdout.write(`wrote ${out.pathname}\n`);

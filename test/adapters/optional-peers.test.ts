/**
 * The frameworks are optional peer dependencies: the built package's main entry loads without any of them,
 * and an adapter whose framework is missing fails to import naming that package. "Missing" is a Node
 * resolve hook that answers ERR_MODULE_NOT_FOUND for the frameworks, as Node does when they are not installed.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';

const REPO = path.resolve(import.meta.dirname, '../..');
const dist = (f: string) => pathToFileURL(path.join(REPO, 'dist', f)).href;

const HOOKS = `
export async function resolve(specifier, context, next) {
  if (/^(@langchain\\/|@llamaindex\\/|llamaindex$|llamaindex\\/|ai$|ai\\/|@ai-sdk\\/)/.test(specifier)) {
    const e = new Error("Cannot find package '" + specifier + "' imported from " + context.parentURL);
    e.code = 'ERR_MODULE_NOT_FOUND';
    throw e;
  }
  return next(specifier, context);
}`;
const REGISTER = `import { register } from 'node:module'; register(${JSON.stringify(`data:text/javascript,${encodeURIComponent(HOOKS)}`)});`;

/** Runs `script` (an ES module) with the frameworks made unresolvable; the last stdout line is its JSON. */
function withoutFrameworks(script: string): unknown {
  const r = spawnSync(
    process.execPath,
    ['--import', `data:text/javascript,${encodeURIComponent(REGISTER)}`, '--input-type=module', '-e', script],
    { cwd: REPO, encoding: 'utf8', timeout: 60_000 },
  );
  expect(r.status, r.stderr).toBe(0);
  return JSON.parse(r.stdout.trim().split('\n').pop()!);
}

beforeAll(() => {
  if (!fs.existsSync(path.join(REPO, 'dist/adapters/langchain.js')))
    throw new Error('dist/ is missing: run node scripts/build.mjs first');
});

describe('optional peer dependencies', () => {
  it("'quarry' imports and works without @langchain/core, llamaindex or ai", () => {
    const out = withoutFrameworks(`
      const blocked = await import('@langchain/core/documents').then(() => 'loaded', (e) => e.code);
      const { Quarry } = await import(${JSON.stringify(dist('index.js'))});
      const fs = await import('node:fs'); const os = await import('node:os'); const path = await import('node:path');
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'quarry-no-peers-'));
      const q = Quarry.open({ store: dir });
      await q.addDocuments([{ id: 'a', text: 'Peers are optional.' }]);
      const hit = (await q.search('optional peers')).hits[0]?.chunk.docId;
      q.close(); fs.rmSync(dir, { recursive: true, force: true });
      console.log(JSON.stringify({ blocked, hit }));`);
    // The hook really hides the framework, and Quarry did not need it.
    expect(out).toEqual({ blocked: 'ERR_MODULE_NOT_FOUND', hit: 'a' });
  });

  it('an adapter without its framework fails to import, naming the package to install', () => {
    const out = withoutFrameworks(`
      const r = {};
      for (const [name, url] of Object.entries(${JSON.stringify(
        Object.fromEntries(['langchain', 'llamaindex', 'ai-sdk'].map((n) => [n, dist(`adapters/${n}.js`)])),
      )}))
        r[name] = await import(url).then(() => 'loaded', (e) => e.code + ' ' + e.message.split(' imported')[0]);
      console.log(JSON.stringify(r));`);
    expect(out).toEqual({
      langchain: expect.stringMatching(/^ERR_MODULE_NOT_FOUND Cannot find package '@langchain\/core\//),
      llamaindex: "ERR_MODULE_NOT_FOUND Cannot find package 'llamaindex'",
      'ai-sdk': "ERR_MODULE_NOT_FOUND Cannot find package 'ai'",
    });
  });
});

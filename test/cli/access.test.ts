/**
 * The CLI reads as the store's owner (every document), and `--user`, `--groups`, `--clearance` on search,
 * ask and docs show exactly what that user would see: restricted documents are absent from listings,
 * `docs --id` says NOT_FOUND (exit 4) as for an unknown id, and search/ask never return or cite them.
 * The real command line against a real store in a temp directory.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from './run-cli.js';

let tmp: string;
let store: string;
const idOf: Record<string, string> = {};

beforeAll(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'quarry-cli-access-'));
  store = path.join(tmp, 'store');
  const docs = path.join(tmp, 'docs');
  fs.mkdirSync(docs);
  const files: Record<string, string> = {
    'pub.md': '# Public\n\nThe wombat burrow guide is for everyone.\n',
    'fin.md': '---\naccess_groups: [finance]\n---\n# Finance\n\nThe wombat budget lists grants.\n',
    'alice.md': '---\naccess_users: [alice]\n---\n# Alice\n\nThe wombat memo for alice.\n',
    'sec.md': '---\nsecurity_level: 2\n---\n# Secret\n\nThe wombat vault plan.\n',
  };
  for (const [name, text] of Object.entries(files)) fs.writeFileSync(path.join(docs, name), text);
  const ingest = await runCli(['ingest', docs, '--store', store, '--json']);
  expect(ingest.code, ingest.stderr).toBe(0);
  const listed = await cli(['docs', '--json']);
  for (const d of JSON.parse(listed.stdout) as Array<{ id: string; meta: { title: string } }>)
    idOf[d.meta.title] = d.id;
  expect(Object.keys(idOf).sort()).toEqual(['Alice', 'Finance', 'Public', 'Secret']);
}, 120_000);

afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

const cli = (args: string[]) => runCli([...args, '--store', store]);

async function titles(args: string[]): Promise<string[]> {
  const r = await cli([...args, '--json']);
  expect(r.code, r.stderr).toBe(0);
  const out = JSON.parse(r.stdout) as
    | Array<{ meta: { title: string } }>
    | { hits: Array<{ document: { title: string } }> };
  const list = Array.isArray(out) ? out.map((d) => d.meta.title) : out.hits.map((h) => h.document.title);
  return [...new Set(list)].sort();
}

describe('quarry CLI reading as a principal', () => {
  it('docs lists what the principal may read; the owner lists everything', async () => {
    expect(await titles(['docs'])).toEqual(['Alice', 'Finance', 'Public', 'Secret']);
    expect(await titles(['docs', '--groups', 'finance'])).toEqual(['Finance', 'Public']);
    expect(await titles(['docs', '--groups', 'eng'])).toEqual(['Public']);
    expect(await titles(['docs', '--user', 'alice'])).toEqual(['Alice', 'Public']);
    expect(await titles(['docs', '--clearance', '2'])).toEqual(['Public', 'Secret']);
    expect(await titles(['docs', '--user', 'alice', '--groups', 'finance', '--clearance', '2'])).toEqual([
      'Alice',
      'Finance',
      'Public',
      'Secret',
    ]);
    // Paging counts only what the principal may read.
    expect(await titles(['docs', '--groups', 'finance', '--limit', '1', '--offset', '1'])).toHaveLength(1);
    expect(await titles(['docs', '--groups', 'finance', '--offset', '2'])).toEqual([]);
  });

  it('docs --id of a document the principal may not read is NOT_FOUND, like an unknown id', async () => {
    const hidden = await cli(['docs', '--id', idOf.Finance!, '--groups', 'eng']);
    const unknown = await cli(['docs', '--id', 'no-such-doc', '--groups', 'eng']);
    expect(hidden.code).toBe(4);
    expect(unknown.code).toBe(4);
    expect(hidden.stdout).toBe('');
    expect(hidden.stderr).toContain('Not found');
    expect(hidden.stderr).not.toContain('wombat budget');
    const shown = await cli(['docs', '--id', idOf.Finance!, '--groups', 'finance']);
    expect(shown.code, shown.stderr).toBe(0);
    expect(shown.stdout).toContain('The wombat budget lists grants.');
  });

  it('search and ask return and cite only readable documents', async () => {
    expect(await titles(['search', 'wombat'])).toEqual(['Alice', 'Finance', 'Public', 'Secret']);
    expect(await titles(['search', 'wombat', '--groups', 'finance'])).toEqual(['Finance', 'Public']);
    expect(await titles(['search', 'wombat', '--user', 'alice', '--clearance', '2'])).toEqual([
      'Alice',
      'Public',
      'Secret',
    ]);
    expect(await titles(['search', 'wombat', '--clearance', '1'])).toEqual(['Public']);
    const a = await cli(['ask', 'What is in the wombat budget grants?', '--groups', 'eng', '--json']);
    expect(a.code, a.stderr).toBe(0);
    const answer = JSON.parse(a.stdout) as { citations: Array<{ docId: string }>; hits: unknown[] };
    expect(answer.citations.map((c) => c.docId)).not.toContain(idOf.Finance);
    expect(a.stdout).not.toContain('lists grants');
  });

  it('rejects a negative clearance with exit 2', async () => {
    const r = await cli(['docs', '--clearance', '-1']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('--clearance');
  });
});

/**
 * Store problems are store errors: ingesting into a store whose database file cannot be written exits 5 with
 * STORE_READONLY naming the file (never exit 1 INTERNAL), and nothing is stored. The built CLI runs as a
 * user without write permission on the files (as `nobody` when the suite runs as root, since root writes
 * through file modes).
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { REPO_ROOT, runCli } from './run-cli.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'quarry-store-errors-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

/** The CLI as an unprivileged user: `nobody` when we are root, ourselves otherwise. */
function runUnprivileged(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const asNobody = process.getuid?.() === 0 ? { uid: 65534, gid: 65534 } : {};
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['bin/quarry.js', ...args], {
      cwd: REPO_ROOT,
      env: { ...process.env, NO_COLOR: '1', QUARRY_STORE: '' },
      ...asNobody,
    });
    let stdout = '';
    let stderr = '';
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString('utf8')));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString('utf8')));
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

describe('ingest into a read-only store', () => {
  it('exits 5 with STORE_READONLY naming the database file, and stores nothing', async () => {
    fs.chmodSync(tmp, 0o755);
    const store = path.join(tmp, 'store');
    const first = path.join(tmp, 'first.md');
    const second = path.join(tmp, 'second.md');
    fs.writeFileSync(first, '# First\n\nThe lighthouse keeper logs every ship.\n');
    fs.writeFileSync(second, '# Second\n\nThe harbour master counts the boats.\n');
    const made = await runCli(['ingest', first, '--store', store, '--json']);
    expect(made.code, made.stderr).toBe(0);
    // The directory stays writable (SQLite may create its side files); the database itself is read-only.
    fs.chmodSync(store, 0o777);
    for (const f of fs.readdirSync(store)) {
      const p = path.join(store, f);
      fs.chmodSync(p, fs.statSync(p).isDirectory() ? 0o777 : 0o444);
    }

    const r = await runUnprivileged(['ingest', second, '--store', store, '--json']);
    expect(r.code, r.stderr).toBe(5);
    const body = JSON.parse(r.stdout) as { error: { code: string; message: string; file: string } };
    expect(body.error.code).toBe('STORE_READONLY');
    expect(body.error.file).toBe(path.join(store, 'quarry.db'));
    expect(body.error.message).toContain(path.join(store, 'quarry.db'));
    expect(r.stderr).not.toMatch(/INTERNAL/);

    const docs = await runCli(['docs', '--store', store, '--json']);
    // Sources outside the working directory are named by their absolute path.
    expect((JSON.parse(docs.stdout) as Array<{ id: string }>).map((d) => d.id)).toEqual([first]);
  });
});

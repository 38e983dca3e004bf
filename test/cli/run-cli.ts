/**
 * Runs the real command line (`node bin/quarry.js …` from the repository root, the compiled dist/ that the
 * global setup builds) as an asynchronous child process, so fake servers in the test process keep answering.
 */
import { spawn } from 'node:child_process';
import path from 'node:path';

export const REPO_ROOT = path.resolve(import.meta.dirname, '../..');

export interface CliRun {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export interface CliOptions {
  env?: NodeJS.ProcessEnv;
  /** Close our end of the child's stdout after this many bytes (as `| head -c N` does), then keep reading stderr. */
  closeStdoutAfter?: number;
  timeoutMs?: number;
}

export function runCli(args: string[], opts: CliOptions = {}): Promise<CliRun> {
  const env: NodeJS.ProcessEnv = { ...process.env, NO_COLOR: '1', ...opts.env };
  delete env.QUARRY_STORE;
  return new Promise<CliRun>((resolve, reject) => {
    const child = spawn(process.execPath, ['bin/quarry.js', ...args], { cwd: REPO_ROOT, env });
    let stdout = '';
    let stderr = '';
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 60_000);
    child.stdout.on('data', (d: Buffer) => {
      stdout += d.toString('utf8');
      if (opts.closeStdoutAfter !== undefined && stdout.length >= opts.closeStdoutAfter)
        child.stdout.destroy();
    });
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString('utf8')));
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
  });
}

/**
 * `quarry serve` as a user runs it (the built CLI in a child process): every option documented in --help,
 * loopback only without keys (and says so), a non-loopback bind without keys refused, configuration errors
 * named at start, and a graceful SIGTERM that lets an in-flight answer stream finish before exiting.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Quarry } from '../../src/pipeline/quarry.js';
import { REPO_ROOT, runCli } from '../cli/run-cli.js';
import { type FakeLlmServer, startFakeOpenAIChatServer } from '../generate/llm/fake-openai-chat-server.js';
import { HANDBOOK, parseSse } from './harness.js';

let store: string;
let llm: FakeLlmServer;

beforeAll(async () => {
  store = fs.mkdtempSync(path.join(os.tmpdir(), 'quarry-serve-cli-'));
  const q = Quarry.open({ store });
  await q.addDocuments(HANDBOOK.filter((d) => d.access === undefined));
  q.close();
  llm = await startFakeOpenAIChatServer();
});
afterAll(async () => {
  await llm?.close();
  fs.rmSync(store, { recursive: true, force: true });
});

/** Start `quarry serve` and wait for its start line; returns the URL and the child. */
function serve(args: string[], env: NodeJS.ProcessEnv = {}) {
  const child = spawn(
    process.execPath,
    ['bin/quarry.js', 'serve', '--store', store, '--port', '0', ...args],
    {
      cwd: REPO_ROOT,
      env: { ...process.env, NO_COLOR: '1', QUARRY_LOG_LEVEL: 'silent', ...env },
    },
  );
  let stderr = '';
  const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
  const started = new Promise<string>((resolve, reject) => {
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString('utf8');
      const m = /listening on (http:\/\/[^ ]+)/.exec(stderr);
      if (m) resolve(m[1]!);
    });
    child.on('close', () => reject(new Error(`serve exited: ${stderr}`)));
  });
  return { child, started, exited, stderr: () => stderr };
}

describe('quarry serve', () => {
  it('--help documents every option', async () => {
    const r = await runCli(['serve', '--help']);
    expect(r.code).toBe(0);
    for (const opt of [
      '--store',
      '--config',
      '--server-config',
      '--host',
      '--port',
      '--watch',
      '--require-keys',
      '--body-limit',
      '--request-timeout',
      '--cors',
      '--rate-limit',
      '--log-level',
      '--public-metrics',
      '--otlp-endpoint',
    ])
      expect(r.stdout).toContain(opt);
  });

  it('quarry keys create, list and revoke: the secret is printed once and never listed', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'quarry-keys-'));
    try {
      const created = await runCli([
        'keys',
        'create',
        '--store',
        dir,
        '--name',
        'app',
        '--scopes',
        'query,ingest',
        '--tenant',
        'acme',
        '--groups',
        'staff,hr',
        '--clearance',
        '2',
        '--token-budget',
        '1000',
        '--json',
      ]);
      expect(created.code).toBe(0);
      const k = JSON.parse(created.stdout) as {
        key: string;
        id: string;
        tenant: string;
        scopes: string[];
        groups: string[];
      };
      expect(k.key).toMatch(/^qk_[0-9a-f]{16}_/);
      expect(k).toMatchObject({ tenant: 'acme', scopes: ['query', 'ingest'], groups: ['hr', 'staff'] });
      const listed = await runCli(['keys', 'list', '--store', dir]);
      expect(listed.stdout).toContain(k.id);
      expect(listed.stdout).not.toContain(k.key.slice(20));
      expect((await runCli(['keys', 'revoke', k.id, '--store', dir])).code).toBe(0);
      expect((await runCli(['keys', 'list', '--store', dir])).stdout).toMatch(/revoked/);
      const again = await runCli(['keys', 'revoke', k.id, '--store', dir]);
      expect(again.code).toBe(4);
      const bad = await runCli(['keys', 'create', '--store', dir, '--name', 'x', '--scopes', 'root']);
      expect(bad.code).toBe(2);
      expect(bad.stderr).toMatch(/scopes/);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('refuses a non-loopback address without API keys, and bad settings, with exit 2 and a clear message', async () => {
    const open = await runCli(['serve', '--store', store, '--host', '0.0.0.0', '--port', '0']);
    expect(open.code).toBe(2);
    expect(open.stderr).toMatch(/refusing to listen on 0\.0\.0\.0 without API keys/);
    const badEnv = await runCli(['serve', '--store', store], { env: { QUARRY_PORT: 'eighty' } });
    expect(badEnv.code).toBe(2);
    expect(badEnv.stderr).toMatch(/QUARRY_PORT must be a number, got "eighty"/);
    const cfg = path.join(store, 'server.json');
    fs.writeFileSync(cfg, JSON.stringify({ prot: 80 }));
    const badFile = await runCli(['serve', '--store', store, '--server-config', cfg]);
    expect(badFile.code).toBe(2);
    expect(badFile.stderr).toMatch(/prot/);
  });

  it('says it is loopback-only, serves, and on SIGTERM finishes an in-flight stream before exiting 0', async () => {
    const pipeline = path.join(store, 'pipeline.json');
    fs.writeFileSync(
      pipeline,
      JSON.stringify({ llm: { provider: 'openai', baseURL: llm.url, model: 'gpt-4o-mini', maxRetries: 0 } }),
    );
    const words = 'The ferry to Islay leaves Kennacraig at 07:00 [1].'.split(/(?<= )/);
    llm.respond = () => ({ kind: 'reply', deltas: words, gapMs: 120 });
    const s = serve(['--config', pipeline]);
    const url = await s.started;
    expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect(s.stderr()).toMatch(/no API keys configured: loopback only/);
    expect((await fetch(`${url}/readyz`)).status).toBe(200);

    const res = await fetch(`${url}/v1/ask`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ question: 'When does the ferry to Islay leave?', stream: true, cache: false }),
    });
    const reader = res.body!.getReader();
    const first = await reader.read();
    expect(new TextDecoder().decode(first.value)).toMatch(/event: meta/);
    s.child.kill('SIGTERM');
    let text = new TextDecoder().decode(first.value);
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      text += new TextDecoder().decode(value);
    }
    const events = parseSse(text);
    expect(events.at(-1)!.event).toBe('done');
    const answer = events.find((e) => e.event === 'answer')!.data;
    expect(answer.text).toMatch(/07:00/);
    expect(events.filter((e) => e.event === 'delta').length).toBeGreaterThan(3);
    expect(await s.exited).toBe(0);
    expect(s.stderr()).toMatch(/quarry serve: stopped/);
  });

  // The kernel caps the backlog at net.core.somaxconn (4096 since Linux 5.4; 128 before).
  const somaxconn = Number(
    fs.existsSync('/proc/sys/net/core/somaxconn')
      ? fs.readFileSync('/proc/sys/net/core/somaxconn', 'utf8')
      : 0,
  );
  it.skipIf(somaxconn < 1200)(
    'a burst of connections while the server is busy waits in the accept queue instead of being dropped',
    async () => {
      const s = serve([]);
      const url = new URL(await s.started);
      // A stopped process accepts nothing: every connection must be held by the kernel's accept queue.
      // Node's default backlog (511) would complete only ~512 handshakes and drop the rest's SYNs.
      s.child.kill('SIGSTOP');
      const sockets: net.Socket[] = [];
      let connected = 0;
      try {
        for (let i = 0; i < 1200; i++) {
          const sock = net.connect({ host: url.hostname, port: Number(url.port) });
          sock.on('connect', () => connected++);
          sock.on('error', () => {});
          sockets.push(sock);
        }
        const deadline = Date.now() + 5_000;
        while (connected < 1200 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
        expect(connected).toBe(1200);
      } finally {
        for (const sock of sockets) sock.destroy();
        s.child.kill('SIGCONT');
        s.child.kill('SIGTERM');
      }
      expect(await s.exited).toBe(0);
    },
    20_000,
  );
});

/**
 * The adapter examples (examples/adapters/*.ts, shown verbatim in the README) run as a user runs them:
 * from a scratch directory with its own store, importing `quarry/langchain` etc. by the package's name,
 * which Node resolves through the package's `exports` to the built dist/ (the suite's global setup builds
 * it). The AI SDK example talks to a fake OpenAI-compatible server.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { QuarrySearchToolOutput } from '../../src/adapters/ai-sdk.js';
import { type FakeLlmServer, startFakeOpenAIChatServer } from '../generate/llm/fake-openai-chat-server.js';

const REPO = path.resolve(import.meta.dirname, '../..');
const EXAMPLES = path.join(REPO, 'examples/adapters');
const TSX = import.meta.resolve('tsx');
const dirs: string[] = [];

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Spawns `args` with node from `cwd`; killed after 60 s so a hang fails the test instead of stalling it. */
function node(args: string[], cwd: string, env: Record<string, string> = {}): Promise<Run> {
  const { QUARRY_STORE: _, ...inherited } = process.env;
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, args, { cwd, env: { ...inherited, ...env } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d));
    child.stderr.on('data', (d: Buffer) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** Runs an example from a fresh directory (its store is ./.quarry there, as for a user). */
async function runExample(name: string, env: Record<string, string> = {}): Promise<Run> {
  const cwd = fs.mkdtempSync(path.join(os.tmpdir(), `quarry-example-${name}-`));
  dirs.push(cwd);
  const run = await node(['--import', TSX, path.join(EXAMPLES, `${name}.ts`)], cwd, env);
  expect(run.code, `examples/adapters/${name}.ts failed:\n${run.stderr}`).toBe(0);
  expect(fs.existsSync(path.join(cwd, '.quarry'))).toBe(true);
  return run;
}

beforeAll(() => {
  for (const f of ['langchain', 'llamaindex', 'ai-sdk'])
    if (!fs.existsSync(path.join(REPO, 'dist/adapters', `${f}.js`)))
      throw new Error(`dist/adapters/${f}.js is missing: run node scripts/build.mjs first`);
});
afterAll(() => {
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
});

describe('examples/adapters', () => {
  it("import the adapters by the package's name, which resolves to the built dist/", async () => {
    const script = ['quarry', 'quarry/langchain', 'quarry/llamaindex', 'quarry/ai-sdk']
      .map((s) => `console.log(import.meta.resolve(${JSON.stringify(s)}))`)
      .join(';');
    const run = await node(['--input-type=module', '-e', script], EXAMPLES);
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout.trim().split('\n')).toEqual(
      ['index.js', 'adapters/langchain.js', 'adapters/llamaindex.js', 'adapters/ai-sdk.js'].map(
        (f) => pathToFileURL(path.join(REPO, 'dist', f)).href,
      ),
    );
    for (const name of ['langchain', 'llamaindex', 'ai-sdk']) {
      const source = fs.readFileSync(path.join(EXAMPLES, `${name}.ts`), 'utf8');
      expect(source).toContain(`from 'quarry/${name}'`);
      expect(source).not.toMatch(/from '\.\.?\//);
    }
  });

  it('langchain.ts: the retriever returns the refund document with its source and span', async () => {
    const { stdout } = await runExample('langchain');
    expect(stdout).toBe('Refunds take 5 working days. (refunds.md, chars 0-28)\n');
  });

  it('llamaindex.ts: both documents as nodes with their source and text, scores descending', async () => {
    const { stdout } = await runExample('llamaindex');
    const lines = stdout.trim().split('\n');
    expect(lines).toHaveLength(2);
    const nodes = lines.map((l) => /^(\d\.\d{3}) (\S+): (.*)$/.exec(l)!);
    expect(nodes.map((m) => [m[2], m[3]]).sort()).toEqual([
      ['refunds.md', '# Refunds  Refunds take 5 working days.'],
      ['shipping.md', '# Shipping  Orders ship within 24 hours.'],
    ]);
    expect(Number(nodes[0]![1])).toBeGreaterThanOrEqual(Number(nodes[1]![1]));
  });

  describe('ai-sdk.ts', () => {
    let fake: FakeLlmServer;
    beforeAll(async () => {
      fake = await startFakeOpenAIChatServer();
    });
    afterAll(async () => {
      await fake?.close();
    });

    it("the model's search call runs against the example's store and the answer comes back", async () => {
      fake.queue(
        {
          kind: 'json',
          body: {
            id: 'chatcmpl-1',
            object: 'chat.completion',
            created: 1_700_000_000,
            model: 'gpt-4o-mini',
            choices: [
              {
                index: 0,
                message: {
                  role: 'assistant',
                  content: null,
                  tool_calls: [
                    {
                      id: 'call_1',
                      type: 'function',
                      function: { name: 'search', arguments: '{"query":"refund duration"}' },
                    },
                  ],
                },
                finish_reason: 'tool_calls',
              },
            ],
          },
        },
        { kind: 'reply', deltas: ['Refunds take 5 working days (refunds.md).'] },
      );
      const { stdout } = await runExample('ai-sdk', { OPENAI_BASE_URL: fake.url, OPENAI_API_KEY: 'sk-test' });
      const [call, answer, ...rest] = stdout.trim().split('\n');
      expect(rest).toEqual([]);
      expect(answer).toBe('Refunds take 5 working days (refunds.md).');
      expect(call!.startsWith('search {')).toBe(true);
      const output = JSON.parse(call!.slice('search '.length)) as QuarrySearchToolOutput;
      expect(output.results).toHaveLength(1);
      expect(output.results[0]).toMatchObject({
        docId: 'refunds',
        source: 'refunds.md',
        text: 'Refunds take 5 working days.',
      });
      // What the model's second request carried back is what the tool returned.
      expect(fake.requests).toHaveLength(2);
      expect(fake.requests[0]!.headers.authorization).toBe('Bearer sk-test');
      const messages = fake.requests[1]!.body.messages as Array<{ role: string; content: string }>;
      expect(JSON.parse(messages.find((m) => m.role === 'tool')!.content)).toEqual(output);
    });
  });

  it('are shown verbatim in the README, under "## Framework adapters"', () => {
    const readme = fs.readFileSync(path.join(REPO, 'README.md'), 'utf8');
    const start = readme.indexOf('\n## Framework adapters\n');
    expect(start).toBeGreaterThan(0);
    const end = readme.indexOf('\n## ', start + 1);
    const section = readme.slice(start, end === -1 ? undefined : end);
    for (const name of ['langchain', 'llamaindex', 'ai-sdk']) {
      const source = fs.readFileSync(path.join(EXAMPLES, `${name}.ts`), 'utf8');
      expect(section, `examples/adapters/${name}.ts`).toContain(`\`\`\`ts\n${source}\`\`\``);
    }
  });
});

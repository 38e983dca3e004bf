/**
 * `quarry ask` with an LLM: validation may remove sentences the sources do not support, or replace the whole
 * answer with an abstention. Off a terminal the CLI prints only the validated answer; when it streams
 * (a terminal, or --stream) it says which streamed sentences were withdrawn. The LLM is a fake OpenAI-compatible
 * server on loopback speaking the real SSE protocol; the store is real.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type FakeLlmServer, startFakeOpenAIChatServer } from '../generate/llm/fake-openai-chat-server.js';
import { runCli } from './run-cli.js';

const UNSUPPORTED = 'Quarry also stores every chunk inside a titanium vault on the moon';
let tmp: string;
let store: string;
let config: string;
let server: FakeLlmServer;

/** The source number the prompt gives the chunking page (which says chunks are 256 tokens). */
function chunkSource(body: Record<string, unknown>): string {
  const user = (body.messages as Array<{ role: string; content: string }>)[1]!.content;
  return /<source id="(\d+)"[^>]*>\n[^<]*256 tokens/.exec(user)?.[1] ?? '1';
}

beforeAll(async () => {
  server = await startFakeOpenAIChatServer();
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'quarry-withdrawn-'));
  store = path.join(tmp, 'store');
  const r = await runCli(['ingest', 'samples/docs', '--store', store]);
  expect(r.code, r.stderr).toBe(0);
  config = path.join(tmp, 'llm.json');
  fs.writeFileSync(
    config,
    JSON.stringify({
      llm: { provider: 'openai', baseURL: server.url, model: 'gpt-4o-mini', maxRetries: 0 },
      validation: { unsupportedPolicy: 'remove' },
      cache: { responses: false },
    }),
  );
});

afterAll(async () => {
  await server.close();
  fs.rmSync(tmp, { recursive: true, force: true });
});

function replyWith(sentences: (n: string) => string[]): void {
  server.respond = (body) => ({ kind: 'reply', deltas: sentences(chunkSource(body)) });
}

const linesMentioning = (text: string, word: string) => text.split('\n').filter((l) => l.includes(word));

const ask = (extra: string[] = []) =>
  runCli(['ask', 'What is the default chunk size?', '--config', config, '--store', store, ...extra]);

describe('ask with an LLM, validation removing an unsupported sentence', () => {
  const sentences = (n: string) => [
    'By default Quarry splits documents ',
    `into chunks of 256 tokens [${n}]. `,
    `${UNSUPPORTED} [${n}].`,
  ];

  it('off a terminal, prints only the validated answer', async () => {
    replyWith(sentences);
    const r = await ask();
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^By default Quarry splits documents into chunks of 256 tokens \[\d\]\.\n/);
    expect(r.stdout).toContain('Sources:');
    // The removed sentence is never shown as part of the answer, only in the validation summary.
    expect(linesMentioning(r.stdout, 'titanium')).toEqual([
      expect.stringMatching(/^unsupported \(removed\): /),
    ]);
  });

  it('streaming (--stream), shows the sentence it streamed as withdrawn', async () => {
    replyWith(sentences);
    const r = await ask(['--stream']);
    expect(r.code, r.stderr).toBe(0);
    // Streamed as the model wrote it…
    expect(r.stdout.startsWith('By default Quarry splits documents into chunks of 256 tokens')).toBe(true);
    // …then marked: which sentence was withdrawn, and the answer that stands.
    const marker = r.stdout.indexOf('withdrawn');
    expect(marker, r.stdout).toBeGreaterThan(0);
    const after = r.stdout.slice(marker);
    expect(after).toContain(UNSUPPORTED);
    expect(after).toMatch(
      /validated answer:\n\s*By default Quarry splits documents into chunks of 256 tokens \[\d\]\.\s*\n/,
    );
  });
});

describe('ask with an LLM, validation replacing the answer with an abstention', () => {
  const sentences = (n: string) => [`${UNSUPPORTED} [${n}]. `, `It also orbits Jupiter twice a day [${n}].`];

  it('off a terminal, prints only the abstention', async () => {
    replyWith(sentences);
    const r = await ask();
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain('(abstained)');
    for (const line of linesMentioning(r.stdout, 'titanium')) expect(line).toMatch(/^unsupported \(/);
  });

  it('streaming, says the whole streamed answer was withdrawn', async () => {
    replyWith(sentences);
    const r = await ask(['--stream']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout.startsWith(UNSUPPORTED)).toBe(true);
    const after = r.stdout.slice(r.stdout.indexOf('withdrawn'));
    expect(r.stdout.indexOf('withdrawn')).toBeGreaterThan(0);
    expect(after).toMatch(/answer above/);
    expect(after).toContain('(abstained)');
  });
});

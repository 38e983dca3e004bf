/**
 * A store holding the bundled sample docs, ingested once per test file, beside a fake OpenAI-compatible LLM
 * server (real HTTP on 127.0.0.1): the setup the LLM pipeline tests share.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, beforeEach } from 'vitest';
import { Quarry } from '../../src/pipeline/quarry.js';
import { type FakeLlmServer, startFakeOpenAIChatServer } from '../generate/llm/fake-openai-chat-server.js';

export const SAMPLES = path.resolve(import.meta.dirname, '../../samples/docs');

/** Registers the hooks; read `store` and `server` inside tests (they are set in beforeAll). */
export function useSamplesStoreWithLlm(prefix: string): {
  readonly store: string;
  readonly server: FakeLlmServer;
} {
  const state = {} as { store: string; server: FakeLlmServer };
  beforeAll(async () => {
    state.store = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
    const q = Quarry.open({ store: state.store });
    await q.ingest([SAMPLES]);
    q.close();
    state.server = await startFakeOpenAIChatServer();
  });
  afterAll(async () => {
    await state.server?.close();
    if (state.store) fs.rmSync(state.store, { recursive: true, force: true });
  });
  beforeEach(() => state.server.reset());
  return state;
}

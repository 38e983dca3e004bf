import { describe, expect, it } from 'vitest';
import { type AnthropicOptions, createAnthropicProvider } from '../../../src/generate/llm/anthropic.js';
import type { LlmRetryInfo } from '../../../src/generate/llm/transport.js';
import type { ChatMessage } from '../../../src/generate/llm/types.js';
import { countTokens } from '../../../src/ingest/tokens.js';
import { startFakeAnthropicServer } from './fake-anthropic-server.js';
import { asQuarryError, collect, FAST_RETRIES, failure, useFakeLlmServer } from './helpers.js';

const server = useFakeLlmServer(startFakeAnthropicServer);

const make = (o: Partial<AnthropicOptions> = {}) =>
  createAnthropicProvider({
    baseURL: server.url,
    apiKey: 'sk-ant-test',
    model: 'claude-sonnet-4-5',
    ...FAST_RETRIES,
    ...o,
  });

const messages: ChatMessage[] = [
  { role: 'system', content: 'Answer from the sources.' },
  { role: 'system', content: 'Cite as [n].' },
  { role: 'user', content: 'How are ingest batches written?' },
];

describe('Anthropic Messages: wire format and streaming', () => {
  it('sends system at top level, the version and key headers, max_tokens and stop_sequences', async () => {
    const p = make({ maxTokens: 400, stop: ['\n\nHuman:'] });
    expect(p.id).toBe('anthropic:claude-sonnet-4-5');
    await p.complete({ messages, temperature: 0.1 });
    const r = server.requests[0]!;
    expect(r.url).toBe('/v1/messages');
    expect(r.headers['x-api-key']).toBe('sk-ant-test');
    expect(r.headers['anthropic-version']).toBe('2023-06-01');
    expect(r.headers.authorization).toBeUndefined();
    expect(r.body).toEqual({
      model: 'claude-sonnet-4-5',
      max_tokens: 400,
      system: 'Answer from the sources.\n\nCite as [n].',
      messages: [{ role: 'user', content: 'How are ingest batches written?' }],
      temperature: 0.1,
      stop_sequences: ['\n\nHuman:'],
      stream: true,
    });
  });

  it('always sends the required max_tokens', async () => {
    await make().complete({ messages: [{ role: 'user', content: 'hi' }] });
    expect(server.requests[0]!.body.max_tokens).toBe(1024);
    expect(server.requests[0]!.body.system).toBeUndefined();
  });

  it('streams text deltas in order; usage from message_start and message_delta; cost by model prefix', async () => {
    server.queue({
      kind: 'reply',
      deltas: ['Each batch ', 'is one ', 'transaction.'],
      usage: { input: 2_000, output: 9 },
      model: 'claude-sonnet-4-5-20250929',
    });
    const r = await collect(make().stream({ messages }));
    expect(r.error).toBeUndefined();
    expect(r.deltas).toEqual(['Each batch ', 'is one ', 'transaction.']);
    expect(r.done).toEqual({
      type: 'done',
      finishReason: 'end_turn',
      model: 'claude-sonnet-4-5-20250929',
      usage: { inputTokens: 2_000, outputTokens: 9, costUsd: (2_000 * 3 + 9 * 15) / 1e6 },
    });
  });

  it('reports stop_sequence and max_tokens stop reasons', async () => {
    server.queue({ kind: 'reply', deltas: ['cut'], finishReason: 'max_tokens' });
    expect((await make().complete({ messages })).finishReason).toBe('max_tokens');
  });

  it('puts the JSON instruction in the system prompt in JSON mode', async () => {
    server.queue({ kind: 'reply', deltas: ['{"ok":', 'true}'] });
    const c = await make().complete({ messages, json: true });
    expect(JSON.parse(c.text)).toEqual({ ok: true });
    expect(server.requests[0]!.body.system).toMatch(/Cite as \[n\]\.\n\n.*JSON object/);
    expect(server.requests[0]!.body.response_format).toBeUndefined();
  });

  it('speaks the non-streaming Messages API', async () => {
    server.queue({ kind: 'reply', deltas: ['Whole ', 'reply'], finishReason: 'stop_sequence' });
    const c = await make({ stream: false }).complete({ messages });
    expect(c).toMatchObject({ text: 'Whole reply', finishReason: 'stop_sequence', attempts: 1 });
    expect(c.usage).toMatchObject({ inputTokens: 12, outputTokens: 2 });
    expect(server.requests[0]!.body.stream).toBeUndefined();
  });

  it('estimates usage when a compatible server sends none', async () => {
    server.queue({ kind: 'reply', deltas: ['no ', 'usage'], usage: null });
    const c = await make().complete({ messages });
    expect(c.usage.estimated).toBe(true);
    expect(c.usage.outputTokens).toBe(countTokens('no usage'));
  });
});

describe('Anthropic Messages: failures', () => {
  it('retries 529 overloaded honouring retry-after-ms', async () => {
    server.queue(
      { kind: 'status', status: 529, message: 'Overloaded', headers: { 'retry-after-ms': '30' } },
      { kind: 'reply', deltas: ['ok'] },
    );
    const retries: LlmRetryInfo[] = [];
    const c = await make({ onRetry: (i) => retries.push(i) }).complete({ messages });
    expect(c.attempts).toBe(2);
    expect(retries[0]).toMatchObject({ status: 529, delayMs: 30 });
    expect(retries[0]!.reason).toContain('Overloaded');
  });

  it('retries an overloaded_error event before output, not after', async () => {
    server.queue(
      { kind: 'error-event', after: [], errorType: 'overloaded_error', message: 'Overloaded' },
      { kind: 'reply', deltas: ['fine'] },
    );
    expect((await make().complete({ messages })).text).toBe('fine');
    server.reset();
    server.queue({
      kind: 'error-event',
      after: ['Each '],
      errorType: 'overloaded_error',
      message: 'Overloaded',
    });
    const r = await collect(make().stream({ messages }));
    const err = asQuarryError(r.error);
    expect(err.code).toBe('LLM_FAILED');
    expect(err.message).toContain('(overloaded_error): Overloaded');
    expect(err.details).toMatchObject({ partialText: 'Each ', errorType: 'overloaded_error' });
    expect(server.requests).toHaveLength(1);
  });

  it('does not retry an invalid_request_error event', async () => {
    server.queue({ kind: 'error-event', after: [], errorType: 'invalid_request_error', message: 'bad' });
    const err = await failure(make().complete({ messages }));
    expect(err.message).toContain('invalid_request_error');
    expect(server.requests).toHaveLength(1);
  });

  it('never retries a 401 and names the server message', async () => {
    server.queue({ kind: 'status', status: 401, message: 'invalid x-api-key' });
    const err = await failure(make().complete({ messages }));
    expect(err.message).toContain('HTTP 401');
    expect(err.message).toContain('invalid x-api-key');
    expect(server.requests).toHaveLength(1);
  });

  it('a mid-stream disconnect after output throws with the partial text', async () => {
    server.queue({ kind: 'disconnect', after: ['Each batch'] });
    const r = await collect(make().stream({ messages }));
    expect(r.deltas).toEqual(['Each batch']);
    expect(asQuarryError(r.error).details).toMatchObject({ partialText: 'Each batch', afterOutput: true });
    expect(server.requests).toHaveLength(1);
  });

  it('a malformed event is a protocol error', async () => {
    server.queue({ kind: 'malformed', after: ['Each'] });
    const r = await collect(make().stream({ messages }));
    const err = asQuarryError(r.error);
    expect(err.code).toBe('LLM_PROTOCOL');
    expect(err.message).toContain('"content_block_delta" event is not JSON');
    expect(err.details.partialText).toBe('Each');
  });

  it('times out a stall between events', async () => {
    server.queue({ kind: 'stall', after: ['Each'], ms: 10_000 });
    const r = await collect(make({ readTimeoutMs: 200 }).stream({ messages }));
    expect(asQuarryError(r.error).details).toMatchObject({ timeout: 'read', partialText: 'Each' });
  });
});

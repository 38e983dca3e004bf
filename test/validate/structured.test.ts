import { describe, expect, it } from 'vitest';
import { QuarryError } from '../../src/errors.js';
import type { ChatMessage } from '../../src/generate/llm/types.js';
import { compileJsonSchema, extractJson, generateStructured } from '../../src/validate/structured.js';
import { startFakeOpenAIChatServer } from '../generate/llm/fake-openai-chat-server.js';
import { failFastProvider, useFakeLlmServer } from '../generate/llm/helpers.js';

const server = useFakeLlmServer(startFakeOpenAIChatServer);

const provider = () => failFastProvider(server);

const reply = (text: string) => ({ kind: 'reply' as const, deltas: [text], format: 'json' as const });

const schema = {
  type: 'object',
  properties: {
    chunkTokens: { type: 'integer', minimum: 16 },
    overlapTokens: { type: 'integer', minimum: 0 },
    updated: { type: 'string', format: 'date' },
    mode: { enum: ['fixed', 'semantic'] },
  },
  required: ['chunkTokens', 'overlapTokens', 'mode'],
  additionalProperties: false,
};

const messages: ChatMessage[] = [
  { role: 'system', content: 'You extract chunking settings from documentation.' },
  { role: 'user', content: 'Chunks hold at most 256 tokens and overlap by 32 tokens, split at fixed sizes.' },
];

type Settings = { chunkTokens: number; overlapTokens: number; mode: string; updated?: string };

describe('generateStructured', () => {
  it('asks for JSON with the schema in the prompt and returns the validated value', async () => {
    server.queue(reply('{"chunkTokens": 256, "overlapTokens": 32, "mode": "fixed"}'));
    const r = await generateStructured<Settings>(provider(), messages, schema);
    expect(r.value).toEqual({ chunkTokens: 256, overlapTokens: 32, mode: 'fixed' });
    expect(r.attempts).toBe(1);
    expect(r.model).toBe('gpt-4o-mini');
    expect(server.requests).toHaveLength(1);
    const body = server.requests[0]!.body as {
      messages: ChatMessage[];
      response_format: unknown;
      temperature: number;
    };
    expect(body.response_format).toEqual({ type: 'json_object' });
    expect(body.temperature).toBe(0);
    expect(body.messages[0]!.role).toBe('system');
    expect(body.messages[0]!.content).toContain('You extract chunking settings');
    expect(body.messages[0]!.content).toContain(JSON.stringify(schema));
    expect(body.messages.slice(1)).toEqual([messages[1]]);
  });

  it('accepts a reply wrapped in a ```json fence', async () => {
    server.queue(reply('```json\n{"chunkTokens": 256, "overlapTokens": 32, "mode": "fixed"}\n```'));
    const r = await generateStructured<Settings>(provider(), messages, schema);
    expect(r.value.chunkTokens).toBe(256);
  });

  it('sends the validation errors back once and returns the corrected reply', async () => {
    server.queue(
      reply('{"chunkTokens": "256", "overlapTokens": 32, "mode": "sliding", "updated": "2024-13-45"}'),
      reply('{"chunkTokens": 256, "overlapTokens": 32, "mode": "fixed", "updated": "2024-06-01"}'),
    );
    const r = await generateStructured<Settings>(provider(), messages, schema);
    expect(r.attempts).toBe(2);
    expect(r.value).toEqual({ chunkTokens: 256, overlapTokens: 32, mode: 'fixed', updated: '2024-06-01' });
    expect(r.usage.inputTokens).toBe(24);
    const second = (server.requests[1]!.body as { messages: ChatMessage[] }).messages;
    expect(second).toHaveLength(4);
    expect(second[2]).toEqual({
      role: 'assistant',
      content: '{"chunkTokens": "256", "overlapTokens": 32, "mode": "sliding", "updated": "2024-13-45"}',
    });
    expect(second[3]!.role).toBe('user');
    expect(second[3]!.content).toContain('/chunkTokens: must be integer');
    expect(second[3]!.content).toContain(
      '/mode: must be equal to one of the allowed values: "fixed", "semantic"',
    );
    expect(second[3]!.content).toContain('/updated: must match format "date"');
  });

  it('treats a reply that is not JSON as a failed attempt', async () => {
    server.queue(
      reply('Sure! The chunk size is 256 tokens.'),
      reply('{"chunkTokens": 256, "overlapTokens": 32, "mode": "fixed"}'),
    );
    const r = await generateStructured<Settings>(provider(), messages, schema);
    expect(r.attempts).toBe(2);
    const second = (server.requests[1]!.body as { messages: ChatMessage[] }).messages;
    expect(second[3]!.content).toContain('(root): is not valid JSON');
  });

  it('fails with the schema errors after the second invalid reply, without a third request', async () => {
    server.queue(
      reply('{"chunkTokens": 8, "overlapTokens": 32}'),
      reply('{"chunkTokens": 8, "overlapTokens": 32, "mode": "fixed", "extra": true}'),
      reply('{"chunkTokens": 256, "overlapTokens": 32, "mode": "fixed"}'),
    );
    const err = await generateStructured(provider(), messages, schema).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(QuarryError);
    const q = err as QuarryError;
    expect(q.code).toBe('LLM_OUTPUT_INVALID');
    expect(q.message).toContain('/chunkTokens must be >= 16');
    expect(q.message).toContain('must NOT have additional properties: "extra"');
    expect(q.details.problems).toHaveLength(2);
    expect(q.details.problems).toEqual(
      expect.arrayContaining([
        { path: '/chunkTokens', message: 'must be >= 16' },
        { path: '', message: 'must NOT have additional properties: "extra"' },
      ]),
    );
    expect(server.requests).toHaveLength(2);
  });

  it('rejects an invalid schema before calling the model', async () => {
    for (const bad of [{ type: 'strng' }, { properties: { a: { minimum: 'ten' } } }, [] as unknown]) {
      const err = await generateStructured(provider(), messages, bad as Record<string, unknown>).catch(
        (e: unknown) => e,
      );
      expect((err as QuarryError).code).toBe('INVALID_ARGUMENT');
    }
    expect(server.requests).toHaveLength(0);
  });

  it('passes provider errors through without a corrective retry', async () => {
    server.queue({ kind: 'status', status: 400, message: 'response_format is not supported by this model' });
    const err = (await generateStructured(provider(), messages, schema).catch(
      (e: unknown) => e,
    )) as QuarryError;
    expect(err).toBeInstanceOf(QuarryError);
    expect(err.code).not.toBe('LLM_OUTPUT_INVALID');
    expect(server.requests).toHaveLength(1);
  });
});

describe('schemas and JSON extraction', () => {
  it('selects the draft from $schema', () => {
    const tuple = compileJsonSchema({
      $schema: 'https://json-schema.org/draft/2020-12/schema',
      type: 'array',
      prefixItems: [{ type: 'integer' }, { type: 'string' }],
      items: false,
    });
    expect(tuple([256, 'tokens'])).toEqual([]);
    expect(tuple([256, 'tokens', 'extra']).length).toBeGreaterThan(0);
  });

  it('extracts JSON from a bare or fenced reply and nothing else', () => {
    expect(extractJson('  {"a": 1}\n')).toEqual({ a: 1 });
    expect(extractJson('```\n{"a": 1}\n```')).toEqual({ a: 1 });
    expect(extractJson('```JSON\n[1, 2]\n```')).toEqual([1, 2]);
    expect(() => extractJson('The answer is {"a": 1}')).toThrow(SyntaxError);
  });
});

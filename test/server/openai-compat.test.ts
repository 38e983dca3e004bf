/**
 * Quarry as an OpenAI model: the official `openai` npm client against the running server, for
 * `chat.completions.create` (plain and streaming), `models.list`, and the client's own error type for a
 * refused request. Citations arrive in the documented `quarry` extra field.
 */
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HANDBOOK, startTestServer, type TestServer } from './harness.js';

let t: TestServer;
let client: OpenAI;

beforeAll(async () => {
  t = await startTestServer({
    docs: HANDBOOK.filter((d) => d.access === undefined),
    keys: [{ name: 'app', scopes: ['query'] }],
  });
  client = new OpenAI({ baseURL: `${t.url}/v1`, apiKey: t.keys.app!, maxRetries: 0 });
});
afterAll(async () => {
  await t?.close();
});

type QuarryExtra = {
  quarry: { queryId: string; citations: Array<{ docId: string; quote: string }>; abstained: boolean };
};

describe('the official openai client', () => {
  it('lists Quarry as a model', async () => {
    const models = await client.models.list();
    expect(models.data.map((m) => m.id)).toEqual(['quarry']);
  });

  it('creates a chat completion with citations in the quarry field', async () => {
    const c = await client.chat.completions.create({
      model: 'quarry',
      messages: [
        { role: 'system', content: 'You answer from the handbook.' },
        { role: 'user', content: 'The ferry to Islay leaves Kennacraig at what times every day?' },
      ],
    });
    expect(c.object).toBe('chat.completion');
    expect(c.choices[0]!.message.content).toMatch(/07:00/);
    expect(c.choices[0]!.finish_reason).toBe('stop');
    const extra = (c as unknown as QuarryExtra).quarry;
    expect(extra.abstained).toBe(false);
    expect(extra.citations[0]!.docId).toBe('ferry');
    expect(typeof c.usage!.total_tokens).toBe('number');
    // The query id leads to the stored trace.
    const trace = await t.call('GET', `/v1/traces/${extra.queryId}`, { key: t.keys.app });
    expect(trace.body.kind).toBe('chat');
  });

  it('streams a chat completion; the last chunk carries the citations, then [DONE]', async () => {
    const stream = await client.chat.completions.create({
      model: 'quarry',
      stream: true,
      stream_options: { include_usage: true },
      messages: [{ role: 'user', content: 'Within how many working days are refunds paid back?' }],
    });
    let text = '';
    const chunks: unknown[] = [];
    for await (const chunk of stream) {
      chunks.push(chunk);
      text += chunk.choices[0]?.delta?.content ?? '';
    }
    expect(text).toMatch(/five working days/);
    const last = chunks.at(-1) as {
      choices: Array<{ finish_reason: string }>;
      usage?: unknown;
    } & QuarryExtra;
    expect(last.choices[0]!.finish_reason).toBe('stop');
    expect(last.quarry.citations[0]!.docId).toBe('refunds');
    expect(last.usage).toBeDefined();
  });

  it('a wrong key surfaces as the client’s AuthenticationError; an unknown model as NotFoundError', async () => {
    const bad = new OpenAI({ baseURL: `${t.url}/v1`, apiKey: 'qk_0000000000000000_nope', maxRetries: 0 });
    await expect(bad.models.list()).rejects.toBeInstanceOf(OpenAI.AuthenticationError);
    await expect(
      client.chat.completions.create({ model: 'gpt-4', messages: [{ role: 'user', content: 'hi' }] }),
    ).rejects.toBeInstanceOf(OpenAI.NotFoundError);
    await expect(
      client.chat.completions.create({ model: 'quarry', messages: [{ role: 'assistant', content: 'hi' }] }),
    ).rejects.toBeInstanceOf(OpenAI.BadRequestError);
  });
});

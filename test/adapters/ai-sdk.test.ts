/**
 * quarry/ai-sdk against the real AI SDK (`generateText`, `streamText`) and a real OpenAI-compatible provider
 * (@ai-sdk/openai-compatible) talking HTTP to a fake chat-completions server on 127.0.0.1: the model's tool
 * call runs against a real store, and its result is what the model's next request carries. The fake's
 * failures (500, 429) surface as the AI SDK's own errors, promptly.
 */
import { createOpenAICompatible } from '@ai-sdk/openai-compatible';
import { APICallError, generateText, RetryError, stepCountIs, streamText } from 'ai';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { userPrincipal } from '../../src/access/principal.js';
import {
  type QuarryAskToolOutput,
  type QuarrySearchToolOutput,
  quarryTools,
} from '../../src/adapters/ai-sdk.js';
import { type FakeLlmServer, startFakeOpenAIChatServer } from '../generate/llm/fake-openai-chat-server.js';
import { FERRY, useAdapterStore } from './store.js';

const created = 1_700_000_000;

/** A chat completion whose message calls one tool, as OpenAI sends it. */
function toolCallCompletion(id: string, name: string, args: Record<string, unknown>) {
  return {
    id: 'chatcmpl-tools',
    object: 'chat.completion',
    created,
    model: 'fake-model',
    choices: [
      {
        index: 0,
        message: {
          role: 'assistant',
          content: null,
          tool_calls: [{ id, type: 'function', function: { name, arguments: JSON.stringify(args) } }],
        },
        finish_reason: 'tool_calls',
        logprobs: null,
      },
    ],
    usage: { prompt_tokens: 40, completion_tokens: 12, total_tokens: 52 },
  };
}

/** The same tool call as OpenAI streams it: the call's id and name, then its arguments in two deltas. */
function toolCallChunks(id: string, name: string, args: Record<string, unknown>) {
  const json = JSON.stringify(args);
  const chunk = (delta: unknown, finish: string | null = null) => ({
    id: 'chatcmpl-tools',
    object: 'chat.completion.chunk',
    created,
    model: 'fake-model',
    choices: [{ index: 0, delta, finish_reason: finish }],
  });
  const half = Math.floor(json.length / 2);
  return [
    chunk({
      role: 'assistant',
      content: null,
      tool_calls: [{ index: 0, id, type: 'function', function: { name, arguments: '' } }],
    }),
    chunk({ tool_calls: [{ index: 0, function: { arguments: json.slice(0, half) } }] }),
    chunk({ tool_calls: [{ index: 0, function: { arguments: json.slice(half) } }] }),
    chunk({}, 'tool_calls'),
  ];
}

interface WireMessage {
  role: string;
  content?: string | null;
  tool_call_id?: string;
  tool_calls?: Array<{ id: string; function: { name: string; arguments: string } }>;
}

/** The tool message a request carries back to the model for `callId`, parsed. */
function toolMessage(body: Record<string, unknown>, callId: string): unknown {
  const messages = body.messages as WireMessage[];
  const msg = messages.find((m) => m.role === 'tool' && m.tool_call_id === callId);
  expect(msg, `a tool message for ${callId} in ${JSON.stringify(messages)}`).toBeDefined();
  return JSON.parse(msg!.content!);
}

describe('quarryTools (AI SDK)', () => {
  const ctx = useAdapterStore('quarry-ai-sdk-', { islay: true });
  let fake: FakeLlmServer;
  let model: ReturnType<ReturnType<typeof createOpenAICompatible>>;

  beforeAll(async () => {
    fake = await startFakeOpenAIChatServer();
    model = createOpenAICompatible({ name: 'fake', baseURL: fake.url, apiKey: 'sk-test' })('fake-model');
  });
  afterAll(async () => {
    await fake?.close();
  });
  beforeEach(() => fake.reset());

  it("generateText: the model calls search, Quarry answers it, and the result is in the model's next request", async () => {
    fake.queue(
      {
        kind: 'json',
        body: toolCallCompletion('call_search_1', 'search', { query: 'ferry Kennacraig', k: 3 }),
      },
      { kind: 'reply', deltas: ['The ferry leaves Kennacraig at 07:00 (timetables/islay.md).'] },
    );
    const result = await generateText({
      model,
      tools: quarryTools(ctx.quarry),
      stopWhen: stepCountIs(3),
      maxRetries: 0,
      prompt: 'When does the ferry leave Kennacraig? Cite your source.',
    });
    expect(result.text).toBe('The ferry leaves Kennacraig at 07:00 (timetables/islay.md).');
    expect(result.steps).toHaveLength(2);

    // The tool ran against the store.
    const [toolResult] = result.steps[0]!.toolResults;
    expect(toolResult).toMatchObject({ toolName: 'search', toolCallId: 'call_search_1' });
    const output = toolResult!.output as QuarrySearchToolOutput;
    expect(output.results).toHaveLength(3);
    expect(output.results[0]).toMatchObject({
      rank: 1,
      docId: FERRY.id,
      source: 'timetables/islay.md',
      title: 'Islay ferries',
      sectionPath: ['Islay ferries', 'Kennacraig'],
    });
    expect(output.results[0]!.text).toContain('leaves Kennacraig at 07:00');
    const doc = ctx.quarry.getDocument(FERRY.id)!;
    expect(doc.text.slice(output.results[0]!.start, output.results[0]!.end)).toBe(output.results[0]!.text);

    // On the wire: the first request offered both tools with their JSON schemas; the second carried the result.
    expect(fake.requests).toHaveLength(2);
    const tools = fake.requests[0]!.body.tools as Array<{
      type: string;
      function: { name: string; description: string; parameters: { properties: Record<string, unknown> } };
    }>;
    expect(tools.map((t) => t.function.name).sort()).toEqual(['ask', 'search']);
    const search = tools.find((t) => t.function.name === 'search')!.function;
    expect(search.description).toMatch(/source/);
    expect(Object.keys(search.parameters.properties).sort()).toEqual(['filter', 'k', 'query']);
    const sent = fake.requests[1]!.body;
    const assistant = (sent.messages as WireMessage[]).find((m) => m.role === 'assistant')!;
    expect(assistant.tool_calls![0]!.function.name).toBe('search');
    expect(toolMessage(sent, 'call_search_1')).toEqual(output);
  });

  it('the ask tool hands the model a cited answer', async () => {
    fake.queue(
      {
        kind: 'json',
        body: toolCallCompletion('call_ask_1', 'ask', {
          question: 'What time does the ferry leave Kennacraig?',
        }),
      },
      { kind: 'reply', deltas: ['At 07:00 on weekdays.'] },
    );
    const result = await generateText({
      model,
      tools: quarryTools(ctx.quarry),
      stopWhen: stepCountIs(3),
      maxRetries: 0,
      prompt: 'What time does the ferry leave Kennacraig?',
    });
    expect(result.text).toBe('At 07:00 on weekdays.');
    const answer = toolMessage(fake.requests[1]!.body, 'call_ask_1') as QuarryAskToolOutput;
    expect(answer.abstained).toBe(false);
    expect(answer.answer).toMatch(/07:00/);
    expect(answer.answer).toMatch(/\[1\]/);
    expect(answer.citations[0]).toMatchObject({ marker: 1, docId: FERRY.id, source: 'timetables/islay.md' });
    for (const c of answer.citations) {
      const text = ctx.quarry.getDocument(c.docId)!.text;
      expect(text.slice(c.start, c.end)).toBe(c.quote);
    }
  });

  it('streamText: a streamed tool call runs the tool, then the answer streams', async () => {
    fake.queue(
      { kind: 'sse', events: toolCallChunks('call_stream_1', 'search', { query: 'spring tide Port Ellen' }) },
      { kind: 'reply', deltas: ['The spring tide ', 'rises 1.2 metres.'] },
    );
    const stream = streamText({
      model,
      tools: quarryTools(ctx.quarry, { k: 2 }),
      stopWhen: stepCountIs(3),
      maxRetries: 0,
      prompt: 'How high is the spring tide at Port Ellen?',
    });
    let text = '';
    for await (const delta of stream.textStream) text += delta;
    expect(text).toBe('The spring tide rises 1.2 metres.');
    const sent = toolMessage(fake.requests[1]!.body, 'call_stream_1') as QuarrySearchToolOutput;
    expect(sent.results).toHaveLength(2);
    expect(sent.results[0]!.docId).toBe('islay-tides');
    expect(fake.requests[0]!.body.stream).toBe(true);
  });

  it("keeps the application's principal and base filter whatever the model asks", async () => {
    const run = (
      tools: ReturnType<typeof quarryTools>,
      input: { query: string; filter?: Record<string, unknown> },
    ) =>
      tools.search.execute!(input, { toolCallId: 'direct', messages: [] }) as Promise<QuarrySearchToolOutput>;
    const query = 'harbour master emergency code pier gate';
    const anonymous = await run(quarryTools(ctx.quarry, { k: 20 }), { query });
    expect(anonymous.results.map((r) => r.docId)).not.toContain('harbour-code');
    // The model cannot filter its way to a document the principal may not read.
    expect((await run(quarryTools(ctx.quarry), { query, filter: { topic: 'harbour' } })).results).toEqual([]);
    const staff = quarryTools(ctx.quarry, { principal: userPrincipal({ groups: ['harbour-staff'] }) });
    expect((await run(staff, { query })).results[0]!.docId).toBe('harbour-code');

    // The model's filter narrows the application's, never widens it.
    const islandOnly = quarryTools(ctx.quarry, { filter: { topic: { $in: ['ferries', 'tides'] } } });
    const narrowed = await run(islandOnly, { query: 'Port Ellen', filter: { topic: 'tides' } });
    expect(narrowed.results.map((r) => r.docId)).toEqual(['islay-tides']);
    const wider = {
      query: 'Port Ellen tide ingest',
      filter: { $or: [{ topic: 'tides' }, { doc_type: 'guide' }] },
    };
    expect((await run(quarryTools(ctx.quarry), wider)).results.length).toBeGreaterThan(1);
    expect((await run(islandOnly, wider)).results.map((r) => r.docId)).toEqual(['islay-tides']);
    expect(() => quarryTools(ctx.quarry, { filter: { year: { $bogus: 1 } } })).toThrow(
      /Invalid metadata filter/,
    );
  });

  it('an HTTP 500 from the model surfaces as APICallError at once (no retry with maxRetries 0)', async () => {
    fake.queue({ kind: 'status', status: 500, message: 'upstream exploded' });
    const started = performance.now();
    const err = await generateText({
      model,
      tools: quarryTools(ctx.quarry),
      maxRetries: 0,
      prompt: 'anything',
    }).catch((e: unknown) => e);
    expect(APICallError.isInstance(err)).toBe(true);
    expect((err as APICallError).statusCode).toBe(500);
    expect((err as Error).message).toMatch(/upstream exploded/);
    expect(fake.requests).toHaveLength(1);
    expect(performance.now() - started).toBeLessThan(5_000);
  });

  it('429s are retried as the AI SDK does, honouring retry-after; the last one surfaces as RetryError', async () => {
    const limited = {
      kind: 'status',
      status: 429,
      message: 'slow down',
      headers: { 'retry-after-ms': '20' },
    } as const;
    fake.queue(limited, limited);
    const started = performance.now();
    const err = await generateText({
      model,
      tools: quarryTools(ctx.quarry),
      maxRetries: 1,
      prompt: 'x',
    }).catch((e: unknown) => e);
    expect(RetryError.isInstance(err)).toBe(true);
    const last = (err as RetryError).lastError;
    expect(APICallError.isInstance(last)).toBe(true);
    expect((last as APICallError).statusCode).toBe(429);
    expect(fake.requests).toHaveLength(2);
    // retry-after-ms (20 ms) was honoured: the SDK's own first backoff is 2 s.
    expect(performance.now() - started).toBeLessThan(1_500);

    // A 429 then a good answer: the retry succeeds.
    fake.reset();
    fake.queue(limited, { kind: 'reply', deltas: ['fine now'] });
    const ok = await generateText({ model, tools: quarryTools(ctx.quarry), maxRetries: 1, prompt: 'x' });
    expect(ok.text).toBe('fine now');
    expect(fake.requests).toHaveLength(2);
  });

  it('a failure after the tool ran still surfaces; nothing hangs', async () => {
    fake.queue(
      { kind: 'json', body: toolCallCompletion('call_search_2', 'search', { query: 'ferry' }) },
      { kind: 'status', status: 500, message: 'failed on the second step' },
    );
    const err = await generateText({
      model,
      tools: quarryTools(ctx.quarry),
      stopWhen: stepCountIs(3),
      maxRetries: 0,
      prompt: 'ferry?',
    }).catch((e: unknown) => e);
    expect(APICallError.isInstance(err)).toBe(true);
    expect((err as Error).message).toMatch(/failed on the second step/);
    // The second request was made, so the tool had run and its result was on its way to the model.
    expect(fake.requests).toHaveLength(2);
    expect(
      (toolMessage(fake.requests[1]!.body, 'call_search_2') as QuarrySearchToolOutput).results[0]!.docId,
    ).toBe(FERRY.id);
  });
});

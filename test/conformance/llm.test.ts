/**
 * Every LLM passes the same suite: the OpenAI chat and Anthropic Messages providers against real HTTP
 * servers speaking their wire formats, and an LLM object a library user writes.
 */
import { describe, expect, it } from 'vitest';
import { createAnthropicProvider } from '../../src/generate/llm/anthropic.js';
import { createOpenAIChatProvider } from '../../src/generate/llm/openai-chat.js';
import type { GenerateRequest, LanguageModel, LlmEvent } from '../../src/index.js';
import { startFakeAnthropicServer } from '../generate/llm/fake-anthropic-server.js';
import { startFakeOpenAIChatServer } from '../generate/llm/fake-openai-chat-server.js';
import { useFakeLlmServer } from '../generate/llm/helpers.js';
import { CORPUS, openWith } from './corpus.js';
import { llmConformance, REPLY } from './llm.js';

const openaiServer = useFakeLlmServer(startFakeOpenAIChatServer);
const anthropicServer = useFakeLlmServer(startFakeAnthropicServer);
const fast = { maxRetries: 0, connectTimeoutMs: 5_000, readTimeoutMs: 5_000, circuitBreaker: false } as const;

llmConformance('OpenAI chat completions (HTTP)', {
  make() {
    openaiServer.respond = () => ({ kind: 'reply', deltas: REPLY });
    return createOpenAIChatProvider({
      baseURL: openaiServer.url,
      apiKey: 'sk',
      model: 'gpt-4o-mini',
      ...fast,
    });
  },
  failing: () =>
    createOpenAIChatProvider({ baseURL: 'http://127.0.0.1:9/v1', model: 'gpt-4o-mini', ...fast }),
});

llmConformance('Anthropic Messages (HTTP)', {
  make() {
    anthropicServer.respond = () => ({ kind: 'reply', deltas: REPLY });
    return createAnthropicProvider({
      baseURL: anthropicServer.url,
      apiKey: 'k',
      model: 'claude-sonnet-4-5',
      ...fast,
    });
  },
});

/** What a library user writes around their own model: `say` decides the reply. */
function userLlm(say: (req: GenerateRequest) => string[], broken = false): LanguageModel {
  const stream = async function* (req: GenerateRequest): AsyncGenerator<LlmEvent> {
    req.signal?.throwIfAborted();
    if (broken) throw new Error('model server down');
    const words = say(req);
    for (const text of words) {
      req.signal?.throwIfAborted();
      yield { type: 'delta', text };
    }
    yield {
      type: 'done',
      finishReason: 'stop',
      model: 'mine',
      usage: { inputTokens: 10, outputTokens: words.length },
    };
  };
  return {
    id: 'user:my-model',
    model: 'mine',
    contextWindow: 4096,
    stream,
    async complete(req) {
      let text = '';
      let usage = { inputTokens: 0, outputTokens: 0 };
      for await (const e of stream(req)) {
        if (e.type === 'delta') text += e.text;
        else usage = e.usage;
      }
      return { text, finishReason: 'stop', model: 'mine', usage, attempts: 1 };
    },
  };
}

llmConformance('user-written object', {
  make: () => userLlm(() => REPLY),
  failing: () => userLlm(() => REPLY, true),
});

describe('a user LLM writes the answer', () => {
  it('its text is the answer, and the prompt it gets carries the retrieved sources', async () => {
    const prompts: string[] = [];
    const llm = userLlm((req) => {
      prompts.push(req.messages.map((m) => m.content).join('\n'));
      return ['On Fridays there is a pizza buffet [1].'];
    });
    const q = openWith({ llm });
    try {
      await q.quarry.addDocuments(CORPUS);
      const answer = await q.quarry.ask('Is there pizza on Fridays in the cafeteria?');
      expect(answer.text).toBe('On Fridays there is a pizza buffet [1].');
      expect(answer.answerer).toBe('user:my-model');
      expect(answer.citations[0]!.docId).toBe('lunch');
      expect(prompts).toHaveLength(1);
      expect(prompts[0]).toContain('The cafeteria serves lunch from noon until two.');
    } finally {
      q.close();
    }
  });
});

/**
 * OpenAI-compatible `POST /v1/chat/completions` and `GET /v1/models`, so chat UIs and OpenAI SDKs can use
 * Quarry as a model. The model name picks the collection (`quarry` = default, `quarry/<collection>`); the
 * last user message is the question (earlier turns are not used for retrieval). Citations ride in the
 * extra `quarry` field: on the completion, or on the last chunk when streaming. If a streamed LLM answer is
 * withdrawn midway (the LLM failed and the extractive answerer took over), the replacement follows the
 * streamed text after a blank line and the last chunk says `quarry.replaced: true`.
 */
import type { FastifyInstance } from 'fastify';
import type { z } from 'zod';
import { QuarryError } from '../../errors.js';
import type { Answer } from '../../types.js';
import { defineRoute } from '../route.js';
import {
  ChatCompletionRequest,
  ChatCompletionResponse,
  type ChatMessage,
  ModelsResponse,
} from '../schemas.js';
import { openSse, runStream, type StreamProtocol } from '../sse.js';
import type { ServerState } from '../state.js';
import { answerRecord, assigned, requestOptions } from './query.js';
import { recordUsage } from './usage.js';

const MODEL = /^quarry(?:\/([a-z0-9][a-z0-9_-]{0,63}))?$/;

function collectionOf(model: string): string | undefined {
  const m = MODEL.exec(model);
  if (m === null)
    throw new QuarryError(
      'NOT_FOUND',
      `no model "${model}": use "quarry" or "quarry/<collection>" (see GET /v1/models)`,
      {
        model,
      },
    );
  return m[1];
}

function questionOf(messages: Array<z.infer<typeof ChatMessage>>): string {
  for (let i = messages.length - 1; i >= 0; i--) {
    const m = messages[i]!;
    if (m.role !== 'user') continue;
    const c = m.content;
    const text =
      typeof c === 'string'
        ? c
        : Array.isArray(c)
          ? c
              .filter((p) => p.type === 'text' && typeof p.text === 'string')
              .map((p) => p.text)
              .join('\n')
          : '';
    if (text.trim() !== '') return text;
  }
  throw new QuarryError('INVALID_ARGUMENT', 'messages: no user message with text content');
}

function extension(queryId: string, a: Answer) {
  return {
    queryId,
    citations: a.citations,
    abstained: a.abstained,
    confidence: a.confidence,
    answerer: a.answerer,
    degraded: a.degraded,
    ...(a.validation === undefined ? {} : { validation: a.validation }),
  };
}

function usageOf(a: Answer) {
  const input = a.usage?.inputTokens ?? 0;
  const output = a.usage?.outputTokens ?? 0;
  return { prompt_tokens: input, completion_tokens: output, total_tokens: input + output };
}

export function registerChatRoutes(app: FastifyInstance, s: ServerState): void {
  defineRoute(
    app,
    s.registry,
    {
      method: 'GET',
      url: '/v1/models',
      summary: 'Models (one per collection the key can use), OpenAI-compatible',
      tag: 'openai',
      scope: 'query',
      response: ModelsResponse,
    },
    async ({ principal }) => ({
      object: 'list',
      data: s.collections.list(principal).map((c) => ({
        id: c.name === 'default' ? 'quarry' : `quarry/${c.name}`,
        object: 'model',
        created: Math.floor(Date.parse(c.createdAt) / 1000),
        owned_by: c.tenant,
      })),
    }),
  );

  defineRoute(
    app,
    s.registry,
    {
      method: 'POST',
      url: '/v1/chat/completions',
      summary: 'Chat completion answered by Quarry with citations (OpenAI-compatible; streaming or not)',
      tag: 'openai',
      scope: 'query',
      work: 'query',
      body: ChatCompletionRequest,
      response: ChatCompletionResponse,
      streams: true,
    },
    async ({ body, principal, request, reply }) => {
      const collection = collectionOf(body.model);
      const question = questionOf(body.messages);
      const { quarry, info, variant } = assigned(s, principal, request, reply, collection);
      const queryId = s.records.newId();
      const id = `chatcmpl-${queryId.replace(/-/g, '')}`;
      const created = Math.floor(Date.now() / 1000);
      const options = requestOptions(s, {}, principal);
      const started = performance.now();
      const save = (a: Answer) => {
        s.variants.observe(variant, '/v1/chat/completions', (performance.now() - started) / 1000, a);
        s.records.save(principal, {
          id: queryId,
          collection: info.name,
          kind: 'chat',
          query: question,
          body: { ...answerRecord(a), variant },
        });
        recordUsage(s, request, a.usage);
      };
      if (body.stream !== true) {
        const a = await quarry.ask(question, options);
        save(a);
        return {
          id,
          object: 'chat.completion',
          created,
          model: body.model,
          choices: [
            {
              index: 0,
              message: { role: 'assistant', content: a.text },
              finish_reason: 'stop',
              logprobs: null,
            },
          ],
          usage: usageOf(a),
          quarry: extension(queryId, a),
        };
      }
      const sse = openSse(reply);
      const chunk = (
        delta: Record<string, unknown>,
        finish: string | null,
        extra: Record<string, unknown> = {},
      ) => ({
        id,
        object: 'chat.completion.chunk',
        created,
        model: body.model,
        choices: [{ index: 0, delta, finish_reason: finish, logprobs: null }],
        ...extra,
      });
      const t0 = performance.now();
      let streamed = '';
      let replaced = false;
      const protocol: StreamProtocol = {
        error: (x, _err, d) =>
          x.send(undefined, { error: { ...d, type: 'server_error', requestId: request.id } }),
        end: (x) => x.send(undefined, '[DONE]'),
      };
      await runStream(s, sse, protocol, async () => {
        await sse.send(undefined, chunk({ role: 'assistant', content: '' }, null));
        for await (const e of quarry.askStream(question, { ...options, signal: sse.signal })) {
          if (sse.closed) break;
          if (e.type === 'delta') {
            if (streamed === '')
              s.metrics.ttft.observe({ route: '/v1/chat/completions' }, (performance.now() - t0) / 1000);
            streamed += e.text;
            await sse.send(undefined, chunk({ content: e.text }, null));
          } else if (e.type === 'reset') {
            replaced = streamed !== '';
          } else if (e.type === 'answer') {
            const a = e.answer;
            save(a);
            // The extractive answerer streams nothing; a withdrawn LLM answer is followed by its replacement.
            if (streamed === '' || replaced) {
              if (streamed === '')
                s.metrics.ttft.observe({ route: '/v1/chat/completions' }, (performance.now() - t0) / 1000);
              await sse.send(undefined, chunk({ content: replaced ? `\n\n${a.text}` : a.text }, null));
            }
            await sse.send(
              undefined,
              chunk({}, 'stop', {
                quarry: { ...extension(queryId, a), ...(replaced ? { replaced: true } : {}) },
                ...(body.stream_options?.include_usage ? { usage: usageOf(a) } : {}),
              }),
            );
          }
        }
      });
    },
  );
}

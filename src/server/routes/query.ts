/**
 * `POST /v1/search` and `POST /v1/ask` (JSON, or Server-Sent Events when asked for): the pipeline over HTTP
 * for the request's principal, each request recorded under a query id for its trace and feedback.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { z } from 'zod';
import type { Principal } from '../../access/principal.js';
import type { AskOptions, SearchOptions, SearchResult } from '../../pipeline/options.js';
import type { Answer } from '../../types.js';
import { defineRoute } from '../route.js';
import { AskRequest, AskResponse, type RetrievalOptions, SearchRequest, SearchResponse } from '../schemas.js';
import { openSse, quarryEvents, runStream, wantsStream } from '../sse.js';
import type { ServerState } from '../state.js';
import { recordUsage } from './usage.js';

type Retrieval = z.infer<typeof RetrievalOptions>;

/** Library options for a request: what the body asked for, the principal, and the server's deadline. */
export function requestOptions(s: ServerState, b: Retrieval, principal: Principal): AskOptions {
  const budgetMs = Math.min(b.budgetMs ?? s.config.requestTimeoutMs, s.config.requestTimeoutMs);
  return {
    principal,
    trace: true,
    budgetMs,
    ...(b.k === undefined ? {} : { k: b.k }),
    ...(b.filter === undefined ? {} : { filter: b.filter }),
    ...(b.retriever === undefined ? {} : { retriever: b.retriever }),
    ...(b.reranker === undefined ? {} : { reranker: b.reranker }),
    ...(b.collapseDocuments === undefined ? {} : { collapseDocuments: b.collapseDocuments }),
    ...(b.typos === undefined ? {} : { typos: b.typos }),
    ...(b.cache === undefined ? {} : { cache: b.cache }),
  } as AskOptions & { principal: Principal };
}

/** What a stored query record keeps of an answer: enough for the trace view and feedback. */
export function answerRecord(a: Answer): Record<string, unknown> {
  return {
    trace: a.trace,
    answer: { text: a.text, abstained: a.abstained, confidence: a.confidence, answerer: a.answerer },
    citations: a.citations.map((c) => ({ marker: c.marker, docId: c.docId, chunkId: c.chunkId })),
    hits: a.hits.map((h) => ({ rank: h.rank, docId: h.document.id, chunkId: h.chunk.id, score: h.score })),
    degraded: a.degraded,
    usage: a.usage,
    // Citation validity as the variant summary counts it.
    checks: {
      unsupported: a.validation?.unsupported.length ?? 0,
      unknownMarkers: a.validation?.unknownMarkers.length ?? 0,
    },
  };
}

/** What a stored query record keeps of a search: its trace, hits and degradations. */
export function searchRecord(r: SearchResult): Record<string, unknown> {
  return {
    trace: r.trace,
    hits: r.hits.map((h) => ({ rank: h.rank, docId: h.document.id, chunkId: h.chunk.id, score: h.score })),
    degraded: r.degraded,
  };
}

/**
 * The collection a query request names, resolved for its principal, and the A/B variant that answers it
 * (announced in `x-quarry-variant` when a canary is configured).
 */
export function assigned(
  s: ServerState,
  principal: Principal,
  request: FastifyRequest,
  reply: FastifyReply,
  collection: string | undefined,
) {
  const { quarry: current, info } = s.collections.get(principal, collection);
  const { variant, quarry } = s.variants.assign(principal, request, info.name, current);
  if (s.variants.enabled) reply.header('x-quarry-variant', variant);
  return { quarry, info, variant };
}

export function registerQueryRoutes(app: FastifyInstance, s: ServerState): void {
  defineRoute(
    app,
    s.registry,
    {
      method: 'POST',
      url: '/v1/search',
      summary: 'Search a collection: hybrid retrieval, fusion, reranking; hits with per-retriever scores',
      tag: 'query',
      scope: 'query',
      work: 'query',
      body: SearchRequest,
      response: SearchResponse,
    },
    async ({ body, principal, request, reply }) => {
      const { quarry, info, variant } = assigned(s, principal, request, reply, body.collection);
      const queryId = s.records.newId();
      const options: SearchOptions = requestOptions(s, body, principal);
      const t0 = performance.now();
      const result = await quarry.search(body.query, options);
      s.variants.observe(variant, '/v1/search', (performance.now() - t0) / 1000);
      recordUsage(s, request, result.usage);
      s.records.save(principal, {
        id: queryId,
        collection: info.name,
        kind: 'search',
        query: body.query,
        body: { ...searchRecord(result), variant },
      });
      return {
        queryId,
        ...(s.variants.enabled ? { variant } : {}),
        ...result,
        trace: body.trace === true ? result.trace : undefined,
      };
    },
  );

  defineRoute(
    app,
    s.registry,
    {
      method: 'POST',
      url: '/v1/ask',
      summary: 'Answer a question with citations (JSON, or Server-Sent Events with stream: true)',
      tag: 'query',
      scope: 'query',
      work: 'query',
      body: AskRequest,
      response: AskResponse,
      streams: true,
    },
    async ({ body, principal, request, reply }) => {
      const { quarry, info, variant } = assigned(s, principal, request, reply, body.collection);
      const queryId = s.records.newId();
      const options: AskOptions = {
        ...requestOptions(s, body, principal),
        ...(body.jsonSchema === undefined ? {} : { jsonSchema: body.jsonSchema }),
      };
      const t0 = performance.now();
      const finish = (answer: Answer) => {
        s.variants.observe(variant, '/v1/ask', (performance.now() - t0) / 1000, answer);
        s.records.save(principal, {
          id: queryId,
          collection: info.name,
          kind: 'ask',
          query: body.question,
          body: { ...answerRecord(answer), variant },
        });
        recordUsage(s, request, answer.usage);
        return {
          queryId,
          ...(s.variants.enabled ? { variant } : {}),
          ...answer,
          trace: body.trace === true ? answer.trace : undefined,
        };
      };
      if (!wantsStream(request, body.stream)) return finish(await quarry.ask(body.question, options));
      return streamAsk(
        s,
        request,
        reply,
        (signal) => quarry.askStream(body.question, { ...options, signal }),
        queryId,
        finish,
      );
    },
  );
}

/** The ask stream as SSE events; an error after the stream opened is an `error` event, then `done`. */
async function streamAsk(
  s: ServerState,
  request: FastifyRequest,
  reply: Parameters<typeof openSse>[0],
  /** Starts the ask; `signal` aborts it when the client goes away (even while the LLM is silent). */
  start: (signal: AbortSignal) => AsyncGenerator<import('../../pipeline/llm-answer.js').AskEvent>,
  queryId: string,
  finish: (a: Answer) => Record<string, unknown>,
): Promise<void> {
  const sse = openSse(reply);
  const t0 = performance.now();
  let first = true;
  const protocol = quarryEvents(request);
  await runStream(s, sse, protocol, async () => {
    await sse.send('meta', { queryId, requestId: request.id });
    for await (const e of start(sse.signal)) {
      if (sse.closed) break;
      if (e.type === 'delta' && first) {
        first = false;
        s.metrics.ttft.observe({ route: '/v1/ask' }, (performance.now() - t0) / 1000);
      }
      if (e.type === 'answer') {
        const out = finish(e.answer);
        if (e.answer.validation !== undefined) await sse.send('validation', e.answer.validation);
        if (e.answer.degraded.length > 0) await sse.send('degraded', e.answer.degraded);
        await sse.send('answer', out);
      } else if (e.type === 'retrieved') {
        await sse.send('retrieved', {
          strategy: e.strategy,
          hits: e.hits.map((h) => ({
            rank: h.rank,
            docId: h.document.id,
            chunkId: h.chunk.id,
            title: h.chunk.title,
            score: h.score,
          })),
        });
      } else {
        const { type, ...data } = e;
        await sse.send(type, data);
      }
    }
  });
}

/**
 * Stored evaluation runs (`quarry eval --record`), for the web UI's dashboard: the runs of a collection's
 * store with their metrics over time, one run's latency distribution and worst queries, and the kept traces
 * of those queries. Eval runs measure the whole corpus as its owner, so these need the `admin` scope.
 */
import type { FastifyInstance } from 'fastify';
import type { Principal } from '../../access/principal.js';
import { QuarryError } from '../../errors.js';
import { EvalRuns } from '../../eval/runs.js';
import { defineRoute } from '../route.js';
import { EvalRunList, EvalRunParams, EvalRunQuery, EvalRunResponse, EvalRunsQuery } from '../schemas.js';
import type { ServerState } from '../state.js';

const EVAL_TRACE = 'eval~';

/** The trace id of a recorded eval query, readable with `GET /v1/traces/{id}`. */
export function evalTraceId(collection: string, runId: string, queryId: string): string {
  return `${EVAL_TRACE}${collection}~${runId}~${queryId}`;
}

function withRuns<T>(
  s: ServerState,
  p: Principal,
  collection: string | undefined,
  use: (r: EvalRuns) => T,
): T {
  const runs = EvalRuns.open(s.collections.storeDir(p, collection), { readonly: true });
  try {
    return use(runs);
  } finally {
    runs.close();
  }
}

/** `GET /v1/traces/eval~…`: a recorded eval query's trace, shaped like a served query's trace. */
export function evalTrace(s: ServerState, p: Principal, id: string): Record<string, unknown> | undefined {
  if (!id.startsWith(EVAL_TRACE)) return undefined;
  const [collection, runId, ...rest] = id.slice(EVAL_TRACE.length).split('~');
  const queryId = rest.join('~');
  if (collection === undefined || runId === undefined || queryId === '')
    throw new QuarryError('NOT_FOUND', `no query with id "${id}"`, { queryId: id });
  if (p.kind === 'user' && !p.scopes.includes('admin'))
    throw new QuarryError('FORBIDDEN', 'eval traces need the "admin" scope', { scope: 'admin' });
  return withRuns(s, p, collection, (runs) => {
    const t = runs.trace(runId, queryId);
    const run = runs.get(runId, { worst: 0 });
    return {
      queryId: id,
      createdAt: run.createdAt,
      collection,
      kind: 'eval',
      query: t.query,
      trace: t.trace,
      hits: t.top.map((docId, i) => ({ rank: i + 1, docId, chunkId: -1, score: 0 })),
      metrics: t.metrics,
      run: { id: run.id, dataset: run.dataset, label: run.label },
    };
  });
}

export function registerEvalRoutes(app: FastifyInstance, s: ServerState): void {
  defineRoute(
    app,
    s.registry,
    {
      method: 'GET',
      url: '/v1/eval/runs',
      summary: 'Recorded evaluation runs of a collection (newest first): metrics and latency per run',
      tag: 'eval',
      scope: 'admin',
      query: EvalRunsQuery,
      response: EvalRunList,
    },
    async ({ query, principal }) => ({
      runs: withRuns(s, principal, query.collection, (r) =>
        r.list({ limit: query.limit, ...(query.dataset === undefined ? {} : { dataset: query.dataset }) }),
      ),
    }),
  );

  defineRoute(
    app,
    s.registry,
    {
      method: 'GET',
      url: '/v1/eval/runs/:id',
      summary: "One evaluation run: its report, every query's latency, the worst queries with trace ids",
      tag: 'eval',
      scope: 'admin',
      params: EvalRunParams,
      query: EvalRunQuery,
      response: EvalRunResponse,
    },
    async ({ params, query, principal }) => {
      const collection = s.collections.info(principal, query.collection).name;
      const run = withRuns(s, principal, collection, (r) => r.get(params.id, { worst: query.worst }));
      return {
        ...run,
        worst: run.worst.map(({ hasTrace, ...w }) => ({
          ...w,
          traceId: hasTrace ? evalTraceId(collection, run.id, w.queryId) : null,
        })),
      };
    },
  );
}

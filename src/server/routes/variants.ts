/**
 * `GET /v1/admin/variants`: how each A/B variant has done in a collection, from the query records the server
 * keeps (the last `traces.keep` requests) and the feedback given on them: requests, pipeline latency
 * percentiles, abstention rate, citation validity (answers whose markers all point into the context and
 * whose sentences are all supported), and the share of feedback votes that called a source helpful.
 */
import type { FastifyInstance } from 'fastify';
import { percentiles } from '../../eval/metrics.js';
import { defineRoute } from '../route.js';
import { VariantsQuery, VariantsResponse } from '../schemas.js';
import type { ServerState } from '../state.js';
import { DEFAULT_VARIANT } from '../variants.js';

interface Row {
  id: string;
  kind: string;
  variant: string | null;
  total_ms: number | null;
  abstained: number | null;
  unsupported: number | null;
  unknown: number | null;
}

export function registerVariantRoutes(app: FastifyInstance, s: ServerState): void {
  defineRoute(
    app,
    s.registry,
    {
      method: 'GET',
      url: '/v1/admin/variants',
      summary:
        'Online A/B: requests, latency, abstention, citation validity and feedback per variant of a collection (admin)',
      tag: 'admin',
      scope: 'admin',
      query: VariantsQuery,
      response: VariantsResponse,
    },
    async ({ query, principal }) => {
      const { quarry, info } = s.collections.get(principal, query.collection);
      const rows = s.records.db
        .prepare(
          `SELECT id, kind,
                  json_extract(body, '$.variant') AS variant,
                  json_extract(body, '$.trace.totalMs') AS total_ms,
                  json_extract(body, '$.answer.abstained') AS abstained,
                  json_extract(body, '$.checks.unsupported') AS unsupported,
                  json_extract(body, '$.checks.unknownMarkers') AS unknown
           FROM traces WHERE collection = ?`,
        )
        .all(info.name) as Row[];
      const variantOf = new Map(rows.map((r) => [r.id, r.variant ?? DEFAULT_VARIANT]));
      const votes = new Map<string, { votes: number; helpful: number }>();
      for (const f of quarry.store.listFeedback()) {
        const v = f.queryId === undefined ? undefined : variantOf.get(f.queryId);
        if (v === undefined) continue;
        const t = votes.get(v) ?? { votes: 0, helpful: 0 };
        t.votes++;
        if (f.helpful) t.helpful++;
        votes.set(v, t);
      }
      const canary = s.config.canary;
      const names = new Set<string>([DEFAULT_VARIANT, ...(canary === undefined ? [] : [canary.name])]);
      for (const r of rows) names.add(r.variant ?? DEFAULT_VARIANT);
      const variants = [...names].map((variant) => {
        const mine = rows.filter((r) => (r.variant ?? DEFAULT_VARIANT) === variant);
        const asks = mine.filter((r) => r.kind !== 'search');
        const ms = mine.flatMap((r) => (r.total_ms === null ? [] : [r.total_ms]));
        const [p50, p95] = ms.length === 0 ? [0, 0] : (percentiles(ms, [50, 95]) as [number, number]);
        const answered = asks.filter((r) => r.abstained !== 1);
        const valid = answered.filter((r) => (r.unsupported ?? 0) === 0 && (r.unknown ?? 0) === 0);
        const fb = votes.get(variant) ?? { votes: 0, helpful: 0 };
        return {
          variant,
          requests: mine.length,
          asks: asks.length,
          latency_ms: { p50, p95 },
          abstentionRate: asks.length === 0 ? null : (asks.length - answered.length) / asks.length,
          citationValidity: answered.length === 0 ? null : valid.length / answered.length,
          feedback: { ...fb, helpfulRate: fb.votes === 0 ? null : fb.helpful / fb.votes },
        };
      });
      return {
        collection: info.name,
        canary: canary === undefined ? null : { name: canary.name, share: canary.share },
        variants,
      };
    },
  );
}

/**
 * Collections, feedback tied to a query id, stored traces, and the admin-only PII restore (audit-logged).
 */
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { hasScope, SCOPES } from '../../access/principal.js';
import { defineRoute } from '../route.js';
import {
  CollectionParams,
  CollectionResponse,
  CreateCollectionRequest,
  FeedbackRequest,
  Ok,
  RestorePiiRequest,
  TraceParams,
  TraceResponse,
  WhoamiResponse,
} from '../schemas.js';
import type { ServerState } from '../state.js';
import { evalTrace } from './eval.js';

export function registerAdminRoutes(app: FastifyInstance, s: ServerState): void {
  defineRoute(
    app,
    s.registry,
    {
      method: 'GET',
      url: '/v1/collections',
      summary: "The key's tenant's collections",
      tag: 'collections',
      scope: 'query',
      response: z.object({ collections: z.array(CollectionResponse) }),
    },
    async ({ principal }) => ({ collections: s.collections.list(principal) }),
  );

  defineRoute(
    app,
    s.registry,
    {
      method: 'POST',
      url: '/v1/collections',
      summary: "Create a collection owned by the key's tenant",
      tag: 'collections',
      scope: 'admin',
      body: CreateCollectionRequest,
      response: CollectionResponse,
    },
    async ({ body, principal, reply }) => {
      const created = s.collections.create(principal, body.name);
      reply.code(201);
      return created;
    },
  );

  defineRoute(
    app,
    s.registry,
    {
      method: 'DELETE',
      url: '/v1/collections/:name',
      summary: 'Delete a collection and everything in it',
      tag: 'collections',
      scope: 'admin',
      params: CollectionParams,
      response: Ok,
    },
    async ({ params, principal }) => {
      s.collections.delete(principal, params.name);
      return { ok: true };
    },
  );

  defineRoute(
    app,
    s.registry,
    {
      method: 'POST',
      url: '/v1/feedback',
      summary:
        'Whether a source helped answer a query (by its query id); trains the learning-to-rank reranker',
      tag: 'feedback',
      scope: 'query',
      body: FeedbackRequest,
      response: Ok,
    },
    async ({ body, principal, reply }) => {
      const record = s.records.get(principal, body.queryId);
      const { quarry } = s.collections.get(principal, record.collection);
      const entry = quarry.recordFeedback(
        {
          query: record.query,
          queryId: record.id,
          docId: body.docId,
          helpful: body.helpful,
          ...(body.chunkId === undefined ? {} : { chunkId: body.chunkId }),
        },
        { principal },
      );
      const variant = record.body.variant;
      if (s.variants.enabled && typeof variant === 'string')
        s.variants.feedback.inc({ variant, helpful: String(body.helpful) });
      reply.code(201);
      return { ok: true, queryId: body.queryId, feedback: entry };
    },
  );

  defineRoute(
    app,
    s.registry,
    {
      method: 'GET',
      url: '/v1/whoami',
      summary:
        "Who the request is: the key's principal (tenant, groups, scopes), or trusted/anonymous without a key",
      tag: 'admin',
      scope: 'public',
      response: WhoamiResponse,
    },
    async ({ principal }) => {
      const base = { authRequired: s.authRequired, version: s.version };
      if (principal.kind === 'user')
        return {
          kind: 'user' as const,
          ...(principal.keyId === undefined ? {} : { keyId: principal.keyId }),
          tenant: principal.tenant,
          ...(principal.userId === undefined ? {} : { userId: principal.userId }),
          groups: [...principal.groups],
          clearance: principal.clearance,
          scopes: [...principal.scopes],
          ...base,
        };
      if (principal.kind === 'trusted')
        return {
          kind: 'trusted' as const,
          ...(principal.tenant === undefined ? {} : { tenant: principal.tenant }),
          groups: [],
          scopes: [...SCOPES],
          ...base,
        };
      return { kind: 'anonymous' as const, groups: [], scopes: [], ...base };
    },
  );

  defineRoute(
    app,
    s.registry,
    {
      method: 'GET',
      url: '/v1/traces/:id',
      summary: 'The stored trace of a query: every stage with timings, candidates, scores and token counts',
      tag: 'traces',
      scope: 'query',
      params: TraceParams,
      response: TraceResponse,
    },
    async ({ params, principal }) => {
      const recorded = evalTrace(s, principal, params.id);
      if (recorded !== undefined) return recorded;
      const r = s.records.get(principal, params.id);
      return {
        queryId: r.id,
        createdAt: r.createdAt,
        collection: r.collection,
        kind: r.kind,
        query: r.query,
        ...r.body,
      };
    },
  );

  defineRoute(
    app,
    s.registry,
    {
      method: 'POST',
      url: '/v1/admin/pii/restore',
      summary:
        'Restore reversible PII tokens in a text to their original values (admin scope; every attempt, refused ones too, is audit-logged)',
      tag: 'admin',
      // Checked by the library call below rather than the route, so a refused attempt is in the audit log too.
      scope: 'query',
      body: RestorePiiRequest,
    },
    async ({ body, principal, request }) => {
      const { quarry } = s.collections.get(principal, body.collection);
      const actor = principal.kind === 'user' ? `key:${principal.keyId ?? '?'}` : 'local';
      const admin = hasScope(principal, 'admin');
      if (!admin)
        request.log.warn({ audit: 'pii.restore', actor, outcome: 'forbidden' }, 'PII restore refused');
      const out = quarry.restorePii(body.text, { admin: admin as true, actor, reason: body.reason });
      request.log.warn(
        { audit: 'pii.restore', actor, restored: out.restored, reason: body.reason },
        'PII restored',
      );
      return out;
    },
  );
}

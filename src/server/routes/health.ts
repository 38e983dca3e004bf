/**
 * Liveness (`/healthz`: the process answers), readiness (`/readyz`: the default collection's index is
 * loaded and warmed, and the server is not draining), the OpenAPI document, and Prometheus `/metrics`.
 */
import type { FastifyInstance } from 'fastify';
import client from 'prom-client';
import { z } from 'zod';
import { buildOpenApi } from '../openapi.js';
import { defineRoute } from '../route.js';
import type { ServerState } from '../state.js';

/** Extra registries whose series `/metrics` serves too (the pipeline's). */
export const extraRegistries: client.Registry[] = [];

export function registerHealthRoutes(app: FastifyInstance, s: ServerState): void {
  defineRoute(
    app,
    s.registry,
    {
      method: 'GET',
      url: '/healthz',
      summary: 'Liveness: the process is up',
      tag: 'health',
      scope: 'public',
      response: z.object({ ok: z.boolean(), version: z.string() }),
    },
    async () => ({ ok: true, version: s.version }),
  );

  defineRoute(
    app,
    s.registry,
    {
      method: 'GET',
      url: '/readyz',
      summary: 'Readiness: 200 once the index is loaded and warmed, 503 before that and while draining',
      tag: 'health',
      scope: 'public',
      response: z.object({ ready: z.boolean(), draining: z.boolean() }),
    },
    async ({ reply }) => {
      const ready = s.ready && !s.draining;
      reply.code(ready ? 200 : 503);
      return { ready, draining: s.draining };
    },
  );

  defineRoute(
    app,
    s.registry,
    {
      method: 'GET',
      url: '/openapi.json',
      summary: 'This API as an OpenAPI 3.1 document',
      tag: 'health',
      scope: 'public',
    },
    async () => buildOpenApi(s.registry.routes, s.version),
  );

  defineRoute(
    app,
    s.registry,
    {
      method: 'GET',
      url: '/metrics',
      summary: 'Prometheus metrics (admin key, unless publicMetrics is set)',
      tag: 'health',
      scope: s.config.publicMetrics ? 'public' : 'admin',
    },
    async ({ reply }) => {
      const merged = client.Registry.merge([s.metrics.registry, ...extraRegistries]);
      reply.header('content-type', merged.contentType);
      return merged.metrics();
    },
  );
}

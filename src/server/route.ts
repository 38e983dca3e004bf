/**
 * One way to declare an endpoint: method, path, the scope it needs, and zod schemas for its body, query,
 * path parameters and response. `defineRoute` validates requests with the schemas, checks the scope
 * against the request's principal, and records the route for the OpenAPI document, so the published
 * contract and the enforced one cannot drift apart.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { z } from 'zod';
import { hasScope, type Principal, type Scope } from '../access/principal.js';
import { QuarryError } from '../errors.js';
import { withRequestLabels } from '../observability/metrics.js';
import type { Admission, WorkKind } from './admission.js';
import { withHttpSpan } from './span.js';

export interface RouteSpec<B extends z.ZodType, Q extends z.ZodType, P extends z.ZodType> {
  method: 'GET' | 'POST' | 'PUT' | 'DELETE';
  url: string;
  summary: string;
  tag: string;
  /** `public`: no key needed (health, OpenAPI). */
  scope: Scope | 'public';
  body?: B;
  query?: Q;
  params?: P;
  response?: z.ZodType;
  /** Responses are Server-Sent Events (when asked for). */
  streams?: boolean;
  /** Body is multipart/form-data (uploads): not parsed as JSON. */
  multipart?: boolean;
  /** The kind of work the route does: it holds a slot of that kind while it runs, or is shed (`admission.ts`). */
  work?: WorkKind;
}

export interface RouteInput<B, Q, P> {
  body: B;
  query: Q;
  params: P;
  principal: Principal;
  request: FastifyRequest;
  reply: FastifyReply;
}

export type AnyRouteSpec = RouteSpec<z.ZodType, z.ZodType, z.ZodType>;

declare module 'fastify' {
  interface FastifyRequest {
    principal: Principal;
  }
  interface FastifyInstance {
    admission: Admission;
  }
}

export class RouteRegistry {
  readonly routes: AnyRouteSpec[] = [];
}

function parse<T extends z.ZodType>(schema: T | undefined, value: unknown, where: string): z.infer<T> {
  if (schema === undefined) return undefined as z.infer<T>;
  const r = schema.safeParse(value ?? (where === 'body' ? undefined : {}));
  if (r.success) return r.data;
  const issues = r.error.issues.map((i) => `${[where, ...i.path].join('.')}: ${i.message}`);
  throw new QuarryError('INVALID_ARGUMENT', issues.join('; '), { issues });
}

export function defineRoute<B extends z.ZodType, Q extends z.ZodType, P extends z.ZodType>(
  app: FastifyInstance,
  registry: RouteRegistry,
  spec: RouteSpec<B, Q, P>,
  handler: (input: RouteInput<z.infer<B>, z.infer<Q>, z.infer<P>>) => Promise<unknown>,
): void {
  registry.routes.push(spec as unknown as AnyRouteSpec);
  app.route({
    method: spec.method,
    url: spec.url,
    config: { scope: spec.scope, ...(spec.work === undefined ? {} : { work: spec.work }) },
    handler: (request, reply) =>
      withHttpSpan(request, reply, async () => {
        if (spec.scope !== 'public' && !hasScope(request.principal, spec.scope))
          throw new QuarryError(
            'FORBIDDEN',
            `this key lacks the "${spec.scope}" scope needed for ${spec.method} ${spec.url}`,
            {
              scope: spec.scope,
            },
          );
        const input = {
          body: spec.multipart ? (undefined as z.infer<B>) : parse(spec.body, request.body, 'body'),
          query: parse(spec.query, request.query, 'query'),
          params: parse(spec.params, request.params, 'params'),
          principal: request.principal,
          request,
          reply,
        };
        const p = request.principal;
        // Token and cost series carry the key and tenant of the request that spent them.
        const run = () =>
          p.kind === 'user'
            ? withRequestLabels(
                { ...(p.keyId === undefined ? {} : { keyId: p.keyId }), tenant: p.tenant },
                () => handler(input),
              )
            : handler(input);
        if (spec.work === undefined) return run();
        // After validation and the scope check, so a refused or malformed request never takes a slot.
        const release = await app.admission.enter(spec.work);
        try {
          return await run();
        } finally {
          release();
        }
      }),
  });
}

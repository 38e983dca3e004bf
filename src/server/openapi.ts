/**
 * The OpenAPI 3.1 document served at `/openapi.json`, generated from the route registry: the same zod
 * schemas that validate each request describe it here (zod's JSON Schema output is draft 2020-12, which is
 * what OpenAPI 3.1 uses).
 */
import { z } from 'zod';
import { ERRORS } from '../errors.js';
import type { AnyRouteSpec } from './route.js';
import { ErrorBody } from './schemas.js';

function jsonSchema(s: z.ZodType, io: 'input' | 'output'): Record<string, unknown> {
  const out = z.toJSONSchema(s, { io, unrepresentable: 'any' }) as Record<string, unknown>;
  delete out.$schema;
  return out;
}

function parameters(spec: AnyRouteSpec): unknown[] {
  const out: unknown[] = [];
  for (const [where, schema] of [
    ['path', spec.params],
    ['query', spec.query],
  ] as const) {
    if (schema === undefined) continue;
    const js = jsonSchema(schema, 'input') as { properties?: Record<string, unknown>; required?: string[] };
    for (const [name, prop] of Object.entries(js.properties ?? {}))
      out.push({
        name,
        in: where,
        required: where === 'path' || (js.required ?? []).includes(name),
        schema: prop,
        ...((prop as { description?: string }).description
          ? { description: (prop as { description: string }).description }
          : {}),
      });
  }
  return out;
}

export function buildOpenApi(routes: readonly AnyRouteSpec[], version: string): Record<string, unknown> {
  const paths: Record<string, Record<string, unknown>> = {};
  for (const r of routes) {
    const url = r.url.replace(/:([A-Za-z]+)/g, '{$1}');
    const op: Record<string, unknown> = {
      summary: r.summary,
      tags: [r.tag],
      operationId: `${r.method.toLowerCase()}${url.replace(/[^A-Za-z0-9]+(.)?/g, (_m, c: string | undefined) => (c ?? '').toUpperCase())}`,
      ...(r.scope === 'public' ? { security: [] } : { 'x-quarry-scope': r.scope }),
      parameters: parameters(r),
      responses: {
        '200': {
          description: 'OK',
          content: {
            'application/json': { schema: r.response ? jsonSchema(r.response, 'output') : {} },
            ...(r.streams ? { 'text/event-stream': { schema: { type: 'string' } } } : {}),
          },
        },
        default: {
          description: 'Error (see the error codes in components.schemas.ErrorCode)',
          content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } },
        },
      },
    };
    if (r.body !== undefined)
      op.requestBody = {
        required: true,
        content: { 'application/json': { schema: jsonSchema(r.body, 'input') } },
      };
    if (r.multipart)
      op.requestBody = {
        required: true,
        content: {
          'multipart/form-data': {
            schema: {
              type: 'object',
              properties: {
                file: { type: 'array', items: { type: 'string', format: 'binary' } },
                collection: { type: 'string' },
              },
            },
          },
        },
      };
    paths[url] ??= {};
    paths[url][r.method.toLowerCase()] = op;
  }
  return {
    openapi: '3.1.0',
    info: {
      title: 'Quarry',
      version,
      description:
        'Quarry RAG engine: hybrid search, cited answers (JSON or Server-Sent Events), an OpenAI-compatible chat endpoint, documents, collections, feedback and traces.',
    },
    servers: [{ url: '/' }],
    security: [{ bearer: [] }],
    paths,
    components: {
      securitySchemes: {
        bearer: {
          type: 'http',
          scheme: 'bearer',
          description: 'API key `qk_…` (also accepted as `x-api-key`)',
        },
      },
      schemas: {
        Error: jsonSchema(ErrorBody, 'output'),
        ErrorCode: {
          type: 'string',
          enum: [...Object.keys(ERRORS), 'INTERNAL'],
          'x-http-status': Object.fromEntries(Object.entries(ERRORS).map(([k, v]) => [k, v.http])),
        },
      },
    },
  };
}

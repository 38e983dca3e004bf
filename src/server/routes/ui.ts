/**
 * The web UI's static files: `/` redirects to `/ui/`, which serves the bundle esbuild wrote to `dist/ui/`
 * (found from the package root, so it is the same folder whether the server runs compiled from dist/ or
 * from src/ under tsx). No key is needed for these files: the data APIs they call are what is protected.
 * index.html is never cached; the content-hashed script and stylesheet are cached for a year.
 * The page gets its own Content-Security-Policy: helmet's default for the API adds
 * `upgrade-insecure-requests`, which makes a browser fetch the bundle over https from a server that speaks
 * plain http on a non-loopback address (`--host 0.0.0.0` on a LAN), so the page would never load.
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance, FastifyReply } from 'fastify';

/** `dist/ui/` of this package: src/server/routes and dist/server/routes are both three levels below it. */
export const DEFAULT_UI_DIR = path.resolve(
  path.dirname(fileURLToPath(import.meta.url)),
  '..',
  '..',
  '..',
  'dist',
  'ui',
);

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.map': 'application/json; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
};
/** A file name esbuild gave a content hash (`app-4F2KX7QZ.js`): its content never changes. */
const HASHED = /-[A-Z0-9]{8}\.(js|css)(\.map)?$/;
const SAFE_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,200}$/;
/**
 * The page's CSP (helmet, per route): only same-origin scripts, styles and requests, no inline script or
 * style, not framed, and without helmet's default `upgrade-insecure-requests`.
 */
export const UI_HELMET = {
  contentSecurityPolicy: {
    directives: {
      defaultSrc: ["'self'"],
      connectSrc: ["'self'"],
      frameAncestors: ["'none'"],
      imgSrc: ["'self'", 'data:'],
      scriptSrc: ["'self'"],
      styleSrc: ["'self'"],
      upgradeInsecureRequests: null,
    },
  },
};

const NOT_BUILT = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Quarry: web UI not built</title></head>
<body><h1>The web UI is not built</h1>
<p>This server found no bundle in <code>dist/ui/</code>. Run <code>npm run build</code> (or
<code>node scripts/build.mjs</code>) in the Quarry package, then reload this page.</p>
<p>The HTTP API itself works without it: see <a href="/openapi.json">/openapi.json</a>.</p></body></html>
`;

function notFound(reply: FastifyReply, name: string) {
  return reply
    .code(404)
    .type('application/json; charset=utf-8')
    .send({ error: { code: 'NOT_FOUND', message: `no web UI file "${name}"`, requestId: reply.request.id } });
}

export function registerUiRoutes(app: FastifyInstance, opts: { dir?: string } = {}): void {
  const dir = opts.dir ?? DEFAULT_UI_DIR;
  // Read by the auth hook in app.ts: no key is asked for these routes even when the server requires keys.
  const config = { scope: 'public' } as Record<string, unknown>;

  const send = async (reply: FastifyReply, name: string) => {
    if (!SAFE_NAME.test(name)) return notFound(reply, name);
    const file = path.join(dir, name);
    let body: Buffer;
    try {
      body = await fs.promises.readFile(file);
    } catch {
      if (name === 'index.html')
        return reply
          .code(503)
          .type('text/html; charset=utf-8')
          .header('cache-control', 'no-store')
          .send(NOT_BUILT);
      return notFound(reply, name);
    }
    return reply
      .type(TYPES[path.extname(name)] ?? 'application/octet-stream')
      .header('cache-control', HASHED.test(name) ? 'public, max-age=31536000, immutable' : 'no-cache')
      .send(body);
  };

  const route = { config, helmet: UI_HELMET };
  app.get('/', route, async (_request, reply) => reply.redirect('/ui/'));
  app.get('/ui', route, async (_request, reply) => reply.redirect('/ui/'));
  app.get('/ui/', route, async (_request, reply) => send(reply, 'index.html'));
  app.get<{ Params: { '*': string } }>('/ui/*', route, async (request, reply) =>
    send(reply, request.params['*'] || 'index.html'),
  );
}

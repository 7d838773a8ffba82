/**
 * The console's files, served by the admin listener under /console/ as they are on disk (HTML, ES
 * modules, CSS: no build step), and uPlot from node_modules. The set of files is read once at start
 * and only those paths are served, so no request path ever reaches the filesystem.
 *
 * The files are public, as the login page must be: they hold no data. Everything they show comes
 * from the admin API with the caller's token. The Content-Security-Policy allows only this origin:
 * no inline script, no CDN, no frames.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { extname, join, relative, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance, FastifyReply } from 'fastify';
import { Errors } from '../errors/codes.js';
import { CALLBACK_PATH, ssoConnectOrigins } from './console-sso.js';
import { type AdminContext, sendProblem } from './context.js';

export const CONSOLE_CSP =
  "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.ico': 'image/x-icon',
};

interface Asset {
  type: string;
  body: Buffer;
}

/** src/admin → src/console/static, and dist/admin → dist/console/static (copied by `npm run build`). */
const STATIC_DIR = fileURLToPath(new URL('../console/static/', import.meta.url));

function walk(dir: string, into: Map<string, Asset>): void {
  for (const name of readdirSync(dir)) {
    const file = join(dir, name);
    if (statSync(file).isDirectory()) walk(file, into);
    else {
      const type = TYPES[extname(name)];
      if (type) into.set(relative(STATIC_DIR, file).split(sep).join('/'), { type, body: readFileSync(file) });
    }
  }
}

function assets(): Map<string, Asset> {
  const map = new Map<string, Asset>();
  walk(STATIC_DIR, map);
  const require = createRequire(import.meta.url);
  const uplot = (f: string) => readFileSync(require.resolve(`uplot/dist/${f}`));
  map.set('vendor/uPlot.esm.js', { type: TYPES['.js']!, body: uplot('uPlot.esm.js') });
  map.set('vendor/uPlot.min.css', { type: TYPES['.css']!, body: uplot('uPlot.min.css') });
  return map;
}

/** CONSOLE_CSP, with the issuer's token endpoint in connect-src when the console login is on. */
export function consoleCsp(extraConnect: readonly string[]): string {
  return extraConnect.length === 0
    ? CONSOLE_CSP
    : CONSOLE_CSP.replace("connect-src 'self'", `connect-src 'self' ${extraConnect.join(' ')}`);
}

function send(reply: FastifyReply, a: Asset, csp = CONSOLE_CSP): FastifyReply {
  return (
    reply
      .header('content-type', a.type)
      .header('content-security-policy', csp)
      .header('x-content-type-options', 'nosniff')
      .header('referrer-policy', 'no-referrer')
      .header('x-frame-options', 'DENY')
      // Revalidated on every load, so an upgraded gateway never runs yesterday's console.
      .header('cache-control', 'no-cache')
      .send(a.body)
  );
}

export function registerConsoleStatic(app: FastifyInstance, { gw }: AdminContext): void {
  const files = assets();
  const index = files.get('index.html');
  if (!index) throw new Error(`the console's index.html is missing from ${STATIC_DIR}`);
  const hidden = { hide: true } as const;
  // /console answers a redirect, so the page's relative URLs resolve under /console/.
  app.get('/console', { config: { permission: 'public' }, schema: hidden }, async (req, reply) =>
    req.url.split('?')[0] === '/console' ? reply.redirect('/console/', 302) : send(reply, index),
  );
  // The page is where the issuer sends the browser back (the code in the fragment, never seen here).
  const page = async (reply: FastifyReply) => send(reply, index!, consoleCsp(await ssoConnectOrigins(gw)));
  app.get<{ Params: { '*': string } }>(
    '/console/*',
    { config: { permission: 'public' }, schema: hidden },
    async (req, reply) => {
      const path = req.params['*'];
      if (path === '' || `/console/${path}` === CALLBACK_PATH) return page(reply);
      const a = files.get(path);
      if (!a) return sendProblem(reply, Errors.adminNotFound);
      return send(reply, a);
    },
  );
}

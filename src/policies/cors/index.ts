/**
 * CORS per route (the Fetch standard's CORS protocol). Runs before auth: a preflight (OPTIONS with
 * Access-Control-Request-Method) is answered here, 204, and never reaches auth or the upstream.
 * For every other request the allow headers go into `ctx.responseHeaders`, so they are on whatever
 * answers it (the upstream's response, a 401 or 429 refusal, a 502), and the upstream's own
 * `Access-Control-*` headers are dropped: on a route with `cors` the gateway alone speaks CORS.
 *
 * Everything that does not depend on the request is built here once; a request costs a Set
 * lookup for its origin (a regex test per pattern only when the Set misses).
 */
import type { RouteConfig } from '../../config/schema.js';
import { ms } from '../../config/units.js';
import { Errors } from '../../errors/codes.js';
import type { ConfigProblem, PolicyFactory } from '../factory.js';
import type { Denial, Policy, Reply, RequestContext, RequestVerdict, ResponseHead } from '../policy.js';
import { compileOrigins, parseOrigin } from './origins.js';
import { RouteCors, type RouteCorsConfig } from './schema.js';

export const defaultCorsMethods = ['GET', 'HEAD', 'PUT', 'PATCH', 'POST', 'DELETE'];

const empty = Buffer.alloc(0);
/** A header list as browsers send it in Access-Control-Request-Headers: tokens and commas. */
const headerListOk = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+(?:[ \t]*,[ \t]*[!#$%&'*+.^_`|~0-9A-Za-z-]+)*$/;

export const corsPolicy: PolicyFactory<'cors', typeof RouteCors> = {
  name: 'cors',
  key: 'cors',
  schema: RouteCors,
  order: 200,
  check: checkCors,
  compile: (r: RouteConfig) => (r.cors === undefined ? undefined : compileCors(r.cors)),
};

/** How a route's `cors` combines with itself and with the rest of the route. */
function checkCors(
  r: RouteConfig,
  at: readonly (string | number)[],
  _c: unknown,
  out: ConfigProblem[],
): void {
  const cors = r.cors;
  if (cors === undefined) return;
  const p = [...at, 'cors'];
  let any = -1;
  cors.origins.forEach((o, j) => {
    const rule = parseOrigin(o);
    if ('error' in rule) out.push({ path: [...p, 'origins', j], message: rule.error });
    else if (rule.kind === 'any') any = j;
  });
  if (any >= 0 && cors.origins.length > 1)
    out.push({
      path: [...p, 'origins', any],
      message: '`*` allows every origin: list nothing else with it, or list only the origins you mean',
    });
  if (any >= 0 && cors.credentials === true)
    out.push({
      path: [...p, 'credentials'],
      message:
        'credentials cannot be allowed for every origin (`origins: ["*"]`): any site could act with your users\' cookies, and browsers refuse `*` with credentials. List the origins instead',
    });
  if (cors.credentials === true && cors.exposeHeaders?.includes('*'))
    out.push({
      path: [...p, 'exposeHeaders'],
      message: 'with `credentials`, browsers read `*` as a header named "*": list the headers to expose',
    });
  const star = cors.allowHeaders?.indexOf('*') ?? -1;
  if (star >= 0)
    out.push({
      path: [...p, 'allowHeaders', star],
      message: 'leave `allowHeaders` out to allow whatever headers a preflight asks for, or list them',
    });
  const methods = r.match.methods;
  if (methods !== undefined && !methods.includes('OPTIONS'))
    out.push({
      path: [...at, 'match', 'methods'],
      message:
        "a route with `cors` must match OPTIONS, or browsers' preflights never reach it (they would get 404): add OPTIONS",
    });
  const resp = r.headers?.response;
  for (const op of ['set', 'add'] as const)
    for (const n of Object.keys(resp?.[op] ?? {}))
      if (n.toLowerCase().startsWith('access-control-'))
        out.push({
          path: [...at, 'headers', 'response', op, n],
          message: 'the route has `cors`, which sets the Access-Control-* headers: configure them there',
          key: true,
        });
}

/** The 204 answer to an accepted preflight, for the access log. */
const preflightNote = 'cors_preflight';

export function compileCors(c: RouteCorsConfig): Policy {
  const origins = compileOrigins(c.origins);
  const credentials = c.credentials === true;
  if (origins.any && credentials)
    // checkCors reports this with file and line at load; this guards compile-only callers.
    throw new Error('cors: origins "*" cannot be combined with credentials');
  const methodList = (c.methods ?? defaultCorsMethods).map((m) => m.toUpperCase());
  const methods = new Set(methodList);
  const allowList = c.allowHeaders?.map((h) => h.toLowerCase());
  const allowed = allowList === undefined ? undefined : new Set(allowList);
  const expose = c.exposeHeaders?.map((h) => h.toLowerCase()).join(', ');
  const maxAge = c.maxAge === undefined ? undefined : String(Math.floor(ms(c.maxAge, 0) / 1000));
  const privateNetwork = c.privateNetwork === true;

  // With `*` (never with credentials) the answer is the same for every origin: no Vary needed, and
  // it is sent on every response. Otherwise the answer depends on Origin, and `Vary: Origin` goes
  // on every response, also those to requests without an Origin, so a cache never serves one
  // origin's answer (or a non-CORS answer) to another.
  const constant: string[] = [];
  if (origins.any) {
    constant.push('access-control-allow-origin', '*');
    if (expose) constant.push('access-control-expose-headers', expose);
  }
  const perOrigin: string[] = [];
  if (credentials) perOrigin.push('access-control-allow-credentials', 'true');
  if (expose) perOrigin.push('access-control-expose-headers', expose);

  const preflightBase = ['access-control-allow-methods', methodList.join(', ')];
  if (maxAge !== undefined) preflightBase.push('access-control-max-age', maxAge);
  if (allowList !== undefined && allowList.length > 0)
    preflightBase.push('access-control-allow-headers', allowList.join(', '));
  const fixedReply: Reply | undefined =
    allowList === undefined
      ? undefined
      : { reply: true, status: 204, headers: preflightBase, body: empty, note: preflightNote };
  const refused = (detail: string, reason: string): Denial => ({ def: Errors.corsRefused, detail, reason });
  const allowedNames = allowList?.join(', ') || 'none';

  function allowOrigin(rh: string[], origin: string): void {
    rh.push('access-control-allow-origin', origin);
    for (let i = 0; i < perOrigin.length; i++) rh.push(perOrigin[i]!);
  }

  function onRequest(ctx: RequestContext): RequestVerdict {
    const h = ctx.req.headers;
    const origin = h.origin;
    const rh = ctx.responseHeaders;
    const acrm =
      origin !== undefined && ctx.req.method === 'OPTIONS' ? h['access-control-request-method'] : undefined;
    if (acrm === undefined) {
      // A browser hides the response from a disallowed origin; other clients are not CORS's
      // business (use auth or ipFilter), so the request goes on either way.
      if (origins.any) for (let i = 0; i < constant.length; i++) rh.push(constant[i]!);
      else {
        rh.push('vary', 'Origin');
        if (origin !== undefined && origins.allows(origin)) allowOrigin(rh, origin);
      }
      return undefined;
    }
    // A preflight (it always has an Origin): answered here, never forwarded. A refused one carries
    // no allow headers at all.
    if (!origins.any) {
      rh.push('vary', 'Origin');
      if (!origins.allows(origin!)) return refused(`origin ${origin} is not allowed on this route`, 'origin');
    }
    if (!methods.has(acrm))
      return refused(`method ${acrm} is not allowed (allowed: ${methodList.join(', ')})`, 'method');
    const acrh = h['access-control-request-headers'];
    let reply = fixedReply;
    if (acrh !== undefined && acrh !== '') {
      if (!headerListOk.test(acrh))
        return refused('Access-Control-Request-Headers is not a list of header names', 'header');
      if (allowed !== undefined) {
        for (const n of acrh.split(',')) {
          const name = n.trim().toLowerCase();
          if (!allowed.has(name))
            return refused(`request header ${name} is not allowed (allowed: ${allowedNames})`, 'header');
        }
      } else {
        reply = {
          reply: true,
          status: 204,
          headers: preflightBase.concat(
            'access-control-allow-headers',
            acrh,
            'vary',
            'Access-Control-Request-Headers',
          ),
          body: empty,
          note: preflightNote,
        };
      }
    }
    reply ??= { reply: true, status: 204, headers: preflightBase, body: empty, note: preflightNote };
    if (origins.any) for (let i = 0; i < constant.length; i++) rh.push(constant[i]!);
    else allowOrigin(rh, origin!);
    if (privateNetwork && h['access-control-request-private-network'] === 'true')
      return { ...reply, headers: reply.headers.concat('access-control-allow-private-network', 'true') };
    return reply;
  }

  return { name: 'cors', onRequest, onResponse: dropUpstreamCors };
}

/**
 * The upstream's response head: its own Access-Control-* headers are removed (they would contradict
 * or duplicate the route's, which the proxy appends from `ctx.responseHeaders` after this phase).
 */
function dropUpstreamCors(_ctx: RequestContext, head: ResponseHead): undefined {
  const hs = head.headers;
  let w = 0;
  for (let i = 0; i < hs.length; i += 2) {
    if (isAccessControl(hs[i]!)) continue;
    if (w !== i) {
      hs[w] = hs[i]!;
      hs[w + 1] = hs[i + 1]!;
    }
    w += 2;
  }
  if (w !== hs.length) hs.length = w;
  return undefined;
}

function isAccessControl(name: string): boolean {
  // 'a' or 'A' first: one comparison for almost every header.
  return (
    name.length > 15 &&
    (name.charCodeAt(0) | 0x20) === 0x61 &&
    name.slice(0, 15).toLowerCase() === 'access-control-'
  );
}

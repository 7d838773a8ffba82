/** Cross-checks of the routes' `cors` and `ipFilter`: origins, CIDR blocks, and how they combine. */
import { parseOrigin } from '../policies/cors/origins.js';
import { cidrProblem, parseCidrStrict } from '../policies/ip-filter/cidr.js';
import type { Config } from './schema.js';
import type { SemanticError } from './semantics.js';

export function checkAccess(c: Config, out: SemanticError[]): void {
  c.routes.forEach((r, i) => {
    const at = ['routes', i];
    const f = r.ipFilter;
    if (f !== undefined) {
      if (f.allow === undefined && f.deny === undefined)
        out.push({ path: [...at, 'ipFilter'], message: 'lists nothing: set `allow` and/or `deny`' });
      for (const list of ['allow', 'deny'] as const)
        f[list]?.forEach((s, j) => {
          if (parseCidrStrict(s) === undefined)
            out.push({ path: [...at, 'ipFilter', list, j], message: cidrProblem(s) });
        });
    }
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
  });
}

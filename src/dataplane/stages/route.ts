/**
 * Routing: the compiled route table (router.ts) picks the route for the guarded host, method and
 * normalised path. Nothing about the config is parsed or looked up by name here.
 */
import { Errors } from '../../errors/codes.js';
import type { Exchange } from '../exchange.js';
import { refuse } from './reply.js';

/** True when a route matched; otherwise the request has been answered 404. */
export function route(x: Exchange): boolean {
  const m = x.gw.runtime.router.match(x.head.host, x.req.method ?? 'GET', x.path, x.req);
  if (m === undefined) {
    refuse(x, Errors.noRoute, undefined);
    return false;
  }
  x.route = m.route;
  x.params = m.params;
  return true;
}

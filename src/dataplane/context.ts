/**
 * The per-request context policies read and write. Only routes with policies make one, so the
 * plain proxy path allocates nothing for it. It also rides on the request under a symbol, so the
 * access log finds the principal and tenant without another argument.
 */
import type { IncomingMessage } from 'node:http';
import type { RequestContext } from '../policies/policy.js';
import type { Exchange } from './exchange.js';
import { clientAddress, peerAddress } from './headers.js';

const kContext = Symbol('sluice.requestContext');
type WithContext = IncomingMessage & { [kContext]?: RequestContext };

/** The context of a routed exchange (the guard and the route stage have run). */
export function newRequestContext(x: Exchange): RequestContext {
  const req = x.req;
  const ctx: RequestContext = {
    req,
    res: x.res,
    upgrade: x.res === undefined,
    requestId: x.requestId,
    route: x.routed.name,
    path: x.path,
    host: x.head.host,
    client: clientAddress(peerAddress(req.socket?.remoteAddress), x.head.xff, x.gw.runtime.trustedProxies),
    upstreamHeaders: [],
    responseHeaders: [],
    principal: undefined,
    tenant: undefined,
  };
  (req as WithContext)[kContext] = ctx;
  return ctx;
}

export function requestContextOf(req: IncomingMessage): RequestContext | undefined {
  return (req as WithContext)[kContext];
}

/** `headers` plus what the request's policies add to every answer (refusals and errors too). */
export function withPolicyHeaders(
  ctx: RequestContext | undefined,
  headers: Readonly<Record<string, string>> | undefined,
): Readonly<Record<string, string>> | undefined {
  const add = ctx?.responseHeaders;
  if (add === undefined || add.length === 0) return headers;
  const out: Record<string, string> = { ...headers };
  for (let i = 0; i < add.length; i += 2) out[add[i]!] = add[i + 1]!;
  return out;
}

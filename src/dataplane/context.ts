/**
 * The per-request context policies read and write. Only routes with policies make one, so the
 * plain proxy path allocates nothing for it. It rides on the request under a symbol so that the
 * access log (and later phases) can find the principal and tenant without another argument.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { BlockList } from 'node:net';
import type { RequestContext } from '../policies/policy.js';
import { clientAddress, peerAddress } from './headers.js';
import type { Guarded } from './pipeline.js';

const kContext = Symbol('sluice.requestContext');
type WithContext = IncomingMessage & { [kContext]?: RequestContext };

export function newRequestContext(
  req: IncomingMessage,
  res: ServerResponse,
  g: Guarded,
  trusted: BlockList | undefined,
): RequestContext {
  return {
    req,
    res,
    requestId: g.requestId,
    route: g.route.name,
    path: g.path,
    host: g.head.host,
    client: clientAddress(peerAddress(req.socket?.remoteAddress), g.head.xff, trusted),
    upstreamHeaders: [],
    responseHeaders: [],
    principal: undefined,
    tenant: undefined,
  };
}

export function setRequestContext(req: IncomingMessage, ctx: RequestContext): void {
  (req as WithContext)[kContext] = ctx;
}

export function requestContextOf(req: IncomingMessage): RequestContext | undefined {
  return (req as WithContext)[kContext];
}

/** `headers` plus what the request's policies add to every answer (refusals and errors too). */
export function withPolicyHeaders(
  req: IncomingMessage,
  headers: Readonly<Record<string, string>> | undefined,
): Readonly<Record<string, string>> | undefined {
  const add = (req as WithContext)[kContext]?.responseHeaders;
  if (add === undefined || add.length === 0) return headers;
  const out: Record<string, string> = { ...headers };
  for (let i = 0; i < add.length; i += 2) out[add[i]!] = add[i + 1]!;
  return out;
}

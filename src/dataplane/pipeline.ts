/**
 * The request path: guard (framing, path normalisation, request id) → router → upstream group →
 * proxy. Everything here reads the compiled Runtime captured at the start, so a reload never
 * changes the rules under a request in flight.
 */
import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Readable } from 'node:stream';
import type { Dispatcher } from 'undici';
import type { CompiledRoute } from '../config/compile.js';
import { logAccess } from './access-log.js';
import { type ErrorDef, Errors } from './errors.js';
import { acceptableRequestId, forwardedHeaders, peerAddress } from './headers.js';
import { normalizePath, splitTarget } from './path.js';
import { sendProblem } from './problem.js';
import { ProxyExchange } from './proxy.js';
import { applyRouteDrops, type RequestHead, readRequestHead } from './request-head.js';
import type { Params } from './router.js';
import type { DataplaneState } from './state.js';
import { BodyTooLargeError } from './upstream-errors.js';

export interface Guarded {
  head: RequestHead;
  requestId: string;
  /** Normalised path (what is matched). */
  path: string;
  query: string;
  route: CompiledRoute;
  params: Params | undefined;
}

/** Guard and route a request; on refusal answers through `refuse` and returns undefined. */
export function guardAndRoute(
  gw: DataplaneState,
  req: IncomingMessage,
  refuse: (def: ErrorDef, requestId: string, detail: string | undefined, path: string) => void,
): Guarded | undefined {
  const rt = gw.runtime;
  const head = readRequestHead(req);
  const requestId = acceptableRequestId(head.requestId) ? head.requestId : randomUUID();
  if (head.framingError !== undefined) {
    refuse(Errors.ambiguousFraming, requestId, head.framingError, '');
    return undefined;
  }
  const target = splitTarget(req.url ?? '');
  if (target === undefined) {
    refuse(Errors.invalidPath, requestId, 'the request target is not a path', '');
    return undefined;
  }
  const path = normalizePath(target.path, rt.pathOptions);
  if (typeof path !== 'string') {
    refuse(Errors.invalidPath, requestId, path.error, '');
    return undefined;
  }
  const m = rt.router.match(head.host, req.method ?? 'GET', path, (name) => headerValue(req, name));
  if (m === undefined) {
    refuse(Errors.noRoute, requestId, undefined, path);
    return undefined;
  }
  return { head, requestId, path, query: target.query, route: m.route, params: m.params };
}

function headerValue(req: IncomingMessage, name: string): string | undefined {
  const v = req.headers[name];
  return Array.isArray(v) ? v.join(', ') : v;
}

/** Headers sent upstream: end-to-end headers, then Host, forwarding, request id and the route's additions. */
export function upstreamHeaders(
  gw: DataplaneState,
  req: IncomingMessage,
  g: Guarded,
  hostForTarget: string,
): string[] {
  const { head, route } = g;
  const out = applyRouteDrops(head, route);
  const host =
    route.hostMode === 1
      ? hostForTarget
      : route.hostMode === 0
        ? (head.host ?? hostForTarget)
        : route.hostValue;
  const f = forwardedHeaders(
    peerAddress(req.socket.remoteAddress),
    gw.scheme,
    head.host,
    { xff: head.xff, proto: head.xfProto, host: head.xfHost, forwarded: head.forwarded },
    gw.runtime.trustedProxies,
  );
  out.push(
    'host',
    host,
    'x-forwarded-for',
    f.xff,
    'x-forwarded-proto',
    f.proto,
    'forwarded',
    f.forwarded,
    'x-request-id',
    g.requestId,
  );
  if (f.host) out.push('x-forwarded-host', f.host);
  if (head.teTrailers) out.push('te', 'trailers');
  const add = route.request.append;
  for (let i = 0; i < add.length; i++) out.push(add[i]!);
  return out;
}

export function handleRequest(gw: DataplaneState, req: IncomingMessage, res: ServerResponse): void {
  const started = performance.now();
  const g = guardAndRoute(gw, req, (def, requestId, detail, path) => {
    refuseRequest(gw, req, res, def, requestId, detail, path, started);
  });
  if (g === undefined) return;
  const { route, head } = g;
  const target = route.upstream.pick();
  if (target === undefined) {
    refuseRequest(
      gw,
      req,
      res,
      Errors.noTarget,
      g.requestId,
      `upstream "${route.upstream.name}"`,
      g.path,
      started,
      route,
    );
    return;
  }
  let body: Readable | null = null;
  if (head.contentLength !== undefined) {
    const n = Number(head.contentLength);
    if (n > route.maxBodyBytes) {
      refuseRequest(
        gw,
        req,
        res,
        Errors.bodyTooLarge,
        g.requestId,
        `the body exceeds ${route.maxBodyBytes} bytes`,
        g.path,
        started,
        route,
        {
          connection: 'close',
        },
      );
      return;
    }
    if (n > 0) body = req;
  } else if (head.transferEncoding !== undefined) {
    // undici streams async iterables as chunked bodies; its types only name Readable.
    body = route.maxBodyBytes > 0 ? (limitBody(req, route.maxBodyBytes) as unknown as Readable) : req;
  }
  const path = (route.rewrite ? route.rewrite(g.path, g.params) : g.path) + g.query;
  gw.inflight++;
  gw.metrics.inflight.inc();
  if (gw.draining) res.shouldKeepAlive = false;
  const exchange = new ProxyExchange(gw, route, target, req, res, g.requestId, g.path, started);
  target.dispatcher.dispatch(
    {
      path,
      method: req.method as Dispatcher.HttpMethod,
      headers: upstreamHeaders(gw, req, g, target.hostHeader),
      body,
      headersTimeout: route.timeouts.firstByte,
      bodyTimeout: route.timeouts.idle,
    },
    exchange,
  );
}

/** Stream a chunked body through while counting; past the limit the upload is aborted with 413. */
async function* limitBody(req: IncomingMessage, max: number): AsyncGenerator<Buffer> {
  let n = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    n += chunk.length;
    if (n > max) throw new BodyTooLargeError(`the body exceeds ${max} bytes`);
    yield chunk;
  }
}

export function refuseRequest(
  gw: DataplaneState,
  req: IncomingMessage,
  res: ServerResponse,
  def: ErrorDef,
  requestId: string,
  detail: string | undefined,
  path: string,
  started: number,
  route?: CompiledRoute,
  headers?: Record<string, string>,
): void {
  gw.metrics.refusals.labels(def.code).inc();
  const extra = gw.draining ? { ...headers, connection: 'close' } : headers;
  sendProblem(res, def, requestId, detail, extra);
  if (route) {
    route.metrics.requests[(def.status / 100) | 0]?.inc();
    route.metrics.duration.observe((performance.now() - started) / 1000);
  }
  logAccess(
    gw,
    req,
    requestId,
    path,
    def.status,
    (performance.now() - started) / 1000,
    0,
    route,
    undefined,
    def.code,
  );
}

/**
 * Dispatch: the request goes to the picked target's undici pool, with the headers Sluice forwards
 * (end-to-end headers, Host by the route's policy, forwarding headers, the request id, the route's
 * and the policies' additions). The exchange's response side is a `ProxyExchange` (proxy.ts),
 * which streams the answer back and, on a route with `retry`, tries another target when the try
 * failed before any byte reached the client.
 */
import type { Dispatcher } from 'undici';
import type { Target } from '../../upstreams/target.js';
import type { Exchange } from '../exchange.js';
import { forwardedHeaders, peerAddress } from '../headers.js';
import { ProxyExchange } from '../proxy.js';
import { applyRouteDrops } from '../request-head.js';
import { traceOf } from '../trace.js';

/** The path sent upstream: the normalised path, rewritten by the route, with the query. */
export function upstreamPath(x: Exchange): string {
  const route = x.routed;
  return (route.rewrite ? route.rewrite(x.path, x.params) : x.path) + x.query;
}

/** Headers sent upstream: end-to-end headers, then Host, forwarding, request id and the additions. */
export function upstreamHeaders(x: Exchange, hostForTarget: string): string[] {
  const { head } = x;
  const route = x.routed;
  const gw = x.gw;
  const out = applyRouteDrops(head, route);
  const host =
    route.hostMode === 1
      ? hostForTarget
      : route.hostMode === 0
        ? (head.host ?? hostForTarget)
        : route.hostValue;
  const f = forwardedHeaders(
    peerAddress(x.socket?.remoteAddress),
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
    x.requestId,
  );
  if (f.host) out.push('x-forwarded-host', f.host);
  // Keep the client's framing: a sized body stays sized (undici checks the length), so upstreams
  // that refuse chunked uploads still work. A chunked body stays chunked.
  if (head.contentLength !== undefined) out.push('content-length', head.contentLength);
  if (head.teTrailers) out.push('te', 'trailers');
  const add = route.request.append;
  for (let i = 0; i < add.length; i++) out.push(add[i]!);
  const ctx = x.ctx;
  if (ctx !== undefined) {
    const ph = ctx.upstreamHeaders;
    for (let i = 0; i < ph.length; i++) out.push(ph[i]!);
  }
  return out;
}

/** Send the exchange to `x.target` (holding its slots); the ProxyExchange takes it from here. */
export function dispatch(x: Exchange): void {
  const route = x.routed;
  const target = x.target!;
  const res = x.res!;
  x.hold();
  if (x.gw.draining) res.shouldKeepAlive = false;
  // Tracing on: the SERVER span, whose CLIENT spans ProxyExchange starts per try.
  const tracer = x.gw.tracer;
  if (tracer !== undefined) traceOf(x, tracer);
  const p = new ProxyExchange(x);
  const rp = route.retry;
  const body = x.body;
  if (rp === undefined) {
    if (body !== null && x.gw.runtime.requestBodyIdle > 0) p.watchUpload(x.gw.runtime.requestBodyIdle);
    p.start(target, {
      path: upstreamPath(x),
      method: x.req.method as Dispatcher.HttpMethod,
      headers: upstreamHeaders(x, target.hostHeader),
      body,
      headersTimeout: route.timeouts.firstByte,
      bodyTimeout: route.timeouts.idle,
    });
    return;
  }
  // A route with `retry`: the try may be repeated on another target when the method is
  // retryable and the body can be sent again (none, or buffered).
  rp.budget.request();
  const headersTimeout = rp.perTryTimeout || route.timeouts.firstByte;
  // Built once; a try on another target only swaps the Host value, when the route sends the
  // target's host.
  const headers = upstreamHeaders(x, target.hostHeader);
  const path = upstreamPath(x);
  const options = (t: Target): Dispatcher.DispatchOptions => ({
    path,
    method: x.req.method as Dispatcher.HttpMethod,
    headers: t === target || route.hostMode !== 1 ? headers : withHost(headers, t.hostHeader),
    body,
    headersTimeout,
    bodyTimeout: route.timeouts.idle,
  });
  if (body === null || Buffer.isBuffer(body)) {
    if (rp.methods.has(x.req.method!)) p.retry = { policy: rp, options };
  } else if (x.gw.runtime.requestBodyIdle > 0) p.watchUpload(x.gw.runtime.requestBodyIdle);
  p.start(target, options(target));
}

/** A copy of `headers` with the `host` Sluice set (the last one) replaced. */
function withHost(headers: string[], host: string): string[] {
  const out = headers.slice();
  for (let i = out.length - 2; i >= 0; i -= 2) {
    if (out[i] === 'host') {
      out[i + 1] = host;
      break;
    }
  }
  return out;
}

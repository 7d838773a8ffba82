/**
 * The request path: guard (framing, path normalisation, request id) → router → upstream group →
 * proxy. Everything here reads the compiled Runtime captured at the start, so a reload never
 * changes the rules under a request in flight.
 */
import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Readable } from 'node:stream';
import type { Dispatcher } from 'undici';
import type { CompiledRoute, Fallback } from '../config/compile.js';
import type { Denial, Policy, Reply, RequestContext } from '../policies/policy.js';
import type { Target } from '../upstreams/target.js';
import { logAccess } from './access-log.js';
import type { Limiter } from './concurrency.js';
import { newRequestContext, requestContextOf, setRequestContext, withPolicyHeaders } from './context.js';
import { type ErrorDef, Errors } from './errors.js';
import { acceptableRequestId, forwardedHeaders, peerAddress } from './headers.js';
import { normalizePath, splitTarget } from './path.js';
import { completePolicies, runRequestPolicies } from './policy-chain.js';
import { sendProblem } from './problem.js';
import { ProxyExchange } from './proxy.js';
import { applyRouteDrops, type RequestHead, readRequestHead, validHost } from './request-head.js';
import type { RetryPolicy } from './retry.js';
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
  /** Set when the route has policies: what they established (principal, tenant, headers to add). */
  ctx: RequestContext | undefined;
}

export interface Refusal {
  refused: ErrorDef;
  requestId: string;
  detail: string | undefined;
  /** The normalised path when known (for the access log). */
  path: string;
}

const closeHeaders: Record<string, string> = { connection: 'close' };

/**
 * Set on a socket once Sluice has answered `connection: close` to a refused request. node:http
 * still parses and emits requests pipelined behind it (for an ambiguous request, exactly the
 * smuggled one): they must never be routed. The socket closes when the refusal is flushed.
 */
const kRefusedClosing = Symbol('sluice.refusedClosing');
type MarkableSocket = { [kRefusedClosing]?: boolean } | null;

export function closingAfterRefusal(req: IncomingMessage): boolean {
  return (req.socket as MarkableSocket)?.[kRefusedClosing] === true;
}

/** Guard and route a request. Returns what to proxy, or why to refuse (refusals are rare: no closures on the fast path). */
export function guardAndRoute(gw: DataplaneState, req: IncomingMessage): Guarded | Refusal {
  const rt = gw.runtime;
  const head = readRequestHead(req);
  const requestId = acceptableRequestId(head.requestId) ? head.requestId : randomUUID();
  if (head.framingError !== undefined)
    return { refused: Errors.ambiguousFraming, requestId, detail: head.framingError, path: '' };
  if (head.transferEncoding !== undefined && req.httpVersionMajor === 1 && req.httpVersionMinor === 0)
    // RFC 9112 §6.1: Transfer-Encoding in an HTTP/1.0 message means the framing is faulty.
    return {
      refused: Errors.ambiguousFraming,
      requestId,
      detail: 'Transfer-Encoding in an HTTP/1.0 request',
      path: '',
    };
  if (head.headerError !== undefined)
    return { refused: Errors.invalidHeader, requestId, detail: head.headerError, path: '' };
  const target = splitTarget(req.url ?? '');
  if (target === undefined)
    return { refused: Errors.invalidPath, requestId, detail: 'the request target is not a path', path: '' };
  if (target.authority !== undefined) {
    // RFC 9112 §3.2.2: with an absolute-form target the authority replaces Host, for routing and
    // for forwarding alike, so the route matched and the host the upstream sees are the same.
    if (!validHost(target.authority))
      return {
        refused: Errors.invalidPath,
        requestId,
        detail: 'invalid authority in the request target',
        path: '',
      };
    head.host = target.authority;
  } else if (head.host === undefined && req.httpVersionMajor === 1 && req.httpVersionMinor === 1) {
    // Checked here rather than by node:http (`requireHostHeader`), which answers a bare 400.
    return {
      refused: Errors.invalidHeader,
      requestId,
      detail: 'an HTTP/1.1 request needs a Host header',
      path: '',
    };
  }
  const path = normalizePath(target.path, rt.pathOptions);
  if (typeof path !== 'string')
    return { refused: Errors.invalidPath, requestId, detail: path.error, path: '' };
  const m = rt.router.match(head.host, req.method ?? 'GET', path, req);
  if (m === undefined) return { refused: Errors.noRoute, requestId, detail: undefined, path };
  return { head, requestId, path, query: target.query, route: m.route, params: m.params, ctx: undefined };
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
  // Keep the client's framing: a sized body stays sized (undici checks the length), so upstreams
  // that refuse chunked uploads still work. A chunked body stays chunked.
  if (head.contentLength !== undefined) out.push('content-length', head.contentLength);
  if (head.teTrailers) out.push('te', 'trailers');
  const add = route.request.append;
  for (let i = 0; i < add.length; i++) out.push(add[i]!);
  const ctx = g.ctx;
  if (ctx !== undefined) {
    const ph = ctx.upstreamHeaders;
    for (let i = 0; i < ph.length; i++) out.push(ph[i]!);
  }
  return out;
}

export function handleRequest(gw: DataplaneState, req: IncomingMessage, res: ServerResponse): void {
  // Pipelined behind a refusal that closes the connection: never answered, never routed.
  if (closingAfterRefusal(req)) return;
  const started = performance.now();
  const g = guardAndRoute(gw, req);
  if ('refused' in g) {
    // After a framing or header refusal the rest of the bytes on this connection cannot be trusted
    // to start a new request (that is what smuggling exploits): answer, then close.
    const close = g.refused === Errors.ambiguousFraming || g.refused === Errors.invalidHeader;
    refuseRequest(
      gw,
      req,
      res,
      g.refused,
      g.requestId,
      g.detail,
      g.path,
      started,
      undefined,
      close ? closeHeaders : undefined,
    );
    return;
  }
  const chain = g.route.policies;
  if (chain !== undefined) {
    applyPolicies(gw, req, res, g, started, chain);
    return;
  }
  admit(gw, req, res, g, started);
}

/** Run the route's request policies; on success admit the request, on a denial answer it. */
function applyPolicies(
  gw: DataplaneState,
  req: IncomingMessage,
  res: ServerResponse,
  g: Guarded,
  started: number,
  chain: readonly Policy[],
): void {
  const ctx = newRequestContext(req, res, g, gw.runtime.trustedProxies);
  g.ctx = ctx;
  setRequestContext(req, ctx);
  const v = runRequestPolicies(ctx, chain);
  if (v === undefined) {
    admit(gw, req, res, g, started);
    return;
  }
  if (!(v instanceof Promise)) {
    answer(gw, req, res, g, started, v);
    return;
  }
  // Waiting (a signature check, keys being fetched): counted in flight so a drain waits for it.
  gw.inflight++;
  const settle = () => {
    gw.inflight--;
    if (gw.inflight === 0 && gw.onIdle) gw.onIdle();
  };
  v.then(
    (d) => {
      if (res.destroyed || req.socket?.destroyed) logClientLeft(gw, req, g, started);
      else if (d === undefined) admit(gw, req, res, g, started);
      else answer(gw, req, res, g, started, d);
      settle();
    },
    (err: unknown) => {
      gw.logger.error({ err, requestId: g.requestId, route: g.route.name }, 'policy failed');
      refuseRequest(gw, req, res, Errors.internal, g.requestId, undefined, g.path, started, g.route);
      settle();
    },
  );
}

/** A policy's answer instead of the upstream: a refusal, or a reply of its own (cache hit, preflight). */
function answer(
  gw: DataplaneState,
  req: IncomingMessage,
  res: ServerResponse,
  g: Guarded,
  started: number,
  v: Denial | Reply,
): void {
  if ('def' in v) {
    refuseRequest(gw, req, res, v.def, g.requestId, v.detail, g.path, started, g.route, v.headers);
    return;
  }
  const headers = v.headers.concat('x-request-id', g.requestId, ...g.ctx!.responseHeaders);
  // RFC 9110 §8.6: a 204 (a CORS preflight's answer) has no Content-Length; node:http sends it as given.
  // Nor does a 304 from the cache: its Content-Length could only be the full representation's.
  if (v.status !== 204 && v.status !== 304) headers.push('content-length', String(v.body.length));
  const seconds = sendStatic(gw, req, res, g, started, v.status, headers, v.body, v.note);
  completePolicies(g.route, g.ctx!, v.status, seconds, undefined);
}

/** Concurrency limits, then on to a target. */
function admit(
  gw: DataplaneState,
  req: IncomingMessage,
  res: ServerResponse,
  g: Guarded,
  started: number,
): void {
  const rl = g.route.limiter;
  if (rl === undefined || rl.tryAcquire()) {
    withRouteSlot(gw, req, res, g, started, rl);
    return;
  }
  waitForSlot(
    gw,
    req,
    res,
    g,
    started,
    rl,
    Errors.routeConcurrency,
    `route "${g.route.name}"`,
    undefined,
    () => withRouteSlot(gw, req, res, g, started, rl),
  );
}

/** Pick a target and dispatch, holding the route's slot (`routeSlot`, when the route has a limit). */
function withRouteSlot(
  gw: DataplaneState,
  req: IncomingMessage,
  res: ServerResponse,
  g: Guarded,
  started: number,
  routeSlot: Limiter | undefined,
): void {
  const { route, head } = g;
  // Failover (issue 4): the active group is precomputed on health changes, one read per request.
  let group = route.failover === undefined ? route.upstream : route.failover.active;
  let target = group.pick(req);
  if (target === undefined) {
    // Breakers and fallback (issue 4): only on this path, so a healthy upstream costs nothing more.
    const fb = route.fallback;
    if (fb !== undefined) {
      if (fb.kind === 'static') {
        routeSlot?.release();
        sendFallback(gw, req, res, g, started, fb);
        return;
      }
      group = fb.group;
      target = group.pick(req);
    }
    if (target === undefined) {
      routeSlot?.release();
      const open = group.circuitOpen;
      refuseRequest(
        gw,
        req,
        res,
        open ? Errors.circuitOpen : Errors.noTarget,
        g.requestId,
        `upstream "${group.name}"`,
        g.path,
        started,
        route,
        open ? { 'retry-after': String(group.retryAfter) } : undefined,
      );
      return;
    }
  }
  let body: Readable | null = null;
  if (head.contentLength !== undefined) {
    const n = Number(head.contentLength);
    if (n > route.maxBodyBytes) {
      routeSlot?.release();
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
  const rp = route.retry;
  if (
    rp !== undefined &&
    body !== null &&
    head.contentLength !== undefined &&
    Number(head.contentLength) <= rp.bufferBody &&
    rp.methods.has(req.method!)
  ) {
    // A body small enough to buffer (retry.bufferBody) is read whole first, so a retry can send it again.
    bufferBody(gw, req, res, g, started, routeSlot, (buf) =>
      toTarget(gw, req, res, g, started, target, buf, routeSlot),
    );
    return;
  }
  toTarget(gw, req, res, g, started, target, body, routeSlot);
}

/** Dispatch to `target`, after waiting for a slot when the target has a concurrency limit. */
function toTarget(
  gw: DataplaneState,
  req: IncomingMessage,
  res: ServerResponse,
  g: Guarded,
  started: number,
  target: Target,
  body: Readable | Buffer | null,
  routeSlot: Limiter | undefined,
): void {
  const tl = target.limiter;
  if (tl === undefined || tl.tryAcquire()) {
    dispatchTo(gw, req, res, g, started, target, body, routeSlot, tl);
    return;
  }
  waitForSlot(
    gw,
    req,
    res,
    g,
    started,
    tl,
    Errors.targetConcurrency,
    `target "${target.id}"`,
    routeSlot,
    () => dispatchTo(gw, req, res, g, started, target, body, routeSlot, tl),
  );
}

function dispatchTo(
  gw: DataplaneState,
  req: IncomingMessage,
  res: ServerResponse,
  g: Guarded,
  started: number,
  target: Target,
  body: Readable | Buffer | null,
  routeSlot: Limiter | undefined,
  targetSlot: Limiter | undefined,
): void {
  const route = g.route;
  const path = (route.rewrite ? route.rewrite(g.path, g.params) : g.path) + g.query;
  gw.inflight++;
  target.state.inflight++; // least-request reads it; ProxyExchange.finish gives it back
  gw.metrics.inflight.inc();
  if (gw.draining) res.shouldKeepAlive = false;
  const exchange = new ProxyExchange(gw, route, target, req, res, g.requestId, g.path, started);
  exchange.ctx = g.ctx;
  // The exchange releases exactly the slots it holds, into the limiters of the config it started
  // under (a reload builds new limiters; the old ones drain).
  exchange.routeSlot = routeSlot;
  exchange.targetSlot = targetSlot;
  const rp = route.retry;
  if (rp !== undefined) {
    retrying(gw, req, g, path, target, body, exchange, rp);
    return;
  }
  if (body !== null && gw.runtime.requestBodyIdle > 0) exchange.watchUpload(gw.runtime.requestBodyIdle);
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

/**
 * First try of a request on a route with `retry`. The exchange may try again (another target) when
 * the method is retryable and the body can be sent again: none, or buffered (a Buffer).
 */
function retrying(
  gw: DataplaneState,
  req: IncomingMessage,
  g: Guarded,
  path: string,
  target: Target,
  body: Readable | Buffer | null,
  exchange: ProxyExchange,
  rp: RetryPolicy,
): void {
  rp.budget.request();
  const route = g.route;
  const headersTimeout = rp.perTryTimeout || route.timeouts.firstByte;
  // Built once (upstreamHeaders extends the request's own list); a try on another target only
  // swaps the Host value, when the route sends the target's host.
  const headers = upstreamHeaders(gw, req, g, target.hostHeader);
  const options = (t: Target): Dispatcher.DispatchOptions => ({
    path,
    method: req.method as Dispatcher.HttpMethod,
    headers: t === target || route.hostMode !== 1 ? headers : withHost(headers, t.hostHeader),
    body,
    headersTimeout,
    bodyTimeout: route.timeouts.idle,
  });
  if (body === null || Buffer.isBuffer(body)) {
    if (rp.methods.has(req.method!)) exchange.retry = { policy: rp, options, tries: 1 };
  } else if (gw.runtime.requestBodyIdle > 0) exchange.watchUpload(gw.runtime.requestBodyIdle);
  target.dispatcher.dispatch(options(target), exchange);
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

/**
 * Read a (sized, small) request body whole, then `done`. A client that leaves meanwhile is logged
 * 499; one that stalls longer than `listen.timeouts.requestBody` is answered 408.
 */
function bufferBody(
  gw: DataplaneState,
  req: IncomingMessage,
  res: ServerResponse,
  g: Guarded,
  started: number,
  routeSlot: Limiter | undefined,
  done: (body: Buffer) => void,
): void {
  const chunks: Buffer[] = [];
  const idle = gw.runtime.requestBodyIdle;
  // Counted in flight while buffering, so a graceful drain waits for it.
  gw.inflight++;
  const leave = () => {
    gw.inflight--;
    if (gw.inflight === 0 && gw.onIdle) gw.onIdle();
  };
  const cleanup = () => {
    req.removeListener('data', onData);
    req.removeListener('end', onEnd);
    req.removeListener('error', onGone);
    res.removeListener('close', onGone);
    if (idle > 0) {
      req.removeListener('timeout', onStall);
      if (req.socket && !req.socket.destroyed) req.socket.setTimeout(0);
    }
  };
  const onData = (c: Buffer) => chunks.push(c);
  const onEnd = () => {
    cleanup();
    // The exchange counts itself in flight (synchronously) before this leaves.
    done(Buffer.concat(chunks));
    leave();
  };
  const onGone = () => {
    cleanup();
    routeSlot?.release();
    logClientLeft(gw, req, g, started);
    leave();
  };
  const onStall = () => {
    cleanup();
    routeSlot?.release();
    refuseRequest(
      gw,
      req,
      res,
      Errors.requestBodyTimeout,
      g.requestId,
      'the client stopped sending the request body',
      g.path,
      started,
      g.route,
      closeHeaders,
    );
    leave();
  };
  req.on('data', onData);
  req.once('end', onEnd);
  req.once('error', onGone);
  res.once('close', onGone);
  if (idle > 0) req.setTimeout(idle, onStall);
}

/**
 * Wait in a limiter's queue. On a slot, `proceed` runs holding it; on a full queue or a timeout the
 * request is answered 503 `def` with retry-after; if the client leaves, its place is given up.
 * `held` (the route slot of a request waiting for its target) is released on every way out but
 * `proceed`. A queued request counts in `gw.inflight`, so a graceful drain waits for it.
 */
function waitForSlot(
  gw: DataplaneState,
  req: IncomingMessage,
  res: ServerResponse,
  g: Guarded,
  started: number,
  limiter: Limiter,
  def: ErrorDef,
  what: string,
  held: Limiter | undefined,
  proceed: () => void,
): void {
  let left = false;
  const leaveInflight = () => {
    gw.inflight--;
    if (gw.inflight === 0 && gw.onIdle) gw.onIdle();
  };
  const onClose = () => {
    left = true;
    limiter.leave(waiter!);
    held?.release();
    logClientLeft(gw, req, g, started);
    leaveInflight();
  };
  const waiter = limiter.enqueue(
    () =>
      // Run after the finishing exchange that handed the slot over has completed its own work.
      queueMicrotask(() => {
        res.removeListener('close', onClose);
        if (left || res.destroyed) {
          // Gone between the grant and now: pass the slot on.
          limiter.release();
          if (!left) {
            left = true;
            held?.release();
            leaveInflight();
          }
          return;
        }
        try {
          proceed();
        } finally {
          leaveInflight();
        }
      }),
    () => {
      res.removeListener('close', onClose);
      held?.release();
      refuseRequest(
        gw,
        req,
        res,
        def,
        g.requestId,
        `${what}: waited ${limiter.queueTimeout} ms in the queue`,
        g.path,
        started,
        g.route,
        retryAfter,
      );
      leaveInflight();
    },
  );
  if (waiter === undefined) {
    held?.release();
    refuseRequest(
      gw,
      req,
      res,
      def,
      g.requestId,
      `${what}: the queue is full`,
      g.path,
      started,
      g.route,
      retryAfter,
    );
    return;
  }
  gw.inflight++;
  res.once('close', onClose);
}

const retryAfter: Record<string, string> = { 'retry-after': '1' };

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
  headers?: Readonly<Record<string, string>>,
): void {
  gw.metrics.refusals.labels(def.code).inc();
  const extra = withPolicyHeaders(req, gw.draining ? { ...headers, connection: 'close' } : headers);
  if (extra?.connection === 'close' && req.socket) (req.socket as MarkableSocket)![kRefusedClosing] = true;
  sendProblem(res, def, requestId, detail, extra);
  if (route) {
    const seconds = (performance.now() - started) / 1000;
    route.metrics.requests[(def.status / 100) | 0]?.inc();
    route.metrics.duration.observe(seconds);
    const ctx = route.completePolicies !== undefined ? requestContextOf(req) : undefined;
    if (ctx !== undefined) completePolicies(route, ctx, def.status, seconds, def.code);
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

/** The route's static `fallback` answer (its upstream has no target to offer). */
function sendFallback(
  gw: DataplaneState,
  req: IncomingMessage,
  res: ServerResponse,
  g: Guarded,
  started: number,
  fb: Extract<Fallback, { kind: 'static' }>,
): void {
  const headers = fb.headers.concat('content-length', String(fb.body.length), 'x-request-id', g.requestId);
  if (g.ctx !== undefined) headers.push(...g.ctx.responseHeaders);
  sendStatic(gw, req, res, g, started, fb.status, headers, fb.body, 'fallback');
}

/**
 * Answer with a complete response Sluice holds (a fallback, a policy's reply): head, body, route
 * metrics and the access-log line (`note` in its error field). Returns the seconds it took.
 */
function sendStatic(
  gw: DataplaneState,
  req: IncomingMessage,
  res: ServerResponse,
  g: Guarded,
  started: number,
  status: number,
  headers: string[],
  body: Buffer,
  note: string,
): number {
  const route = g.route;
  if (gw.draining) headers.push('connection', 'close');
  res.writeHead(status, headers);
  res.end(req.method === 'HEAD' ? undefined : body);
  const seconds = (performance.now() - started) / 1000;
  route.metrics.requests[(status / 100) | 0]?.inc();
  route.metrics.duration.observe(seconds);
  logAccess(gw, req, g.requestId, g.path, status, seconds, body.length, route, undefined, note, req.socket);
  return seconds;
}

/** The access-log line of a request whose client left before it was proxied (queued or uploading). */
function logClientLeft(gw: DataplaneState, req: IncomingMessage, g: Guarded, started: number): void {
  logAccess(
    gw,
    req,
    g.requestId,
    g.path,
    499,
    (performance.now() - started) / 1000,
    0,
    g.route,
    undefined,
    'client_closed',
  );
}

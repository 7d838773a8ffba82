/**
 * The response side of a proxied exchange: an undici dispatch handler that streams the upstream
 * response to the client chunk by chunk (no buffering, backpressure both ways), turns failures into
 * problems, and on a route with `retry` tries another target while nothing has reached the client.
 * It implements undici's current handler API (`onRequestStart`, `onResponseStart`, ...). It uses
 * the raw dispatch API rather than `request()` streams: one object per request and no Readable in
 * between, which is most of the gap between a bare proxy and stream-based ones.
 */
import type { IncomingHttpHeaders } from 'node:http';
import type { Dispatcher } from 'undici';
import { sendProblem } from '../errors/problem.js';
import type { BodyTap, RequestContext } from '../policies/policy.js';
import type { Target } from '../upstreams/target.js';
import { withPolicyHeaders } from './context.js';
import type { Exchange } from './exchange.js';
import { type GrpcRouteMetrics, grpcCodeIndex, grpcStatusIn, isGrpcContentType } from './grpc-status.js';
import { connectionTokens, responseHopByHop } from './headers.js';
import { type RetryPolicy, retryAfterMs } from './retry.js';
import { forwardTrailers } from './trailers.js';
import {
  ClientClosedError,
  classifyUpstreamError,
  RequestBodyTimeoutError,
  TotalTimeoutError,
} from './upstream-errors.js';

/** Retry state of one request on a route with `retry` (set only when the request may be retried). */
export interface RetryRun {
  readonly policy: RetryPolicy;
  /** The dispatch options for a try on a target (the Host header depends on the target). */
  readonly options: (target: Target) => Dispatcher.DispatchOptions;
}

type Controller = Dispatcher.DispatchController;

export class ProxyExchange implements Dispatcher.DispatchHandler {
  private controller: Controller | undefined;
  private status = 0;
  private bytes = 0;
  private finished = false;
  private pendingAbort: Error | undefined;
  private timer: NodeJS.Timeout | undefined;
  /** The response is a server-sent event stream (text/event-stream). */
  private sse = false;
  /** A sized response's head, held until its first body byte (see onResponseStart). */
  private pendingHead: string[] | undefined;
  private statusText = '';
  /** Set on retryable requests of routes with `retry`; undefined elsewhere (one comparison). */
  retry: RetryRun | undefined = undefined;
  /** The first try's dispatch options: what a release's mirror copies (delivery/releases/mirror.ts). */
  private sent: Dispatcher.DispatchOptions | undefined = undefined;
  /** Body taps of response policies (a cache filling an entry); undefined on the common path. */
  private taps: BodyTap[] | undefined = undefined;
  /**
   * A retry is decided: the reason (metric label). While set, the failed try's response body is
   * read and dropped; once it ends (or breaks), the next try starts on `nextTarget`.
   */
  private retryReason: string | undefined;
  private nextTarget: Target | undefined;
  private retryDelay = 0;
  /** The failed try's outcome, for its target's health record. */
  private triedStatus = 0;
  private triedError: string | undefined;
  /** A gRPC answer on a route with `grpc`: its service label (counted when it ends). */
  private grpcService: string | undefined;
  /** `grpc-status` from the head of a Trailers-Only answer. */
  private grpcHeadStatus: string | undefined;
  private readonly onDrain = () => this.controller?.resume();
  private readonly onClientClose = () => {
    if (!this.finished) this.abort(new ClientClosedError('client closed the connection'));
  };

  constructor(private readonly x: Exchange) {
    x.res!.once('close', this.onClientClose);
    const total = x.routed.timeouts.total;
    if (total > 0) this.timer = setTimeout(() => this.abort(new TotalTimeoutError('total timeout')), total);
  }

  /** Dispatch the first try to `target` (counted in its in-flight requests until the try ends). */
  start(target: Target, first: Dispatcher.DispatchOptions): void {
    // Tracing on: the try's CLIENT span and its traceparent.
    const options = this.x.trace !== undefined ? this.x.trace.attempt(target, first, 0) : first;
    target.state.inflight++; // least-request reads it
    this.x.gw.metrics.inflight.inc();
    this.sent = options;
    target.dispatcher.dispatch(options, this);
  }

  /** Set while an upload is watched for stalls; undoes the watch. */
  private stopUploadWatch: (() => void) | undefined;

  /**
   * Abort the exchange with 408 when the client stalls mid-upload for longer than `idleMs`. Only
   * requests with a body call this, so bodiless requests create no timer and no closure. The
   * socket's own idle timer is used (Node emits `timeout` on the incomplete request).
   */
  watchUpload(idleMs: number): void {
    const req = this.x.req;
    const socket = this.x.socket;
    const stalled = () => this.abort(new RequestBodyTimeoutError('the client stopped sending the body'));
    const stop = () => {
      this.stopUploadWatch = undefined;
      req.removeListener('timeout', stalled);
      req.removeListener('end', stop);
      if (!socket.destroyed) socket.setTimeout(0);
    };
    this.stopUploadWatch = stop;
    req.setTimeout(idleMs, stalled);
    req.once('end', stop);
  }

  private abort(err: Error): void {
    if (this.controller) this.controller.abort(err);
    else this.pendingAbort = err;
  }

  onRequestStart(controller: Controller): void {
    this.controller = controller;
    if (this.pendingAbort) controller.abort(this.pendingAbort);
  }

  onResponseStart(
    controller: Controller,
    status: number,
    parsed: IncomingHttpHeaders,
    statusText?: string,
  ): void {
    // 1xx informational responses are not forwarded (Node answers `Expect: 100-continue` itself).
    if (status < 200) return;
    const raw = rawHeadersOf(controller, parsed);
    // A retryable status: not forwarded; its body is dropped, then the next try starts (onResponseEnd).
    if (this.retry?.policy.statuses.has(status) && this.retryStatus(status, raw)) return;
    this.status = status;
    const x = this.x;
    const res = x.res!;
    const route = x.routed;
    // One comparison on routes without `grpc`.
    if (route.grpc !== undefined) this.grpcHead(route.grpc, raw);
    // A release's shadow traffic: one comparison on routes without a mirror; copied off the request path.
    if (route.release?.mirror !== undefined) {
      const tap = route.release.mirror.begin(x, status, this.sent!);
      if (tap !== undefined) this.taps = [tap];
    }
    const plan = route.response;
    const drop = plan.drop;
    const headers: string[] = [];
    let tokens: string[] | undefined;
    let sized = false;
    for (let i = 0; i < raw.length; i += 2) {
      const name = raw[i]!.toString('latin1');
      const l = name.toLowerCase();
      if (responseHopByHop.has(l)) {
        if (l === 'connection') {
          // Every Connection line counts: `Connection: a` and `Connection: b` name both.
          const t = connectionTokens(raw[i + 1]!.toString('latin1'));
          tokens = tokens === undefined ? t : tokens.concat(t);
        }
        continue;
      }
      // Sluice answers with the request id it sent upstream (below); an upstream echoing it back
      // would otherwise give the client two X-Request-Id headers.
      if (l === 'x-request-id') continue;
      if (drop.size > 0 && drop.has(l)) continue;
      if (l === 'content-length') sized = true;
      headers.push(name, raw[i + 1]!.toString('latin1'));
    }
    const out = tokens && tokens.length > 0 ? dropNamed(headers, tokens) : headers;
    // Only streamed (unsized) responses can be SSE; sized ones skip the scan.
    if (!sized) this.sse = isEventStream(out);
    for (let i = 0; i < plan.append.length; i++) out.push(plan.append[i]!);
    const ctx = x.ctx;
    if (ctx !== undefined) this.responsePhase(ctx, status, out);
    out.push('x-request-id', x.requestId);
    if (x.trace !== undefined) x.trace.responseHead(out);
    if (x.gw.draining) out.push('connection', 'close');
    // A streamed (unsized) response sends its head at once: an SSE client must see it before the
    // first event. A sized one is held until the first chunk, so head and body leave in one packet,
    // and so an upstream that stalls before its first body byte still gets a 504 problem rather than
    // a reset (nothing has reached the client yet).
    if (sized || status === 204 || status === 304) {
      this.pendingHead = out;
      this.statusText = statusText ?? '';
      return;
    }
    res.writeHead(status, statusText || undefined, out);
    res.flushHeaders();
  }

  /** Policies see (and may extend) the head; a tap returned sees the body. Rare: routes with policies. */
  private responsePhase(ctx: RequestContext, status: number, out: string[]): void {
    // Response policies see the upstream's head (after the route's header rules) and nothing
    // per-request: the cache stores exactly that, CORS edits only the upstream's own headers.
    // The request's policy headers (CORS, RateLimit) are appended after all of them.
    const ps = this.x.routed.responsePolicies;
    if (ps !== undefined) {
      const head = { status, headers: out };
      for (let i = 0; i < ps.length; i++) {
        const tap = ps[i]!.onResponse!(ctx, head);
        if (tap === undefined) continue;
        if (this.taps === undefined) this.taps = [tap];
        else this.taps.push(tap);
      }
    }
    const add = ctx.responseHeaders;
    for (let i = 0; i < add.length; i++) out.push(add[i]!);
  }

  private writePendingHead(): void {
    const head = this.pendingHead;
    if (head === undefined) return;
    this.pendingHead = undefined;
    this.x.res!.writeHead(this.status, this.statusText || undefined, head);
  }

  onResponseData(controller: Controller, chunk: Buffer): void {
    if (this.retryReason !== undefined) return;
    this.bytes += chunk.length;
    if (this.pendingHead !== undefined) this.writePendingHead();
    const taps = this.taps;
    if (taps !== undefined) for (let i = 0; i < taps.length; i++) taps[i]!.data(chunk);
    const res = this.x.res!;
    if (res.write(chunk)) return;
    controller.pause();
    res.once('drain', this.onDrain);
  }

  onResponseEnd(controller: Controller, parsed: IncomingHttpHeaders): void {
    if (this.retryReason !== undefined) {
      this.nextTry();
      return;
    }
    if (this.pendingHead !== undefined) this.writePendingHead();
    const res = this.x.res!;
    // Trailers (gRPC's status, checksums) are passed on: raw from HTTP/1.1, an object from HTTP/2.
    const trailers = controller.rawTrailers ?? parsed;
    // An empty raw list (HTTP/1.1 without trailers) skips the call; forwardTrailers ignores an empty object.
    if (trailers !== null && (!Array.isArray(trailers) || trailers.length !== 0))
      forwardTrailers(res, trailers);
    res.end();
    if (this.grpcService !== undefined) {
      this.x.routed.grpc!.count(
        this.grpcService,
        grpcCodeIndex(grpcStatusIn(trailers) ?? this.grpcHeadStatus),
      );
      this.grpcService = undefined;
    }
    const taps = this.taps;
    if (taps !== undefined) {
      this.taps = undefined;
      for (let i = 0; i < taps.length; i++) taps[i]!.end();
    }
    this.finish(this.status, undefined);
  }

  onResponseError(_controller: Controller, err: Error): void {
    if (this.finished) return;
    const x = this.x;
    const gw = x.gw;
    const route = x.routed;
    if (err instanceof ClientClosedError) {
      if (this.retryReason !== undefined) this.dropPlannedRetry();
      this.finish(499, 'client_closed');
      return;
    }
    const { def, kind } = classifyUpstreamError(err);
    if (this.retry !== undefined && this.retryOnError(err, kind)) {
      gw.metrics.upstreamErrors.labels((x.version ?? route.upstream!).name, kind).inc();
      return;
    }
    // The client's own faults are counted as refusals, not upstream errors; the rest of the
    // connection's bytes are unread, so it is closed.
    const clientFault = kind === 'body_too_large' || kind === 'client_body_timeout';
    if (clientFault) gw.metrics.refusals.labels(def.code).inc();
    else gw.metrics.upstreamErrors.labels((x.version ?? route.upstream!).name, kind).inc();
    const res = x.res!;
    if (this.grpcService !== undefined) {
      route.grpc!.countBroken(this.grpcService);
      this.grpcService = undefined;
    }
    if (res.headersSent) {
      // The response already started: reset the connection (RST_STREAM on HTTP/2) so a truncated
      // body never looks complete. An SSE client first gets a final `event: error` it can act on.
      if (this.sse && !res.writableEnded) this.endEventStream(def.code, err);
      else res.destroy(err);
      this.finish(this.status || def.status, kind);
      return;
    }
    sendProblem(
      res,
      def,
      x.requestId,
      kind === 'body_too_large'
        ? `the body exceeds ${route.maxBodyBytes} bytes`
        : clientFault
          ? 'the client stopped sending the request body'
          : `upstream "${(x.version ?? route.upstream!).name}"`,
      withPolicyHeaders(x.ctx, clientFault ? { connection: 'close' } : undefined),
    );
    this.finish(def.status, kind);
  }

  /** A gRPC route's answer head: an `application/grpc` one is counted when it ends. */
  private grpcHead(m: GrpcRouteMetrics, raw: readonly (Buffer | string)[]): void {
    this.grpcService = undefined;
    for (let i = 0; i < raw.length; i += 2) {
      const n = raw[i]!;
      if (n.length !== 12 || n.toString('latin1').toLowerCase() !== 'content-type') continue;
      if (!isGrpcContentType(raw[i + 1]!.toString('latin1'))) return;
      this.grpcService = m.serviceLabel(this.x.req.url ?? '');
      this.grpcHeadStatus = grpcStatusIn(raw);
      return;
    }
  }

  /** On a retryable status: decide whether to try again (attempts, retry-after, target, budget). */
  private retryStatus(status: number, raw: readonly (Buffer | string)[]): boolean {
    const p = this.retry!.policy;
    let after: number | undefined;
    for (let i = 0; i < raw.length; i += 2) {
      if (raw[i]!.length === 11 && raw[i]!.toString('latin1').toLowerCase() === 'retry-after') {
        after = retryAfterMs(raw[i + 1]!.toString('latin1'));
        break;
      }
    }
    // The upstream asks for a longer pause than the back-off allows: pass its answer on.
    if (after !== undefined && after > p.maxMs) return false;
    if (!this.planRetry()) return false;
    this.retryReason = String(status);
    this.triedStatus = status;
    this.triedError = undefined;
    this.retryDelay = Math.max(after ?? 0, p.backoff(this.x.attempts));
    return true;
  }

  /**
   * On a failure: retry when the kind is retryable and nothing reached the client yet (a held,
   * sized head has not been written). True when a retry is under way.
   */
  private retryOnError(err: Error, kind: string): boolean {
    if (this.retryReason !== undefined) {
      // The dropped body of a retryable status broke: the retry goes on, unless Sluice itself aborted.
      if (err instanceof TotalTimeoutError || err instanceof RequestBodyTimeoutError) {
        this.dropPlannedRetry();
        return false;
      }
      this.nextTry();
      return true;
    }
    if (this.x.res!.headersSent || this.bytes > 0 || this.pendingAbort !== undefined) return false;
    const p = this.retry!.policy;
    if (!p.retriesKind(kind) || !this.planRetry()) return false;
    this.retryReason =
      kind === 'timeout_connect' ? 'connect' : kind === 'timeout_first_byte' ? 'timeout' : kind;
    this.triedStatus = 502;
    this.triedError = kind;
    this.retryDelay = p.backoff(this.x.attempts);
    this.nextTry();
    return true;
  }

  /** Attempts left, another target (with a free slot if it has a limit), budget: take them. */
  private planRetry(): boolean {
    const x = this.x;
    const p = this.retry!.policy;
    if (x.attempts >= p.attempts || this.finished || this.pendingAbort !== undefined) return false;
    // The budget first: a pick can take a half-open breaker's trial, which must then be used.
    if (!p.takeBudget()) return false;
    const next = p.nextTarget(x.routed, x.req, x.target!, x.version, x.placed, x.cell);
    if (next === undefined) return false;
    const tl = next.limiter;
    if (tl !== undefined && !tl.tryAcquire()) return false;
    this.nextTarget = next;
    return true;
  }

  private dropPlannedRetry(): void {
    this.nextTarget?.limiter?.release();
    this.nextTarget = undefined;
    this.retryReason = undefined;
  }

  /** End the failed try (its target's count, slot and health) and start the next after the back-off. */
  private nextTry(): void {
    const x = this.x;
    const r = this.retry!;
    const next = this.nextTarget!;
    const failed = x.target!;
    failed.state.inflight--;
    if (x.targetSlot !== undefined) x.targetSlot.release();
    if (failed.health !== undefined) failed.health.observe(this.triedStatus, this.triedError);
    r.policy.counted(this.retryReason!);
    if (x.trace !== undefined) x.trace.endAttempt(this.triedStatus, this.triedError);
    this.retryReason = undefined;
    this.nextTarget = undefined;
    x.target = next;
    next.state.inflight++;
    x.targetSlot = next.limiter;
    x.attempts++;
    this.status = 0;
    this.pendingHead = undefined;
    this.controller = undefined;
    // Never re-entered from the previous dispatch's callbacks; a client that leaves meanwhile
    // sets pendingAbort, which the next onRequestStart applies.
    setTimeout(() => {
      const o = r.options(next);
      next.dispatcher.dispatch(x.trace !== undefined ? x.trace.attempt(next, o, x.attempts - 1) : o, this);
    }, this.retryDelay);
  }

  /** Write a last `event: error` to an SSE client, then reset once it is flushed (or after 1 s). */
  private endEventStream(code: string, err: Error): void {
    const res = this.x.res!;
    const reset = () => {
      if (!res.destroyed) res.destroy(err);
    };
    const data = JSON.stringify({ code, requestId: this.x.requestId, detail: 'the upstream stream failed' });
    setTimeout(reset, 1000).unref();
    res.write(`event: error\ndata: ${data}\n\n`, reset);
  }

  /** The try is over: the target's share here, the exchange's in `Exchange.finish`. */
  private finish(status: number, error: string | undefined): void {
    if (this.finished) return;
    this.finished = true;
    const taps = this.taps;
    if (taps !== undefined) {
      // Not ended by onResponseEnd: the response failed or the client left.
      this.taps = undefined;
      for (let i = 0; i < taps.length; i++) taps[i]!.abort();
    }
    if (this.timer) clearTimeout(this.timer);
    this.stopUploadWatch?.();
    const x = this.x;
    x.res!.removeListener('close', this.onClientClose);
    const target = x.target!;
    target.state.inflight--;
    x.gw.metrics.inflight.dec();
    // Passive health (outlier ejection, breakers): one comparison when the group has no health settings.
    if (target.health !== undefined) target.health.observe(status, error);
    if (x.trace !== undefined) x.trace.endAttempt(status, error);
    x.finish(status, this.bytes, error);
  }
}

/**
 * The response head as raw `[name, value, ...]`: undici 7 hands its current-API handlers the raw
 * list on the controller (kept: header case and order pass through as the upstream sent them);
 * from the parsed object otherwise.
 */
export function rawHeadersOf(
  controller: Controller,
  parsed: IncomingHttpHeaders,
): readonly (Buffer | string)[] {
  const raw = controller.rawHeaders;
  if (Array.isArray(raw)) return raw;
  const out: string[] = [];
  for (const name of Object.keys(parsed)) {
    const v = parsed[name];
    if (v === undefined) continue;
    if (Array.isArray(v)) for (const one of v) out.push(name, one);
    else out.push(name, v);
  }
  return out;
}

function dropNamed(headers: string[], lowerNames: string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < headers.length; i += 2) {
    if (!lowerNames.includes(headers[i]!.toLowerCase())) out.push(headers[i]!, headers[i + 1]!);
  }
  return out;
}

function isEventStream(headers: string[]): boolean {
  for (let i = 0; i < headers.length; i += 2) {
    if (headers[i]!.length === 12 && headers[i]!.toLowerCase() === 'content-type')
      return headers[i + 1]!.toLowerCase().startsWith('text/event-stream');
  }
  return false;
}

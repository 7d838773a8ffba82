/**
 * One proxied exchange: an undici dispatch handler that streams the upstream response to the
 * client chunk by chunk (no buffering, backpressure both ways) and turns failures into problems.
 * Uses undici's raw dispatch handler rather than `request()` streams: one object per request and
 * no Readable in between, which is most of the gap between a bare proxy and stream-based ones.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { Dispatcher } from 'undici';
import type { CompiledRoute } from '../config/compile.js';
import type { BodyTap, RequestContext } from '../policies/policy.js';
import type { Target } from '../upstreams/target.js';
import { logAccess } from './access-log.js';
import type { Limiter } from './concurrency.js';
import { withPolicyHeaders } from './context.js';
import { connectionTokens, responseHopByHop } from './headers.js';
import { completePolicies } from './policy-chain.js';
import { sendProblem } from './problem.js';
import { type RetryPolicy, retryAfterMs } from './retry.js';
import type { DataplaneState } from './state.js';
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
  /** Tries made so far, the current one included. */
  tries: number;
}

export class ProxyExchange implements Dispatcher.DispatchHandler {
  private abortFn: ((err?: Error) => void) | undefined;
  private resumeFn: (() => void) | undefined;
  private status = 0;
  private bytes = 0;
  private finished = false;
  private pendingAbort: Error | undefined;
  private timer: NodeJS.Timeout | undefined;
  /** The response is a server-sent event stream (text/event-stream). */
  private sse = false;
  /** A sized response's head, held until its first body byte (see onHeaders). */
  private pendingHead: string[] | undefined;
  private statusText = '';
  /** Concurrency slots this exchange holds (route and target limits), released once in finish. */
  routeSlot: Limiter | undefined = undefined;
  targetSlot: Limiter | undefined = undefined;
  /** Set on retryable requests of routes with `retry`; undefined elsewhere (one comparison). */
  retry: RetryRun | undefined = undefined;
  /** What the route's policies established (undefined on routes without policies). */
  ctx: RequestContext | undefined = undefined;
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
  /**
   * The client socket, kept for the access log: undici destroys the request body stream once it
   * has sent it, and a destroyed IncomingMessage no longer has `req.socket`.
   */
  private readonly socket: Socket;
  private readonly onDrain = () => this.resumeFn?.();
  private readonly onClientClose = () => {
    if (!this.finished) this.abort(new ClientClosedError('client closed the connection'));
  };

  constructor(
    private readonly gw: DataplaneState,
    private readonly route: CompiledRoute,
    private target: Target,
    private readonly req: IncomingMessage,
    private readonly res: ServerResponse,
    private readonly requestId: string,
    private readonly path: string,
    private readonly started: number,
  ) {
    this.socket = req.socket;
    res.once('close', this.onClientClose);
    const total = route.timeouts.total;
    if (total > 0) this.timer = setTimeout(() => this.abort(new TotalTimeoutError('total timeout')), total);
  }

  /** Set while an upload is watched for stalls; undoes the watch. */
  private stopUploadWatch: (() => void) | undefined;

  /**
   * Abort the exchange with 408 when the client stalls mid-upload for longer than `idleMs`. Only
   * requests with a body call this, so bodiless requests create no timer and no closure. The
   * socket's own idle timer is used (Node emits `timeout` on the incomplete request).
   */
  watchUpload(idleMs: number): void {
    const req = this.req;
    const socket = this.socket;
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
    if (this.abortFn) this.abortFn(err);
    else this.pendingAbort = err;
  }

  onConnect(abort: (err?: Error) => void): void {
    this.abortFn = abort;
    if (this.pendingAbort) abort(this.pendingAbort);
  }

  onHeaders(status: number, raw: Buffer[], resume: () => void, statusText: string): boolean {
    // 1xx informational responses are not forwarded (Node answers `Expect: 100-continue` itself).
    if (status < 200) return true;
    // A retryable status: not forwarded; its body is dropped, then the next try starts (onComplete).
    if (this.retry?.policy.statuses.has(status) && this.retryStatus(status, raw)) return true;
    this.resumeFn = resume;
    this.status = status;
    const res = this.res;
    const plan = this.route.response;
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
    const ctx = this.ctx;
    if (ctx !== undefined) this.responsePhase(ctx, status, out);
    out.push('x-request-id', this.requestId);
    if (this.gw.draining) out.push('connection', 'close');
    // A streamed (unsized) response sends its head at once: an SSE client must see it before the
    // first event. A sized one is held until the first chunk, so head and body leave in one packet,
    // and so an upstream that stalls before its first body byte still gets a 504 problem rather than
    // a reset (nothing has reached the client yet).
    if (sized || status === 204 || status === 304) {
      this.pendingHead = out;
      this.statusText = statusText;
      return true;
    }
    res.writeHead(status, statusText || undefined, out);
    res.flushHeaders();
    return true;
  }

  /** Policies see (and may extend) the head; a tap returned sees the body. Rare: routes with policies. */
  private responsePhase(ctx: RequestContext, status: number, out: string[]): void {
    // Response policies see the upstream's head (after the route's header rules) and nothing
    // per-request: the cache stores exactly that, CORS edits only the upstream's own headers.
    // The request's policy headers (CORS, RateLimit) are appended after all of them.
    const ps = this.route.responsePolicies;
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
    this.res.writeHead(this.status, this.statusText || undefined, head);
  }

  onData(chunk: Buffer): boolean {
    if (this.retryReason !== undefined) return true;
    this.bytes += chunk.length;
    if (this.pendingHead !== undefined) this.writePendingHead();
    const taps = this.taps;
    if (taps !== undefined) for (let i = 0; i < taps.length; i++) taps[i]!.data(chunk);
    if (this.res.write(chunk)) return true;
    this.res.once('drain', this.onDrain);
    return false;
  }

  onComplete(trailers: string[] | null): void {
    if (this.retryReason !== undefined) {
      this.nextTry();
      return;
    }
    if (this.pendingHead !== undefined) this.writePendingHead();
    // Trailers (gRPC's status, checksums) are passed on. undici gives an empty list (HTTP/1.1) or
    // an empty object (HTTP/2) when there are none: one comparison on the common path.
    if (trailers !== null && trailers.length !== 0) forwardTrailers(this.res, trailers);
    this.res.end();
    const taps = this.taps;
    if (taps !== undefined) {
      this.taps = undefined;
      for (let i = 0; i < taps.length; i++) taps[i]!.end();
    }
    this.finish(this.status, undefined);
  }

  onError(err: Error): void {
    if (this.finished) return;
    if (err instanceof ClientClosedError) {
      if (this.retryReason !== undefined) this.dropPlannedRetry();
      this.finish(499, 'client_closed');
      return;
    }
    const { def, kind } = classifyUpstreamError(err);
    if (this.retry !== undefined && this.retryOnError(err, kind)) {
      this.gw.metrics.upstreamErrors.labels(this.route.upstream.name, kind).inc();
      return;
    }
    // The client's own faults are counted as refusals, not upstream errors; the rest of the
    // connection's bytes are unread, so it is closed.
    const clientFault = kind === 'body_too_large' || kind === 'client_body_timeout';
    if (clientFault) this.gw.metrics.refusals.labels(def.code).inc();
    else this.gw.metrics.upstreamErrors.labels(this.route.upstream.name, kind).inc();
    if (this.res.headersSent) {
      // The response already started: reset the connection (RST_STREAM on HTTP/2) so a truncated
      // body never looks complete. An SSE client first gets a final `event: error` it can act on.
      if (this.sse && !this.res.writableEnded) this.endEventStream(def.code, err);
      else this.res.destroy(err);
      this.finish(this.status || def.status, kind);
      return;
    }
    sendProblem(
      this.res,
      def,
      this.requestId,
      kind === 'body_too_large'
        ? `the body exceeds ${this.route.maxBodyBytes} bytes`
        : clientFault
          ? 'the client stopped sending the request body'
          : `upstream "${this.route.upstream.name}"`,
      withPolicyHeaders(this.req, clientFault ? { connection: 'close' } : undefined),
    );
    this.finish(def.status, kind);
  }

  /** On a retryable status: decide whether to try again (attempts, retry-after, target, budget). */
  private retryStatus(status: number, raw: Buffer[]): boolean {
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
    this.retryDelay = Math.max(after ?? 0, p.backoff(this.retry!.tries));
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
    if (this.res.headersSent || this.bytes > 0 || this.pendingAbort !== undefined) return false;
    const p = this.retry!.policy;
    if (!p.retriesKind(kind) || !this.planRetry()) return false;
    this.retryReason =
      kind === 'timeout_connect' ? 'connect' : kind === 'timeout_first_byte' ? 'timeout' : kind;
    this.triedStatus = 502;
    this.triedError = kind;
    this.retryDelay = p.backoff(this.retry!.tries);
    this.nextTry();
    return true;
  }

  /** Attempts left, another target (with a free slot if it has a limit), budget: take them. */
  private planRetry(): boolean {
    const r = this.retry!;
    if (r.tries >= r.policy.attempts || this.finished || this.pendingAbort !== undefined) return false;
    // The budget first: a pick can take a half-open breaker's trial, which must then be used.
    if (!r.policy.takeBudget()) return false;
    // With failover, the group requests go to now.
    const group = this.route.failover?.active ?? this.route.upstream;
    // Another target when there is one: a few picks (balancers rotate or randomise).
    let next = group.pick(this.req);
    for (let i = 0; i < 3 && next === this.target; i++) next = group.pick(this.req);
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
    const r = this.retry!;
    const next = this.nextTarget!;
    const failed = this.target;
    failed.state.inflight--;
    if (this.targetSlot !== undefined) this.targetSlot.release();
    if (failed.health !== undefined) failed.health.observe(this.triedStatus, this.triedError);
    r.policy.counted(this.retryReason!);
    this.retryReason = undefined;
    this.nextTarget = undefined;
    this.target = next;
    next.state.inflight++;
    this.targetSlot = next.limiter;
    r.tries++;
    this.status = 0;
    this.pendingHead = undefined;
    this.abortFn = undefined;
    this.resumeFn = undefined;
    // Never re-entered from the previous dispatch's callbacks; a client that leaves meanwhile
    // sets pendingAbort, which the next onConnect applies.
    setTimeout(() => next.dispatcher.dispatch(r.options(next), this), this.retryDelay);
  }

  /** Write a last `event: error` to an SSE client, then reset once it is flushed (or after 1 s). */
  private endEventStream(code: string, err: Error): void {
    const res = this.res;
    const reset = () => {
      if (!res.destroyed) res.destroy(err);
    };
    const data = JSON.stringify({ code, requestId: this.requestId, detail: 'the upstream stream failed' });
    setTimeout(reset, 1000).unref();
    res.write(`event: error\ndata: ${data}\n\n`, reset);
  }

  private finish(status: number, error: string | undefined): void {
    if (this.finished) return;
    this.finished = true;
    const taps = this.taps;
    if (taps !== undefined) {
      // Not ended by onComplete: the response failed or the client left.
      this.taps = undefined;
      for (let i = 0; i < taps.length; i++) taps[i]!.abort();
    }
    if (this.timer) clearTimeout(this.timer);
    this.stopUploadWatch?.();
    this.res.removeListener('close', this.onClientClose);
    // Count the exchange as done before anything that could throw: a leaked in-flight count would
    // hold every graceful drain until its timeout.
    const gw = this.gw;
    gw.inflight--;
    const target = this.target;
    target.state.inflight--;
    // Give the slots back (a queued request takes each over); once, as finish runs once.
    if (this.routeSlot !== undefined) this.routeSlot.release();
    if (this.targetSlot !== undefined) this.targetSlot.release();
    // Passive health (outlier ejection): one comparison when the group has no health settings.
    if (target.health !== undefined) target.health.observe(status, error);
    gw.metrics.inflight.dec();
    const seconds = (performance.now() - this.started) / 1000;
    const m = this.route.metrics;
    m.requests[(status / 100) | 0]?.inc();
    m.duration.observe(seconds);
    logAccess(
      this.gw,
      this.req,
      this.requestId,
      this.path,
      status,
      seconds,
      this.bytes,
      this.route,
      this.target,
      error,
      this.socket,
      this.retry?.tries,
    );
    if (this.ctx !== undefined) completePolicies(this.route, this.ctx, status, seconds, error);
    if (gw.inflight === 0 && gw.onIdle) gw.onIdle();
  }
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

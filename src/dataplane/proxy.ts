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
import type { Target } from '../upstreams/target.js';
import { logAccess } from './access-log.js';
import type { Limiter } from './concurrency.js';
import { connectionTokens, responseHopByHop } from './headers.js';
import { sendProblem } from './problem.js';
import type { DataplaneState } from './state.js';
import { forwardTrailers } from './trailers.js';
import {
  ClientClosedError,
  classifyUpstreamError,
  RequestBodyTimeoutError,
  TotalTimeoutError,
} from './upstream-errors.js';

export class ProxyExchange implements Dispatcher.DispatchHandler {
  private abortFn: ((err?: Error) => void) | undefined;
  private resumeFn: (() => void) | undefined;
  private status = 0;
  private bytes = 0;
  private finished = false;
  private pendingAbort: Error | undefined;
  private timer: NodeJS.Timeout | undefined;
  /** A sized response's head, held until its first body byte (see onHeaders). */
  private pendingHead: string[] | undefined;
  private statusText = '';
  /** Concurrency slots this exchange holds (route and target limits), released once in finish. */
  routeSlot: Limiter | undefined = undefined;
  targetSlot: Limiter | undefined = undefined;
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
    private readonly target: Target,
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
    for (let i = 0; i < plan.append.length; i++) out.push(plan.append[i]!);
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

  private writePendingHead(): void {
    const head = this.pendingHead;
    if (head === undefined) return;
    this.pendingHead = undefined;
    this.res.writeHead(this.status, this.statusText || undefined, head);
  }

  onData(chunk: Buffer): boolean {
    this.bytes += chunk.length;
    if (this.pendingHead !== undefined) this.writePendingHead();
    if (this.res.write(chunk)) return true;
    this.res.once('drain', this.onDrain);
    return false;
  }

  onComplete(trailers: string[] | null): void {
    if (this.pendingHead !== undefined) this.writePendingHead();
    // Trailers (gRPC's status, checksums) are passed on. undici gives an empty list (HTTP/1.1) or
    // an empty object (HTTP/2) when there are none: one comparison on the common path.
    if (trailers !== null && trailers.length !== 0) forwardTrailers(this.res, trailers);
    this.res.end();
    this.finish(this.status, undefined);
  }

  onError(err: Error): void {
    if (this.finished) return;
    if (err instanceof ClientClosedError) {
      this.finish(499, 'client_closed');
      return;
    }
    const { def, kind } = classifyUpstreamError(err);
    // The client's own faults are counted as refusals, not upstream errors; the rest of the
    // connection's bytes are unread, so it is closed.
    const clientFault = kind === 'body_too_large' || kind === 'client_body_timeout';
    if (clientFault) this.gw.metrics.refusals.labels(def.code).inc();
    else this.gw.metrics.upstreamErrors.labels(this.route.upstream.name, kind).inc();
    if (this.res.headersSent) {
      // The response already started: reset the connection so a truncated body never looks complete.
      this.res.destroy(err);
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
      clientFault ? { connection: 'close' } : undefined,
    );
    this.finish(def.status, kind);
  }

  private finish(status: number, error: string | undefined): void {
    if (this.finished) return;
    this.finished = true;
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
    );
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

/**
 * One proxied exchange: an undici dispatch handler that streams the upstream response to the
 * client chunk by chunk (no buffering, backpressure both ways) and turns failures into problems.
 * Uses undici's raw dispatch handler rather than `request()` streams: one object per request and
 * no Readable in between, which is most of the gap between a bare proxy and stream-based ones.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Dispatcher } from 'undici';
import type { CompiledRoute } from '../config/compile.js';
import type { Target } from '../upstreams/target.js';
import { logAccess } from './access-log.js';
import { connectionTokens, responseHopByHop } from './headers.js';
import { sendProblem } from './problem.js';
import type { DataplaneState } from './state.js';
import { ClientClosedError, classifyUpstreamError, TotalTimeoutError } from './upstream-errors.js';

export class ProxyExchange implements Dispatcher.DispatchHandler {
  private abortFn: ((err?: Error) => void) | undefined;
  private resumeFn: (() => void) | undefined;
  private status = 0;
  private bytes = 0;
  private finished = false;
  private pendingAbort: Error | undefined;
  private timer: NodeJS.Timeout | undefined;
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
    res.once('close', this.onClientClose);
    const total = route.timeouts.total;
    if (total > 0) this.timer = setTimeout(() => this.abort(new TotalTimeoutError('total timeout')), total);
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
        if (l === 'connection') tokens = connectionTokens(raw[i + 1]!.toString('latin1'));
        continue;
      }
      if (drop.size > 0 && drop.has(l)) continue;
      if (l === 'content-length') sized = true;
      headers.push(name, raw[i + 1]!.toString('latin1'));
    }
    const out = tokens && tokens.length > 0 ? dropNamed(headers, tokens) : headers;
    for (let i = 0; i < plan.append.length; i++) out.push(plan.append[i]!);
    out.push('x-request-id', this.requestId);
    if (this.gw.draining) out.push('connection', 'close');
    res.writeHead(status, statusText || undefined, out);
    // A streamed (unsized) response sends its head at once: an SSE client must see it before the
    // first event. A sized one waits for the first chunk so head and body leave in one packet.
    if (!sized && status !== 204 && status !== 304) res.flushHeaders();
    return true;
  }

  onData(chunk: Buffer): boolean {
    this.bytes += chunk.length;
    if (this.res.write(chunk)) return true;
    this.res.once('drain', this.onDrain);
    return false;
  }

  onComplete(_trailers: string[] | null): void {
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
    if (kind !== 'body_too_large')
      this.gw.metrics.upstreamErrors.labels(this.route.upstream.name, kind).inc();
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
        : `upstream "${this.route.upstream.name}"`,
      kind === 'body_too_large' ? { connection: 'close' } : undefined,
    );
    this.finish(def.status, kind);
  }

  private finish(status: number, error: string | undefined): void {
    if (this.finished) return;
    this.finished = true;
    if (this.timer) clearTimeout(this.timer);
    this.res.removeListener('close', this.onClientClose);
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
    );
    const gw = this.gw;
    gw.inflight--;
    gw.metrics.inflight.dec();
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

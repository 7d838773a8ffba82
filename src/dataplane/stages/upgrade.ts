/**
 * The end of an upgrade's path: after the same guard, routing, policies, admission and target
 * selection as any request, the upgrade is sent to the target; on 101 the two sockets are piped
 * byte for byte (frames and close codes pass untouched) and the exchange holds its slots until
 * either side closes. An upstream that answers without upgrading has its answer passed on. The
 * outcome feeds the target's health like any request's, when the upgrade is answered (not when a
 * long-lived tunnel closes).
 */
import type { IncomingHttpHeaders } from 'node:http';
import type { Duplex } from 'node:stream';
import type { Dispatcher } from 'undici';
import { Errors } from '../../errors/codes.js';
import type { Exchange } from '../exchange.js';
import { responseHopByHop } from '../headers.js';
import { rawHeadersOf } from '../proxy.js';
import { traceOf } from '../trace.js';
import { classifyUpstreamError } from '../upstream-errors.js';
import { upstreamHeaders, upstreamPath } from './dispatch.js';
import { refuse } from './reply.js';

type Controller = Dispatcher.DispatchController;

/** Refuse what is not a WebSocket upgrade on a route that allows them. True when it may go on. */
export function upgradeAllowed(x: Exchange): boolean {
  const route = x.routed;
  if (route.websocket && (x.req.headers.upgrade ?? '').toLowerCase() === 'websocket') return true;
  refuse(
    x,
    Errors.upgradeNotAllowed,
    route.websocket ? 'only websocket upgrades are proxied' : `route "${route.name}" does not allow upgrades`,
  );
  return false;
}

/** Send the upgrade to `x.target`. */
export function dispatchUpgrade(x: Exchange): void {
  const target = x.target!;
  // Counted in flight while the handshake is under way, so a drain waits for it.
  x.hold();
  // A WebSocket occupies its target until it closes: least-request counts it like a request.
  target.state.inflight++;
  const options: Dispatcher.DispatchOptions = {
    path: upstreamPath(x),
    method: 'GET',
    headers: upstreamHeaders(x, target.hostHeader),
    upgrade: 'websocket',
    headersTimeout: x.routed.timeouts.firstByte,
  };
  // Tracing on: the SERVER span lasts as long as the tunnel; the CLIENT span is the handshake,
  // and the upstream gets Sluice's traceparent as a proxied request does.
  const tracer = x.gw.tracer;
  const traced = tracer !== undefined ? traceOf(x, tracer).attempt(target, options, 0) : options;
  target.dispatcher.dispatch(traced, new UpgradeExchange(x));
}

class UpgradeExchange implements Dispatcher.DispatchHandler {
  /** The upstream's status when it answered without upgrading. */
  private refusedStatus = 0;
  private bytes = 0;
  /** Counted in the target's in-flight requests (least-request reads it) until the tunnel or the try ends. */
  private counted = true;
  /** The outcome was reported to the target's health record (once, when the upgrade is answered). */
  private observed = false;
  private readonly client: Duplex;

  constructor(private readonly x: Exchange) {
    this.client = x.upgradeSocket!;
  }

  /** The target's health record hears the upgrade's outcome, once. */
  private observe(status: number, error: string | undefined): void {
    if (this.observed) return;
    this.observed = true;
    const h = this.x.target!.health;
    if (h !== undefined) h.observe(status, error);
    if (this.x.trace !== undefined) this.x.trace.endAttempt(status, error);
  }

  /** The target's in-flight count, given back once. */
  private leave(): void {
    if (!this.counted) return;
    this.counted = false;
    this.x.target!.state.inflight--;
  }

  onRequestStart(controller: Controller): void {
    this.client.once('close', () => controller.abort(new Error('client closed')));
  }

  onRequestUpgrade(_c: Controller, statusCode: number, headers: IncomingHttpHeaders, upstream: Duplex): void {
    const x = this.x;
    const client = this.client;
    const raw = rawHeadersOf(_c, headers);
    let headText = `HTTP/1.1 ${statusCode} Switching Protocols\r\nconnection: Upgrade\r\nupgrade: websocket\r\n`;
    for (let i = 0; i < raw.length; i += 2) {
      const name = raw[i]!.toString();
      if (responseHopByHop.has(name.toLowerCase())) continue;
      headText += `${name}: ${raw[i + 1]!.toString()}\r\n`;
    }
    headText += `x-request-id: ${x.requestId}\r\n\r\n`;
    client.write(headText);
    const head = x.upgradeHead;
    if (head !== undefined && head.length > 0) upstream.write(head);
    // The upgrade succeeded: the target answered. Its in-flight count stays until the tunnel closes.
    this.observe(101, undefined);
    const gw = x.gw;
    gw.upgraded.add(client);
    x.release();
    gw.metrics.websockets.inc();
    let closed = false;
    const close = () => {
      if (closed) return;
      closed = true;
      this.leave();
      gw.upgraded.delete(client);
      gw.metrics.websockets.dec();
      client.destroy();
      upstream.destroy();
      x.finish(101, 0, undefined);
    };
    upstream.on('error', close).on('close', close);
    client.on('error', close).on('close', close);
    upstream.pipe(client);
    client.pipe(upstream);
  }

  // The upstream answered without upgrading (e.g. 401 or 400): pass its answer on, then close.
  onResponseStart(
    controller: Controller,
    statusCode: number,
    headers: IncomingHttpHeaders,
    statusText?: string,
  ): void {
    if (statusCode < 200) return;
    this.refusedStatus = statusCode;
    const client = this.client;
    client.on('drain', () => controller.resume());
    const raw = rawHeadersOf(controller, headers);
    let headText = `HTTP/1.1 ${statusCode} ${statusText || ''}\r\n`;
    for (let i = 0; i < raw.length; i += 2) {
      const name = raw[i]!.toString('latin1');
      const l = name.toLowerCase();
      if (responseHopByHop.has(l) || l === 'content-length') continue;
      headText += `${name}: ${raw[i + 1]!.toString('latin1')}\r\n`;
    }
    client.write(`${headText}x-request-id: ${this.x.requestId}\r\nconnection: close\r\n\r\n`);
  }

  onResponseData(controller: Controller, chunk: Buffer): void {
    this.bytes += chunk.length;
    if (!this.client.write(chunk)) controller.pause();
  }

  onResponseEnd(): void {
    const status = this.refusedStatus;
    this.observe(status, undefined);
    this.leave();
    this.client.end();
    // Logged and counted with the status the client got (the upstream's), not a 502 of our own.
    this.x.finish(status, this.bytes, 'upgrade_refused');
  }

  onResponseError(_c: Controller, err: Error): void {
    const x = this.x;
    const { def, kind } = classifyUpstreamError(err);
    if (this.client.destroyed) {
      this.observe(499, 'client_closed');
      this.leave();
      x.finish(499, this.bytes, 'client_closed');
      return;
    }
    this.observe(def.status, kind);
    this.leave();
    if (this.refusedStatus !== 0) {
      // The upstream's refusal was already being passed on: cut it rather than append a problem.
      this.client.destroy();
      x.finish(this.refusedStatus, this.bytes, kind);
      return;
    }
    const upstream = x.routed.upstream!.name;
    x.gw.metrics.upstreamErrors.labels(upstream, kind).inc();
    refuse(x, def, `upstream "${upstream}"`);
  }
}

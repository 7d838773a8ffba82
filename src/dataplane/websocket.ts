/**
 * WebSocket (HTTP/1.1 Upgrade) proxying: the same guard, routing and header rules as plain
 * requests, then the two sockets are piped byte for byte, so frames and close codes pass untouched.
 */
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import type { Dispatcher } from 'undici';
import { logAccess } from './access-log.js';
import { Errors } from './errors.js';
import { responseHopByHop } from './headers.js';
import { closingAfterRefusal, guardAndRoute, upstreamHeaders } from './pipeline.js';
import { writeProblemToSocket } from './problem.js';
import type { DataplaneState } from './state.js';
import { classifyUpstreamError } from './upstream-errors.js';

export function handleUpgrade(
  gw: DataplaneState,
  upgraded: Set<Duplex>,
  req: IncomingMessage,
  socket: Duplex,
  head: Buffer,
): void {
  // An upgrade pipelined behind a refused request (pipeline.ts): close once the refusal is out.
  if (closingAfterRefusal(req)) {
    socket.end();
    return;
  }
  const started = performance.now();
  socket.on('error', () => socket.destroy());
  const g = guardAndRoute(gw, req);
  if ('refused' in g) {
    gw.metrics.refusals.labels(g.refused.code).inc();
    writeProblemToSocket(socket, g.refused, g.detail, g.requestId);
    logAccess(
      gw,
      req,
      g.requestId,
      g.path,
      g.refused.status,
      (performance.now() - started) / 1000,
      0,
      undefined,
      undefined,
      g.refused.code,
    );
    return;
  }
  const { route } = g;
  const refuse = (def: typeof Errors.upgradeRefused, detail: string) => {
    gw.metrics.refusals.labels(def.code).inc();
    writeProblemToSocket(socket, def, detail, g.requestId);
    logAccess(
      gw,
      req,
      g.requestId,
      g.path,
      def.status,
      (performance.now() - started) / 1000,
      0,
      route,
      undefined,
      def.code,
    );
  };
  if (!route.websocket || (req.headers.upgrade ?? '').toLowerCase() !== 'websocket') {
    refuse(
      Errors.upgradeNotAllowed,
      route.websocket
        ? 'only websocket upgrades are proxied'
        : `route "${route.name}" does not allow upgrades`,
    );
    return;
  }
  // With failover, the group requests go to now (precomputed on health changes).
  const group = route.failover?.active ?? route.upstream;
  const target = group.pick(req);
  if (target === undefined) {
    refuse(group.circuitOpen ? Errors.circuitOpen : Errors.noTarget, `upstream "${group.name}"`);
    return;
  }
  // A WebSocket occupies its target until it closes: least-request counts it like a request.
  target.state.inflight++;
  let counted = true;
  const uncount = () => {
    if (counted) {
      counted = false;
      target.state.inflight--;
    }
  };
  const path = (route.rewrite ? route.rewrite(g.path, g.params) : g.path) + g.query;
  let refusedStatus = 0;
  const handler: Dispatcher.DispatchHandler = {
    onConnect(abort) {
      socket.once('close', () => abort(new Error('client closed')));
    },
    onUpgrade(statusCode, rawHeaders, upstream) {
      let headText = `HTTP/1.1 ${statusCode} Switching Protocols\r\nconnection: Upgrade\r\nupgrade: websocket\r\n`;
      const raw = (rawHeaders ?? []) as (Buffer | string)[];
      for (let i = 0; i < raw.length; i += 2) {
        const name = raw[i]!.toString();
        if (responseHopByHop.has(name.toLowerCase())) continue;
        headText += `${name}: ${raw[i + 1]!.toString()}\r\n`;
      }
      headText += `x-request-id: ${g.requestId}\r\n\r\n`;
      socket.write(headText);
      if (head.length > 0) upstream.write(head);
      upgraded.add(socket);
      gw.metrics.websockets.inc();
      let closed = false;
      const close = () => {
        if (closed) return;
        closed = true;
        uncount();
        upgraded.delete(socket);
        gw.metrics.websockets.dec();
        socket.destroy();
        upstream.destroy();
        const seconds = (performance.now() - started) / 1000;
        route.metrics.requests[1]?.inc();
        route.metrics.duration.observe(seconds);
        logAccess(gw, req, g.requestId, g.path, 101, seconds, 0, route, target, undefined);
      };
      upstream.on('error', close).on('close', close);
      socket.on('error', close).on('close', close);
      upstream.pipe(socket);
      socket.pipe(upstream);
    },
    // The upstream answered without upgrading (e.g. 401 or 400): pass its answer on, then close.
    onHeaders(statusCode, rawHeaders, resume, statusText) {
      if (statusCode < 200) return true;
      refusedStatus = statusCode;
      socket.on('drain', resume);
      let headText = `HTTP/1.1 ${statusCode} ${statusText || ''}\r\n`;
      for (let i = 0; i < rawHeaders.length; i += 2) {
        const name = rawHeaders[i]!.toString('latin1');
        const l = name.toLowerCase();
        if (responseHopByHop.has(l) || l === 'content-length') continue;
        headText += `${name}: ${rawHeaders[i + 1]!.toString('latin1')}\r\n`;
      }
      socket.write(`${headText}x-request-id: ${g.requestId}\r\nconnection: close\r\n\r\n`);
      return true;
    },
    onData(chunk) {
      return socket.write(chunk);
    },
    onComplete() {
      uncount();
      socket.end();
      // Logged and counted with the status the client got (the upstream's), not a 502 of our own.
      const seconds = (performance.now() - started) / 1000;
      route.metrics.requests[(refusedStatus / 100) | 0]?.inc();
      route.metrics.duration.observe(seconds);
      logAccess(gw, req, g.requestId, g.path, refusedStatus, seconds, 0, route, target, 'upgrade_refused');
    },
    onError(err) {
      uncount();
      if (socket.destroyed) return;
      if (refusedStatus !== 0) {
        // The upstream's refusal was already being passed on: cut it rather than append a problem.
        socket.destroy();
        return;
      }
      const { def, kind } = classifyUpstreamError(err);
      gw.metrics.upstreamErrors.labels(route.upstream.name, kind).inc();
      refuse(def, `upstream "${route.upstream.name}"`);
    },
  };
  target.dispatcher.dispatch(
    {
      path,
      method: 'GET',
      headers: upstreamHeaders(gw, req, g, target.hostHeader),
      upgrade: 'websocket',
      headersTimeout: route.timeouts.firstByte,
    },
    handler,
  );
}

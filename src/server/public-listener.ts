/**
 * The public listener: node:http for plain HTTP/1.1, or with `listen.tls` node:http2's secure
 * server offering HTTP/2 and HTTP/1.1 by ALPN (`allowHTTP1`). Both hand the same data plane the
 * same request and response shapes (HTTP/2 streams through the light objects of h2-compat.ts),
 * so routing, the guard and the policies are one code path; the plain listener's HTTP/1.1 path is
 * exactly what it was without TLS.
 */
import { createServer, type IncomingMessage, Server, type ServerResponse } from 'node:http';
import {
  createSecureServer,
  type Http2SecureServer,
  type Http2Session,
  type IncomingHttpHeaders,
  type ServerHttp2Stream,
} from 'node:http2';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { Logger } from 'pino';
import { defaultMaxHeaderBytes } from '../config/compile.js';
import type { Config } from '../config/schema.js';
import { bytes, ms } from '../config/units.js';
import { notePeer, openStream } from './h2-compat.js';
import { ListenerCertificates } from './tls.js';

export interface ListenerHandlers {
  request: (req: IncomingMessage, res: ServerResponse) => void;
  upgrade: (req: IncomingMessage, socket: Duplex, head: Buffer) => void;
  clientError: (err: Error & { code?: string }, socket: Duplex) => void;
  connection: (socket: Socket) => void;
  /** An HTTP/2 request whose headers exceed `listen.maxHeaderBytes` (431). */
  headersTooLarge: (req: IncomingMessage, res: ServerResponse) => void;
}

export interface PublicListener {
  readonly server: Server | SecureServer;
  readonly scheme: 'http' | 'https';
  /** Set when the listener terminates TLS. */
  readonly certificates: ListenerCertificates | undefined;
  /** Close connections with nothing in flight; HTTP/2 connections get GOAWAY (their open streams finish). */
  closeIdle(): void;
  /** Close every connection now. */
  closeAll(): void;
}

/** The TLS listener; its HTTP/2 streams are served from the `stream` event (h2-compat.ts). */
export type SecureServer = Http2SecureServer;

/** Concurrent streams a client may open on one HTTP/2 connection (nginx's default is 128 too). */
const maxConcurrentStreams = 128;

export function createPublicListener(
  cfg: Config,
  handlers: ListenerHandlers,
  logger: Logger,
  watchCertificates: boolean,
): PublicListener {
  const maxHeaderSize = bytes(cfg.listen.maxHeaderBytes, defaultMaxHeaderBytes);
  const headersTimeout = ms(cfg.listen.timeouts?.requestHeaders, 30_000);
  const keepAliveTimeout = ms(cfg.listen.timeouts?.keepAlive, 65_000);
  const tls = cfg.listen.tls;
  if (!tls) {
    const server = createServer({
      maxHeaderSize,
      headersTimeout,
      // Bodies may stream for long (uploads); per-exchange limits are the upstream timeouts.
      requestTimeout: 0,
      keepAliveTimeout,
      noDelay: true,
      // The guard checks Host itself (pipeline.ts) so that the refusal is a problem+json like every other.
      requireHostHeader: false,
    });
    wire(server, handlers);
    return {
      server,
      scheme: 'http',
      certificates: undefined,
      closeIdle: () => server.closeIdleConnections(),
      closeAll: () => server.closeAllConnections(),
    };
  }

  const certificates = new ListenerCertificates(tls, logger);
  const server = createSecureServer({
    ...certificates.serverOptions(),
    allowHTTP1: true,
    noDelay: true,
    // nghttp2 resets streams over the advertised header list size (ENHANCE_YOUR_CALM); Sluice
    // measures HTTP/2 heads itself and answers 431 like HTTP/1.1, so it advertises more.
    settings: { maxConcurrentStreams, maxHeaderListSize: Math.max(65_535, maxHeaderSize * 2) },
  });
  // HTTP/1.1 connections on this server are served by node:http's machinery, which reads its
  // settings from the server object (node:http2 sets only some of them, and a requestTimeout of
  // 5 minutes that would cut long uploads).
  Object.assign(server, {
    maxHeaderSize,
    headersTimeout,
    requestTimeout: 0,
    keepAliveTimeout,
    requireHostHeader: false,
  });
  // node:http2 installs its compatibility layer (an Http2ServerRequest/Response for every stream)
  // when the first `request` listener is added; the HTTP/1.1 connections need that listener, the
  // HTTP/2 streams are served from `stream` below instead, so the installer is removed first.
  for (const l of server.listeners('newListener'))
    if (l.name === 'setupCompat') server.removeListener('newListener', l as (...a: unknown[]) => void);
  wire(server, handlers);
  // node:http refuses an oversized HTTP/1.1 head itself (431); node:http2 does not hold requests
  // to the advertised header list size, so HTTP/2 requests are measured here.
  const { request, headersTooLarge } = handlers;
  server.on(
    'stream',
    (stream: ServerHttp2Stream, headers: IncomingHttpHeaders, _flags: number, raw: string[]) => {
      const x = openStream(stream, headers, raw);
      if (x === undefined) return;
      const req = x.req as unknown as IncomingMessage;
      const res = x.res as unknown as ServerResponse;
      if (x.req.headBytes > maxHeaderSize) headersTooLarge(req, res);
      else request(req, res);
    },
  );
  // One `stream` listener: ours. A second (node's compatibility layer, if a later Node installs
  // it another way) would answer every stream twice.
  if (server.listenerCount('stream') !== 1) throw new Error('node:http2 compatibility layer still installed');
  const sessions = new Set<Http2Session>();
  server.on('session', (session: Http2Session) => {
    sessions.add(session);
    notePeer(session);
    session.once('close', () => sessions.delete(session));
    // An idle connection is closed after the keep-alive time, with GOAWAY: streams still open
    // (a quiet event stream) finish; the client opens a new connection for its next request.
    if (keepAliveTimeout > 0) session.setTimeout(keepAliveTimeout, () => session.close());
  });
  server.on('tlsClientError', (err: Error & { code?: string }) => {
    logger.debug(
      { event: 'tls_handshake_failed', code: err.code, reason: err.message },
      'TLS handshake failed',
    );
  });
  certificates.attach(server, watchCertificates);
  // node:http's connection tracking (set up for allowHTTP1) is what these methods read.
  const closeIdle = Server.prototype.closeIdleConnections;
  const closeAll = Server.prototype.closeAllConnections;
  return {
    server,
    scheme: 'https',
    certificates,
    closeIdle: () => {
      closeIdle.call(server as unknown as Server);
      for (const s of sessions) if (!s.closed) s.close();
    },
    closeAll: () => {
      closeAll.call(server as unknown as Server);
      for (const s of sessions) s.destroy();
    },
  };
}

function wire(server: Server | SecureServer, h: ListenerHandlers): void {
  // HTTP/1.1 requests (on the TLS listener too: HTTP/2 streams come through `stream`).
  server.on('request', h.request as (req: unknown, res: unknown) => void);
  server.on('upgrade', h.upgrade);
  server.on('clientError', h.clientError);
  server.on('connection', h.connection);
}

/**
 * The public listener: node:http for plain HTTP/1.1, or with `listen.tls` node:http2's secure
 * server offering HTTP/2 and HTTP/1.1 by ALPN (`allowHTTP1`). Both hand the same data plane the
 * same request and response shapes (see h2-compat.ts), so routing, the guard and the policies
 * are one code path; the plain listener's HTTP/1.1 path is exactly what it was without TLS.
 */
import { createServer, type IncomingMessage, Server, type ServerResponse } from 'node:http';
import { createSecureServer, type Http2SecureServer, type Http2Session } from 'node:http2';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { Logger } from 'pino';
import { defaultMaxHeaderBytes } from '../config/compile.js';
import type { Config } from '../config/schema.js';
import { bytes, ms } from '../config/units.js';
import { H2Request, H2Response } from './h2-compat.js';
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

/** The TLS listener, with the HTTP/2 request and response classes of h2-compat.ts. */
export type SecureServer = Http2SecureServer<
  typeof IncomingMessage,
  typeof ServerResponse,
  typeof H2Request,
  typeof H2Response
>;

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
    Http2ServerRequest: H2Request,
    Http2ServerResponse: H2Response,
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
  // node:http refuses an oversized HTTP/1.1 head itself (431); node:http2 does not hold requests
  // to the advertised header list size, so HTTP/2 requests are measured here. HTTP/1.1 requests
  // on this listener pay one comparison.
  const { request, headersTooLarge } = handlers;
  wire(server, {
    ...handlers,
    request: (req, res) => {
      if (req.httpVersionMajor === 2 && (req as unknown as H2Request).headBytes > maxHeaderSize)
        headersTooLarge(req, res);
      else request(req, res);
    },
  });
  const sessions = new Set<Http2Session>();
  server.on('session', (session: Http2Session) => {
    sessions.add(session);
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
  // HTTP/2 requests arrive as H2Request/H2Response, which stand in for IncomingMessage/ServerResponse.
  server.on('request', h.request as (req: unknown, res: unknown) => void);
  server.on('upgrade', h.upgrade);
  server.on('clientError', h.clientError);
  server.on('connection', h.connection);
}

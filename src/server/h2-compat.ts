/**
 * HTTP/2 requests through the same data plane as HTTP/1.1. The handlers in src/dataplane take
 * node:http's IncomingMessage and ServerResponse; node:http2's compatibility API
 * (Http2ServerRequest/Response) is close to them, and these subclasses (passed to
 * `createSecureServer`) close the gap, so HTTP/1.1 requests pay nothing for HTTP/2 support:
 *
 * - `rawHeaders` of an HTTP/2 request start with pseudo-headers (`:method`, `:path`,
 *   `:authority`, `:scheme`), which must never be forwarded. They are left out; `:authority`
 *   becomes `host` (RFC 9113 §8.3.1), several `cookie` fields are joined into one with `; `
 *   (§8.2.3: what an HTTP/1.1 upstream expects), and a body sent without `content-length`
 *   (gRPC, streamed uploads) is marked `transfer-encoding: chunked`: to the data plane, and to an
 *   HTTP/1.1 upstream, that is what it is, a body of unknown length.
 * - `socket` of an HTTP/2 request is a proxy to the connection shared by every stream, which
 *   throws once the stream is gone; a mark set on it (the guard marks connections that must close
 *   after a refusal) would reach every other stream. Here it is a small per-stream object with
 *   the peer's address.
 * - An HTTP/2 response has no status text and no connection-specific headers (RFC 9113 §8.2.2):
 *   `writeHead` drops both (`connection: close` while draining becomes the GOAWAY the gateway
 *   sends), and `shouldKeepAlive` is ignored for the same reason.
 *
 * HTTP/2 has no `upgrade`: WebSocket over HTTP/2 (RFC 8441) is not offered; WebSocket clients use
 * HTTP/1.1, which the TLS listener still negotiates.
 */
import type { OutgoingHttpHeaders } from 'node:http';
import { Http2ServerRequest, Http2ServerResponse, type ServerHttp2Stream } from 'node:http2';

/** Headers HTTP/2 forbids in a response (RFC 9113 §8.2.2). The proxy drops them already, except `connection: close`. */
const connectionSpecific: ReadonlySet<string> = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'transfer-encoding',
  'upgrade',
]);

const baseRawHeaders = Object.getOwnPropertyDescriptor(Http2ServerRequest.prototype, 'rawHeaders')!.get as (
  this: Http2ServerRequest,
) => string[];

/** What the data plane reads from `req.socket`, for one HTTP/2 stream. */
export class StreamSocket {
  readonly remoteAddress: string | undefined;
  readonly remotePort: number | undefined;
  readonly encrypted = true;
  readonly alpnProtocol = 'h2';

  constructor(private readonly stream: ServerHttp2Stream) {
    const s = stream.session?.socket;
    this.remoteAddress = s?.remoteAddress;
    this.remotePort = s?.remotePort;
  }

  get destroyed(): boolean {
    return this.stream.destroyed;
  }

  /** An idle timer on the stream (the connection is shared with other streams). */
  setTimeout(ms: number, cb?: () => void): this {
    if (!this.stream.destroyed) this.stream.setTimeout(ms, cb);
    return this;
  }
}

export class H2Request extends Http2ServerRequest {
  /** Cached results of the accessors below (internal). */
  h1Raw: string[] | undefined;
  streamSocket: StreamSocket | undefined;

  /** Size of the request head as HTTP/1.1 would count it (`name: value` lines, pseudo-headers included). */
  get headBytes(): number {
    const raw = baseRawHeaders.call(this);
    let n = 0;
    for (let i = 0; i < raw.length; i++) n += raw[i]!.length + 2;
    return n;
  }
}

Object.defineProperties(H2Request.prototype, {
  rawHeaders: {
    get(this: H2Request): string[] {
      this.h1Raw ??= toH1RawHeaders(baseRawHeaders.call(this), this.stream.endAfterHeaders);
      return this.h1Raw;
    },
  },
  socket: {
    get(this: H2Request): StreamSocket {
      this.streamSocket ??= new StreamSocket(this.stream);
      return this.streamSocket;
    },
  },
});

/**
 * HTTP/2 raw headers as an HTTP/1.1 request would carry them. HTTP/2 field names are lower case
 * (nghttp2 refuses others) and connection-specific fields are refused by nghttp2 before this runs.
 */
export function toH1RawHeaders(raw: readonly string[], endAfterHeaders: boolean): string[] {
  const out: string[] = [];
  let authority: string | undefined;
  let host: string | undefined;
  let cookie: string | undefined;
  let sized = false;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!;
    const value = raw[i + 1]!;
    if (name.charCodeAt(0) === 58 /* ':' */) {
      if (name === ':authority') authority = value;
      continue;
    }
    if (name === 'cookie') {
      cookie = cookie === undefined ? value : `${cookie}; ${value}`;
      continue;
    }
    if (name === 'host') host = value;
    else if (name === 'content-length') sized = true;
    out.push(name, value);
  }
  // `:authority` is the Host. When both are sent and differ, both reach the guard, which refuses
  // a request with two Hosts (RFC 9113 §8.3.1 lets a server treat it as malformed).
  if (authority !== undefined && authority !== host) out.unshift('host', authority);
  if (cookie !== undefined) out.push('cookie', cookie);
  if (!endAfterHeaders && !sized) out.push('transfer-encoding', 'chunked');
  return out;
}

/**
 * gRPC's status fields. In a gRPC "Trailers-Only" response (an error with no message) they come in
 * the only HEADERS frame, which ends the stream. Proxied, the head is sent first and the end comes
 * after it, so a client would see a stream end without a status: they are sent as trailers
 * instead, which is the other form the gRPC protocol allows.
 */
const grpcStatusFields: ReadonlySet<string> = new Set([
  'grpc-status',
  'grpc-message',
  'grpc-status-details-bin',
]);

export class H2Response extends Http2ServerResponse<H2Request> {
  /** Draining closes HTTP/2 connections with GOAWAY; there is no per-response keep-alive. */
  set shouldKeepAlive(_v: boolean) {}
  get shouldKeepAlive(): boolean {
    return true;
  }

  // biome-ignore lint/suspicious/noExplicitAny: node's own signature is overloaded (status, [text], headers as object or flat array)
  override writeHead(status: number, a?: any, b?: any): this {
    // HTTP/2 has no status text (RFC 9113 §8.3.2): only the headers are kept.
    const headers: OutgoingHttpHeaders | string[] | undefined =
      typeof a === 'string' || a === undefined ? b : a;
    if (headers === undefined) return super.writeHead(status);
    const h2 = Array.isArray(headers) ? this.h2Array(headers) : h2Object(headers);
    return super.writeHead(status, h2 as OutgoingHttpHeaders);
  }

  /** The proxy's flat header list without connection-specific fields; gRPC status fields become trailers. */
  private h2Array(h: string[]): string[] {
    let out: string[] | undefined;
    for (let i = 0; i < h.length; i += 2) {
      const l = h[i]!.toLowerCase();
      const illegal = connectionSpecific.has(l);
      const status = grpcStatusFields.has(l);
      if (illegal || status) {
        out ??= h.slice(0, i);
        if (status) this.addTrailers({ [l]: h[i + 1]! });
      } else if (out !== undefined) out.push(h[i]!, h[i + 1]!);
    }
    return out ?? h;
  }
}

function h2Object(headers: OutgoingHttpHeaders): OutgoingHttpHeaders {
  let out: OutgoingHttpHeaders | undefined;
  for (const k of Object.keys(headers)) {
    if (connectionSpecific.has(k.toLowerCase())) {
      out ??= { ...headers };
      delete out[k];
    }
  }
  return out ?? headers;
}

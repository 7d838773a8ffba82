/**
 * HTTP/2 requests through the same data plane as HTTP/1.1. The handlers in src/dataplane take
 * node:http's IncomingMessage and ServerResponse. HTTP/2 streams are served from node:http2's core
 * API (the server's `stream` event, `stream.respond`), with the small request and response objects
 * below standing in for IncomingMessage and ServerResponse over the Http2Stream. node's own
 * compatibility layer (Http2ServerRequest/Response) was most of the cost of an HTTP/2 request in
 * the profile (bench/README.md, "HTTP/2 on the core stream API"): per stream it built a Readable,
 * a Stream, a Proxy for `socket`, a header object filled by `setHeader` one validated field at a
 * time, eleven listeners on the stream, and it asked every response for trailers (one more
 * setImmediate and frame per stream). What the data plane sees is unchanged:
 *
 * - `rawHeaders` of an HTTP/2 request start with pseudo-headers (`:method`, `:path`,
 *   `:authority`, `:scheme`), which must never be forwarded. They are left out; `:authority`
 *   becomes `host` (RFC 9113 §8.3.1), several `cookie` fields are joined into one with `; `
 *   (§8.2.3: what an HTTP/1.1 upstream expects), and a body sent without `content-length`
 *   (gRPC, streamed uploads) is marked `transfer-encoding: chunked`: to the data plane, and to an
 *   HTTP/1.1 upstream, that is what it is, a body of unknown length. `headers` is node's header
 *   object of the stream (pseudo-headers included), as the compatibility layer gave it.
 * - `socket` of an HTTP/2 request is a small per-stream object with the peer's address: the
 *   connection is shared by every stream, and a mark set on it (the guard marks connections that
 *   must close after a refusal) would reach every other stream.
 * - The request body is a Readable fed from the stream only once someone reads it, so a bodiless
 *   request (nearly all) costs no stream listener and no tick. A stream that closes before its
 *   body ended (the client reset it) errors the body, as a reset HTTP/1.1 upload does, so an
 *   upstream never sees a truncated body as complete.
 * - An HTTP/2 response has no status text and no connection-specific headers (RFC 9113 §8.2.2):
 *   `writeHead` drops both (`connection: close` while draining becomes the GOAWAY the gateway
 *   sends), and `shouldKeepAlive` is ignored for the same reason. Its events (`close`, `drain`,
 *   `finish`) are the stream's: listeners are added to the stream itself, not forwarded.
 * - Trailers: a response asks nghttp2 for a trailing HEADERS frame only when it can have one: an
 *   unsized body, a client that sent `te: trailers` (gRPC), or gRPC status fields moved there
 *   (below). A sized response to any other client ends with its last DATA frame; trailers added to
 *   it are dropped, as node:http drops them from a sized HTTP/1.1 response.
 *
 * HTTP/2 has no `upgrade`: WebSocket over HTTP/2 (RFC 8441) is not offered; WebSocket clients use
 * HTTP/1.1, which the TLS listener still negotiates. CONNECT is answered 405 and an `Expect` other
 * than `100-continue` 417, as node's compatibility layer did.
 */
import type { IncomingHttpHeaders, OutgoingHttpHeaders } from 'node:http';
import { constants, type ServerHttp2Stream } from 'node:http2';
import { Readable } from 'node:stream';

/** Headers HTTP/2 forbids in a response (RFC 9113 §8.2.2). The proxy drops them already, except `connection: close`. */
const connectionSpecific: ReadonlySet<string> = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'transfer-encoding',
  'upgrade',
]);

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

/** Bytes a header value may not hold (what node:http's and the compatibility layer's check refuses). */
const invalidValue = /[^\t\x20-\x7e\x80-\xff]/;

/** The request and response of a stream, found from the stream's events (no closure per stream). */
const kRequest = Symbol('sluice.h2.request');
const kResponse = Symbol('sluice.h2.response');
/** The peer's address, read once per connection (session.socket is a Proxy, slow per request). */
const kPeer = Symbol('sluice.h2.peer');

interface Peer {
  readonly address: string | undefined;
  readonly port: number | undefined;
}

// biome-ignore lint/suspicious/noExplicitAny: EventEmitter's own listener type
type Listener = (...args: any[]) => void;

type SluiceStream = ServerHttp2Stream & {
  [kRequest]?: H2Request;
  [kResponse]?: H2Response;
};

/** Remember a new connection's peer address for its streams. */
export function notePeer(session: { socket: { remoteAddress?: string; remotePort?: number } }): void {
  const s = session.socket;
  (session as { [kPeer]?: Peer })[kPeer] = { address: s.remoteAddress, port: s.remotePort };
}

const noPeer: Peer = { address: undefined, port: undefined };

function peerOf(stream: ServerHttp2Stream): Peer {
  const session = stream.session as { [kPeer]?: Peer } | undefined;
  if (session === undefined) return noPeer;
  let p = session[kPeer];
  if (p === undefined) {
    notePeer(stream.session!);
    p = session[kPeer]!;
  }
  return p;
}

/** What the data plane reads from `req.socket`, for one HTTP/2 stream. */
export class StreamSocket {
  readonly remoteAddress: string | undefined;
  readonly remotePort: number | undefined;
  readonly encrypted = true;
  readonly alpnProtocol = 'h2';

  constructor(
    private readonly stream: ServerHttp2Stream,
    peer: Peer,
  ) {
    this.remoteAddress = peer.address;
    this.remotePort = peer.port;
  }

  get destroyed(): boolean {
    return this.stream.destroyed;
  }

  /** An idle timer on the stream (the connection is shared with other streams). */
  setTimeout(ms: number, cb?: () => void): this {
    if (!this.stream.destroyed) this.stream.setTimeout(ms, cb);
    return this;
  }

  destroy(err?: Error): this {
    this.stream.destroy(err);
    return this;
  }
}

/** Stream errors are reported to the data plane as the response's `close` (a listener keeps them from being uncaught). */
function ignoreStreamError(): void {}

/** The stream's body data, into the request Readable (`this` is the stream). */
function onStreamData(this: SluiceStream, chunk: Buffer): void {
  const req = this[kRequest];
  if (req !== undefined && !req.push(chunk)) this.pause();
}

function onStreamEnd(this: SluiceStream): void {
  const req = this[kRequest];
  if (req === undefined) return;
  // A client's RST_STREAM(NO_ERROR) before its body ended: node ends the readable side as if the
  // body were complete, and marks the stream aborted (our response was still open). Cut, not ended.
  if (this.aborted) {
    cutBody(req);
    return;
  }
  req.bodyEnded = true;
  req.push(null);
}

/** The stream closed: a body that had not ended was cut (a client's RST_STREAM, a lost connection). */
function onStreamClose(this: SluiceStream): void {
  const req = this[kRequest];
  if (req !== undefined && !req.bodyEnded) cutBody(req);
}

/** A cut body errors like a reset HTTP/1.1 upload, so undici aborts the upstream request instead of ending its body. */
function cutBody(req: H2Request): void {
  if (req.destroyed) return;
  req.aborted = true;
  req.destroy(Object.assign(new Error('aborted'), { code: 'ECONNRESET' }));
}

function onStreamTimeout(this: SluiceStream): void {
  this[kRequest]?.emit('timeout');
}

function onWantTrailers(this: SluiceStream): void {
  this.sendTrailers(this[kResponse]?.trailers ?? {});
}

export class H2Request extends Readable {
  readonly httpVersionMajor = 2;
  readonly httpVersionMinor = 0;
  readonly httpVersion = '2.0';
  readonly method: string;
  readonly url: string;
  aborted = false;
  /** The stream's body has ended (internal). */
  bodyEnded = false;
  private reading = false;
  private timeoutWired = false;
  private h1Raw: string[] | undefined;
  private streamSocket: StreamSocket | undefined;

  constructor(
    readonly stream: ServerHttp2Stream,
    readonly headers: IncomingHttpHeaders,
    /** The HTTP/2 fields as received, pseudo-headers included. */
    private readonly h2Raw: string[],
  ) {
    super();
    this.method = headers[':method'] as string;
    this.url = (headers[':path'] as string | undefined) ?? '';
    (stream as SluiceStream)[kRequest] = this;
  }

  get authority(): string | undefined {
    return headers1(this.headers[':authority']);
  }

  get scheme(): string | undefined {
    return headers1(this.headers[':scheme']);
  }

  get complete(): boolean {
    return this.aborted || this.bodyEnded || this.stream.destroyed;
  }

  /** The request head as an HTTP/1.1 request would carry it (see the file comment); computed once. */
  get rawHeaders(): string[] {
    this.h1Raw ??= toH1RawHeaders(this.h2Raw, this.stream.endAfterHeaders);
    return this.h1Raw;
  }

  get socket(): StreamSocket {
    this.streamSocket ??= new StreamSocket(this.stream, peerOf(this.stream));
    return this.streamSocket;
  }

  get connection(): StreamSocket {
    return this.socket;
  }

  /** Size of the request head as HTTP/1.1 would count it (`name: value` lines, pseudo-headers included). */
  get headBytes(): number {
    const raw = this.h2Raw;
    let n = 0;
    for (let i = 0; i < raw.length; i++) n += raw[i]!.length + 2;
    return n;
  }

  /** An idle timer on the stream: `timeout` is emitted on this request, as on IncomingMessage. */
  setTimeout(ms: number, cb?: () => void): this {
    const stream = this.stream;
    if (stream.destroyed) return this;
    if (cb !== undefined) this.once('timeout', cb);
    if (!this.timeoutWired) {
      this.timeoutWired = true;
      stream.on('timeout', onStreamTimeout);
    }
    stream.setTimeout(ms);
    return this;
  }

  override _read(): void {
    const stream = this.stream;
    if (this.reading) {
      stream.resume();
      return;
    }
    this.reading = true;
    stream.on('data', onStreamData);
    stream.once('end', onStreamEnd);
    stream.once('close', onStreamClose);
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    // As IncomingMessage: an error nobody listens for is not thrown (the response's `close` tells
    // the data plane). The stream is left alone: undici destroys a body it has sent, and the
    // response still goes out on the stream.
    cb(err !== null && this.listenerCount('error') > 0 ? err : null);
  }
}

function headers1(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v[0] : v;
}

/** Options for `respond`, made once (respond copies them). */
const respondBody = { endStream: false, waitForTrailers: false };
const respondTrailers = { endStream: false, waitForTrailers: true };
const respondEmpty = { endStream: true, waitForTrailers: false };

export class H2Response {
  statusCode = 200;
  /** Trailers to send after the body (internal; see addTrailers). */
  trailers: Record<string, string | string[]> | undefined;
  private ending = false;
  private destroyedByUs = false;
  private pending: Record<string, string | string[] | number> | undefined;
  private readonly head: boolean;
  /** The client accepts trailers (`te: trailers`, which gRPC clients send). */
  private readonly teTrailers: boolean;

  constructor(
    readonly stream: ServerHttp2Stream,
    readonly req: H2Request,
  ) {
    (stream as SluiceStream)[kResponse] = this;
    this.head = req.method === 'HEAD';
    const te = req.headers.te;
    this.teTrailers = te !== undefined && /\btrailers\b/i.test(String(te));
  }

  /** Draining closes HTTP/2 connections with GOAWAY; there is no per-response keep-alive. */
  set shouldKeepAlive(_v: boolean) {}
  get shouldKeepAlive(): boolean {
    return true;
  }

  get headersSent(): boolean {
    return this.stream.headersSent;
  }

  get destroyed(): boolean {
    return this.stream.destroyed;
  }

  get writableEnded(): boolean {
    return this.ending;
  }

  get finished(): boolean {
    return this.ending;
  }

  get writableFinished(): boolean {
    return this.stream.writableFinished;
  }

  get socket(): StreamSocket | undefined {
    return this.stream.closed ? undefined : this.req.socket;
  }

  // The response's events are the stream's (see the file comment).
  on(event: string | symbol, fn: Listener): this {
    this.stream.on(event, fn);
    return this;
  }

  addListener(event: string | symbol, fn: Listener): this {
    this.stream.on(event, fn);
    return this;
  }

  once(event: string | symbol, fn: Listener): this {
    this.stream.once(event, fn);
    return this;
  }

  prependListener(event: string | symbol, fn: Listener): this {
    this.stream.prependListener(event, fn);
    return this;
  }

  removeListener(event: string | symbol, fn: Listener): this {
    this.stream.removeListener(event, fn);
    return this;
  }

  off(event: string | symbol, fn: Listener): this {
    this.stream.removeListener(event, fn);
    return this;
  }

  listenerCount(event: string | symbol): number {
    return this.stream.listenerCount(event);
  }

  setHeader(name: string, value: string | number | readonly string[]): this {
    if (this.stream.headersSent)
      throw Object.assign(new Error('headers already sent'), { code: 'ERR_HTTP2_HEADERS_SENT' });
    this.pending ??= {};
    this.pending[name.toLowerCase()] = typeof value === 'object' ? [...value] : value;
    return this;
  }

  getHeader(name: string): string | string[] | number | undefined {
    return this.pending?.[name.toLowerCase()];
  }

  hasHeader(name: string): boolean {
    return this.pending?.[name.toLowerCase()] !== undefined;
  }

  removeHeader(name: string): void {
    if (this.pending !== undefined) delete this.pending[name.toLowerCase()];
  }

  addTrailers(headers: Record<string, string | string[]>): void {
    for (const k of Object.keys(headers)) {
      const v = headers[k]!;
      for (const x of Array.isArray(v) ? v : [v]) checkValue(k, x);
      this.trailers ??= {};
      this.trailers[k.toLowerCase()] = v;
    }
  }

  // biome-ignore lint/suspicious/noExplicitAny: node's own signature is overloaded (status, [text], headers as object or flat array)
  writeHead(status: number, a?: any, b?: any): this {
    const stream = this.stream;
    if (stream.destroyed || stream.closed) return this;
    if (stream.headersSent)
      throw Object.assign(new Error('headers already sent'), { code: 'ERR_HTTP2_HEADERS_SENT' });
    // HTTP/2 has no status text (RFC 9113 §8.3.2): only the headers are kept.
    const headers: OutgoingHttpHeaders | string[] | undefined =
      typeof a === 'string' || a === undefined ? b : a;
    this.statusCode = status;
    const out: OutgoingHttpHeaders = { __proto__: null } as unknown as OutgoingHttpHeaders;
    const pending = this.pending;
    if (pending !== undefined) for (const k of Object.keys(pending)) this.add(out, k, pending[k]!);
    if (headers !== undefined) {
      if (Array.isArray(headers)) {
        for (let i = 0; i < headers.length; i += 2) this.add(out, headers[i]!.toLowerCase(), headers[i + 1]!);
      } else {
        for (const k of Object.keys(headers)) {
          const v = headers[k];
          if (v !== undefined) this.add(out, k.toLowerCase(), v);
        }
      }
    }
    out[':status'] = status;
    const empty = this.head || status === 204 || status === 304;
    stream.respond(
      out,
      empty
        ? respondEmpty
        : this.trailers !== undefined || this.teTrailers || out['content-length'] === undefined
          ? this.wantTrailers()
          : respondBody,
    );
    return this;
  }

  private wantTrailers(): typeof respondTrailers {
    this.stream.once('wantTrailers', onWantTrailers);
    return respondTrailers;
  }

  /** One field into the head for `respond`: connection-specific fields dropped, gRPC status fields to the trailers. */
  private add(out: OutgoingHttpHeaders, l: string, v: string | number | readonly string[]): void {
    if (connectionSpecific.has(l)) return;
    if (typeof v === 'object') {
      for (let i = 0; i < v.length; i++) this.add(out, l, v[i]!);
      return;
    }
    if (typeof v === 'string') checkValue(l, v);
    if (grpcStatusFields.has(l)) {
      this.trailers ??= {};
      this.trailers[l] = String(v);
      return;
    }
    const prev = out[l];
    if (prev === undefined) out[l] = v;
    else if (Array.isArray(prev)) prev.push(String(v));
    else out[l] = [String(prev), String(v)];
  }

  flushHeaders(): void {
    const stream = this.stream;
    if (!stream.headersSent && !stream.destroyed && !stream.closed) this.writeHead(this.statusCode);
  }

  write(
    chunk: string | Uint8Array,
    enc?: BufferEncoding | ((err?: Error | null) => void),
    cb?: (err?: Error | null) => void,
  ): boolean {
    if (typeof enc === 'function') {
      cb = enc;
      enc = undefined;
    }
    const stream = this.stream;
    if (this.ending) {
      const err = Object.assign(new Error('write after end'), { code: 'ERR_STREAM_WRITE_AFTER_END' });
      if (cb !== undefined) process.nextTick(cb, err);
      this.destroy(err);
      return false;
    }
    if (stream.destroyed || stream.closed) return false;
    if (!stream.headersSent) this.writeHead(this.statusCode);
    // A HEAD response (or a 204/304) ended with its head: a body written after it is dropped.
    if (stream.writableEnded) return true;
    return enc === undefined ? stream.write(chunk, cb) : stream.write(chunk, enc, cb);
  }

  end(
    chunk?: string | Uint8Array | (() => void),
    enc?: BufferEncoding | (() => void),
    cb?: () => void,
  ): this {
    if (typeof chunk === 'function') {
      cb = chunk;
      chunk = undefined;
    } else if (typeof enc === 'function') {
      cb = enc;
      enc = undefined;
    }
    const stream = this.stream;
    if (this.ending || stream.destroyed || stream.closed) {
      this.ending = true;
      if (cb !== undefined) process.nextTick(cb);
      return this;
    }
    this.ending = true;
    if (!stream.headersSent) this.writeHead(this.statusCode);
    if (cb !== undefined) stream.once('finish', cb);
    if (stream.writableEnded) return this;
    if (chunk === undefined || chunk === null) stream.end();
    else if (enc === undefined) stream.end(chunk);
    else stream.end(chunk, enc as BufferEncoding);
    return this;
  }

  /** Reset the stream (RST_STREAM, INTERNAL_ERROR with an error): a cut body never looks complete. */
  destroy(err?: Error): this {
    if (this.destroyedByUs) return this;
    this.destroyedByUs = true;
    this.stream.destroy(err);
    return this;
  }
}

function checkValue(name: string, v: string): void {
  if (invalidValue.test(v))
    throw Object.assign(new TypeError(`Invalid character in header content ["${name}"]`), {
      code: 'ERR_INVALID_CHAR',
    });
}

/**
 * The request and response for a new stream, or undefined when the stream was answered here
 * (CONNECT: 405; an `Expect` other than `100-continue`: 417). `Expect: 100-continue` is answered
 * with a 100 first, as node:http does when nobody listens for `checkContinue`.
 */
export function openStream(
  stream: ServerHttp2Stream,
  headers: IncomingHttpHeaders,
  rawHeaders: string[],
): { req: H2Request; res: H2Response } | undefined {
  // Errors reach the data plane as the response's `close`; without a listener they would be thrown.
  stream.on('error', ignoreStreamError);
  const method = headers[':method'];
  const expect = headers.expect;
  if (method === 'CONNECT' || (expect !== undefined && expect !== '100-continue')) {
    const status =
      method === 'CONNECT'
        ? constants.HTTP_STATUS_METHOD_NOT_ALLOWED
        : constants.HTTP_STATUS_EXPECTATION_FAILED;
    if (!stream.destroyed) stream.respond({ ':status': status }, respondEmpty);
    return undefined;
  }
  if (expect !== undefined && !stream.destroyed) stream.additionalHeaders({ ':status': 100 });
  const req = new H2Request(stream, headers, rawHeaders);
  return { req, res: new H2Response(stream, req) };
}

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

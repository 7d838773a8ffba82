/**
 * One pass over the client's raw headers: framing checks, the headers Sluice manages captured,
 * everything else collected for forwarding. Shared by plain requests and WebSocket upgrades.
 */
import type { IncomingMessage } from 'node:http';
import type { CompiledRoute } from '../config/compile.js';
import { connectionTokens, ReqHeader, requestHeaderActions } from './headers.js';

export interface RequestHead {
  /** Flat [name, value, ...] of end-to-end headers, in arrival order. */
  fwd: string[];
  /** Lower-case names parallel to the names in `fwd` (fwd[2i] ↔ lnames[i]). */
  lnames: string[];
  host: string | undefined;
  contentLength: string | undefined;
  transferEncoding: string | undefined;
  connection: string | undefined;
  requestId: string | undefined;
  xff: string | undefined;
  xfProto: string | undefined;
  xfHost: string | undefined;
  forwarded: string | undefined;
  teTrailers: boolean;
  /** Set when the framing is ambiguous: the reason. */
  framingError: string | undefined;
  /** Set when a header the gateway relies on is unusable (Host missing, repeated or malformed): the reason. */
  headerError: string | undefined;
}

export function readRequestHead(req: IncomingMessage): RequestHead {
  const raw = req.rawHeaders;
  const fwd: string[] = [];
  const lnames: string[] = [];
  const h: RequestHead = {
    fwd,
    lnames,
    host: undefined,
    contentLength: undefined,
    transferEncoding: undefined,
    connection: undefined,
    requestId: undefined,
    xff: undefined,
    xfProto: undefined,
    xfHost: undefined,
    forwarded: undefined,
    teTrailers: false,
    framingError: undefined,
    headerError: undefined,
  };
  let hosts = 0;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!;
    const value = raw[i + 1]!;
    const lname = name.toLowerCase();
    const action = requestHeaderActions.get(lname);
    if (action === undefined) {
      fwd.push(name, value);
      lnames.push(lname);
      continue;
    }
    switch (action) {
      case ReqHeader.Host:
        // RFC 9112 §3.2: more than one Host, or a Host that is not `host[:port]`, is a 400. Node keeps
        // the first Host in req.headers while a last-wins reader would route on another: never guess.
        if (++hosts > 1) h.headerError = 'more than one Host header';
        else if (!validHost(value)) h.headerError = 'the Host header is not a valid host[:port]';
        h.host = value;
        break;
      case ReqHeader.FramingLookalike:
        // `Transfer_Encoding` / `Content_Length`: some upstream stacks (CGI-style) read `_` as `-` and
        // would frame the body differently from Sluice, which ignores them (request smuggling).
        h.framingError = `"${name}" looks like a framing header`;
        break;
      case ReqHeader.ContentLength:
        if (h.contentLength !== undefined) h.framingError = 'more than one Content-Length header';
        h.contentLength = value;
        break;
      case ReqHeader.TransferEncoding:
        if (h.transferEncoding !== undefined) h.framingError = 'more than one Transfer-Encoding header';
        else if (value.trim().toLowerCase() !== 'chunked')
          h.framingError = 'Transfer-Encoding other than a single "chunked"';
        h.transferEncoding = value;
        break;
      case ReqHeader.Connection:
        h.connection = h.connection === undefined ? value : `${h.connection}, ${value}`;
        break;
      case ReqHeader.RequestId:
        h.requestId = value;
        break;
      case ReqHeader.XForwardedFor:
        h.xff = h.xff === undefined ? value : `${h.xff}, ${value}`;
        break;
      case ReqHeader.XForwardedProto:
        h.xfProto = value;
        break;
      case ReqHeader.XForwardedHost:
        h.xfHost = value;
        break;
      case ReqHeader.Forwarded:
        h.forwarded = h.forwarded === undefined ? value : `${h.forwarded}, ${value}`;
        break;
      case ReqHeader.Te:
        if (value.toLowerCase().includes('trailers')) h.teTrailers = true;
        break;
      default:
        break;
    }
  }
  if (h.contentLength !== undefined && h.transferEncoding !== undefined)
    h.framingError = 'both Content-Length and Transfer-Encoding';
  return h;
}

// reg-name characters (RFC 3986: unreserved, pct-encoded, sub-delims), plus `:` and `[]` for the port
// and IP literals. Anything else (`/`, `@`, `?`, `#`, `\`, spaces, quotes) cannot be part of a host.
const HOST_CHARS = new Uint8Array(128);
for (const c of "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~%!$&'()*+,;=:[]")
  HOST_CHARS[c.charCodeAt(0)] = 1;

export function validHost(v: string): boolean {
  for (let i = 0; i < v.length; i++) {
    const c = v.charCodeAt(i);
    if (c >= 128 || HOST_CHARS[c] === 0) return false;
  }
  return true;
}

/** Remove headers the route drops (remove/set) and those named in `Connection`. Usually a no-op. */
export function applyRouteDrops(head: RequestHead, route: CompiledRoute): string[] {
  const routeDrops = route.request.hasDrops;
  const tokens = head.connection !== undefined ? connectionTokens(head.connection) : undefined;
  if (!routeDrops && (tokens === undefined || tokens.length === 0)) return head.fwd;
  const out: string[] = [];
  const actions = route.request.actions;
  for (let i = 0, j = 0; i < head.fwd.length; i += 2, j++) {
    const l = head.lnames[j]!;
    if (routeDrops && actions.get(l) === ReqHeader.Drop) continue;
    if (tokens?.includes(l)) continue;
    out.push(head.fwd[i]!, head.fwd[i + 1]!);
  }
  return out;
}

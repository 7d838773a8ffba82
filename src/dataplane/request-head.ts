/**
 * One pass over the client's raw headers: framing checks, the headers Sluice manages captured,
 * everything else collected for forwarding. Shared by plain requests and WebSocket upgrades.
 */
import type { IncomingMessage } from 'node:http';
import type { CompiledRoute } from '../config/compile.js';
import { type ErrorDef, Errors } from '../errors/codes.js';
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
  /**
   * Set when a header the gateway relies on is unusable (Host missing, repeated or malformed; a
   * credential header repeated or holding more than one credential): the reason.
   */
  headerError: string | undefined;
  /**
   * The code `headerError` answers with: SLUICE-REQ-003 (invalid header), or SLUICE-REQ-009 when a
   * header that must be single (a credential) came twice or held a list.
   */
  headerErrorDef: ErrorDef;
}

/**
 * `actions` is the guard's table of the config version serving the request (guardHeaderActions:
 * the configured API-key header and identity headers added to the fixed table).
 */
export function readRequestHead(
  req: IncomingMessage,
  actions: ReadonlyMap<string, ReqHeader> = requestHeaderActions,
): RequestHead {
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
    headerErrorDef: Errors.invalidHeader,
  };
  let hosts = 0;
  // Credential headers seen: a second copy is refused (see `repeated`), so what an upstream reads
  // (many frameworks keep the last copy, node:http keeps the first) is exactly what auth checked.
  let authorizations = 0;
  let proxyAuthorizations = 0;
  let credentialNames: string[] | undefined;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!;
    const value = raw[i + 1]!;
    const lname = name.toLowerCase();
    const action = actions.get(lname);
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
      case ReqHeader.Authorization: {
        fwd.push(name, value);
        lnames.push(lname);
        if (++authorizations > 1) repeated(h, 'more than one Authorization header');
        else {
          const why = credentialListProblem(value);
          if (why !== undefined) repeated(h, why);
        }
        break;
      }
      case ReqHeader.SingleCredential:
        fwd.push(name, value);
        lnames.push(lname);
        if (credentialNames?.includes(lname)) repeated(h, `more than one ${lname} header`);
        else {
          credentialNames ??= [];
          credentialNames.push(lname);
          if (value.includes(',')) repeated(h, `the ${lname} header holds a list (a comma), not one key`);
        }
        break;
      case ReqHeader.ProxyAuthorization:
        // Never forwarded (it is for this hop), but two copies mean two claims of who the client is.
        if (++proxyAuthorizations > 1) repeated(h, 'more than one Proxy-Authorization header');
        break;
      default:
        break;
    }
  }
  if (h.contentLength !== undefined && h.transferEncoding !== undefined)
    h.framingError = 'both Content-Length and Transfer-Encoding';
  return h;
}

/** A repeated or list-valued credential: SLUICE-REQ-009, unless the head is already refused for another reason. */
function repeated(h: RequestHead, reason: string): void {
  if (h.headerError !== undefined) return;
  h.headerError = reason;
  h.headerErrorDef = Errors.repeatedHeader;
}

// tchar (RFC 9110 §5.6.2): the characters of a token, such as an auth-scheme or an auth-param name.
const TCHAR = new Uint8Array(128);
for (const c of "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")
  TCHAR[c.charCodeAt(0)] = 1;
const isTchar = (c: number) => c < 128 && TCHAR[c] === 1;

/**
 * Why an Authorization value holds more than one credential, or undefined. RFC 9110 §11.4:
 * `credentials = auth-scheme [ 1*SP ( token68 / #auth-param ) ]`: one scheme, then either one
 * token68 (Bearer, Basic) or a comma-separated list of `name=value` parameters (Digest, AWS
 * SigV4). A comma is therefore legitimate only between parameters (or inside a quoted string);
 * anything else after a comma (`Bearer a, Bearer b`, `Bearer a, b`, `Digest x=1, Bearer t`) is a
 * second credential that a list-splitting upstream would read in place of the one Sluice checked.
 * Runs only when the value has a comma, which a Bearer or Basic credential never does.
 */
export function credentialListProblem(v: string): string | undefined {
  if (!v.includes(',')) return undefined;
  let i = 0;
  const n = v.length;
  while (i < n && isTchar(v.charCodeAt(i))) i++; // auth-scheme
  // Each element after the scheme: OWS name OWS "=" value (a quoted string may hold commas).
  let first = true;
  while (i < n) {
    const start = i;
    while (i < n && (v.charCodeAt(i) === 32 || v.charCodeAt(i) === 9)) i++;
    if (first && i === start) return 'the Authorization header is not `scheme credentials`';
    first = false;
    if (i < n && v.charCodeAt(i) === 44 /* , */) {
      i++; // an empty list element (RFC 9110 §5.6.1 lets a recipient ignore it)
      continue;
    }
    const name = i;
    while (i < n && isTchar(v.charCodeAt(i))) i++;
    const nameEnd = i;
    while (i < n && (v.charCodeAt(i) === 32 || v.charCodeAt(i) === 9)) i++;
    // token68 may end in `=` padding, but a token68 credential never has a comma after it.
    if (nameEnd === name || i >= n || v.charCodeAt(i) !== 61 /* = */)
      return 'the Authorization header holds more than one credential';
    i++;
    while (i < n && (v.charCodeAt(i) === 32 || v.charCodeAt(i) === 9)) i++;
    if (i < n && v.charCodeAt(i) === 34 /* " */) {
      i++;
      while (i < n && v.charCodeAt(i) !== 34) i += v.charCodeAt(i) === 92 /* \\ */ ? 2 : 1;
      if (i >= n) return 'the Authorization header has an unterminated quoted string';
      i++;
    } else if (i < n && v.charCodeAt(i) === 61) {
      // `token68=,` padding followed by a list: a token68 and then more.
      return 'the Authorization header holds more than one credential';
    } else while (i < n && v.charCodeAt(i) !== 44) i++;
    while (i < n && (v.charCodeAt(i) === 32 || v.charCodeAt(i) === 9)) i++;
    if (i < n && v.charCodeAt(i) !== 44) return 'the Authorization header holds more than one credential';
    if (i < n) i++; // the comma
  }
  return undefined;
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

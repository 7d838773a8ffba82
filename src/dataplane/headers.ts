/**
 * Header handling on the hot path: one pass over the raw header array, one Map lookup per header.
 * Hand-written rather than via a library because it runs for every header of every request.
 */
import { type BlockList, isIP } from 'node:net';

/** What to do with a request header, decided by its lower-case name. */
export enum ReqHeader {
  Forward = 0,
  Drop = 1,
  Host = 2,
  ContentLength = 3,
  TransferEncoding = 4,
  Connection = 5,
  RequestId = 6,
  XForwardedFor = 7,
  XForwardedProto = 8,
  XForwardedHost = 9,
  Forwarded = 10,
  Te = 11,
  /** `transfer_encoding` / `content_length`: refused, see readRequestHead. */
  FramingLookalike = 12,
  /** Forwarded, but at most one, carrying one credential (see readRequestHead). */
  Authorization = 13,
  /** Forwarded, but at most one, holding no list (the API-key header). */
  SingleCredential = 14,
  /** Never forwarded, and at most one (a second copy means the client is ambiguous about who it is). */
  ProxyAuthorization = 15,
}

/** Hop-by-hop headers (RFC 9110 §7.6.1) and those Sluice sets itself. `te: trailers` is kept. */
export const requestHeaderActions: ReadonlyMap<string, ReqHeader> = new Map([
  ['host', ReqHeader.Host],
  ['content-length', ReqHeader.ContentLength],
  ['transfer-encoding', ReqHeader.TransferEncoding],
  ['connection', ReqHeader.Connection],
  ['keep-alive', ReqHeader.Drop],
  ['proxy-connection', ReqHeader.Drop],
  ['proxy-authorization', ReqHeader.ProxyAuthorization],
  ['authorization', ReqHeader.Authorization],
  // The default API-key header; a configured one is added by guardHeaderActions.
  ['x-api-key', ReqHeader.SingleCredential],
  // The default identity headers Sluice sets upstream (`identity.forward`): never taken from the
  // client, on any route, so an upstream that trusts them on one route cannot be told a forged
  // tenant or principal through another route (a route without `auth`) of the same upstream.
  ['x-sluice-tenant', ReqHeader.Drop],
  ['x-sluice-principal', ReqHeader.Drop],
  ['upgrade', ReqHeader.Drop],
  ['trailer', ReqHeader.Drop],
  ['expect', ReqHeader.Drop],
  ['http2-settings', ReqHeader.Drop],
  ['te', ReqHeader.Te],
  ['x-request-id', ReqHeader.RequestId],
  ['x-forwarded-for', ReqHeader.XForwardedFor],
  ['x-forwarded-proto', ReqHeader.XForwardedProto],
  ['x-forwarded-host', ReqHeader.XForwardedHost],
  ['forwarded', ReqHeader.Forwarded],
  ['transfer_encoding', ReqHeader.FramingLookalike],
  ['content_length', ReqHeader.FramingLookalike],
]);

/**
 * The guard's table for one config version: the fixed table, plus the configured API-key header
 * (single, like `x-api-key`) and every header Sluice sets from a verified identity (the
 * `identity.forward` names and every route's `auth.jwt.forward` headers: dropped on every route,
 * not only on the routes that set them). Built once per config, so the guard still does one Map
 * lookup per header. Names must be lower case.
 */
export function guardHeaderActions(
  keyHeaders: readonly string[],
  identityHeaders: readonly string[],
): ReadonlyMap<string, ReqHeader> {
  let out: Map<string, ReqHeader> | undefined;
  const set = (name: string, action: ReqHeader) => {
    // Never weaken a header the fixed table already handles (host, framing, authorization, ...).
    const fixed = requestHeaderActions.get(name);
    if (fixed !== undefined && fixed !== ReqHeader.Drop && fixed !== ReqHeader.SingleCredential) return;
    if (fixed === action) return;
    out ??= new Map(requestHeaderActions);
    out.set(name, action);
  };
  for (const n of keyHeaders) set(n, ReqHeader.SingleCredential);
  for (const n of identityHeaders) set(n, ReqHeader.Drop);
  return out ?? requestHeaderActions;
}

/** Response headers never passed to the client (Node frames the response itself). */
export const responseHopByHop: ReadonlySet<string> = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'transfer-encoding',
  'upgrade',
  'trailer',
  'proxy-authenticate',
]);

/** Lower-case names listed in a `Connection` header, except the ones that carry no header (close, keep-alive). */
export function connectionTokens(value: string): string[] {
  const out: string[] = [];
  for (const t of value.split(',')) {
    const n = t.trim().toLowerCase();
    if (n && n !== 'close' && n !== 'keep-alive') out.push(n);
  }
  return out;
}

const requestIdOk = /^[A-Za-z0-9._:@+=/-]{1,200}$/;
export function acceptableRequestId(v: string | undefined): v is string {
  return v !== undefined && requestIdOk.test(v);
}

export interface ForwardedInfo {
  xff: string;
  proto: string;
  host: string;
  forwarded: string;
}

/**
 * X-Forwarded-* and Forwarded (RFC 7239). From a trusted proxy the incoming values are extended;
 * from anyone else they are replaced, so a client cannot forge its address.
 */
export function forwardedHeaders(
  peer: string,
  scheme: string,
  host: string | undefined,
  incoming: { xff?: string; proto?: string; host?: string; forwarded?: string },
  trusted: BlockList | undefined,
): ForwardedInfo {
  const isTrusted =
    trusted !== undefined && peer !== '' && trusted.check(peer, peer.includes(':') ? 'ipv6' : 'ipv4');
  const forNode = peer.includes(':') ? `"[${peer}]"` : peer;
  const own = `for=${forNode};proto=${scheme}${host ? `;host="${host.replace(/["\\]/g, '')}"` : ''}`;
  if (isTrusted) {
    return {
      xff: incoming.xff ? `${incoming.xff}, ${peer}` : peer,
      proto: incoming.proto ?? scheme,
      host: incoming.host ?? host ?? '',
      forwarded: incoming.forwarded ? `${incoming.forwarded}, ${own}` : own,
    };
  }
  return { xff: peer, proto: scheme, host: host ?? '', forwarded: own };
}

/** Strip an IPv4-mapped IPv6 prefix so `::ffff:127.0.0.1` reads and matches as `127.0.0.1`. */
export function peerAddress(a: string | undefined): string {
  if (!a) return '';
  return a.startsWith('::ffff:') && a.includes('.') ? a.slice(7) : a;
}

/**
 * The client's address: the peer, unless the peer is a trusted proxy, in which case the
 * rightmost `X-Forwarded-For` entry that is not itself a trusted proxy (entries left of it could
 * be forged by the client). An entry that is not an IP address stops the walk at the hop before it.
 */
export function clientAddress(peer: string, xff: string | undefined, trusted: BlockList | undefined): string {
  if (trusted === undefined || xff === undefined || peer === '' || !isTrusted(trusted, peer)) return peer;
  let client = peer;
  const hops = xff.split(',');
  for (let i = hops.length - 1; i >= 0; i--) {
    const h = peerAddress(hops[i]!.trim());
    const family = isIP(h);
    if (family === 0) return client;
    client = h;
    if (!trusted.check(h, family === 6 ? 'ipv6' : 'ipv4')) return h;
  }
  return client;
}

function isTrusted(trusted: BlockList, a: string): boolean {
  return trusted.check(a, a.includes(':') ? 'ipv6' : 'ipv4');
}

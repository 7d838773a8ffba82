/**
 * Hash key extractors, compiled once per upstream: each reads one thing from the raw request head
 * (no `req.headers` object is built for it) and returns undefined when the request has no key.
 */
import type { IncomingMessage } from 'node:http';
import type { BlockList } from 'node:net';
import { peerAddress } from '../../dataplane/headers.js';
import type { KeyExtractor } from './balancer.js';

/** The first value of a header (case-insensitive); an empty value counts as none. */
export function headerKey(name: string): KeyExtractor {
  const lname = name.toLowerCase();
  const len = lname.length;
  return (req) => {
    const raw = req.rawHeaders;
    for (let i = 0; i < raw.length; i += 2) {
      const n = raw[i]!;
      if (n.length === len && n.toLowerCase() === lname) {
        const v = raw[i + 1]!.trim();
        return v === '' ? undefined : v;
      }
    }
    return undefined;
  };
}

/** The value of a cookie (RFC 6265 `Cookie: a=1; b=2`, possibly over several Cookie headers). */
export function cookieKey(name: string): KeyExtractor {
  return (req) => {
    const raw = req.rawHeaders;
    for (let i = 0; i < raw.length; i += 2) {
      const n = raw[i]!;
      if (n.length === 6 && n.toLowerCase() === 'cookie') {
        const v = cookieValue(raw[i + 1]!, name);
        if (v !== undefined) return v;
      }
    }
    return undefined;
  };
}

export function cookieValue(header: string, name: string): string | undefined {
  let pos = 0;
  const end = header.length;
  while (pos < end) {
    let semi = header.indexOf(';', pos);
    if (semi === -1) semi = end;
    const eq = header.indexOf('=', pos);
    if (eq !== -1 && eq < semi && header.slice(pos, eq).trim() === name) {
      let v = header.slice(eq + 1, semi).trim();
      if (v.length >= 2 && v.charCodeAt(0) === 34 && v.charCodeAt(v.length - 1) === 34) v = v.slice(1, -1);
      return v === '' ? undefined : v;
    }
    pos = semi + 1;
  }
  return undefined;
}

/**
 * The client's address: the connection's peer, or, when the peer is one of `listen.trustedProxies`,
 * the right-most X-Forwarded-For address that is not a trusted proxy (the same rule as for the
 * forwarded headers: a client cannot choose its key by forging X-Forwarded-For).
 */
export function clientIpKey(trusted: BlockList | undefined): KeyExtractor {
  if (trusted === undefined) return (req) => peerAddress(req.socket?.remoteAddress) || undefined;
  return (req) => {
    const peer = peerAddress(req.socket?.remoteAddress);
    if (peer === '') return undefined;
    if (!isTrusted(trusted, peer)) return peer;
    const xff = forwardedFor(req);
    if (xff === undefined) return peer;
    const hops = xff.split(',');
    let client = peer;
    for (let i = hops.length - 1; i >= 0; i--) {
      const a = peerAddress(hops[i]!.trim());
      if (a === '') break;
      client = a;
      if (!isTrusted(trusted, a)) break;
    }
    return client;
  };
}

function isTrusted(trusted: BlockList, a: string): boolean {
  try {
    return trusted.check(a, a.includes(':') ? 'ipv6' : 'ipv4');
  } catch {
    return false; // not an IP address (a forged or obfuscated X-Forwarded-For entry)
  }
}

function forwardedFor(req: IncomingMessage): string | undefined {
  const raw = req.rawHeaders;
  let out: string | undefined;
  for (let i = 0; i < raw.length; i += 2) {
    const n = raw[i]!;
    if (n.length === 15 && n.toLowerCase() === 'x-forwarded-for')
      out = out === undefined ? raw[i + 1]! : `${out}, ${raw[i + 1]!}`;
  }
  return out;
}

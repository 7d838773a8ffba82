/**
 * Allowed origins, parsed and compiled once at config load: exact origins go into a Set, patterns
 * (`https://*.example.com`, `http://localhost:*`) into regular expressions built here, so a request
 * costs one Set lookup and, only for origins not in it, one anchored regex test per pattern.
 */
import { isIP } from 'node:net';

export type OriginRule =
  | { kind: 'any' }
  | { kind: 'exact'; origin: string }
  | { kind: 'pattern'; source: string; re: RegExp };

const schemeOk = /^[a-z][a-z0-9+.-]*$/;
const labelOk = /^[a-z0-9_](?:[a-z0-9_-]*[a-z0-9_])?$/;
const defaultPorts: Record<string, string> = { http: '80', https: '443', ws: '80', wss: '443' };

/** One entry of `cors.origins`, or why it is not an origin a browser would send. */
export function parseOrigin(raw: string): OriginRule | { error: string } {
  const s = raw.trim();
  if (s === '*') return { kind: 'any' };
  if (s === 'null')
    return {
      error:
        '"null" is the origin of sandboxed frames, data: and file: documents: any page can produce it, so allowing it allows everyone',
    };
  const sep = s.indexOf('://');
  if (sep <= 0)
    return {
      error: `"${raw}" is not an origin: write scheme://host[:port], such as https://app.example.com`,
    };
  const scheme = s.slice(0, sep).toLowerCase();
  if (!schemeOk.test(scheme)) return { error: `"${raw}": invalid scheme "${s.slice(0, sep)}"` };
  let rest = s.slice(sep + 3);
  const slash = rest.search(/[/?#]/);
  if (slash >= 0) {
    const bare = `${s.slice(0, sep + 3)}${rest.slice(0, slash)}`;
    return { error: `"${raw}": an origin has no path, query or fragment (browsers send ${bare})` };
  }
  if (rest.includes('@')) return { error: `"${raw}": an origin has no user information` };
  let host: string;
  let port: string | undefined;
  if (rest.startsWith('[')) {
    const end = rest.indexOf(']');
    if (end < 0) return { error: `"${raw}": unclosed [ in the IPv6 address` };
    const ip = rest.slice(1, end);
    if (isIP(ip) !== 6) return { error: `"${raw}": "${ip}" is not an IPv6 address` };
    // Browsers send the canonical (compressed, lower-case) form.
    host = `[${new URL(`http://[${ip}]`).hostname.slice(1, -1)}]`;
    rest = rest.slice(end + 1);
    if (rest !== '' && !rest.startsWith(':'))
      return { error: `"${raw}": unexpected text after the IPv6 address` };
    port = rest === '' ? undefined : rest.slice(1);
  } else {
    const colon = rest.lastIndexOf(':');
    host = (colon >= 0 ? rest.slice(0, colon) : rest).toLowerCase();
    port = colon >= 0 ? rest.slice(colon + 1) : undefined;
  }
  if (port !== undefined && port !== '*') {
    const n = /^[0-9]{1,5}$/.test(port) ? Number(port) : -1;
    if (n < 1 || n > 65535) return { error: `"${raw}": invalid port "${port}" (a number or *)` };
    if (defaultPorts[scheme] === String(n))
      return {
        error: `"${raw}": browsers leave the default port out of an origin: write ${scheme}://${host}`,
      };
    port = String(n);
  }
  const wild = host.startsWith('*.');
  if (!host.startsWith('[')) {
    const labels = (wild ? host.slice(2) : host).split('.');
    for (const l of labels)
      if (!labelOk.test(l))
        return {
          error: l.includes('*')
            ? `"${raw}": * may only stand for the leftmost labels, as in https://*.example.com`
            : `"${raw}": "${host}" is not a host name (write internationalised names in their xn-- form)`,
        };
    if (wild && labels.length < 2)
      return { error: `"${raw}": *.${labels.join('.')} is too broad: name at least a domain and its suffix` };
  }
  if (!wild && port !== '*') return { kind: 'exact', origin: `${scheme}://${host}${port ? `:${port}` : ''}` };
  const hostRe = wild ? `(?:[a-z0-9_-]+\\.)+${escapeRe(host.slice(2))}` : escapeRe(host);
  const portRe = port === '*' ? '(?::[0-9]{1,5})?' : port ? `:${port}` : '';
  return { kind: 'pattern', source: s, re: new RegExp(`^${escapeRe(scheme)}://${hostRe}${portRe}$`) };
}

function escapeRe(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** The compiled `cors.origins` of a route. */
export interface OriginMatcher {
  readonly any: boolean;
  allows(origin: string): boolean;
}

export function compileOrigins(list: readonly string[]): OriginMatcher {
  const exact = new Set<string>();
  const patterns: RegExp[] = [];
  let any = false;
  for (const raw of list) {
    const r = parseOrigin(raw);
    // checkCors (index.ts) reports these with file and line at load; this guards compile-only callers.
    if ('error' in r) throw new Error(`cors.origins: ${r.error}`);
    if (r.kind === 'any') any = true;
    else if (r.kind === 'exact') exact.add(r.origin);
    else patterns.push(r.re);
  }
  if (any) return { any: true, allows: () => true };
  if (patterns.length === 0) return { any: false, allows: (o) => exact.has(o) };
  return {
    any: false,
    allows(o) {
      if (exact.has(o)) return true;
      // An origin is short; a browser's is at most a scheme, a host name (253) and a port.
      if (o.length > 300) return false;
      for (let i = 0; i < patterns.length; i++) if (patterns[i]!.test(o)) return true;
      return false;
    },
  };
}

/**
 * The HTTP caching rules the cache applies (RFC 9111 as a shared cache, RFC 9110 conditionals):
 * Cache-Control parsing, freshness lifetime, whether a response may be stored, ETag comparison.
 * Pure functions over header values, so they are tested on their own (test/unit/cache.test.ts).
 */

export interface CacheControl {
  noStore: boolean;
  noCache: boolean;
  /** `private`, with or without a field list: a shared cache stores none of it. */
  private: boolean;
  public: boolean;
  mustRevalidate: boolean;
  proxyRevalidate: boolean;
  /** Seconds; undefined when absent. An invalid value counts as 0 (stale). */
  maxAge: number | undefined;
  sMaxAge: number | undefined;
  onlyIfCached: boolean;
}

/** RFC 9111 §1.2.2: delta-seconds beyond what can be represented count as 2^31. */
const maxDelta = 2147483648;

function deltaSeconds(v: string | undefined): number {
  if (v === undefined || !/^[0-9]+$/.test(v)) return 0;
  const n = Number(v);
  return n > maxDelta ? maxDelta : n;
}

/**
 * Parse one or more Cache-Control values (lines joined with `,`). Names are case-insensitive;
 * quoted values may hold commas. Of a repeated directive the first counts (RFC 9111 §4.2.1).
 */
export function parseCacheControl(value: string | undefined): CacheControl {
  const cc: CacheControl = {
    noStore: false,
    noCache: false,
    private: false,
    public: false,
    mustRevalidate: false,
    proxyRevalidate: false,
    maxAge: undefined,
    sMaxAge: undefined,
    onlyIfCached: false,
  };
  if (value === undefined || value === '') return cc;
  const n = value.length;
  let i = 0;
  while (i < n) {
    // One directive: name [= token | quoted-string], up to the next comma outside quotes.
    while (i < n && (value[i] === ' ' || value[i] === '\t' || value[i] === ',')) i++;
    const start = i;
    while (i < n && value[i] !== '=' && value[i] !== ',') i++;
    const name = value.slice(start, i).trim().toLowerCase();
    let arg: string | undefined;
    if (i < n && value[i] === '=') {
      i++;
      while (i < n && (value[i] === ' ' || value[i] === '\t')) i++;
      if (value[i] === '"') {
        i++;
        let s = '';
        while (i < n && value[i] !== '"') {
          if (value[i] === '\\' && i + 1 < n) i++;
          s += value[i];
          i++;
        }
        i++;
        arg = s;
        while (i < n && value[i] !== ',') i++;
      } else {
        const a = i;
        while (i < n && value[i] !== ',') i++;
        arg = value.slice(a, i).trim();
      }
    }
    switch (name) {
      case 'no-store':
        cc.noStore = true;
        break;
      case 'no-cache':
        cc.noCache = true;
        break;
      case 'private':
        cc.private = true;
        break;
      case 'public':
        cc.public = true;
        break;
      case 'must-revalidate':
        cc.mustRevalidate = true;
        break;
      case 'proxy-revalidate':
        cc.proxyRevalidate = true;
        break;
      case 'max-age':
        if (cc.maxAge === undefined) cc.maxAge = deltaSeconds(arg);
        break;
      case 's-maxage':
        if (cc.sMaxAge === undefined) cc.sMaxAge = deltaSeconds(arg);
        break;
      case 'only-if-cached':
        cc.onlyIfCached = true;
        break;
    }
  }
  return cc;
}

/** An HTTP-date as ms since the epoch, or NaN when it is not one. */
export function parseHttpDate(v: string | undefined): number {
  return v === undefined ? Number.NaN : Date.parse(v);
}

/** The response headers the cache decides on, gathered in one pass over the flat list. */
export interface ResponseFacts {
  cacheControl: string | undefined;
  expires: string | undefined;
  date: string | undefined;
  age: string | undefined;
  vary: string | undefined;
  etag: string | undefined;
  lastModified: string | undefined;
  contentLength: string | undefined;
  contentType: string | undefined;
  setCookie: boolean;
  pragmaNoCache: boolean;
}

function join(a: string | undefined, b: string): string {
  return a === undefined ? b : `${a}, ${b}`;
}

export function responseFacts(headers: readonly string[], upTo: number): ResponseFacts {
  const f: ResponseFacts = {
    cacheControl: undefined,
    expires: undefined,
    date: undefined,
    age: undefined,
    vary: undefined,
    etag: undefined,
    lastModified: undefined,
    contentLength: undefined,
    contentType: undefined,
    setCookie: false,
    pragmaNoCache: false,
  };
  for (let i = 0; i < upTo; i += 2) {
    const name = headers[i]!;
    const v = headers[i + 1]!;
    switch (name.length) {
      case 3:
        if (name.toLowerCase() === 'age') f.age ??= v;
        break;
      case 4:
        {
          const l = name.toLowerCase();
          if (l === 'date') f.date ??= v;
          else if (l === 'etag') f.etag ??= v;
          else if (l === 'vary') f.vary = join(f.vary, v);
        }
        break;
      case 6:
        if (name.toLowerCase() === 'pragma' && /no-cache/i.test(v)) f.pragmaNoCache = true;
        break;
      case 7:
        if (name.toLowerCase() === 'expires') f.expires ??= v;
        break;
      case 10:
        if (name.toLowerCase() === 'set-cookie') f.setCookie = true;
        break;
      case 12:
        if (name.toLowerCase() === 'content-type') f.contentType ??= v;
        break;
      case 13:
        {
          const l = name.toLowerCase();
          if (l === 'cache-control') f.cacheControl = join(f.cacheControl, v);
          else if (l === 'last-modified') f.lastModified ??= v;
        }
        break;
      case 14:
        if (name.toLowerCase() === 'content-length') f.contentLength ??= v;
        break;
    }
  }
  return f;
}

/**
 * Freshness lifetime in seconds (RFC 9111 §4.2.1, shared cache): s-maxage, then max-age, then
 * Expires − Date, then `heuristic` (the route's `ttl`). An invalid Expires is in the past.
 */
export function freshnessLifetime(
  cc: CacheControl,
  f: ResponseFacts,
  responseTime: number,
  heuristic: number,
): number {
  if (cc.sMaxAge !== undefined) return cc.sMaxAge;
  if (cc.maxAge !== undefined) return cc.maxAge;
  if (f.expires !== undefined) {
    const exp = parseHttpDate(f.expires);
    if (Number.isNaN(exp)) return 0;
    const date = parseHttpDate(f.date);
    const base = Number.isNaN(date) ? responseTime : date;
    return Math.max(0, (exp - base) / 1000);
  }
  return heuristic;
}

/**
 * The age a response arrives with: its Age header (RFC 9111 §5.1). The apparent age from Date is
 * not used: an upstream whose clock runs behind would make every response arrive stale (Varnish
 * does the same).
 */
export function initialAge(f: ResponseFacts): number {
  if (f.age === undefined) return 0;
  const a = f.age.trim();
  return /^[0-9]+$/.test(a) ? Math.min(Number(a), maxDelta) : 0;
}

/**
 * The field names of a Vary value, lower-cased, sorted and unique; `['*']` for `Vary: *`.
 */
export function varyNames(vary: string): string[] {
  const out: string[] = [];
  for (const part of vary.split(',')) {
    const n = part.trim().toLowerCase();
    if (n === '') continue;
    if (n === '*') return ['*'];
    if (!out.includes(n)) out.push(n);
  }
  return out.sort();
}

/** The opaque tag of an entity-tag (`W/"x"` and `"x"` compare equal: the weak comparison). */
function opaque(tag: string): string {
  const t = tag.trim();
  return t.startsWith('W/') ? t.slice(2) : t;
}

/**
 * If-None-Match against a stored ETag (RFC 9110 §13.1.2, weak comparison): true when the client's
 * copy is current (answer 304).
 */
export function noneMatchHits(ifNoneMatch: string, etag: string | undefined): boolean {
  const list = ifNoneMatch.trim();
  if (list === '*') return etag !== undefined;
  if (etag === undefined) return false;
  const mine = opaque(etag);
  // A comma may appear inside an entity-tag's quotes (RFC 9110 §8.8.3): split outside quotes only.
  let inQuote = false;
  let start = 0;
  for (let i = 0; i <= list.length; i++) {
    const c = list[i];
    if (c === '"') inQuote = !inQuote;
    else if ((c === ',' && !inQuote) || i === list.length) {
      if (opaque(list.slice(start, i)) === mine) return true;
      start = i + 1;
    }
  }
  return false;
}

/** If-Modified-Since against a stored Last-Modified: true when not modified since (answer 304). */
export function notModifiedSince(ifModifiedSince: string, lastModified: number): boolean {
  if (Number.isNaN(lastModified)) return false;
  const ims = parseHttpDate(ifModifiedSince);
  if (Number.isNaN(ims)) return false;
  return lastModified <= ims;
}

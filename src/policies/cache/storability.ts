/**
 * Whether a response may be stored (RFC 9111 as a shared cache, and the route's rules), and if so
 * the entry it makes, all but its body. Pure: the policy counts the reason of a refusal.
 */
import {
  type CacheControl,
  freshnessLifetime,
  initialAge,
  parseCacheControl,
  parseHttpDate,
  responseFacts,
  varyNames,
} from './http.js';
import { varyKeyOf } from './key.js';
import type { Entry } from './store.js';

/** What of a route's `cache` settings storing depends on. */
export interface StoreRules {
  /** Seconds of freshness for responses without any (0: not stored). */
  readonly ttl: number;
  readonly maxTtl: number;
  readonly maxObject: number;
  readonly statuses: ReadonlySet<number>;
  readonly shared: boolean;
  readonly stripCookies: boolean;
}

/** A stored entry before its body is known. */
export type Skeleton = Omit<Entry, 'kind' | 'body'>;

/** Why a response is not stored (the `decision` label of sluice_cache_store_decisions_total). */
export type NotStored =
  | 'status'
  | 'no_store'
  | 'private'
  | 'no_cache'
  | 'authorization'
  | 'set_cookie'
  | 'vary_star'
  | 'streaming'
  | 'too_large'
  | 'stale';

/**
 * The entry a response would make, or why it may not be stored. `own` is the upstream's head only
 * (the request's policy headers are appended after the response phase); `authorised`: the request
 * carried credentials; `raw` its headers (for the Vary values).
 */
export function storable(
  rules: StoreRules,
  status: number,
  own: readonly string[],
  authorised: boolean,
  raw: readonly string[],
): Skeleton | NotStored {
  if (!rules.statuses.has(status)) return 'status';
  const f = responseFacts(own, own.length);
  const cc: CacheControl = parseCacheControl(f.cacheControl);
  if (cc.noStore) return 'no_store';
  if (cc.private) return 'private';
  // no-cache: every use needs revalidation, which this cache does not do; HTTP/1.0 Pragma likewise.
  if (cc.noCache || (f.cacheControl === undefined && f.pragmaNoCache)) return 'no_cache';
  // RFC 9111 §3.5: responses to authorised requests only when they say they may be shared.
  if (authorised && !rules.shared && !cc.public && cc.sMaxAge === undefined && !cc.mustRevalidate)
    return 'authorization';
  if (f.setCookie && !rules.stripCookies) return 'set_cookie';
  let vary: string[] | undefined;
  if (f.vary !== undefined) {
    vary = varyNames(f.vary);
    if (vary[0] === '*') return 'vary_star';
    if (vary.length === 0) vary = undefined;
  }
  if (f.contentType !== undefined && /^\s*text\/event-stream/i.test(f.contentType)) return 'streaming';
  if (f.contentLength !== undefined && Number(f.contentLength) > rules.maxObject) return 'too_large';
  const now = Date.now();
  const lifetime = Math.min(freshnessLifetime(cc, f, now, rules.ttl), rules.maxTtl);
  const age = initialAge(f);
  if (lifetime <= age) return 'stale';
  const headers: string[] = [];
  let hasDate = false;
  for (let i = 0; i < own.length; i += 2) {
    const l = own[i]!.toLowerCase();
    if (storedHeaderDropped(l, rules.stripCookies)) continue;
    if (l === 'date') hasDate = true;
    headers.push(own[i]!, own[i + 1]!);
  }
  // A hit replays the original Date (with Age): an upstream without one gets the time it answered.
  if (!hasDate) headers.push('date', new Date(now).toUTCString());
  return {
    status,
    headers,
    storedAt: now,
    initialAge: age,
    lifetime,
    etag: f.etag,
    lastModified: parseHttpDate(f.lastModified),
    vary,
    varyKey: vary === undefined ? undefined : varyKeyOf(raw, vary),
  };
}

/** Response headers a hit does not replay: framing, and Age (set anew). */
function storedHeaderDropped(lname: string, stripCookies: boolean): boolean {
  return (
    lname === 'content-length' ||
    lname === 'age' ||
    lname === 'x-cache' ||
    (stripCookies && lname === 'set-cookie')
  );
}

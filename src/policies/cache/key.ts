/**
 * What a cached response is filed under. The primary key: route, tenant, host, path and query (and
 * the route's `key.headers`); with Vary, the variant key: the request's values of the Vary names.
 * On a residency- or placement-bound route the tenant's placement too (its allowed regions, its
 * shard...): entries are per tenant already, and with the placement in the key an answer fetched in
 * one region or shard is not served to the same tenant once it is placed elsewhere (its region or
 * `residency.regions` / `placement.<key>` label changed).
 */
import type { PlacementSpec } from '../placement/spec.js';
import { tenantPlacement } from '../placement/spec.js';
import type { RequestContext } from '../policy.js';

/** What of a route's `cache` settings the key depends on. */
export interface KeyRules {
  readonly route: string;
  /** Only these query parameters (in this order); undefined: the whole query. */
  readonly query: readonly string[] | undefined;
  readonly keyHeaders: readonly string[];
  /** The route is residency- or placement-bound: the key holds the tenant's placement under this spec. */
  readonly placement?: PlacementSpec | undefined;
}

/** The primary key of a request. Tenants never share entries. */
export function keyOf(rules: KeyRules, ctx: RequestContext): string {
  const req = ctx.req;
  const url = req.url ?? '';
  const q = url.indexOf('?');
  let query = q < 0 ? '' : url.slice(q + 1);
  if (rules.query !== undefined) query = pickQuery(query, rules.query);
  // The tenant the route resolved, or the one the credentials name.
  let tenant = ctx.tenant?.id ?? ctx.principal?.tenantId ?? '';
  // The residency and placement policies refused requests without a tenant before the cache.
  const spec = rules.placement;
  if (spec !== undefined && ctx.tenant !== undefined) tenant += `@${tenantPlacement(spec, ctx.tenant).key}`;
  let key = `${rules.route}\n${tenant}\n${(ctx.host ?? '').toLowerCase()}\n${ctx.path}?${query}`;
  const kh = rules.keyHeaders;
  for (let i = 0; i < kh.length; i++) {
    const v = headerValue(req.rawHeaders, kh[i]!);
    key += v === undefined ? '\n\u0000' : `\n${v}`;
  }
  return key;
}

/** Values of one request header (lines joined), or undefined when absent. */
function headerValue(raw: readonly string[], lname: string): string | undefined {
  let v: string | undefined;
  for (let i = 0; i < raw.length; i += 2) {
    const n = raw[i]!;
    if (n.length === lname.length && n.toLowerCase() === lname)
      v = v === undefined ? raw[i + 1]!.trim() : `${v}, ${raw[i + 1]!.trim()}`;
  }
  return v;
}

/** The request's values of the Vary names: what selects a variant. Absent and empty differ. */
export function varyKeyOf(raw: readonly string[], names: readonly string[]): string {
  let k = '';
  for (let i = 0; i < names.length; i++) {
    const v = headerValue(raw, names[i]!);
    k += v === undefined ? '\u0000\n' : `${v}\n`;
  }
  return k;
}

/** Only the named query parameters, in the configured order (values as sent). */
function pickQuery(query: string, names: readonly string[]): string {
  if (names.length === 0 || query === '') return '';
  const parts = query.split('&');
  let out = '';
  for (const name of names) {
    for (const p of parts) {
      const eq = p.indexOf('=');
      const k = eq < 0 ? p : p.slice(0, eq);
      if (k === name) out += out === '' ? p : `&${p}`;
    }
  }
  return out;
}

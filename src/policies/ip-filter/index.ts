/**
 * IP allow and deny lists per route, compiled to node:net BlockLists at config load and checked
 * against `ctx.client` (the peer, or the X-Forwarded-For client behind `listen.trustedProxies`).
 * Deny wins over allow; with an allow list, every address it does not list is refused. BlockList
 * matches IPv4-mapped IPv6 addresses (`::ffff:10.0.0.1`) against IPv4 rules and the reverse.
 * First in the chain: a refused address costs nothing else (no auth, no limiter, no upstream).
 */
import { BlockList } from 'node:net';
import type { RouteConfig } from '../../config/schema.js';
import { Errors } from '../../errors/codes.js';
import type { PolicyFactory } from '../factory.js';
import type { Denial, Policy, RequestContext } from '../policy.js';
import { cidrProblem, parseCidrStrict } from './cidr.js';
import { RouteIpFilter, type RouteIpFilterConfig } from './schema.js';

export const ipFilterPolicy: PolicyFactory<'ipFilter', typeof RouteIpFilter> = {
  name: 'ip-filter',
  key: 'ipFilter',
  schema: RouteIpFilter,
  order: 100,
  check(r, at, _config, out) {
    const f = r.ipFilter;
    if (f === undefined) return;
    if (f.allow === undefined && f.deny === undefined)
      out.push({ path: [...at, 'ipFilter'], message: 'lists nothing: set `allow` and/or `deny`' });
    for (const list of ['allow', 'deny'] as const)
      f[list]?.forEach((s, j) => {
        if (parseCidrStrict(s) === undefined)
          out.push({ path: [...at, 'ipFilter', list, j], message: cidrProblem(s) });
      });
  },
  compile: (r: RouteConfig) => (r.ipFilter === undefined ? undefined : compileIpFilter(r.ipFilter)),
};

const notAllowed: Denial = {
  def: Errors.ipDenied,
  detail: 'the client address is not allowed on this route',
  reason: 'not_allowed',
};
const denied: Denial = {
  def: Errors.ipDenied,
  detail: 'the client address is denied on this route',
  reason: 'denied',
};
const unknown: Denial = {
  def: Errors.ipDenied,
  detail: 'the client address could not be read',
  reason: 'unknown',
};

export function compileIpFilter(c: RouteIpFilterConfig): Policy {
  const allow = blockList(c.allow, 'allow');
  const deny = blockList(c.deny, 'deny');
  return {
    name: 'ip-filter',
    onRequest(ctx: RequestContext): Denial | undefined {
      const a = ctx.client;
      // ctx.client is an address from the socket or one X-Forwarded-For validated as an IP.
      // Empty only when the socket is already gone: refuse rather than guess.
      if (a === '') return unknown;
      const family = a.includes(':') ? 'ipv6' : 'ipv4';
      if (deny?.check(a, family)) return denied;
      if (allow !== undefined && !allow.check(a, family)) return notAllowed;
      return undefined;
    },
  };
}

function blockList(list: readonly string[] | undefined, what: string): BlockList | undefined {
  if (list === undefined || list.length === 0) return undefined;
  const bl = new BlockList();
  for (const s of list) {
    const p = parseCidrStrict(s);
    // check() above reports these with file and line at load; this guards compile-only callers.
    if (p === undefined) throw new Error(`ipFilter.${what}: ${cidrProblem(s)}`);
    bl.addSubnet(p.address, p.prefix, p.family);
  }
  return bl;
}

/**
 * The load-time check that a Redis Cluster can run Sluice's scripts: in a cluster, a script (and
 * any multi-key command) may only touch keys of one hash slot, or the node answers CROSSSLOT. Two
 * scripts take several keys per request:
 * - the rate limiter's GCRA script: every limit of the route, for one request (and the requests of
 *   one tick, which the batcher splits by slot: batch.ts);
 * - the usage engine's check-and-increment: every quota counter (month and day) of one tenant.
 *
 * Rather than reasoning about the key formats, the check builds the keys the policies would
 * build (the same functions: keysOf, usageKey) for a few sample requests, including ones with
 * values absent or empty, and computes their slots (slot.ts). A route whose keys of one request
 * could land in two slots is refused, with its path and the keys' hash tags. Only with
 * `redis.cluster`: one server, or a Sentinel primary, holds every slot.
 */
import type { Config } from '../config/schema.js';
import type { ConfigProblem } from '../policies/factory.js';
import { type KeyInputs, keysOf, type LimitDef, limitDefs } from '../policies/rate-limit/index.js';
import type { RateLimitConfig } from '../policies/rate-limit/schema.js';
import { usageKey } from '../usage/redis-counters.js';
import { hashTag, keySlot } from './slot.js';

/** Sample requests: values present, absent, empty, and a JWT principal. */
function samples(route: string, headers: readonly string[]): KeyInputs[] {
  const present: Record<string, string> = {};
  const empty: Record<string, string> = {};
  for (const h of headers) {
    present[h] = `v-${h}`;
    empty[h] = '';
  }
  return [
    {
      route,
      client: '192.0.2.7',
      tenant: { id: 'acme' } as KeyInputs['tenant'],
      principal: { kind: 'apiKey', id: 'key_1' } as KeyInputs['principal'],
      req: { headers: present },
    },
    { route, client: '2001:db8::1', tenant: undefined, principal: undefined, req: { headers: {} } },
    {
      route,
      client: '198.51.100.1',
      tenant: { id: 'globex' } as KeyInputs['tenant'],
      principal: { kind: 'jwt', id: 'https://issuer.example:user-1' } as KeyInputs['principal'],
      req: { headers: empty },
    },
  ];
}

function describeLimit(d: LimitDef, key: string): string {
  return `"${d.name}" (${hashTag(key) === undefined ? 'no hash tag' : `hash tag {${hashTag(key)}}`})`;
}

function checkRateLimits(
  routeIndex: number,
  route: string,
  entries: readonly RateLimitConfig[],
  prefix: string,
  out: ConfigProblem[],
): void {
  let defs: LimitDef[];
  try {
    defs = limitDefs(route, entries, prefix);
  } catch {
    return; // duplicate names: reported by the policy's own check
  }
  if (defs.length < 2) return;
  const headers = entries.flatMap((e) =>
    e.key.filter((k) => k.startsWith('header:')).map((k) => k.slice(7).toLowerCase()),
  );
  for (const s of samples(route, headers)) {
    const keys = keysOf(defs, s);
    const first = keySlot(keys[0]!);
    const other = keys.findIndex((k) => keySlot(k) !== first);
    if (other < 0) continue;
    out.push({
      path: ['routes', routeIndex, 'rateLimit'],
      message:
        `with redis.cluster, one script decides all of a request's limits, so their keys must share a hash slot: ` +
        `limits ${describeLimit(defs[0]!, keys[0]!)} and ${describeLimit(defs[other]!, keys[other]!)} would not. ` +
        'The hash tag is the value of the first key dimension (in the order tenant, apiKey, principal, ip, header, route): ' +
        'give every limit of the route the same first dimension, or move a limit to a route of its own',
    });
    return;
  }
}

function checkQuota(routeIndex: number, uses: readonly string[], prefix: string, out: ConfigProblem[]): void {
  if (uses.length === 0) return;
  for (const tenant of ['acme', 't-1']) {
    const keys = uses.flatMap((q) => [
      usageKey(prefix, tenant, `quota:${q}`, '2026-12'),
      usageKey(prefix, tenant, `quota:${q}`, '2026-12-03'),
    ]);
    const first = keySlot(keys[0]!);
    if (keys.every((k) => keySlot(k) === first)) continue;
    out.push({
      path: ['routes', routeIndex, 'quota'],
      message:
        "with redis.cluster, one script checks and counts all of a tenant's quota counters, so their keys must share a hash slot: these would not",
    });
    return;
  }
}

/** Adds a problem per route whose keys of one request could cross Redis Cluster slots. */
export function checkKeySlots(c: Config, out: ConfigProblem[]): void {
  if (c.redis?.cluster === undefined) return;
  const prefix = c.redis.keyPrefix ?? 'sluice:';
  c.routes.forEach((r, i) => {
    const x = r as { rateLimit?: readonly RateLimitConfig[]; quota?: { use?: readonly string[] } };
    if (x.rateLimit !== undefined) checkRateLimits(i, r.name, x.rateLimit, prefix, out);
    if (x.quota?.use !== undefined) checkQuota(i, x.quota.use, prefix, out);
  });
}

/** `redis` names exactly one deployment, and a cluster's node URLs name no database. */
export function checkRedisTarget(c: Config, out: ConfigProblem[]): void {
  const r = c.redis;
  if (r === undefined) return;
  const given = (['url', 'cluster', 'sentinel'] as const).filter((k) => r[k] !== undefined);
  if (given.length !== 1)
    out.push({
      path: ['redis'],
      message:
        given.length === 0
          ? 'give one of `url` (one server), `cluster` (Redis Cluster) or `sentinel`'
          : `give only one of ${given.map((g) => `\`${g}\``).join(', ')}`,
    });
  r.cluster?.nodes.forEach((n, i) => {
    let u: URL;
    try {
      u = new URL(n);
    } catch {
      out.push({ path: ['redis', 'cluster', 'nodes', i], message: 'not a URL' });
      return;
    }
    if (u.pathname !== '' && u.pathname !== '/' && u.pathname !== '/0')
      out.push({
        path: ['redis', 'cluster', 'nodes', i],
        message: 'a Redis Cluster has only database 0: no `/<db>` in the URL',
      });
  });
}

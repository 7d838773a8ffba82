/**
 * Tenants whose allowed regions no target of a residency-bound route serves: their requests on that
 * route would all be refused (503 SLUICE-RESIDENCY-001). Tenants live in the store, so this is not a
 * load-time error: the gateway logs one warning per route and region at start and whenever the
 * tenancy snapshot or the config changes (`residency_unserved`, with the route, the region and up to
 * ten of its tenants). Runs off the request path.
 */
import type { Logger } from 'pino';
import type { CompiledRoute } from '../../config/compile.js';
import type { UpstreamGroup } from '../../upstreams/group.js';
import type { TenantView } from '../policy.js';
import { regionsOf } from './regions.js';

export interface Unserved {
  route: string;
  /** The tenant's home region (or its allowed regions joined, when it has several). */
  region: string;
  tenants: string[];
}

/** The regions a route can place requests in: its upstream, failover, fallback group and release versions. */
function routeRegions(r: CompiledRoute): Set<string> {
  const groups: UpstreamGroup[] = [];
  if (r.upstream !== undefined) groups.push(r.upstream);
  if (r.failover !== undefined) groups.push(...r.failover.chain);
  if (r.fallback?.kind === 'group') groups.push(r.fallback.group);
  if (r.release !== undefined) groups.push(...r.release.groups);
  const out = new Set<string>();
  for (const g of groups) for (const x of g.regions) out.add(x);
  return out;
}

export function unservedRegions(routes: readonly CompiledRoute[], tenants: Iterable<TenantView>): Unserved[] {
  const bound = routes.filter((r) => r.residency !== undefined).map((r) => ({ r, regions: routeRegions(r) }));
  if (bound.length === 0) return [];
  const out = new Map<string, Unserved>();
  for (const t of tenants) {
    const allowed = regionsOf(t);
    if (allowed.length === 0) continue;
    for (const { r, regions } of bound) {
      if (allowed.some((x) => regions.has(x))) continue;
      const region = allowed.join(',');
      const k = `${r.name}\n${region}`;
      const u = out.get(k);
      if (u === undefined) out.set(k, { route: r.name, region, tenants: [t.id] });
      else u.tenants.push(t.id);
    }
  }
  return [...out.values()];
}

export function warnUnservedRegions(
  routes: readonly CompiledRoute[],
  tenants: Iterable<TenantView>,
  logger: Logger,
): void {
  for (const u of unservedRegions(routes, tenants))
    logger.warn(
      {
        event: 'residency_unserved',
        route: u.route,
        region: u.region,
        tenants: u.tenants.slice(0, 10),
        count: u.tenants.length,
      },
      `route ${u.route} is residency-bound and no target serves region ${u.region}: its ${u.tenants.length} tenant(s) there are refused`,
    );
}

/**
 * Tenants whose placement no target of a placement-bound route serves: their requests on that route
 * would all be refused (503 SLUICE-PLACEMENT-001). Tenants live in the store, so this is not a
 * load-time error: the gateway logs one warning per route and placement at start and whenever the
 * tenancy snapshot or the config changes (`placement_unserved`, with the route, the placement, e.g.
 * `shard=s9`, and up to ten of its tenants), beside residency's (server/residency.ts). Tenants
 * without the label are not named (like tenants without a region for residency). Off the request path.
 */
import type { Logger } from 'pino';
import type { CompiledRoute } from '../../config/compile.js';
import type { TenantView } from '../policy.js';
import { tenantPlacement } from './spec.js';

export interface UnservedPlacement {
  route: string;
  /** The tenant's values of the route's keys, `shard=s9` (`region=eu,shard=s9` with residency). */
  placement: string;
  /** The same, by key (`{ shard: 's9' }`; several preferred values joined by commas). */
  labels: Record<string, string>;
  tenants: string[];
}

export function unservedPlacements(
  routes: readonly CompiledRoute[],
  tenants: Iterable<TenantView>,
): UnservedPlacement[] {
  const bound = routes.filter((r) => r.placement?.labels !== undefined);
  if (bound.length === 0) return [];
  const out = new Map<string, UnservedPlacement>();
  for (const t of tenants)
    for (const r of bound) {
      const p = r.placement!;
      const tp = tenantPlacement(p.spec, t);
      if (tp.missing !== undefined) continue;
      if (tp.cells.some((c) => p.groups.some((g) => g.serves(c)))) continue;
      const labels: Record<string, string> = {};
      for (const k of p.spec.keys) labels[k] = tp.values[k]!.join(',');
      const placement = p.spec.keys.map((k) => `${k}=${labels[k]}`).join(',');
      const key = `${r.name}\n${placement}`;
      const u = out.get(key);
      if (u === undefined) out.set(key, { route: r.name, placement, labels, tenants: [t.id] });
      else u.tenants.push(t.id);
    }
  return [...out.values()];
}

export function warnUnservedPlacements(unserved: readonly UnservedPlacement[], logger: Logger): void {
  for (const u of unserved)
    logger.warn(
      {
        event: 'placement_unserved',
        route: u.route,
        placement: u.placement,
        labels: u.labels,
        tenants: u.tenants.slice(0, 10),
        count: u.tenants.length,
      },
      `route ${u.route} is placement-bound and no target serves ${u.placement}: its ${u.tenants.length} tenant(s) there are refused`,
    );
}

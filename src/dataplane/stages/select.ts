/**
 * Target selection: the route's upstream group (the active one of its failover order, precomputed
 * on health changes: one read per request), then the group's balancer. With no target to offer,
 * the route's `fallback` answers (a static reply or another group), else 503: circuit open or no
 * target. On a released route the version stage (version.ts) has chosen the group already.
 *
 * A residency- or placement-bound route (`residency`, `placement`) picks in the tenant's cells
 * only (its allowed regions, its shard...: policies/placement/spec.ts), each group's per-cell
 * balancer (built with the group, never filtered per request): for each cell, preferred first, the
 * active group (or the version's), then the other groups of the failover order that serve it, then
 * a fallback group; nothing there is a 503 (SLUICE-RESIDENCY-001 or SLUICE-PLACEMENT-001) and an
 * event, never a target in another cell nor the static fallback. Other routes pay one comparison.
 */
import { Errors } from '../../errors/codes.js';
import type { RoutePlacement } from '../../policies/placement/route.js';
import { type TenantPlacement, tenantPlacement } from '../../policies/placement/spec.js';
import { regionsOf } from '../../policies/residency/regions.js';
import type { Exchange } from '../exchange.js';
import { refuse, sendFallback } from './reply.js';

/** True when a target was picked (`x.target`); otherwise the exchange has been answered. */
export function selectTarget(x: Exchange): boolean {
  const route = x.routed;
  if (route.placement !== undefined) return selectPlaced(x, route.placement);
  // Only proxied routes get here (an `ofrep` route, the only one without an upstream, answers before).
  let group = x.version ?? (route.failover === undefined ? route.upstream! : route.failover.active);
  let target = group.pick(x.req);
  if (target === undefined) {
    // Only on this path, so a healthy upstream costs nothing more.
    const fb = route.fallback;
    if (fb !== undefined) {
      if (fb.kind === 'static') {
        sendFallback(x, fb);
        return false;
      }
      group = fb.group;
      target = group.pick(x.req);
    }
    if (target === undefined) {
      const open = group.circuitOpen;
      refuse(
        x,
        open ? Errors.circuitOpen : Errors.noTarget,
        `upstream "${group.name}"`,
        open ? { 'retry-after': String(group.retryAfter) } : undefined,
      );
      return false;
    }
  }
  x.target = target;
  return true;
}

function selectPlaced(x: Exchange, p: RoutePlacement): boolean {
  const route = x.routed;
  const ctx = x.ctx!;
  // The residency and placement policies refused requests without a tenant, a region or a label.
  const placed = tenantPlacement(p.spec, ctx.tenant!);
  const cells = placed.cells;
  const first = x.version ?? (route.failover === undefined ? route.upstream! : route.failover.active);
  // A version's requests stay in its group (as retries do); the failover order applies otherwise.
  const chain = x.version === undefined ? route.failover?.chain : undefined;
  const fb = route.fallback;
  for (let i = 0; i < cells.length; i++) {
    const cell = cells[i]!;
    let group = first;
    let target = group.pickIn(cell, x.req);
    if (target === undefined && chain !== undefined)
      for (let j = 0; j < chain.length && target === undefined; j++) {
        const g = chain[j]!;
        if (g === first) continue;
        target = g.pickIn(cell, x.req);
        group = g;
      }
    if (target === undefined && fb !== undefined && fb.kind === 'group') {
      group = fb.group;
      target = group.pickIn(cell, x.req);
    }
    if (target !== undefined) {
      x.target = target;
      x.cell = cell;
      x.placed = group;
      return true;
    }
  }
  refuseUnplaced(x, p, placed);
  return false;
}

/**
 * No target in the tenant's cells. Residency's refusal when the route is residency-bound and no
 * group has an available target in any of the tenant's regions (or places by region only);
 * otherwise the regions have targets, but not of the tenant's labels: placement's.
 */
function refuseUnplaced(x: Exchange, p: RoutePlacement, placed: TenantPlacement): void {
  const ctx = x.ctx!;
  const name = x.routed.name;
  const residency = p.residency;
  if (residency !== undefined) {
    const regions = regionsOf(ctx.tenant!);
    if (p.labels === undefined || !regions.some((r) => p.groups.some((g) => g.hasIn(r)))) {
      residency.noTarget(ctx, regions);
      refuse(
        x,
        Errors.residencyNoTarget,
        `no target of route "${name}" is available in the tenant's regions (${regions.join(', ')})`,
      );
      return;
    }
  }
  p.labels!.noTarget(ctx, placed);
  const spec = p.spec;
  refuse(
    x,
    Errors.placementNoTarget,
    `no target of route "${name}" is available in the tenant's placement (${placed.cells.map((c) => spec.describe(c)).join('; ')})`,
  );
}

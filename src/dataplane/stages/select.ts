/**
 * Target selection: the route's upstream group (the active one of its failover order, precomputed
 * on health changes: one read per request), then the group's balancer. With no target to offer,
 * the route's `fallback` answers (a static reply or another group), else 503: circuit open or no
 * target. On a released route the version stage (version.ts) has chosen the group already.
 *
 * A residency-bound route (`residency`) picks in the tenant's allowed regions only, each group's
 * per-region balancer (built with the group, never filtered per request): for each region, home
 * first, the active group (or the version's), then the other groups of the failover order that
 * serve it, then a fallback group; nothing there is a 503 SLUICE-RESIDENCY-001 and an event, never
 * a target in another region nor the static fallback. Other routes pay one comparison.
 */
import { Errors } from '../../errors/codes.js';
import type { ResidencyPolicy } from '../../policies/residency/index.js';
import { regionsOf } from '../../policies/residency/regions.js';
import type { Exchange } from '../exchange.js';
import { refuse, sendFallback } from './reply.js';

/** True when a target was picked (`x.target`); otherwise the exchange has been answered. */
export function selectTarget(x: Exchange): boolean {
  const route = x.routed;
  if (route.residency !== undefined) return selectResident(x, route.residency);
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

function selectResident(x: Exchange, residency: ResidencyPolicy): boolean {
  const route = x.routed;
  const ctx = x.ctx!;
  // The residency policy refused requests without a tenant or a region before this stage.
  const regions = regionsOf(ctx.tenant!);
  const first = x.version ?? (route.failover === undefined ? route.upstream! : route.failover.active);
  // A version's requests stay in its group (as retries do); the failover order applies otherwise.
  const chain = x.version === undefined ? route.failover?.chain : undefined;
  const fb = route.fallback;
  for (let i = 0; i < regions.length; i++) {
    const region = regions[i]!;
    let group = first;
    let target = group.pickIn(region, x.req);
    if (target === undefined && chain !== undefined)
      for (let j = 0; j < chain.length && target === undefined; j++) {
        const g = chain[j]!;
        if (g === first) continue;
        target = g.pickIn(region, x.req);
        group = g;
      }
    if (target === undefined && fb !== undefined && fb.kind === 'group') {
      group = fb.group;
      target = group.pickIn(region, x.req);
    }
    if (target !== undefined) {
      x.target = target;
      x.region = region;
      x.placed = group;
      return true;
    }
  }
  residency.noTarget(ctx, regions);
  refuse(
    x,
    Errors.residencyNoTarget,
    `no target of route "${route.name}" is available in the tenant's regions (${regions.join(', ')})`,
  );
  return false;
}

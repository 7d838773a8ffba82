/**
 * Version selection on a released route: stable or candidate, by the release's overrides, cohorts
 * and the sticky key's bucket (delivery/releases/compile.ts). Runs after the policies (a tenant or
 * principal may be the sticky key) and before target selection, which then picks from the chosen
 * version's group; retries stay in it. Routes without a release pay one comparison.
 *
 * On a residency- or placement-bound route a tenant goes to the candidate only when the candidate
 * serves every cell of the tenant's (allowed region, shard...) that the stable serves (else it
 * stays on the stable version): choosing a version never moves a tenant's requests to another
 * region or shard. Read from the config's cells, not health: a candidate whose targets there are
 * down refuses, as the stable would.
 */
import { CANDIDATE, STABLE } from '../../delivery/releases/slot.js';
import type { RoutePlacement } from '../../policies/placement/route.js';
import { tenantPlacement } from '../../policies/placement/spec.js';
import type { UpstreamGroup } from '../../upstreams/group.js';
import type { Exchange } from '../exchange.js';

function candidateAllowed(
  p: RoutePlacement,
  [stable, candidate]: readonly [UpstreamGroup, UpstreamGroup],
  x: Exchange,
): boolean {
  const cells = tenantPlacement(p.spec, x.ctx!.tenant!).cells;
  for (let i = 0; i < cells.length; i++) {
    const c = cells[i]!;
    if (stable.serves(c) && !candidate.serves(c)) return false;
  }
  return true;
}

export function chooseVersion(x: Exchange): void {
  const release = x.routed.release;
  if (release === undefined) return;
  let arm = release.choose(x.req, x.ctx);
  const placement = x.routed.placement;
  if (arm === CANDIDATE && placement !== undefined && !candidateAllowed(placement, release.groups, x))
    arm = STABLE;
  x.arm = arm;
  x.version = release.groups[arm];
  // Counted for the step in force now, even if the answer comes after the next step began.
  x.armCounters = release.slot.counters[arm];
}

/**
 * Version selection on a released route: stable or candidate, by the release's overrides, cohorts
 * and the sticky key's bucket (delivery/releases/compile.ts). Runs after the policies (a tenant or
 * principal may be the sticky key) and before target selection, which then picks from the chosen
 * version's group; retries stay in it. Routes without a release pay one comparison.
 *
 * On a residency-bound route a tenant goes to the candidate only when the candidate serves every
 * allowed region of the tenant's that the stable serves (else it stays on the stable version):
 * choosing a version never moves a tenant's requests to another region.
 */
import { CANDIDATE, STABLE } from '../../delivery/releases/slot.js';
import type { Exchange } from '../exchange.js';

export function chooseVersion(x: Exchange): void {
  const release = x.routed.release;
  if (release === undefined) return;
  let arm = release.choose(x.req, x.ctx);
  const residency = x.routed.residency;
  if (
    arm === CANDIDATE &&
    residency !== undefined &&
    !residency.candidateAllowed(release.groups[0], release.groups[1], x.ctx!.tenant!)
  )
    arm = STABLE;
  x.arm = arm;
  x.version = release.groups[arm];
  // Counted for the step in force now, even if the answer comes after the next step began.
  x.armCounters = release.slot.counters[arm];
}

/**
 * Version selection on a released route: stable or candidate, by the release's overrides, cohorts
 * and the sticky key's bucket (delivery/releases/compile.ts). Runs after the policies (a tenant or
 * principal may be the sticky key) and before target selection, which then picks from the chosen
 * version's group; retries stay in it. Routes without a release pay one comparison.
 */
import type { Exchange } from '../exchange.js';

export function chooseVersion(x: Exchange): void {
  const release = x.routed.release;
  if (release === undefined) return;
  const arm = release.choose(x.req, x.ctx);
  x.arm = arm;
  x.version = release.groups[arm];
  // Counted for the step in force now, even if the answer comes after the next step began.
  x.armCounters = release.slot.counters[arm];
}

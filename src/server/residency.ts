/**
 * The start-up and on-change warnings for tenants whose regions no residency-bound route serves
 * (policies/residency/unserved.ts), and whose placement no placement-bound route serves
 * (policies/placement/unserved.ts): each logged when the config or the tenants change what it says, not
 * on every snapshot reload. Off the request path.
 */
import type { Logger } from 'pino';
import type { Runtime } from '../config/compile.js';
import { unservedPlacements, warnUnservedPlacements } from '../policies/placement/unserved.js';
import { unservedRegions, warnUnservedRegions } from '../policies/residency/unserved.js';
import type { SnapshotSource } from '../tenancy/snapshot.js';

export function watchUnservedRegions(
  host: { readonly runtime: Pick<Runtime, 'routes'> },
  snapshot: SnapshotSource,
  logger: Logger,
): () => void {
  let said = '';
  let saidPlacement = '';
  const check = () => {
    const routes = host.runtime.routes;
    const tenants = snapshot.current.tenantsById.values();
    const now = JSON.stringify(unservedRegions(routes, tenants));
    if (now !== said) {
      said = now;
      warnUnservedRegions(routes, snapshot.current.tenantsById.values(), logger);
    }
    const placements = unservedPlacements(routes, snapshot.current.tenantsById.values());
    const nowPlacement = JSON.stringify(placements);
    if (nowPlacement === saidPlacement) return;
    saidPlacement = nowPlacement;
    warnUnservedPlacements(placements, logger);
  };
  check();
  const off = snapshot.onChange(check);
  const timer = setInterval(check, 30_000); // a reload changes the routes without a snapshot change
  timer.unref();
  return () => {
    off();
    clearInterval(timer);
  };
}

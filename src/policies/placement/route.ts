/**
 * A route's placement as the request path reads it (`CompiledRoute.placement`): the spec, the
 * residency and placement policies that refuse and record, and every group the route can place a
 * request on. Compiling it gives each of those groups the spec (`UpstreamGroup.place`), so their
 * per-cell balancers exist before the first request. Routes with neither residency nor placement
 * get undefined and pay one comparison in the target stage.
 */
import type { RouteConfig } from '../../config/schema.js';
import type { UpstreamGroup } from '../../upstreams/group.js';
import type { Policy } from '../policy.js';
import { type ResidencyPolicy, residencyOf } from '../residency/index.js';
import { type PlacementPolicy, placementOf } from './index.js';
import { type PlacementSpec, RESIDENCY_SPEC } from './spec.js';

export interface RoutePlacement {
  readonly spec: PlacementSpec;
  /** The route is residency-bound: refusals in no region are residency's. */
  readonly residency: ResidencyPolicy | undefined;
  /** The route places by labels (`placement`). */
  readonly labels: PlacementPolicy | undefined;
  /** Upstream, failover order, fallback group, release versions: where its requests can go. */
  readonly groups: readonly UpstreamGroup[];
}

export function compilePlacement(
  r: RouteConfig,
  policies: readonly Policy[] | undefined,
  upstream: UpstreamGroup | undefined,
  groups: ReadonlyMap<string, UpstreamGroup>,
  releaseGroups: readonly UpstreamGroup[] | undefined,
): RoutePlacement | undefined {
  const residency = residencyOf(policies);
  const labels = placementOf(policies);
  if (residency === undefined && labels === undefined) return undefined;
  const spec = labels?.spec ?? RESIDENCY_SPEC;
  const all = new Set<UpstreamGroup>();
  if (upstream !== undefined) all.add(upstream);
  for (const n of r.failover ?? []) all.add(groups.get(n)!);
  const fb = r.fallback;
  if (fb !== undefined && 'upstream' in fb) all.add(groups.get(fb.upstream)!);
  for (const g of releaseGroups ?? []) all.add(g);
  for (const g of all) g.place(spec);
  return { spec, residency, labels, groups: [...all] };
}

/**
 * A tenant's allowed regions for data residency: its `region` first (the home region, tried first),
 * then the regions of its `residency.regions` label (`eu,eu-west`), without repeats. Computed once
 * per snapshot entry (a WeakMap on the immutable TenantView the snapshot hands out), so the request
 * path reads an array instead of parsing a label.
 */
import type { TenantView } from '../policy.js';

export const REGIONS_LABEL = 'residency.regions';

interface Placement {
  readonly regions: readonly string[];
  /** The regions joined: what the cache files a residency-bound route's answers under. */
  readonly key: string;
}

const placements = new WeakMap<TenantView, Placement>();

function placementOf(t: TenantView): Placement {
  let p = placements.get(t);
  if (p === undefined) {
    const regions: string[] = [];
    if (t.region !== null && t.region !== '') regions.push(t.region);
    const label = t.labels?.[REGIONS_LABEL];
    if (label !== undefined)
      for (const part of label.split(',')) {
        const r = part.trim();
        if (r !== '' && !regions.includes(r)) regions.push(r);
      }
    p = { regions, key: regions.join(',') };
    placements.set(t, p);
  }
  return p;
}

/** The tenant's allowed regions, home region first; empty when it has none (its requests are refused). */
export function regionsOf(t: TenantView): readonly string[] {
  return placementOf(t).regions;
}

/** The allowed regions as one string (`eu,eu-west`). */
export function regionKeyOf(t: TenantView): string {
  return placementOf(t).key;
}

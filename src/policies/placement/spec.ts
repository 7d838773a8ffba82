/**
 * Placement: what a route places a tenant's requests by. Data residency is the key `region` (the
 * tenant's allowed regions, regions.ts); other keys (`shard`, `cell`) are labels: a tenant's
 * `placement.<key>` label, a target's `labels.<key>`. A route's keys are fixed by its config:
 * `region` first when it is residency-bound, then its `placement.by`.
 *
 * A **cell** is one value per key, as one string: the spec's prefix, then the values joined by
 * NUL. A residency-only spec has no prefix, so its cells are the region names and the groups'
 * region balancers serve it unchanged; every other spec's prefix is its keys, so cells of different
 * specs never meet in a group's map (stages/select.ts picks by cell, one map read).
 *
 * A tenant's placement under a spec (its values per key and its cells, preference order) is
 * computed once per snapshot entry (a WeakMap on the immutable TenantView), so the request path
 * reads arrays instead of parsing labels.
 */
import type { TenantView } from '../policy.js';
import { regionsOf } from '../residency/regions.js';

export const REGION_KEY = 'region';
/** A tenant's placement label for key K is `placement.K` (`placement.shard=s1`). */
export const PLACEMENT_LABEL_PREFIX = 'placement.';

export class PlacementSpec {
  /** What each cell starts with: '' for residency alone (cells are region names). */
  readonly prefix: string;

  constructor(readonly keys: readonly string[]) {
    this.prefix = keys.length === 1 && keys[0] === REGION_KEY ? '' : `${keys.join(',')}\u0001`;
  }

  /** A target's cell (its region and labels), undefined when it lacks a value for a key. */
  cellOf(
    region: string | undefined,
    labels: Readonly<Record<string, string>> | undefined,
  ): string | undefined {
    let cell = this.prefix;
    for (let i = 0; i < this.keys.length; i++) {
      const k = this.keys[i]!;
      const v = k === REGION_KEY ? region : labels?.[k];
      if (v === undefined) return undefined;
      cell += i === 0 ? v : `\u0000${v}`;
    }
    return cell;
  }

  /** A cell's values by key, for messages and events. */
  describe(cell: string): string {
    const values = cell.slice(this.prefix.length).split('\u0000');
    return this.keys.map((k, i) => `${k} ${values[i]}`).join(', ');
  }
}

const specs = new Map<string, PlacementSpec>();

/** The one spec of these keys (shared, so groups recognise a spec they were given already). */
export function specOf(keys: readonly string[]): PlacementSpec {
  const id = keys.join(',');
  let s = specs.get(id);
  if (s === undefined) {
    s = new PlacementSpec(keys);
    specs.set(id, s);
  }
  return s;
}

export const RESIDENCY_SPEC = specOf([REGION_KEY]);

export interface TenantPlacement {
  /** Per key, the tenant's values in preference order (empty: it has none). */
  readonly values: Readonly<Record<string, readonly string[]>>;
  /** The first key the tenant has no value for; undefined when it has all. */
  readonly missing: string | undefined;
  /** Its cells, preference order: every combination, the first key varying slowest. */
  readonly cells: readonly string[];
  /**
   * Its values as one readable string (each key's joined by `,`, keys by `;`): what the cache files
   * a placed route's answers under. For residency alone, the allowed regions joined.
   */
  readonly key: string;
}

/**
 * A tenant's values for one key: for `region` its allowed regions (home first); otherwise its
 * `placement.<key>` label, comma-separated in preference order, without repeats or blanks.
 */
export function valuesOf(t: TenantView, key: string): readonly string[] {
  if (key === REGION_KEY) return regionsOf(t);
  const label = t.labels?.[PLACEMENT_LABEL_PREFIX + key];
  if (label === undefined) return [];
  const out: string[] = [];
  for (const part of label.split(',')) {
    const v = part.trim();
    if (v !== '' && !out.includes(v)) out.push(v);
  }
  return out;
}

const placements = new WeakMap<TenantView, Map<PlacementSpec, TenantPlacement>>();

export function tenantPlacement(spec: PlacementSpec, t: TenantView): TenantPlacement {
  let bySpec = placements.get(t);
  if (bySpec === undefined) {
    bySpec = new Map();
    placements.set(t, bySpec);
  }
  let p = bySpec.get(spec);
  if (p === undefined) {
    p = compute(spec, t);
    bySpec.set(spec, p);
  }
  return p;
}

function compute(spec: PlacementSpec, t: TenantView): TenantPlacement {
  const values: Record<string, readonly string[]> = {};
  let missing: string | undefined;
  let cells: string[] = [spec.prefix];
  spec.keys.forEach((k, i) => {
    const vs = valuesOf(t, k);
    values[k] = vs;
    if (vs.length === 0 && missing === undefined) missing = k;
    const next: string[] = [];
    for (const c of cells) for (const v of vs) next.push(i === 0 ? c + v : `${c}\u0000${v}`);
    cells = next;
  });
  return {
    values,
    missing,
    cells,
    key: spec.keys.map((k) => values[k]!.join(',')).join(';'),
  };
}

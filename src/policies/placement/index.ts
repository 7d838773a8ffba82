/**
 * `placement`: a placement-bound route places each request by its tenant's placement labels
 * (`placement: shard`: the tenant's `placement.shard` label picks the targets whose `labels.shard`
 * is the same), as a residency-bound route places it by the tenant's regions; with both, the region
 * is the first key (spec.ts). The policy runs after `tenant` and `residency` (it needs the tenant)
 * and before the limits and the cache: it refuses a request without a tenant, or whose tenant lacks
 * a key's label, before anything is counted. The placement itself is residency's machinery
 * generalised: the groups' per-cell balancers (upstreams/group.ts), the target stage, the version
 * stage, the retries and the mirror, all keyed by the request's cell. Its checks at load refuse a
 * route whose upstreams (failover, fallback, release versions) have targets without the labels, or
 * whose failover or fallback serves values the primary does not.
 */
import type { Config, RouteConfig } from '../../config/schema.js';
import { Errors } from '../../errors/codes.js';
import type { EventBus, PlacementRefusedEvent } from '../../telemetry/events.js';
import type { ConfigProblem, PolicyFactory } from '../factory.js';
import { identifies } from '../identity.js';
import { type Denial, type Policy, policyOf, type RequestContext, refusalAbout } from '../policy.js';
import { residencyBound } from '../residency/index.js';
import { RoutePlacement } from './schema.js';
import {
  PLACEMENT_LABEL_PREFIX,
  type PlacementSpec,
  REGION_KEY,
  RESIDENCY_SPEC,
  specOf,
  type TenantPlacement,
  tenantPlacement,
} from './spec.js';

/** The route's label keys (`placement`), without `region`; undefined when it has none. */
export function placementKeys(r: RouteConfig): readonly string[] | undefined {
  const c = r.placement;
  if (c === undefined) return undefined;
  return (typeof c === 'string' ? [c] : c.by).filter((k) => k !== REGION_KEY);
}

/**
 * What the route places requests by: `region` first when residency-bound, then its placement keys;
 * undefined for a route with neither (its requests pay one comparison in the target stage).
 */
export function routeSpec(r: RouteConfig): PlacementSpec | undefined {
  const keys = placementKeys(r);
  const res = residencyBound(r);
  if (keys === undefined || keys.length === 0) return res ? RESIDENCY_SPEC : undefined;
  return specOf(res ? [REGION_KEY, ...keys] : keys);
}

const noTenant: Denial = {
  def: Errors.placementNoTenant,
  detail: 'this route places requests by their tenant, and the request belongs to none',
  reason: 'no_tenant',
};
const nobody: Readonly<Record<string, readonly string[]>> = {};

/** The compiled policy; the target stage finds it on the route (`CompiledRoute.placement`). */
export class PlacementPolicy implements Policy {
  readonly name = 'placement';

  constructor(
    readonly route: string,
    readonly spec: PlacementSpec,
    private readonly events: EventBus,
  ) {}

  onRequest(ctx: RequestContext): Denial | undefined {
    const t = ctx.tenant;
    if (t === undefined) {
      this.refused(ctx, Errors.placementNoTenant.code, 'no_tenant', nobody);
      return noTenant;
    }
    const p = tenantPlacement(this.spec, t);
    // A missing region on a residency-bound route was refused by `residency` already.
    if (p.missing === undefined) return undefined;
    this.refused(ctx, Errors.placementNoTarget.code, 'no_label', p.values);
    return {
      def: Errors.placementNoTarget,
      detail: `the tenant has no \`${PLACEMENT_LABEL_PREFIX}${p.missing}\` label: this route places requests by their tenant's ${p.missing}`,
      reason: 'no_label',
    };
  }

  /** The target stage found no target in the tenant's placement (it answers SLUICE-PLACEMENT-001). */
  noTarget(ctx: RequestContext, p: TenantPlacement): void {
    this.refused(ctx, Errors.placementNoTarget.code, 'no_target', p.values);
  }

  private refused(
    ctx: RequestContext,
    code: string,
    reason: PlacementRefusedEvent['reason'],
    placement: PlacementRefusedEvent['placement'],
  ): void {
    const e: PlacementRefusedEvent = {
      type: 'placement_refused',
      at: new Date().toISOString(),
      route: this.route,
      code,
      reason,
      placement,
      ...refusalAbout(ctx),
    };
    this.events.emit(e);
  }
}

/** The route's placement policy among its compiled policies (undefined: not placement-bound). */
export function placementOf(policies: readonly Policy[] | undefined): PlacementPolicy | undefined {
  return policyOf(policies, PlacementPolicy);
}

type Upstreams = Config['upstreams'];

/** The values of `key` an upstream's targets serve, and the indexes of its targets without one. */
export function upstreamValues(
  u: Upstreams[string],
  key: string,
): { values: Set<string>; missing: number[] } {
  const values = new Set<string>();
  const missing: number[] = [];
  u.targets.forEach((t, j) => {
    const v = t.labels?.[key] ?? u.labels?.[key];
    if (v === undefined) missing.push(j);
    else values.add(v);
  });
  return { values, missing };
}

function list(s: Iterable<string>): string {
  return [...s].sort().join(', ');
}

function checkRoute(
  r: RouteConfig,
  at: readonly (string | number)[],
  config: Config,
  out: ConfigProblem[],
): void {
  const c = r.placement!;
  const where = [...at, 'placement'];
  if (typeof c === 'string' ? c === REGION_KEY : c.by.includes(REGION_KEY))
    out.push({
      path: where,
      message: 'the region is the residency key: place by region with `residency: true`, not `placement`',
    });
  const keys = placementKeys(r)!;
  if (r.upstream === undefined) {
    out.push({ path: where, message: 'a placement-bound route needs an `upstream` to place requests on' });
    return;
  }
  if (!identifies(r))
    out.push({
      path: where,
      message:
        'a placement-bound route places requests by their tenant: resolve one with `tenant` (or `auth`)',
    });
  const ups = config.upstreams;
  for (const key of keys) {
    /** The named group's values of `key`; reports its targets without one (undefined: no such upstream). */
    const valuesAt = (name: string, path: (string | number)[], role: string): Set<string> | undefined => {
      const u = ups[name];
      if (u === undefined) return undefined;
      const { values, missing } = upstreamValues(u, key);
      if (missing.length > 0)
        out.push({
          path,
          message: `${role} "${name}" has ${missing.length === u.targets.length ? `no \`${key}\` label` : `targets without a \`${key}\` label (targets ${missing.join(', ')})`}: a route placed by ${key} needs every target labelled (set \`upstreams.${name}.labels.${key}\` or the targets' \`labels.${key}\`)`,
        });
      return values;
    };
    const primary = valuesAt(r.upstream, [...at, 'upstream'], 'upstream');
    if (primary === undefined) continue;
    const within = (name: string, path: (string | number)[], role: string) => {
      const g = valuesAt(name, path, role);
      if (g === undefined) return;
      const outside = [...g].filter((x) => !primary.has(x));
      if (outside.length > 0)
        out.push({
          path,
          message: `${role} "${name}" serves ${key} ${list(outside)}, which the primary "${r.upstream}" (${key} ${list(primary)}) does not`,
        });
    };
    r.failover?.forEach((n, j) => {
      within(n, [...at, 'failover', j], 'failover upstream');
    });
    const fb = r.fallback;
    if (fb !== undefined && 'upstream' in fb)
      within(fb.upstream, [...at, 'fallback', 'upstream'], 'fallback upstream');
    for (const [name, rel] of Object.entries(config.releases ?? {})) {
      if (rel.route !== r.name) continue;
      if (rel.stable !== undefined) valuesAt(rel.stable, ['releases', name, 'stable'], 'stable upstream');
      valuesAt(rel.candidate, ['releases', name, 'candidate'], 'candidate upstream');
    }
  }
}

export const placementPolicy: PolicyFactory<'placement', typeof RoutePlacement> = {
  name: 'placement',
  key: 'placement',
  schema: RoutePlacement,
  // After tenant (400) and residency (420), before the flag gate (450), the limits and the cache (800).
  order: 425,
  check(r, at, config, out) {
    if (r.placement !== undefined) checkRoute(r, at, config, out);
  },
  usesIdentity: (r) => r.placement !== undefined,
  compile: (r, _config, deps) => {
    const keys = placementKeys(r);
    if (keys === undefined || keys.length === 0) return undefined;
    return new PlacementPolicy(r.name, routeSpec(r)!, deps.events);
  },
};

/**
 * `residency`: a residency-bound route places each request by its tenant's allowed regions
 * (regions.ts). The policy runs after `tenant` (it needs the tenant) and before the limits and the
 * cache (which files the route's answers per region): it refuses a request without a tenant, or
 * whose tenant has no region, before anything is counted or looked up. The placement itself is in
 * the target stage (dataplane/stages/select.ts: per-region balancers of the groups, compiled with
 * them), the version stage (a candidate that does not serve the tenant's regions is skipped), the
 * retries (same group, same region) and the mirror (copies only to the candidate's targets in the
 * region the request was placed in). Its checks at load refuse a route whose upstreams (failover,
 * fallback, release versions) have targets without a region, or whose failover or fallback leaves
 * the primary's regions.
 */
import type { Config, RouteConfig } from '../../config/schema.js';
import { Errors } from '../../errors/codes.js';
import type { EventBus, ResidencyRefusedEvent } from '../../telemetry/events.js';
import type { UpstreamGroup } from '../../upstreams/group.js';
import type { ConfigProblem, PolicyFactory } from '../factory.js';
import { identifies } from '../identity.js';
import {
  type Denial,
  type Policy,
  policyOf,
  type RequestContext,
  refusalAbout,
  type TenantView,
} from '../policy.js';
import { regionsOf } from './regions.js';
import { RouteResidency } from './schema.js';

export { REGIONS_LABEL, regionKeyOf, regionsOf } from './regions.js';

/** Whether the route is residency-bound (`residency: true` or `{ enforce: true }`). */
export function residencyBound(r: RouteConfig): boolean {
  const c = r.residency;
  return c === true || (typeof c === 'object' && c.enforce);
}

const noTenant: Denial = {
  def: Errors.residencyNoTenant,
  detail: 'this route places requests by their tenant, and the request belongs to none',
  reason: 'no_tenant',
};
const noRegion: Denial = {
  def: Errors.residencyNoTarget,
  detail: 'the tenant has no region: this route places requests by their tenant’s region',
  reason: 'no_region',
};
const none: readonly string[] = [];

/** The compiled policy; the target stage finds it on the route (`CompiledRoute.residency`). */
export class ResidencyPolicy implements Policy {
  readonly name = 'residency';

  constructor(
    readonly route: string,
    private readonly events: EventBus,
  ) {}

  onRequest(ctx: RequestContext): Denial | undefined {
    const t = ctx.tenant;
    if (t === undefined) {
      this.refused(ctx, Errors.residencyNoTenant.code, 'no_tenant', none);
      return noTenant;
    }
    const regions = regionsOf(t);
    if (regions.length === 0) {
      this.refused(ctx, Errors.residencyNoTarget.code, 'no_region', regions);
      return noRegion;
    }
    return undefined;
  }

  /** The target stage found no target in the tenant's regions (it answers SLUICE-RESIDENCY-001). */
  noTarget(ctx: RequestContext, regions: readonly string[]): void {
    this.refused(ctx, Errors.residencyNoTarget.code, 'no_target', regions);
  }

  /**
   * Whether a released route may send this tenant to its candidate: the candidate serves every
   * allowed region the stable serves, so choosing a version never changes where the tenant's
   * requests go. Otherwise the tenant stays on the stable version (read from the config's regions,
   * not health: a candidate whose targets there are down refuses, as the stable would).
   */
  candidateAllowed(stable: UpstreamGroup, candidate: UpstreamGroup, tenant: TenantView): boolean {
    const regions = regionsOf(tenant);
    for (let i = 0; i < regions.length; i++) {
      const r = regions[i]!;
      if (stable.regions.has(r) && !candidate.regions.has(r)) return false;
    }
    return true;
  }

  private refused(
    ctx: RequestContext,
    code: string,
    reason: ResidencyRefusedEvent['reason'],
    regions: readonly string[],
  ): void {
    const e: ResidencyRefusedEvent = {
      type: 'residency_refused',
      at: new Date().toISOString(),
      route: this.route,
      code,
      reason,
      regions,
      ...refusalAbout(ctx),
    };
    this.events.emit(e);
  }
}

/** The route's residency policy among its compiled policies (undefined: not residency-bound). */
export function residencyOf(policies: readonly Policy[] | undefined): ResidencyPolicy | undefined {
  return policyOf(policies, ResidencyPolicy);
}

type Upstreams = Config['upstreams'];

/** The regions an upstream's targets serve, and the indexes of its targets with none. */
export function upstreamRegions(u: Upstreams[string]): { regions: Set<string>; missing: number[] } {
  const regions = new Set<string>();
  const missing: number[] = [];
  u.targets.forEach((t, j) => {
    const r = t.region ?? u.region;
    if (r === undefined) missing.push(j);
    else regions.add(r);
  });
  return { regions, missing };
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
  if (r.upstream === undefined) {
    out.push({
      path: [...at, 'residency'],
      message: 'a residency-bound route needs an `upstream` to place requests on',
    });
    return;
  }
  if (!identifies(r))
    out.push({
      path: [...at, 'residency'],
      message:
        'a residency-bound route places requests by their tenant: resolve one with `tenant` (or `auth`)',
    });
  const ups = config.upstreams;
  /** The named group's regions; reports its targets without one (undefined: no such upstream). */
  const regionsAt = (name: string, path: (string | number)[], role: string): Set<string> | undefined => {
    const u = ups[name];
    if (u === undefined) return undefined;
    const { regions, missing } = upstreamRegions(u);
    if (missing.length > 0)
      out.push({
        path,
        message: `${role} "${name}" has ${missing.length === u.targets.length ? 'no region' : `targets without a region (targets ${missing.join(', ')})`}: a residency-bound route needs every target placed (set \`upstreams.${name}.region\` or the targets' \`region\`)`,
      });
    return regions;
  };
  const primary = regionsAt(r.upstream, [...at, 'upstream'], 'upstream');
  if (primary === undefined) return;
  const within = (name: string, path: (string | number)[], role: string) => {
    const g = regionsAt(name, path, role);
    if (g === undefined) return;
    const outside = [...g].filter((x) => !primary.has(x));
    if (outside.length > 0)
      out.push({
        path,
        message: `${role} "${name}" leaves the regions of the primary "${r.upstream}" (${list(primary)}): it serves ${list(outside)}`,
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
    if (rel.stable !== undefined) regionsAt(rel.stable, ['releases', name, 'stable'], 'stable upstream');
    regionsAt(rel.candidate, ['releases', name, 'candidate'], 'candidate upstream');
  }
}

export const residencyPolicy: PolicyFactory<'residency', typeof RouteResidency> = {
  name: 'residency',
  key: 'residency',
  schema: RouteResidency,
  // After tenant (400), before the flag gate (450), the limits and the cache (800).
  order: 420,
  check(r, at, config, out) {
    if (residencyBound(r)) checkRoute(r, at, config, out);
  },
  usesIdentity: (r) => residencyBound(r),
  compile: (r, _config, deps) => (residencyBound(r) ? new ResidencyPolicy(r.name, deps.events) : undefined),
};

/**
 * A release compiled for the request path: the two upstream groups, the sticky-key extractors, the
 * overrides and cohorts as closures built once per config version, and the gateway's slot (its
 * live state). `choose` runs once per request on a released route:
 *   forced by header or tenant list → cohort member → bucket of the sticky key < weight.
 * The bucket is the one bucketing function (bucketing.ts): a key stays on its version for the
 * whole release, and a higher weight only adds keys.
 */
import type { IncomingMessage } from 'node:http';
import type { BlockList } from 'node:net';
import type { RequestContext, TenantView } from '../../policies/policy.js';
import { clientIpKey, cookieKey, headerKey } from '../../upstreams/balancers/hash-key.js';
import type { UpstreamGroup } from '../../upstreams/group.js';
import { bucketOf } from '../bucketing.js';
import { ReleaseMirror } from './mirror.js';
import type { ReleaseConfig } from './schema.js';
import { type Arm, CANDIDATE, type ReleaseSlot, STABLE } from './slot.js';

type KeyOf = (req: IncomingMessage, ctx: RequestContext | undefined) => string | undefined;

export interface CompiledRelease {
  readonly name: string;
  readonly slot: ReleaseSlot;
  /** [stable, candidate]. */
  readonly groups: readonly [UpstreamGroup, UpstreamGroup];
  /** Shadow traffic to the candidate (mirror.ts); undefined without `mirror` or with nothing to copy. */
  readonly mirror: ReleaseMirror | undefined;
  choose(req: IncomingMessage, ctx: RequestContext | undefined): Arm;
}

export const DEFAULT_OVERRIDE_HEADER = 'x-sluice-version';

export function compileRelease(
  name: string,
  spec: ReleaseConfig,
  groups: readonly [UpstreamGroup, UpstreamGroup],
  slot: ReleaseSlot,
  trustedProxies: BlockList | undefined,
): CompiledRelease {
  const salt = spec.sticky?.seed ?? name;
  const sources = (spec.sticky?.by ?? ['principal', 'tenant', 'ip']).map((s) => keySource(s, trustedProxies));
  // No key from any source: the client's address, so one client still sees one version.
  const lastResort = keySource('ip', trustedProxies);
  const stickyKey = (req: IncomingMessage, ctx: RequestContext | undefined): string => {
    for (const k of sources) {
      const v = k(req, ctx);
      if (v !== undefined) return v;
    }
    return lastResort(req, ctx) ?? '';
  };
  const forcedHeader = headerKey(spec.overrides?.header ?? DEFAULT_OVERRIDE_HEADER);
  const forceCandidate = new Set(spec.overrides?.tenants?.candidate ?? []);
  const forceStable = new Set(spec.overrides?.tenants?.stable ?? []);
  const cohorts = (spec.cohorts ?? []).map(cohortMatcher);
  const m = spec.mirror;
  const mirror =
    m === undefined || m.percent === 0 || m.maxPerSecond === 0
      ? undefined
      : new ReleaseMirror(m, slot, groups[1]);

  return {
    name,
    slot,
    groups,
    mirror,
    choose(req, ctx) {
      const s = slot.state;
      if (s === 'unknown') return STABLE;
      if (s === 'promoted') return CANDIDATE;
      if (s === 'aborted') return STABLE;
      // Testers' overrides hold in every state of a live release (pending, running, paused).
      const forced = forcedHeader(req);
      if (forced === 'candidate') return CANDIDATE;
      if (forced === 'stable') return STABLE;
      const tenant = ctx?.tenant;
      if (tenant !== undefined) {
        if (forceCandidate.has(tenant.id)) return CANDIDATE;
        if (forceStable.has(tenant.id)) return STABLE;
        for (let i = 0; i < slot.cohorts && i < cohorts.length; i++)
          if (cohorts[i]!(tenant)) return CANDIDATE;
      }
      const buckets = slot.candidateBuckets;
      if (buckets <= 0) return STABLE;
      if (buckets >= 10_000) return CANDIDATE;
      return bucketOf(salt, stickyKey(req, ctx), slot.bucketing) < buckets ? CANDIDATE : STABLE;
    },
  };
}

function keySource(s: string, trusted: BlockList | undefined): KeyOf {
  if (s === 'tenant') return (_req, ctx) => ctx?.tenant?.id;
  if (s === 'apiKey')
    return (_req, ctx) => (ctx?.principal?.kind === 'apiKey' ? ctx.principal.id : undefined);
  if (s === 'principal') return (_req, ctx) => ctx?.principal?.id;
  if (s === 'ip') {
    const ip = clientIpKey(trusted);
    return (req) => ip(req);
  }
  if (s.startsWith('header:')) {
    const h = headerKey(s.slice(7));
    return (req) => h(req);
  }
  if (s.startsWith('cookie:')) {
    const c = cookieKey(s.slice(7));
    return (req) => c(req);
  }
  throw new Error(`unknown sticky key source ${s}`);
}

function cohortMatcher(c: NonNullable<ReleaseConfig['cohorts']>[number]): (t: TenantView) => boolean {
  const tenants = new Set(c.tenants ?? []);
  const plans = new Set(c.plans ?? []);
  const regions = new Set(c.regions ?? []);
  const labels = Object.entries(c.labels ?? {});
  return (t) =>
    tenants.has(t.id) ||
    (t.plan !== null && plans.has(t.plan)) ||
    (t.region !== null && regions.has(t.region)) ||
    (labels.length > 0 && labels.every(([k, v]) => t.labels?.[k] === v));
}

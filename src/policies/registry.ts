/**
 * Every policy kind, one line each. The route schema (config/schema.ts), the load-time checks
 * (config/semantics.ts) and the compiler (config/compile.ts) iterate this list; none of them names
 * a policy. Adding a kind is a folder with its schema and factory, and a line here.
 *
 * The list's order is the order of the route's properties in the JSON Schema and the config
 * reference. The chain's order is each factory's `order`, lower first:
 *   100 ip-filter, 200 cors   cheap refusals and answers that need no caller (an IP list, a preflight)
 *   300 auth, 400 tenant      who calls, and for which tenant
 *   420 residency             the tenant's regions (refuses a request without a tenant or region)
 *   425 placement             the tenant's placement labels (refuses one without a tenant or label)
 *   450 flag, 460 flags       a route a feature flag enables, flag values for the upstream (after
 *                             identity: evaluated for the verified tenant and principal)
 *   500 rate-limit, 600 quota, 700 cost, 800 cache   count per tenant/key; the cache keys by tenant
 * A route that configures none gets `undefined`, and the request path skips the chain with one
 * comparison.
 */
import { Type as T, type TOptional } from '@sinclair/typebox';
import type { Config, RouteConfig } from '../config/schema.js';
import { authPolicy } from './auth/index.js';
import { cachePolicy } from './cache/index.js';
import { corsPolicy } from './cors/index.js';
import { costPolicy } from './cost/index.js';
import type { ConfigProblem, PolicyDeps, PolicyFactory } from './factory.js';
import { flagForwardPolicy, flagGatePolicy } from './flags/index.js';
import type { IdentityDirectory } from './identity.js';
import { ipFilterPolicy } from './ip-filter/index.js';
import { placementPolicy } from './placement/index.js';
import type { Policy } from './policy.js';
import { quotaPolicy } from './quota/index.js';
import { rateLimitPolicy } from './rate-limit/index.js';
import { residencyPolicy } from './residency/index.js';
import { tenantPolicy } from './tenant/index.js';

export type { ConfigProblem, PolicyDeps, PolicyFactory } from './factory.js';

export const policyFactories = [
  authPolicy,
  tenantPolicy,
  residencyPolicy,
  placementPolicy,
  ipFilterPolicy,
  corsPolicy,
  rateLimitPolicy,
  quotaPolicy,
  costPolicy,
  cachePolicy,
  flagGatePolicy,
  flagForwardPolicy,
] as const;

type Factories = (typeof policyFactories)[number];

/** The route's policy properties, each optional, for the route object of config/schema.ts. */
export type RoutePolicyProperties = { [F in Factories as F['key']]: TOptional<F['schema']> };

export function routePolicyProperties(): RoutePolicyProperties {
  const props: Record<string, TOptional<Factories['schema']>> = {};
  for (const f of policyFactories) props[f.key] = T.Optional(f.schema);
  return props as RoutePolicyProperties;
}

/** The factories in the chain's order. */
const chain: readonly PolicyFactory[] = [...policyFactories].sort((a, b) => a.order - b.order);

export function compileRoutePolicies(r: RouteConfig, config: Config, deps: PolicyDeps): Policy[] | undefined {
  const policies: Policy[] = [];
  for (const f of chain) {
    const p = f.compile(r, config, deps);
    if (p !== undefined) policies.push(p);
  }
  return policies.length > 0 ? policies : undefined;
}

/** Every route's policy checks, in route order and then the chain's order (config/semantics.ts). */
export function checkRoutePolicies(config: Config, out: ConfigProblem[]): void {
  config.routes.forEach((r, i) => {
    const at = ['routes', i];
    for (const f of chain) f.check?.(r, at, config, out);
  });
}

/** Whether any route needs the tenancy snapshot (and so the store). */
export function usesIdentity(config: Config): boolean {
  return config.routes.some((r) => chain.some((f) => f.usesIdentity?.(r) === true));
}

/** Request headers the route's policies set: incoming ones of these names are removed (no forging). */
export function policyHeaderNames(r: RouteConfig, config: Config): string[] {
  const names: string[] = [];
  for (const f of chain) if (f.headers !== undefined) names.push(...f.headers(r, config));
  return names;
}

/** A directory with no tenants and no keys: what compile-only callers (validate) use. */
export const emptyDirectory: IdentityDirectory = {
  verifyKey: () => ({ ok: false, reason: 'unknown' }),
  tenant: () => undefined,
};

/**
 * The policy chain of a route, compiled once per config version, in the documented order:
 * auth → tenant (→ limits, cache, ... as they arrive). A route that configures none gets
 * `undefined`, and the request path skips the chain with one comparison.
 */
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import type { Config, RouteConfig } from '../config/schema.js';
import type { RedisConnection } from '../redis/connection.js';
import type { Store } from '../store/store.js';
import type { EventBus } from '../telemetry/events.js';
import { compileAuthPolicy, type JwtCheck } from './auth/index.js';
import type { JwtRequirementConfig } from './auth-jwt/schema.js';
import type { Verifier } from './auth-jwt/verify.js';
import { cachePolicy } from './cache/index.js';
import { corsPolicy } from './cors/index.js';
import { costPolicy } from './cost/index.js';
import type { IdentityDirectory } from './identity.js';
import { ipFilterPolicy } from './ip-filter/index.js';
import type { Lifetime } from './lifetime.js';
import type { Policy } from './policy.js';
import { quotaPolicy } from './quota/index.js';
import { rateLimitPolicy } from './rate-limit/index.js';
import { compileTenantPolicy, splitHostPattern } from './tenant/index.js';

export interface PolicyDeps {
  directory: IdentityDirectory;
  events: EventBus;
  /** The gateway's Redis (top-level `redis`); undefined: keep counters in this process. */
  redis?: RedisConnection | undefined;
  /**
   * Gateway-lifetime state (local counters, cache entries, flush timers), kept across reloads so a
   * reload does not reset a limit; typed by its keys. Values with a `close()` are closed on stop.
   */
  lifetime: Lifetime;
  /** Where policies register their metrics (the gateway's Prometheus registry). */
  registry?: Registry;
  logger?: Logger;
  /** The store, when open (quota persistence, usage), never on the request path. */
  store?: Store | undefined;
  /** Work to undo when the runtime compiled with these deps is replaced (timers of this version). */
  onDispose?: (fn: () => void) => void;
  /** Builds a route's token check from its `auth.jwt`; undefined when no issuer is configured. */
  jwt: ((routeName: string, req: JwtRequirementConfig) => JwtCheck) | undefined;
  /** The verifier behind `jwt`, owned by the runtime compiled with it (closed when it is disposed). */
  verifier?: Verifier;
}

export const defaultKeyHeader = 'x-api-key';
export const defaultTenantHeader = 'x-sluice-tenant';
export const defaultPrincipalHeader = 'x-sluice-principal';

/** Whether any route needs the tenancy snapshot (and so the store). */
export function usesIdentity(config: Config): boolean {
  return config.routes.some((r) => r.auth !== undefined || r.tenant !== undefined);
}

/** A policy kind: compiles a route's config (and the whole config) into a Policy, or nothing. */
export interface PolicyFactory {
  readonly name: string;
  compile(r: RouteConfig, config: Config, deps: PolicyDeps): Policy | undefined;
}

/** Run before identity: cheap refusals and answers that need no caller (an IP list, a CORS preflight). */
const beforeIdentity: readonly PolicyFactory[] = [ipFilterPolicy, corsPolicy];
/** Run after the tenant is known: limits count per tenant/key, the cache keys by tenant. */
const afterIdentity: readonly PolicyFactory[] = [rateLimitPolicy, quotaPolicy, costPolicy, cachePolicy];

export function compileRoutePolicies(r: RouteConfig, config: Config, deps: PolicyDeps): Policy[] | undefined {
  const policies: Policy[] = [];
  for (const f of beforeIdentity) {
    const p = f.compile(r, config, deps);
    if (p !== undefined) policies.push(p);
  }
  policies.push(...identityPolicies(r, config, deps));
  for (const f of afterIdentity) {
    const p = f.compile(r, config, deps);
    if (p !== undefined) policies.push(p);
  }
  return policies.length > 0 ? policies : undefined;
}

function identityPolicies(r: RouteConfig, config: Config, deps: PolicyDeps): Policy[] {
  if (r.auth === undefined && r.tenant === undefined) return [];
  const id = config.identity;
  const policies: Policy[] = [];
  const principalHeader = (id?.forward?.principal ?? defaultPrincipalHeader).toLowerCase();
  if (r.auth !== undefined) {
    const a = r.auth;
    if (a.jwt !== undefined && deps.jwt === undefined)
      // semantics.ts reports this with file and line; this guards compile-only callers.
      throw new Error(`route "${r.name}": auth.jwt needs identity.issuers`);
    policies.push(
      compileAuthPolicy({
        apiKey:
          a.apiKey === undefined || a.apiKey === false
            ? undefined
            : { scopes: a.apiKey === true ? [] : (a.apiKey.scopes ?? []) },
        jwt: a.jwt !== undefined ? deps.jwt!(r.name, a.jwt) : undefined,
        optional: a.optional ?? false,
        keyHeader: (id?.apiKeys?.header ?? defaultKeyHeader).toLowerCase(),
        principalHeader,
        directory: deps.directory,
        events: deps.events,
      }),
    );
  }
  // A route with auth always resolves the tenant its credentials name (and refuses a suspended
  // one); `tenant` adds sources and makes it required.
  policies.push(
    compileTenantPolicy({
      from: r.tenant?.from ?? ['apiKey', 'jwt'],
      required: r.tenant === undefined ? false : (r.tenant.required ?? true),
      hostPattern: splitHostPattern(id?.hostTenant),
      tenantHeader: (id?.forward?.tenant ?? defaultTenantHeader).toLowerCase(),
      directory: deps.directory,
      events: deps.events,
    }),
  );
  return policies;
}

/** Request headers the route's policies set: incoming ones of these names are removed (no forging). */
export function policyHeaderNames(r: RouteConfig, config: Config): string[] {
  if (r.auth === undefined && r.tenant === undefined) return [];
  const id = config.identity;
  const names = [
    id?.forward?.principal ?? defaultPrincipalHeader,
    id?.forward?.tenant ?? defaultTenantHeader,
    ...Object.values(r.auth?.jwt?.forward ?? {}),
  ];
  return names.map((n) => n.toLowerCase());
}

/** A directory with no tenants and no keys: what compile-only callers (validate) use. */
export const emptyDirectory: IdentityDirectory = {
  verifyKey: () => ({ ok: false, reason: 'unknown' }),
  tenant: () => undefined,
};

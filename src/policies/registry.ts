/**
 * The policy chain of a route, compiled once per config version, in the documented order:
 * auth → tenant (→ limits, cache, ... as they arrive). A route that configures none gets
 * `undefined`, and the request path skips the chain with one comparison.
 */
import type { Config, RouteConfig } from '../config/schema.js';
import type { EventBus } from '../telemetry/events.js';
import { compileAuthPolicy, type JwtCheck } from './auth/index.js';
import type { JwtRequirementConfig } from './auth-jwt/schema.js';
import type { Verifier } from './auth-jwt/verify.js';
import type { IdentityDirectory } from './identity.js';
import type { Policy } from './policy.js';
import { compileTenantPolicy, splitHostPattern } from './tenant/index.js';

export interface PolicyDeps {
  directory: IdentityDirectory;
  events: EventBus;
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

export function compileRoutePolicies(r: RouteConfig, config: Config, deps: PolicyDeps): Policy[] | undefined {
  if (r.auth === undefined && r.tenant === undefined) return undefined;
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

/**
 * What the identity policies need from the tenancy snapshot: synchronous, in-memory reads only.
 * The store side (src/tenancy) implements it over the snapshot it rebuilds on change notifications;
 * a policy never sees the store, so a PostgreSQL outage cannot fail a request it can answer.
 */
import type { RouteConfig } from '../config/schema.js';
import type { TenantView } from './policy.js';

export const defaultKeyHeader = 'x-api-key';
export const defaultTenantHeader = 'x-sluice-tenant';
export const defaultPrincipalHeader = 'x-sluice-principal';

/**
 * Whether the route establishes who calls (`auth`) or for whom (`tenant`): such a route resolves
 * a tenant, which the per-tenant policies (quota, cost) need.
 */
export function identifies(r: RouteConfig): boolean {
  return r.auth !== undefined || r.tenant !== undefined;
}

export type KeyCheck =
  | { ok: true; keyId: string; tenantId: string; scopes: readonly string[] }
  | { ok: false; reason: 'malformed' | 'unknown' | 'revoked' | 'expired'; keyId?: string };

export interface IdentityDirectory {
  /** Check a presented API key (`sk_<id>_<secret>`): constant-time on the secret. */
  verifyKey(presented: string, nowMs: number): KeyCheck;
  tenant(id: string): TenantView | undefined;
}

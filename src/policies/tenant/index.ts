/**
 * `tenant`: attribute the request to a tenant from its credentials or its host, refuse suspended
 * tenants, and tell the upstream who it is. Runs after `auth`. Every source that names a tenant
 * must name the same one: a key of tenant A on tenant B's host is refused, not re-attributed.
 */
import { Errors } from '../../errors/codes.js';
import type { EventBus } from '../../telemetry/events.js';
import type { PolicyFactory } from '../factory.js';
import { defaultTenantHeader, type IdentityDirectory, identifies } from '../identity.js';
import type { Denial, Policy, RequestContext } from '../policy.js';
import { RouteTenant } from './schema.js';

export type TenantSourceName = 'apiKey' | 'jwt' | 'host';

export const tenantPolicy: PolicyFactory<'tenant', typeof RouteTenant> = {
  name: 'tenant',
  key: 'tenant',
  schema: RouteTenant,
  order: 400,
  check(r, at, config, out) {
    const a = r.auth;
    r.tenant?.from?.forEach((s, j) => {
      const p = [...at, 'tenant', 'from', j];
      if (s === 'host' && config.identity?.hostTenant === undefined)
        out.push({
          path: p,
          message: '`host` needs `identity.hostTenant` (such as `{tenant}.api.example.com`)',
        });
      if (s === 'jwt' && a?.jwt?.tenantClaim === undefined)
        out.push({ path: p, message: '`jwt` needs `auth.jwt.tenantClaim` on this route' });
      if (s === 'apiKey' && (a?.apiKey === undefined || a.apiKey === false))
        out.push({ path: p, message: '`apiKey` needs `auth.apiKey` on this route' });
    });
  },
  usesIdentity: (r) => r.tenant !== undefined,
  headers: (r, config) =>
    identifies(r) ? [(config.identity?.forward?.tenant ?? defaultTenantHeader).toLowerCase()] : [],
  compile(r, config, deps) {
    // A route with auth always resolves the tenant its credentials name (and refuses a suspended
    // one); `tenant` adds sources and makes it required.
    if (!identifies(r)) return undefined;
    const id = config.identity;
    return compileTenantPolicy({
      from: r.tenant?.from ?? ['apiKey', 'jwt'],
      required: r.tenant === undefined ? false : (r.tenant.required ?? true),
      hostPattern: splitHostPattern(id?.hostTenant),
      tenantHeader: (id?.forward?.tenant ?? defaultTenantHeader).toLowerCase(),
      directory: deps.directory,
      events: deps.events,
    });
  },
};

export interface TenantPolicyOptions {
  from: readonly TenantSourceName[];
  required: boolean;
  /** `identity.hostTenant` split around `{tenant}` (lower case). */
  hostPattern: { prefix: string; suffix: string } | undefined;
  tenantHeader: string;
  directory: IdentityDirectory;
  events: EventBus;
}

export function compileTenantPolicy(o: TenantPolicyOptions): Policy {
  const { from, required, hostPattern, tenantHeader, directory, events } = o;
  const deny = (ctx: RequestContext, d: Denial, tenant?: string): Denial => {
    events.emit({
      type: 'auth_failed',
      at: new Date().toISOString(),
      requestId: ctx.requestId,
      route: ctx.route,
      code: d.def.code,
      reason: d.reason,
      client: ctx.client,
      ...(ctx.principal ? { principal: ctx.principal.id } : {}),
      ...(tenant ? { tenant } : {}),
    });
    return d;
  };
  return {
    name: 'tenant',
    onRequest(ctx) {
      let id: string | undefined;
      for (let i = 0; i < from.length; i++) {
        const found = tenantFrom(from[i]!, ctx, hostPattern);
        if (found === undefined) continue;
        if (id === undefined) id = found;
        else if (found !== id)
          return deny(
            ctx,
            {
              def: Errors.tenantUnresolved,
              detail: `the request names two tenants (${from.join(', ')} disagree)`,
              reason: 'tenant-conflict',
            },
            id,
          );
      }
      if (id === undefined) {
        if (!required) return undefined;
        return deny(ctx, { def: Errors.tenantUnresolved, detail: undefined, reason: 'tenant-missing' });
      }
      const t = directory.tenant(id);
      if (t === undefined)
        return deny(ctx, { def: Errors.tenantUnresolved, detail: undefined, reason: 'tenant-unknown' }, id);
      if (t.status !== 'active')
        return deny(
          ctx,
          { def: Errors.tenantSuspended, detail: `tenant "${id}"`, reason: 'tenant-suspended' },
          id,
        );
      ctx.tenant = t;
      ctx.upstreamHeaders.push(tenantHeader, id);
      return undefined;
    },
  };
}

function tenantFrom(
  source: TenantSourceName,
  ctx: RequestContext,
  host: TenantPolicyOptions['hostPattern'],
): string | undefined {
  const p = ctx.principal;
  if (source === 'apiKey') return p?.kind === 'apiKey' ? p.tenantId : undefined;
  if (source === 'jwt') return p?.kind === 'jwt' ? p.tenantId : undefined;
  if (host === undefined || ctx.host === undefined) return undefined;
  let h = ctx.host.toLowerCase();
  const colon = h.lastIndexOf(':');
  if (colon > 0 && !h.endsWith(']')) h = h.slice(0, colon);
  if (h.length <= host.prefix.length + host.suffix.length) return undefined;
  if (!h.startsWith(host.prefix) || !h.endsWith(host.suffix)) return undefined;
  const id = h.slice(host.prefix.length, h.length - host.suffix.length);
  // One DNS label: `{tenant}` never spans dots, so a.b.api.example.com names no tenant.
  return id.includes('.') ? undefined : id;
}

export function splitHostPattern(pattern: string | undefined): TenantPolicyOptions['hostPattern'] {
  if (pattern === undefined) return undefined;
  const [prefix, suffix] = pattern.toLowerCase().split('{tenant}') as [string, string];
  return { prefix, suffix };
}

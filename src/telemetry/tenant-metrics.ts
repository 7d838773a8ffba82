/**
 * Per-tenant request series (`metrics.tenants.allow`): sluice_tenant_requests_total{tenant,route,class}
 * and sluice_tenant_request_duration_seconds{tenant,route}, only for allow-listed tenants on routes
 * that attribute a tenant (`auth` or `tenant`). The tenant is the one the tenant policy verified
 * (credentials, or the host pattern checked against the tenancy snapshot), never a header value:
 * the label set is the allow-list, whose length the config caps, times the config's routes.
 * Children are resolved at compile time, so a request costs one Map lookup on the tenant id.
 */
import { Counter, Histogram, type Registry } from 'prom-client';
import { REQUEST_DURATION_BUCKETS } from './request-buckets.js';

const classes = ['1xx', '2xx', '3xx', '4xx', '5xx'] as const;

/** One allow-listed tenant's children on one route. */
export interface TenantCells {
  /** Indexed by status / 100 (1..5). */
  readonly requests: readonly (Counter.Internal | undefined)[];
  readonly duration: Histogram.Internal<string>;
}

/** A route's cells by tenant id (allow-listed tenants only). */
export type TenantSeries = ReadonlyMap<string, TenantCells>;

export class TenantMetrics {
  private readonly requests: Counter<'tenant' | 'route' | 'class'>;
  private readonly duration: Histogram<'tenant' | 'route'>;
  /** Every (tenant, route) pair a compile resolved, to drop the series a reload no longer has. */
  private readonly resolved = new Map<string, readonly [string, string]>();

  constructor(registry: Registry) {
    this.requests = new Counter({
      name: 'sluice_tenant_requests_total',
      help: 'Requests of the tenants in metrics.tenants.allow, by tenant, route and status class (routes with auth or tenant only).',
      labelNames: ['tenant', 'route', 'class'],
      registers: [registry],
    });
    this.duration = new Histogram({
      name: 'sluice_tenant_request_duration_seconds',
      help: 'Time from request received to response complete for the tenants in metrics.tenants.allow, by tenant and route.',
      labelNames: ['tenant', 'route'],
      buckets: [...REQUEST_DURATION_BUCKETS],
      registers: [registry],
    });
  }

  forRoute(route: string, allow: ReadonlySet<string>): TenantSeries {
    const out = new Map<string, TenantCells>();
    for (const tenant of allow) {
      this.resolved.set(`${tenant}\u0000${route}`, [tenant, route]);
      out.set(tenant, {
        requests: [undefined, ...classes.map((c) => this.requests.labels(tenant, route, c))],
        duration: this.duration.labels(tenant, route),
      });
    }
    return out;
  }

  /**
   * After a reload is applied: remove the series of pairs the running config no longer has (a
   * tenant taken off the list, a route renamed), so the export shows only what the config allows.
   */
  retain(
    routes: readonly { readonly name: string; readonly tenantSeries: TenantSeries | undefined }[],
  ): void {
    const keep = new Set<string>();
    for (const r of routes) for (const t of r.tenantSeries?.keys() ?? []) keep.add(`${t}\u0000${r.name}`);
    for (const [key, [tenant, route]] of this.resolved) {
      if (keep.has(key)) continue;
      for (const c of classes) this.requests.remove(tenant, route, c);
      this.duration.remove(tenant, route);
      this.resolved.delete(key);
    }
  }
}

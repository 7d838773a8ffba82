/**
 * Quota definitions compiled from the top-level `quotas`, and the limits that apply to one tenant:
 * its plan's (or `default`), overridden by its labels. Shared by the policy and the admin API.
 */
import { ms } from '../../config/units.js';
import type { TenantView } from '../policy.js';
import type { QuotasConfig } from './schema.js';

/** -1: no limit. */
export interface Limits {
  daily: number;
  monthly: number;
}

export interface CompiledQuota {
  readonly name: string;
  /** The counter's metric name: `quota:<name>`. */
  readonly metric: string;
  /** Lower-case response header carrying units; undefined for request quotas. */
  readonly header: string | undefined;
  readonly plans: ReadonlyMap<string, Limits>;
  readonly failClosed: boolean;
  readonly labelDaily: string;
  readonly labelMonthly: string;
}

export interface CompiledQuotas {
  readonly byName: ReadonlyMap<string, CompiledQuota>;
  readonly persistEvery: number;
}

const NONE: Limits = Object.freeze({ daily: -1, monthly: -1 });

export function compileQuotas(c: QuotasConfig | undefined): CompiledQuotas {
  const byName = new Map<string, CompiledQuota>();
  for (const [name, d] of Object.entries(c?.define ?? {})) {
    const plans = new Map<string, Limits>();
    for (const [plan, l] of Object.entries(d.plans))
      plans.set(plan, { daily: l.daily ?? -1, monthly: l.monthly ?? -1 });
    byName.set(name, {
      name,
      metric: `quota:${name}`,
      header: d.counts === undefined || d.counts === 'requests' ? undefined : d.counts.header.toLowerCase(),
      plans,
      failClosed: (d.onRedisError ?? c?.onRedisError ?? 'open') === 'closed',
      labelDaily: `quota.${name}.daily`,
      labelMonthly: `quota.${name}.monthly`,
    });
  }
  return { byName, persistEvery: Math.max(100, ms(c?.persistEvery, 5000)) };
}

/** A label's value as a limit: a non-negative integer, or `unlimited`; undefined when absent or invalid. */
export function labelLimit(v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  const s = v.trim();
  if (s === 'unlimited') return -1;
  if (!/^[0-9]{1,15}$/.test(s)) return undefined;
  return Number(s);
}

/** The limits of quota `q` for this tenant: labels, else its plan's, else `default`, else none. */
export function limitsFor(q: CompiledQuota, tenant: TenantView): Limits {
  const base =
    (tenant.plan !== null ? q.plans.get(tenant.plan) : undefined) ?? q.plans.get('default') ?? NONE;
  const labels = tenant.labels;
  if (labels === undefined) return base;
  const d = labelLimit(labels[q.labelDaily]);
  const m = labelLimit(labels[q.labelMonthly]);
  if (d === undefined && m === undefined) return base;
  return { daily: d ?? base.daily, monthly: m ?? base.monthly };
}

/**
 * `quota`: per tenant, per UTC day and month, on the counters of the usage engine (src/usage/).
 * Request quotas are checked and counted in one atomic step before the request goes upstream; unit
 * quotas admit a request while usage is below the limit and add the units of the response header
 * afterwards. A refused request is not counted. Requests without a tenant are not counted.
 */

import { Counter, type Registry } from 'prom-client';
import type { Config, RouteConfig } from '../../config/schema.js';
import { type ErrorDef, Errors } from '../../errors/codes.js';
import type { EventBus } from '../../telemetry/events.js';
import { perRegistry } from '../../telemetry/per-registry.js';
import type { CounterItem, TakeResult, UsageEngine } from '../../usage/engine.js';
import { type Period, secondsUntil } from '../../usage/periods.js';
import type { PolicyDeps, PolicyFactory } from '../factory.js';
import { identifies } from '../identity.js';
import type { Denial, Policy, RequestContext, RequestVerdict, ResponseHead } from '../policy.js';
import { type CompiledQuota, type CompiledQuotas, compileQuotas, limitsFor } from './limits.js';
import { RouteQuota } from './schema.js';
import { usageEngine } from './usage.js';

const compiledByConfig = new WeakMap<Config, CompiledQuotas>();

/** The config's quotas, compiled once per config version (every route's policy shares them). */
export function quotasOf(config: Config): CompiledQuotas {
  let c = compiledByConfig.get(config);
  if (c === undefined) {
    c = compileQuotas(config.quotas);
    compiledByConfig.set(config, c);
  }
  return c;
}

interface QuotaMetrics {
  decisions: Counter<'result'>;
  refusals: Counter<'quota' | 'period'>;
}

const quotaMetrics = perRegistry(
  (r: Registry): QuotaMetrics => ({
    decisions: new Counter({
      name: 'sluice_quota_decisions_total',
      help: 'Quota decisions on requests with a tenant, by result (allowed, refused, unavailable). Per-tenant usage is in the admin API, not in metrics (tenants are many).',
      labelNames: ['result'],
      registers: [r],
    }),
    refusals: new Counter({
      name: 'sluice_quota_refusals_total',
      help: 'Requests refused by a quota, by quota and period (day, month).',
      labelNames: ['quota', 'period'],
      registers: [r],
    }),
  }),
);

/** Set on the request context when this policy admitted the request (its unit quotas then count). */
const kAdmitted = Symbol('sluice.quotaAdmitted');
type Marked = RequestContext & { [kAdmitted]?: boolean };

export const quotaPolicy: PolicyFactory<'quota', typeof RouteQuota> = {
  name: 'quota',
  key: 'quota',
  schema: RouteQuota,
  order: 600,
  check(r, at, config, out) {
    if (r.quota === undefined) return;
    const quotas = config.quotas?.define ?? {};
    if (!identifies(r))
      out.push({
        path: [...at, 'quota'],
        message: 'quotas count per tenant: the route needs `auth` or `tenant`',
      });
    r.quota.use.forEach((name, j) => {
      if (!Object.hasOwn(quotas, name))
        out.push({
          path: [...at, 'quota', 'use', j],
          message: `no quota "${name}" in quotas.define (defined: ${Object.keys(quotas).join(', ') || 'none'})`,
        });
    });
  },
  compile(r: RouteConfig, config: Config, deps: PolicyDeps): Policy | undefined {
    if (r.quota === undefined) return undefined;
    // check() reports these with file and line at load; they guard compile-only callers.
    if (!identifies(r))
      throw new Error(
        `route "${r.name}": quota counts per tenant and needs \`auth\` or \`tenant\` on the route`,
      );
    const all = quotasOf(config);
    const quotas: CompiledQuota[] = [];
    for (const name of r.quota.use) {
      const q = all.byName.get(name);
      if (q === undefined)
        throw new Error(`route "${r.name}": quota "${name}" is not defined in \`quotas.define\``);
      quotas.push(q);
    }
    const routeHeader = r.quota.header?.toLowerCase();
    const engine = usageEngine(deps, all.persistEvery);
    return compileQuotaPolicy(quotas, routeHeader, engine, deps.events, deps.registry);
  },
};

export function compileQuotaPolicy(
  quotas: readonly CompiledQuota[],
  routeHeader: string | undefined,
  engine: UsageEngine,
  events: EventBus,
  registry: Registry | undefined,
): Policy {
  const failClosed = quotas.some((q) => q.failClosed);
  const units = quotas.filter((q) => q.header !== undefined);
  const unitHeaders = units.map((q) => routeHeader ?? q.header!);
  const m = registry ? quotaMetrics(registry) : undefined;
  const clock = engine.clock;

  /** Per quota, its month counter then its day counter: a refusal names the period that resets last. */
  const items = (ctx: RequestContext, now: number): CounterItem[] => {
    const out: CounterItem[] = [];
    const month = clock.current('month', now);
    const day = clock.current('day', now);
    for (let i = 0; i < quotas.length; i++) {
      const q = quotas[i]!;
      const l = limitsFor(q, ctx.tenant!);
      const inc = q.header === undefined ? 1 : 0;
      out.push(
        { metric: q.metric, period: month, limit: l.monthly, need: 1, inc },
        { metric: q.metric, period: day, limit: l.daily, need: 1, inc },
      );
    }
    return out;
  };

  const decide = (ctx: RequestContext, its: CounterItem[], r: TakeResult, now: number): RequestVerdict => {
    if (r.ok) {
      m?.decisions.labels('allowed').inc();
      if (units.length > 0) (ctx as Marked)[kAdmitted] = true;
      return undefined;
    }
    if (r.index < 0) {
      m?.decisions.labels('unavailable').inc();
      return {
        def: Errors.quotaUnavailable,
        detail: 'quota counters unavailable',
        reason: 'quota-unavailable',
      };
    }
    m?.decisions.labels('refused').inc();
    const it = its[r.index]!;
    const q = quotas[r.index >> 1]!;
    m?.refusals.labels(q.name, it.period.kind).inc();
    announce(ctx, q, it, r.used, now);
    const per = it.period.kind === 'day' ? 'day' : 'month';
    const detail = `quota "${q.name}": ${it.limit} per ${per} used (UTC ${it.period.id})`;
    return refusal(Errors.quotaExceeded, detail, it.period, `quota-${per}`, now);
  };

  const announce = (ctx: RequestContext, q: CompiledQuota, it: CounterItem, used: number, now: number) => {
    const tenant = ctx.tenant!.id;
    const { requestId, route } = ctx;
    void engine.once(tenant, `quota-exceeded:${q.name}:${it.period.kind}`, it.period).then((first) => {
      if (!first) return;
      events.emit({
        type: 'quota_exceeded',
        at: new Date(now).toISOString(),
        requestId,
        route,
        tenant,
        quota: q.name,
        period: it.period.kind,
        periodId: it.period.id,
        limit: it.limit,
        used,
        resetsAt: new Date(it.period.endsAt).toISOString(),
      });
    });
  };

  const onRequest = (ctx: RequestContext): RequestVerdict | Promise<RequestVerdict> => {
    if (ctx.tenant === undefined) return undefined;
    const now = clock.now();
    const its = items(ctx, now);
    const r = engine.take(ctx.tenant.id, its, failClosed);
    if (r instanceof Promise) return r.then((x) => decide(ctx, its, x, now));
    return decide(ctx, its, r, now);
  };
  if (units.length === 0) return { name: 'quota', onRequest };

  const onResponse = (ctx: RequestContext, head: ResponseHead): undefined => {
    if ((ctx as Marked)[kAdmitted] !== true) return undefined;
    const now = clock.now();
    const month = clock.current('month', now);
    const day = clock.current('day', now);
    const add: CounterItem[] = [];
    for (let i = 0; i < units.length; i++) {
      const n = unitsFrom(head.headers, unitHeaders[i]!);
      if (n <= 0) continue;
      const q = units[i]!;
      add.push(
        { metric: q.metric, period: month, limit: -1, need: 0, inc: n },
        { metric: q.metric, period: day, limit: -1, need: 0, inc: n },
      );
    }
    if (add.length > 0) {
      const done = engine.add(ctx.tenant!.id, add);
      if (done instanceof Promise) done.catch(() => {});
    }
    return undefined;
  };
  return { name: 'quota', onRequest, onResponse };
}

/** A refusal with Retry-After until the refusing counter's period resets. */
export function refusal(def: ErrorDef, detail: string, period: Period, reason: string, now: number): Denial {
  return { def, detail, headers: { 'retry-after': String(secondsUntil(period.endsAt, now)) }, reason };
}

/** The integer in a response header (flat [name, value, ...]); 0 when absent or not a non-negative integer. */
export function unitsFrom(headers: readonly string[], name: string): number {
  for (let i = 0; i < headers.length; i += 2) {
    if (headers[i]!.length !== name.length || headers[i]!.toLowerCase() !== name) continue;
    const v = headers[i + 1]!.trim();
    if (!/^[0-9]{1,15}$/.test(v)) return 0;
    return Number(v);
  }
  return 0;
}

/**
 * `cost`: spend per tenant and provider (upstream group) per UTC month, on the usage engine's
 * counters (metric `cost:<provider>`, millionths of the currency unit). A request's fixed cost
 * (`perRequest`) is checked and counted in one atomic step before it goes upstream; the cost of its
 * units (`perUnit` × the response's `unitsHeader`) is added after the response. When spend reaches
 * the tenant's budget, `budget_exceeded` is emitted once per month (across replicas with Redis);
 * a budget with `action: block` then refuses with 402 SLUICE-BUDGET-001.
 */
import { Counter, type Registry } from 'prom-client';
import type { AnomalyCell } from '../../anomaly/cell.js';
import { anomalyCellFor } from '../../anomaly/service.js';
import type { Config, RouteConfig } from '../../config/schema.js';
import { Errors } from '../../errors/codes.js';
import type { EventBus } from '../../telemetry/events.js';
import { perRegistry } from '../../telemetry/per-registry.js';
import type { CounterItem, UsageEngine } from '../../usage/engine.js';
import type { Period } from '../../usage/periods.js';
import type { PolicyDeps, PolicyFactory } from '../factory.js';
import { identifies } from '../identity.js';
import type { RequestContext, RequestVerdict, ResponseHead } from '../policy.js';
import { quotasOf, refusal, unitsFrom } from '../quota/index.js';
import { usageEngine } from '../quota/usage.js';
import { type CompiledBudgets, compileBudgets, MICRO, type TenantBudget } from './budgets.js';
import { RouteCost } from './schema.js';

const compiledByConfig = new WeakMap<Config, CompiledBudgets>();

/** The config's budgets, compiled once per config version. */
export function budgetsOf(config: Config): CompiledBudgets {
  let c = compiledByConfig.get(config);
  if (c === undefined) {
    c = compileBudgets(config.budgets);
    compiledByConfig.set(config, c);
  }
  return c;
}

interface CostMetrics {
  spend: Counter<'provider'>;
  exceeded: Counter<'provider' | 'action'>;
  refusals: Counter<'provider'>;
}

const costMetrics = perRegistry(
  (r: Registry): CostMetrics => ({
    spend: new Counter({
      name: 'sluice_budget_spend_total',
      help: 'Spend counted by routes with `cost`, in currency units, by provider (all tenants; per tenant: the admin API).',
      labelNames: ['provider'],
      registers: [r],
    }),
    exceeded: new Counter({
      name: 'sluice_budget_exceeded_total',
      help: 'Tenants whose monthly spend with a provider reached their budget (counted once per tenant, provider and month), by action.',
      labelNames: ['provider', 'action'],
      registers: [r],
    }),
    refusals: new Counter({
      name: 'sluice_budget_refusals_total',
      help: 'Requests refused with 402 because the tenant’s budget with the provider is exhausted (action: block).',
      labelNames: ['provider'],
      registers: [r],
    }),
  }),
);

const kAdmitted = Symbol('sluice.costAdmitted');
type Marked = RequestContext & { [kAdmitted]?: TenantBudget };

export const costPolicy: PolicyFactory<'cost', typeof RouteCost> = {
  name: 'cost',
  key: 'cost',
  schema: RouteCost,
  order: 700,
  check(r, at, _config, out) {
    const cost = r.cost;
    if (cost === undefined) return;
    if (!identifies(r))
      out.push({
        path: [...at, 'cost'],
        message: 'cost is counted per tenant: the route needs `auth` or `tenant`',
      });
    if (cost.perUnit !== undefined && cost.unitsHeader === undefined)
      out.push({
        path: [...at, 'cost', 'perUnit'],
        message: 'needs cost.unitsHeader (the response header with the units)',
      });
    if (cost.perRequest === undefined && cost.perUnit === undefined)
      out.push({ path: [...at, 'cost'], message: 'needs perRequest, perUnit, or both' });
  },
  compile(r: RouteConfig, config: Config, deps: PolicyDeps) {
    const c = r.cost;
    if (c === undefined) return undefined;
    // check() reports these with file and line at load; they guard compile-only callers.
    if (!identifies(r))
      throw new Error(
        `route "${r.name}": cost is counted per tenant and needs \`auth\` or \`tenant\` on the route`,
      );
    if (c.perUnit !== undefined && c.unitsHeader === undefined)
      throw new Error(
        `route "${r.name}": cost.perUnit needs cost.unitsHeader (the response header with the units)`,
      );
    if (c.perRequest === undefined && c.perUnit === undefined)
      throw new Error(`route "${r.name}": cost needs perRequest, perUnit, or both`);
    const engine = usageEngine(deps, quotasOf(config).persistEvery);
    return compileCostPolicy(
      {
        provider: c.provider ?? r.upstream ?? r.name,
        perRequest: Math.round((c.perRequest ?? 0) * MICRO),
        perUnit: (c.perUnit ?? 0) * MICRO,
        unitsHeader: c.unitsHeader?.toLowerCase(),
        failClosed: config.budgets?.onRedisError === 'closed',
      },
      budgetsOf(config),
      engine,
      deps.events,
      deps.registry,
      anomalyCellFor(deps.lifetime, r.name, r.upstream),
    );
  },
};

export interface CostOptions {
  provider: string;
  /** Millionths per request. */
  perRequest: number;
  /** Millionths per unit (may be fractional: the product is rounded per response). */
  perUnit: number;
  unitsHeader: string | undefined;
  failClosed: boolean;
}

export function compileCostPolicy(
  o: CostOptions,
  budgets: CompiledBudgets,
  engine: UsageEngine,
  events: EventBus,
  registry: Registry | undefined,
  /** The anomaly detector's cell of the route (cost per request is one of its signals). */
  anomaly?: AnomalyCell,
) {
  const { provider, perRequest, perUnit, unitsHeader, failClosed } = o;
  const metric = `cost:${provider}`;
  const m = registry ? costMetrics(registry) : undefined;
  const clock = engine.clock;
  const alertName = `budget-exceeded:${provider}`;

  /** Spend reached the budget: the event and the metric, once per tenant, provider and month. */
  const reached = (ctx: RequestContext, tenant: string, b: TenantBudget, spent: number, period: Period) => {
    const { requestId, route } = ctx;
    void engine.once(tenant, alertName, period).then((first) => {
      if (!first) return;
      m?.exceeded.labels(provider, b.action).inc();
      events.emit({
        type: 'budget_exceeded',
        at: new Date(clock.now()).toISOString(),
        tenant,
        provider,
        periodId: period.id,
        budget: b.limit / MICRO,
        spent: spent / MICRO,
        action: b.action,
        route,
        requestId,
      });
    });
  };

  const decide = (
    ctx: RequestContext,
    b: TenantBudget,
    item: CounterItem,
    r: Awaited<ReturnType<UsageEngine['take']>>,
    now: number,
  ): RequestVerdict => {
    const tenant = ctx.tenant!.id;
    if (r.ok) {
      if (perRequest > 0) {
        m?.spend.labels(provider).inc(perRequest / MICRO);
        anomaly?.addCost(perRequest / MICRO);
      }
      if (b.limit >= 0 && r.values[0]! >= b.limit) reached(ctx, tenant, b, r.values[0]!, item.period);
      if (unitsHeader !== undefined) (ctx as Marked)[kAdmitted] = b;
      return undefined;
    }
    if (r.index < 0)
      return {
        def: Errors.quotaUnavailable,
        detail: 'budget counters unavailable',
        reason: 'budget-unavailable',
      };
    m?.refusals.labels(provider).inc();
    reached(ctx, tenant, b, r.used, item.period);
    const detail = `the monthly budget with "${provider}" (${b.limit / MICRO} ${budgets.currency}) is spent (UTC ${item.period.id})`;
    return refusal(Errors.budgetExhausted, detail, item.period, 'budget-exhausted', now);
  };

  const onRequest = (ctx: RequestContext): RequestVerdict | Promise<RequestVerdict> => {
    const t = ctx.tenant;
    if (t === undefined) return undefined;
    const b = budgets.budgetFor(provider, t);
    const now = clock.now();
    const item: CounterItem = {
      metric,
      period: clock.current('month', now),
      // Alert-only budgets never refuse: the counter is checked against no limit.
      limit: b.action === 'block' ? b.limit : -1,
      // A request is admitted when its fixed cost fits (or, without one, while spend is below the budget).
      need: Math.max(perRequest, 1),
      inc: perRequest,
    };
    const its = [item];
    const r = engine.take(t.id, its, failClosed);
    if (r instanceof Promise) return r.then((x) => decide(ctx, b, item, x, now));
    return decide(ctx, b, item, r, now);
  };
  if (unitsHeader === undefined) return { name: 'cost', onRequest };

  const onResponse = (ctx: RequestContext, head: ResponseHead): undefined => {
    const b = (ctx as Marked)[kAdmitted];
    if (b === undefined) return undefined;
    const cost = Math.round(unitsFrom(head.headers, unitsHeader) * perUnit);
    if (cost <= 0) return undefined;
    m?.spend.labels(provider).inc(cost / MICRO);
    anomaly?.addCost(cost / MICRO);
    const period = clock.current('month');
    const tenant = ctx.tenant!.id;
    const done = engine.add(tenant, [{ metric, period, limit: -1, need: 0, inc: cost }]);
    const check = (v: readonly number[]) => {
      if (b.limit >= 0 && v.length > 0 && v[0]! >= b.limit) reached(ctx, tenant, b, v[0]!, period);
    };
    if (done instanceof Promise) done.then(check, () => {});
    else check(done);
    return undefined;
  };
  return { name: 'cost', onRequest, onResponse };
}

/**
 * A tenant's usage: per quota its current UTC day and month (used, limit, reset), per provider its
 * spend this month against its budget. Values are the live counters (Redis, or this replica's memory
 * without Redis); `persisted` is what the store holds (behind by at most `quotas.persistEvery`).
 * Per-tenant usage is served here rather than as metrics: tenants are many, label values are not.
 */
import { Type as T } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import { Errors } from '../../errors/codes.js';
import { MICRO } from '../../policies/cost/budgets.js';
import { budgetsOf } from '../../policies/cost/index.js';
import type { TenantView } from '../../policies/policy.js';
import { quotasOf } from '../../policies/quota/index.js';
import { limitsFor } from '../../policies/quota/limits.js';
import { usageEngineKey } from '../../policies/quota/usage.js';
import { type Period, PeriodClock, periodIdOf } from '../../usage/periods.js';
import { type AdminContext, sendProblem, sendTenancyError } from '../context.js';
import { problemResponse, TenantParams, type TenantParamsT, withAuthErrors } from '../schemas.js';

const Limit = T.Union([T.Integer({ minimum: 0 }), T.Null()], { description: 'null: no limit.' });
const PeriodUsage = T.Object({
  period: T.String({ description: 'The UTC day (`2026-11-24`) or month (`2026-11`).' }),
  used: T.Number(),
  persisted: T.Number({ description: 'What the store holds for this period (behind by at most one flush).' }),
  limit: Limit,
  remaining: Limit,
  resetsAt: T.String({ format: 'date-time' }),
});

export const UsageView = T.Object({
  tenant: T.String(),
  plan: T.Union([T.String(), T.Null()]),
  at: T.String({ format: 'date-time' }),
  source: T.Union([T.Literal('redis'), T.Literal('memory'), T.Literal('store')], {
    description:
      '`redis`: counters shared by every replica; `memory`: this replica’s counters (no Redis, or Redis failing); `store`: no quota or cost route is configured, the persisted rows only.',
  }),
  quotas: T.Array(
    T.Object({
      name: T.String(),
      counts: T.Union([T.Literal('requests'), T.Literal('units')]),
      day: PeriodUsage,
      month: PeriodUsage,
    }),
  ),
  budgets: T.Array(
    T.Object({
      provider: T.String(),
      period: T.String(),
      currency: T.String(),
      spent: T.Number(),
      persisted: T.Number(),
      budget: T.Union([T.Number(), T.Null()]),
      action: T.Union([T.Literal('block'), T.Literal('alert')]),
      exceeded: T.Boolean(),
      resetsAt: T.String({ format: 'date-time' }),
    }),
  ),
});

export function registerUsageRoutes(app: FastifyInstance, ctx: AdminContext): void {
  app.get<{ Params: TenantParamsT }>(
    '/admin/v1/tenants/:id/usage',
    {
      config: { permission: 'usage.read' },
      schema: {
        tags: ['tenants'],
        summary: "A tenant's quota usage (UTC day and month) and spend per provider (UTC month)",
        params: TenantParams,
        response: withAuthErrors({
          200: UsageView,
          400: problemResponse('The tenant id does not match the schema (SLUICE-ADMIN-005).'),
          404: problemResponse('No such tenant (SLUICE-ADMIN-006).'),
          503: problemResponse('No store is configured (SLUICE-ADMIN-004).'),
        }),
      },
    },
    async (req, reply) => {
      const repo = ctx.tenancy();
      const usageRows = ctx.gw.usageRows();
      if (!repo || !usageRows) return sendProblem(reply, Errors.adminNoStore);
      let tenant: TenantView | undefined;
      try {
        tenant = await repo.getTenant(req.params.id);
      } catch (err) {
        return sendTenancyError(reply, err);
      }
      if (!tenant) return sendProblem(reply, Errors.adminResourceNotFound, `no tenant ${req.params.id}`);
      const config = ctx.gw.runtime.config;
      const quotas = [...quotasOf(config).byName.values()];
      const budgets = budgetsOf(config);
      const providers = new Set(budgets.providers);
      for (const r of config.routes) {
        const p = r.cost?.provider ?? r.upstream;
        if (r.cost !== undefined && p !== undefined) providers.add(p);
      }
      const engine = ctx.gw.lifetimeValue(usageEngineKey);
      const clock = engine?.clock ?? new PeriodClock();
      const now = clock.now();
      const day = clock.current('day', now);
      const month = clock.current('month', now);

      const refs: { metric: string; period: Period }[] = [];
      for (const q of quotas)
        refs.push({ metric: q.metric, period: day }, { metric: q.metric, period: month });
      for (const p of providers) refs.push({ metric: `cost:${p}`, period: month });
      const rows = await usageRows.forTenant(tenant.id, day.starts, month.starts);
      const persisted = new Map(rows.map((r) => [`${r.metric}\n${periodIdOf(r.period, r.starts)}`, r.used]));
      const stored = (metric: string, p: Period) => persisted.get(`${metric}\n${p.id}`) ?? 0;
      let values: number[];
      let source: 'redis' | 'memory' | 'store';
      if (engine) ({ values, source } = await engine.read(tenant.id, refs));
      else {
        values = refs.map((r) => stored(r.metric, r.period));
        source = 'store';
      }

      let i = 0;
      const usage = (metric: string, p: Period, limit: number) => {
        const used = values[i++]!;
        return {
          period: p.id,
          used,
          persisted: stored(metric, p),
          limit: limit < 0 ? null : limit,
          remaining: limit < 0 ? null : Math.max(0, limit - used),
          resetsAt: new Date(p.endsAt).toISOString(),
        };
      };
      const quotaViews = quotas.map((q) => {
        const l = limitsFor(q, tenant);
        return {
          name: q.name,
          counts: q.header === undefined ? ('requests' as const) : ('units' as const),
          day: usage(q.metric, day, l.daily),
          month: usage(q.metric, month, l.monthly),
        };
      });
      const budgetViews = [...providers].map((p) => {
        const b = budgets.budgetFor(p, tenant);
        const spent = values[i++]!;
        return {
          provider: p,
          period: month.id,
          currency: budgets.currency,
          spent: spent / MICRO,
          persisted: stored(`cost:${p}`, month) / MICRO,
          budget: b.limit < 0 ? null : b.limit / MICRO,
          action: b.action,
          exceeded: b.limit >= 0 && spent >= b.limit,
          resetsAt: new Date(month.endsAt).toISOString(),
        };
      });
      return {
        tenant: tenant.id,
        plan: tenant.plan,
        at: new Date(now).toISOString(),
        source,
        quotas: quotaViews,
        budgets: budgetViews,
      };
    },
  );
}

/**
 * Budgets compiled from the top-level `budgets`, and the budget of one tenant with one provider:
 * the provider's plan budget, else the global plan budget (each with `default`), overridden by the
 * tenant label `budget.<provider>`. Amounts are millionths of the currency unit (integers).
 */
import type { TenantView } from '../policy.js';
import type { BudgetsConfig } from './schema.js';

export const MICRO = 1_000_000;

export type BudgetAction = 'block' | 'alert';

export interface TenantBudget {
  /** Millionths; -1: none. */
  readonly limit: number;
  readonly action: BudgetAction;
}

export interface CompiledBudgets {
  readonly currency: string;
  budgetFor(provider: string, tenant: TenantView): TenantBudget;
  /** Providers named in the config (the admin API lists them even without spend). */
  readonly providers: readonly string[];
}

const toMicro = (n: number) => Math.round(n * MICRO);

/** A label's budget: a non-negative number, or `unlimited`; undefined when absent or invalid. */
function labelBudget(v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  const s = v.trim();
  if (s === 'unlimited') return -1;
  if (!/^[0-9]{1,12}(\.[0-9]{1,6})?$/.test(s)) return undefined;
  return toMicro(Number(s));
}

export function compileBudgets(c: BudgetsConfig | undefined): CompiledBudgets {
  const action: BudgetAction = c?.action ?? 'alert';
  const global = new Map(Object.entries(c?.plans ?? {}).map(([p, v]) => [p, toMicro(v)]));
  const providers = new Map(
    Object.entries(c?.providers ?? {}).map(([name, p]) => [
      name,
      {
        action: p.action ?? action,
        plans: new Map(Object.entries(p.plans ?? {}).map(([k, v]) => [k, toMicro(v)])),
      },
    ]),
  );
  const pick = (plans: ReadonlyMap<string, number>, plan: string | null) =>
    (plan !== null ? plans.get(plan) : undefined) ?? plans.get('default');
  return {
    currency: c?.currency ?? 'USD',
    providers: [...providers.keys()],
    budgetFor(provider, tenant) {
      const p = providers.get(provider);
      const label = labelBudget(tenant.labels?.[`budget.${provider}`]);
      const limit = label ?? (p ? pick(p.plans, tenant.plan) : undefined) ?? pick(global, tenant.plan) ?? -1;
      return { limit, action: p?.action ?? action };
    },
  };
}

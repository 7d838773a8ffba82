import { type Static, Type as T } from '@sinclair/typebox';
import { TOKEN } from '../../config/shared-schema.js';
import { OnRedisError } from '../quota/schema.js';

const ProviderName = T.String({ pattern: '^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$' });
const Action = T.Union([T.Literal('block'), T.Literal('alert')], {
  description:
    '`alert` (default): over budget, emit `budget_exceeded` once per month and count `sluice_budget_exceeded_total`, keep serving. `block`: the same, and refuse further requests with 402 SLUICE-BUDGET-001 until the month ends.',
});
const PlanBudgets = T.Record(T.String({ pattern: '^.{1,100}$' }), T.Number({ minimum: 0 }), {
  description:
    'Monthly budget per tenant plan, in currency units; `default` for tenants whose plan is not listed. No entry: spend is tracked, not limited. A tenant label `budget.<provider>` (a number or `unlimited`) overrides it.',
});

export const BudgetsSettings = T.Object(
  {
    currency: T.Optional(
      T.String({ pattern: '^[A-Z]{3}$', description: 'Shown with amounts; default USD.' }),
    ),
    action: T.Optional(Action),
    plans: T.Optional(PlanBudgets),
    providers: T.Optional(
      T.Record(
        ProviderName,
        T.Object(
          { action: T.Optional(Action), plans: T.Optional(PlanBudgets) },
          { additionalProperties: false },
        ),
        { description: 'Per provider (`cost.provider` of routes): its own action and plan budgets.' },
      ),
    ),
    onRedisError: T.Optional(OnRedisError),
  },
  {
    additionalProperties: false,
    description:
      'Cost budgets per tenant, per provider, per UTC month, on spend counted by routes with `cost`. See docs/quotas.md.',
  },
);

export const RouteCost = T.Object(
  {
    provider: T.Optional({
      ...ProviderName,
      description:
        "Whose spend this is (a budget per tenant and provider); default: the route's upstream group.",
    }),
    perRequest: T.Optional(
      T.Number({ minimum: 0, description: 'Cost of each admitted request, in currency units.' }),
    ),
    perUnit: T.Optional(
      T.Number({
        minimum: 0,
        description: 'Cost per unit of `unitsHeader` in the response, in currency units.',
      }),
    ),
    unitsHeader: T.Optional(
      T.String({
        pattern: TOKEN,
        description:
          'Response header with the units a response used (e.g. `x-tokens-used`); needed with `perUnit`.',
      }),
    ),
  },
  {
    additionalProperties: false,
    description:
      'What requests on this route cost (per tenant; the route needs `auth` or `tenant`). Spend is counted to a millionth of the currency unit.',
  },
);

export type BudgetsConfig = Static<typeof BudgetsSettings>;
export type RouteCostConfig = Static<typeof RouteCost>;

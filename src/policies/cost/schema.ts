import { Type as T } from '@sinclair/typebox';

// Placeholder: the policy's owner replaces it with the real schema (same export names).
export const RouteCost = T.Object(
  {},
  { additionalProperties: false, description: 'Cost of requests on this route. (not built yet)' },
);
export const BudgetsSettings = T.Object(
  {},
  { additionalProperties: false, description: 'Cost budgets per tenant and provider. (not built yet)' },
);

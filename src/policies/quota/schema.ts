import { Type as T } from '@sinclair/typebox';

// Placeholder: the policy's owner replaces it with the real schema (same export names).
export const RouteQuota = T.Object(
  {},
  { additionalProperties: false, description: 'Quotas counted on this route. (not built yet)' },
);
export const QuotasSettings = T.Object(
  {},
  { additionalProperties: false, description: 'Quotas per plan and their persistence. (not built yet)' },
);

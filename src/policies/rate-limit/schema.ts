import { Type as T } from '@sinclair/typebox';

// Placeholder: the policy's owner replaces it with the real schema (same export names).
export const RouteRateLimit = T.Object(
  {},
  { additionalProperties: false, description: 'Rate limits of this route. (not built yet)' },
);
export const LimitsSettings = T.Object(
  {},
  {
    additionalProperties: false,
    description: 'Rate-limit defaults per plan and settings shared by routes. (not built yet)',
  },
);

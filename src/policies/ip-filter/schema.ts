import { Type as T } from '@sinclair/typebox';

// Placeholder: the policy's owner replaces it with the real schema (same export names).
export const RouteIpFilter = T.Object(
  {},
  { additionalProperties: false, description: 'IP allow and deny lists of this route. (not built yet)' },
);

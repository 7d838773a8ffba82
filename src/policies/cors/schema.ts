import { Type as T } from '@sinclair/typebox';

// Placeholder: the policy's owner replaces it with the real schema (same export names).
export const RouteCors = T.Object(
  {},
  { additionalProperties: false, description: 'CORS on this route. (not built yet)' },
);

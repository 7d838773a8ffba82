import { Type as T } from '@sinclair/typebox';

// Placeholder: the policy's owner replaces it with the real schema (same export names).
export const RouteCache = T.Object(
  {},
  { additionalProperties: false, description: 'Response caching on this route. (not built yet)' },
);
export const CacheSettings = T.Object(
  {},
  { additionalProperties: false, description: 'The response cache store. (not built yet)' },
);

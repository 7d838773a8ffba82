import type { PolicyFactory } from '../registry.js';

// Placeholder: the policy's owner replaces it (same export name); a route's `rate-limit` compiles to nothing yet.
export const rateLimitPolicy: PolicyFactory = {
  name: 'rate-limit',
  compile: () => undefined,
};

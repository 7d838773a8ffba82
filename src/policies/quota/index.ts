import type { PolicyFactory } from '../registry.js';

// Placeholder: the policy's owner replaces it (same export name); a route's `quota` compiles to nothing yet.
export const quotaPolicy: PolicyFactory = {
  name: 'quota',
  compile: () => undefined,
};

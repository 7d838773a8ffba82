import type { PolicyFactory } from '../registry.js';

// Placeholder: the policy's owner replaces it (same export name); a route's `cache` compiles to nothing yet.
export const cachePolicy: PolicyFactory = {
  name: 'cache',
  compile: () => undefined,
};

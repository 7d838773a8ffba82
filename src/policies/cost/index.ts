import type { PolicyFactory } from '../registry.js';

// Placeholder: the policy's owner replaces it (same export name); a route's `cost` compiles to nothing yet.
export const costPolicy: PolicyFactory = {
  name: 'cost',
  compile: () => undefined,
};

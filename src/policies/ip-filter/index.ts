import type { PolicyFactory } from '../registry.js';

// Placeholder: the policy's owner replaces it (same export name); a route's `ip-filter` compiles to nothing yet.
export const ipFilterPolicy: PolicyFactory = {
  name: 'ip-filter',
  compile: () => undefined,
};

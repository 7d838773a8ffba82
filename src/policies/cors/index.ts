import type { PolicyFactory } from '../registry.js';

// Placeholder: the policy's owner replaces it (same export name); a route's `cors` compiles to nothing yet.
export const corsPolicy: PolicyFactory = {
  name: 'cors',
  compile: () => undefined,
};

import type { Target } from '../target.js';

/** Picks a target for one request. Balancers that need request data (hashing) get it through `key`. */
export interface Balancer {
  pick(key?: string): Target | undefined;
}

/**
 * The gateway's usage engine (src/usage/engine.ts), as the `quota` and `cost` policies reach it:
 * made on first use from the policy deps and kept across reloads in the gateway's lifetime state.
 */
import { UsageEngine } from '../../usage/engine.js';
import type { PolicyDeps } from '../factory.js';
import { LifetimeKey } from '../lifetime.js';

/** Where the engine sits in the gateway's lifetime state (the admin API reads usage through it). */
export const usageEngineKey = new LifetimeKey<UsageEngine>('usage');

export function usageEngine(deps: PolicyDeps, persistEvery: number): UsageEngine {
  let made = false;
  const e = deps.lifetime.get(usageEngineKey, () => {
    made = true;
    return new UsageEngine({
      redis: deps.redis,
      ledger: deps.usage,
      logger: deps.logger,
      registry: deps.registry,
      persistEvery,
    });
  });
  if (!made) e.configure(persistEvery);
  return e;
}

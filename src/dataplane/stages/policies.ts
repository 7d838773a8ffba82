/**
 * The route's request-phase policies (auth, tenant, IP lists, CORS, limits, quotas, cache ...),
 * compiled once per config version in their documented order (policies/registry.ts). A route
 * without policies pays one comparison. The chain stays synchronous until a policy must wait
 * (policy-chain.ts); a denial or a policy's own reply ends the exchange here.
 */

import { Errors } from '../../errors/codes.js';
import type { RequestVerdict } from '../../policies/policy.js';
import { newRequestContext } from '../context.js';
import type { Exchange } from '../exchange.js';
import { runRequestPolicies } from '../policy-chain.js';
import { answer, refuse } from './reply.js';

/** Run the policies, then `next` (synchronously when no policy had to wait). */
export function applyPolicies(x: Exchange, next: (x: Exchange) => void): void {
  const chain = x.routed.policies;
  if (chain === undefined) {
    next(x);
    return;
  }
  const ctx = newRequestContext(x);
  x.ctx = ctx;
  const v = runRequestPolicies(ctx, chain);
  if (v === undefined) next(x);
  else if (!(v instanceof Promise)) answer(x, v);
  else {
    // Waiting (a signature check, keys being fetched, a Redis round trip): in flight for a drain.
    x.hold();
    v.then(
      (d) => settled(x, d, next),
      (err: unknown) => {
        x.gw.logger.error({ err, requestId: x.requestId, route: x.routed.name }, 'policy failed');
        refuse(x, Errors.internal, undefined);
      },
    );
  }
}

function settled(x: Exchange, d: RequestVerdict, next: (x: Exchange) => void): void {
  if (x.clientGone()) x.finish(499, 0, 'client_closed');
  else if (d === undefined) next(x);
  else answer(x, d);
}

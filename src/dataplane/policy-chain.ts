/**
 * Runs a route's request-phase policies in order. Synchronous policies (an API key lookup, a cached
 * token) never allocate a promise: the chain only turns asynchronous at the first policy that
 * returns one (a token whose signature must be checked, keys being fetched), and continues from
 * the next policy when it settles.
 */
import type { CompiledRoute } from '../config/compile.js';
import type { Policy, RequestContext, RequestVerdict } from '../policies/policy.js';

export function runRequestPolicies(
  ctx: RequestContext,
  policies: readonly Policy[],
  from = 0,
): RequestVerdict | Promise<RequestVerdict> {
  for (let i = from; i < policies.length; i++) {
    const on = policies[i]!.onRequest;
    if (on === undefined) continue;
    const v = on.call(policies[i], ctx);
    if (v === undefined) continue;
    if (v instanceof Promise) {
      const next = i + 1;
      return v.then((d) => (d !== undefined ? d : runRequestPolicies(ctx, policies, next)));
    }
    return v;
  }
  return undefined;
}

/** The `onComplete` phase: after the exchange, never delaying the client. */
export function completePolicies(
  route: CompiledRoute,
  ctx: RequestContext,
  status: number,
  seconds: number,
  error: string | undefined,
): void {
  const ps = route.completePolicies;
  if (ps === undefined) return;
  const outcome = { status, durationMs: seconds * 1000, error };
  for (let i = 0; i < ps.length; i++) ps[i]!.onComplete!(ctx, outcome);
}

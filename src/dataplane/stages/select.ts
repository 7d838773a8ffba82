/**
 * Target selection: the route's upstream group (the active one of its failover order, precomputed
 * on health changes: one read per request), then the group's balancer. With no target to offer,
 * the route's `fallback` answers (a static reply or another group), else 503: circuit open or no
 * target. On a released route the version stage (version.ts) has chosen the group already.
 */
import { Errors } from '../../errors/codes.js';
import type { Exchange } from '../exchange.js';
import { refuse, sendFallback } from './reply.js';

/** True when a target was picked (`x.target`); otherwise the exchange has been answered. */
export function selectTarget(x: Exchange): boolean {
  const route = x.routed;
  // Only proxied routes get here (an `ofrep` route, the only one without an upstream, answers before).
  let group = x.version ?? (route.failover === undefined ? route.upstream! : route.failover.active);
  let target = group.pick(x.req);
  if (target === undefined) {
    // Only on this path, so a healthy upstream costs nothing more.
    const fb = route.fallback;
    if (fb !== undefined) {
      if (fb.kind === 'static') {
        sendFallback(x, fb);
        return false;
      }
      group = fb.group;
      target = group.pick(x.req);
    }
    if (target === undefined) {
      const open = group.circuitOpen;
      refuse(
        x,
        open ? Errors.circuitOpen : Errors.noTarget,
        `upstream "${group.name}"`,
        open ? { 'retry-after': String(group.retryAfter) } : undefined,
      );
      return false;
    }
  }
  x.target = target;
  return true;
}

/**
 * What keeps the console's stream and lists bounded whatever the size of the config: a tick carries
 * the busiest few routes and upstreams plus the totals (never one entry per route: a 1000-route
 * gateway would send and draw 1000 rows a second). Route states and groups are bounded the same
 * way (lists.ts), and the views read every route and group a page at a time (console-lists.ts).
 */
import type { RouteTraffic, TrafficFigures, UpstreamTraffic } from './traffic.js';

/** How many routes and upstreams a tick carries at most. */
export const TICK_TOP = 20;

/** Busiest first (requests, then 5xx), then by name: stable from tick to tick when idle. */
export function busiestFirst<T extends TrafficFigures>(name: (x: T) => string) {
  return (a: T, b: T) => b.requests - a.requests || b.errorRps - a.errorRps || name(a).localeCompare(name(b));
}
export const routeName = (r: RouteTraffic) => `${r.route}\u0000${r.upstream}`;
export const upstreamName = (u: UpstreamTraffic) => u.upstream;

/** The whole gateway over the interval: the sum over every (route, upstream) pair. */
export function totals(routes: readonly RouteTraffic[], seconds: number) {
  let requests = 0;
  let errors = 0;
  for (const r of routes) {
    requests += r.requests;
    errors += r.errorRatio === null ? 0 : Math.round(r.errorRatio * r.requests);
  }
  return {
    requests,
    rps: seconds > 0 ? requests / seconds : 0,
    errorRps: seconds > 0 ? errors / seconds : 0,
    errorRatio: requests > 0 ? errors / requests : null,
  };
}

/** The first `n` after sorting, without sorting the input. */
export function top<T>(list: readonly T[], n: number, order: (a: T, b: T) => number): T[] {
  return [...list].sort(order).slice(0, n);
}

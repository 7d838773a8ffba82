/**
 * The console's long lists (every route, every upstream group) as pages the server cuts, searched
 * on the server, and the bounded state half of a tick. A 1000-route gateway must neither send
 * 1000 route states a second to every open console nor make a browser draw 1000 rows: the tick
 * carries counts and the few routes and groups in trouble, and the views read the page they show.
 */
import type { RouteTraffic, TrafficFigures, UpstreamTraffic } from './traffic.js';

/** A page of a list and how many match in all. */
export interface Page<T> {
  total: number;
  offset: number;
  limit: number;
  items: T[];
}

export const LIST_DEFAULT = 50;
export const LIST_MAX = 200;

/** Case-insensitive "contains" on any of the strings a row is known by; an empty query matches all. */
export function matcher(q: string | undefined): (...names: string[]) => boolean {
  const needle = (q ?? '').trim().toLowerCase();
  if (needle === '') return () => true;
  return (...names) => names.some((n) => n.toLowerCase().includes(needle));
}

/** Names in the order people count them: route-2 before route-10. */
export const byName = (a: string, b: string) => a.localeCompare(b, 'en', { numeric: true });

export function pageOf<T>(rows: readonly T[], offset: number, limit: number): Page<T> {
  return { total: rows.length, offset, limit, items: rows.slice(offset, offset + limit) };
}

type Figures = TrafficFigures;

/**
 * The figures of the sampler's latest tick, every route and upstream of it (the tick itself carries
 * only the busiest): what the paged lists show beside each row. Stale figures (no console has the
 * stream open, so the sampler stopped) are not shown as if they were current.
 */
export class LatestTraffic {
  private at: number | undefined;
  private iso: string | null = null;
  private interval: number | null = null;
  private routes = new Map<string, (Figures & { upstream: string })[]>();
  private upstreams = new Map<string, Figures>();

  constructor(
    /** Figures older than this are dropped (a few ticks). */
    private readonly maxAgeMs: number,
  ) {}

  set(
    at: string,
    intervalMs: number,
    routes: readonly RouteTraffic[],
    upstreams: readonly UpstreamTraffic[],
  ) {
    this.at = Date.now();
    this.iso = at;
    this.interval = intervalMs;
    const byRoute = new Map<string, (Figures & { upstream: string })[]>();
    for (const { route, ...rest } of routes) {
      const list = byRoute.get(route);
      if (list) list.push(rest);
      else byRoute.set(route, [rest]);
    }
    this.routes = byRoute;
    this.upstreams = new Map(upstreams.map(({ upstream, ...rest }) => [upstream, rest]));
  }

  private get fresh(): boolean {
    return this.at !== undefined && Date.now() - this.at <= this.maxAgeMs;
  }

  /** When the figures were taken and over how long; nulls when there are none. */
  get when(): { at: string | null; intervalMs: number | null } {
    return this.fresh ? { at: this.iso, intervalMs: this.interval } : { at: null, intervalMs: null };
  }

  route(name: string): (Figures & { upstream: string })[] {
    return (this.fresh && this.routes.get(name)) || [];
  }

  upstream(name: string): Figures | null {
    return (this.fresh && this.upstreams.get(name)) || null;
  }
}

/** What a tick says of route states and groups: counts, and the ones in trouble (at most `n`). */
export function boundedStates<
  R extends { serving: boolean },
  G extends { available: number; circuitOpen: boolean; targets: readonly unknown[] },
>(routeStates: readonly R[], groups: readonly G[], n: number) {
  const degraded = (g: G) => g.circuitOpen || g.available < g.targets.length;
  const notServing = routeStates.filter((r) => !r.serving);
  const troubled = groups.filter(degraded);
  return {
    routeStateCount: routeStates.length,
    routesNotServing: notServing.length,
    // Small configs get every entry, as before; large ones only those not serving.
    routeStates: routeStates.length <= n ? [...routeStates] : notServing.slice(0, n),
    groupCount: groups.length,
    groupsDegraded: troubled.length,
    groups: groups.length <= n ? [...groups] : troubled.slice(0, n),
  };
}

/**
 * Live traffic figures for the console, from the gateway's own Prometheus registry: the request
 * counter (`sluice_requests_total`, by route, upstream and status class) and the latency histogram
 * (`sluice_request_duration_seconds`). The data plane does nothing new: the console reads the values
 * prom-client already keeps, once per tick, and works out rates and quantiles from the difference
 * between two reads (as Prometheus' `rate` and `histogram_quantile` would over that interval).
 */
import type { Registry } from 'prom-client';
import { REQUEST_DURATION_BUCKETS } from '../telemetry/request-buckets.js';
import { quantile } from './quantile.js';

/** The counters of one (route, upstream) pair at one read. */
interface Series {
  route: string;
  upstream: string;
  /** Requests by status class, index 0 = 1xx … 4 = 5xx. */
  classes: number[];
  /** Cumulative bucket counts, one per edge of REQUEST_DURATION_BUCKETS, then +Inf. */
  buckets: number[];
}

export interface Reading {
  /** performance.now() of the read. */
  at: number;
  series: Map<string, Series>;
}

/** What one (route, upstream) pair, or one upstream over all its routes, did during the interval. */
export interface TrafficFigures {
  /** Requests answered in the interval. */
  requests: number;
  /** Requests per second. */
  rps: number;
  /** 5xx answers per second. */
  errorRps: number;
  /** 5xx answers / requests; null without requests. */
  errorRatio: number | null;
  /** Latency quantiles in milliseconds; null without requests. */
  p50: number | null;
  p95: number | null;
  p99: number | null;
}

export interface RouteTraffic extends TrafficFigures {
  route: string;
  upstream: string;
}

export interface UpstreamTraffic extends TrafficFigures {
  upstream: string;
}

const EDGES = REQUEST_DURATION_BUCKETS;
const CLASS_INDEX: Record<string, number> = { '1xx': 0, '2xx': 1, '3xx': 2, '4xx': 3, '5xx': 4 };
const edgeIndex = new Map<number, number>(EDGES.map((e, i) => [e, i]));
const key = (route: string, upstream: string) => `${route}\u0000${upstream}`;

function series(map: Map<string, Series>, route: string, upstream: string): Series {
  const k = key(route, upstream);
  let s = map.get(k);
  if (!s) {
    s = { route, upstream, classes: [0, 0, 0, 0, 0], buckets: new Array(EDGES.length + 1).fill(0) };
    map.set(k, s);
  }
  return s;
}

/** Reads the two metrics' current values (what /metrics would print, without the text). */
export async function readTraffic(registry: Registry): Promise<Reading> {
  const map = new Map<string, Series>();
  const requests = await registry.getSingleMetric('sluice_requests_total')?.get();
  for (const v of requests?.values ?? []) {
    const { route, upstream, class: cls } = v.labels as Record<string, string>;
    const i = CLASS_INDEX[cls ?? ''];
    if (route === undefined || upstream === undefined || i === undefined) continue;
    series(map, route, upstream).classes[i] = v.value;
  }
  const duration = await registry.getSingleMetric('sluice_request_duration_seconds')?.get();
  for (const v of duration?.values ?? []) {
    const m = v as typeof v & { metricName?: string };
    if (!m.metricName?.endsWith('_bucket')) continue;
    const { route, upstream, le } = v.labels as Record<string, string | number>;
    if (route === undefined || upstream === undefined || le === undefined) continue;
    const i = le === '+Inf' ? EDGES.length : edgeIndex.get(Number(le));
    if (i === undefined) continue;
    series(map, String(route), String(upstream)).buckets[i] = v.value;
  }
  return { at: performance.now(), series: map };
}

/** Counts added since the previous read; a counter that went down (a restart of it) counts from 0. */
const grown = (now: number, before: number) => (now >= before ? now - before : now);

interface Delta {
  classes: number[];
  /** Per bucket, not cumulative. */
  counts: number[];
}

function delta(now: Series, before: Series | undefined): Delta {
  const classes = now.classes.map((v, i) => grown(v, before?.classes[i] ?? 0));
  const cumulative = now.buckets.map((v, i) => grown(v, before?.buckets[i] ?? 0));
  const counts = cumulative.map((v, i) => Math.max(0, v - (i === 0 ? 0 : cumulative[i - 1]!)));
  return { classes, counts };
}

function figures(d: Delta, seconds: number): TrafficFigures {
  const requests = d.classes.reduce((a, b) => a + b, 0);
  const errors = d.classes[4] ?? 0;
  const ms = (q: number) => {
    const s = quantile(q, EDGES, d.counts);
    return s === null ? null : Math.round(s * 1e6) / 1e3;
  };
  return {
    requests,
    rps: seconds > 0 ? requests / seconds : 0,
    errorRps: seconds > 0 ? errors / seconds : 0,
    errorRatio: requests > 0 ? errors / requests : null,
    p50: ms(0.5),
    p95: ms(0.95),
    p99: ms(0.99),
  };
}

/** The figures of the interval between two reads, per (route, upstream) and per upstream. */
export function trafficBetween(
  before: Reading,
  now: Reading,
): { intervalMs: number; routes: RouteTraffic[]; upstreams: UpstreamTraffic[] } {
  const seconds = (now.at - before.at) / 1000;
  const routes: RouteTraffic[] = [];
  const perUpstream = new Map<string, Delta>();
  for (const [k, s] of now.series) {
    const d = delta(s, before.series.get(k));
    routes.push({ route: s.route, upstream: s.upstream, ...figures(d, seconds) });
    const u = perUpstream.get(s.upstream);
    if (!u) perUpstream.set(s.upstream, { classes: [...d.classes], counts: [...d.counts] });
    else {
      d.classes.forEach((v, i) => {
        u.classes[i]! += v;
      });
      d.counts.forEach((v, i) => {
        u.counts[i]! += v;
      });
    }
  }
  routes.sort((a, b) => a.route.localeCompare(b.route) || a.upstream.localeCompare(b.upstream));
  const upstreams = [...perUpstream]
    .map(([upstream, d]) => ({ upstream, ...figures(d, seconds) }))
    .sort((a, b) => a.upstream.localeCompare(b.upstream));
  return { intervalMs: Math.round(seconds * 1000), routes, upstreams };
}

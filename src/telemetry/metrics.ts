/**
 * Prometheus metrics (prom-client), one registry per Gateway so several gateways can share a process.
 * Label children are resolved once per route at compile time; the hot path only calls inc/observe.
 */

import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';
import type { JwksMetricsSink } from '../identity/jwt/jwks.js';
import { REQUEST_DURATION_BUCKETS } from './request-buckets.js';
import { TenantMetrics } from './tenant-metrics.js';

const classes = ['1xx', '2xx', '3xx', '4xx', '5xx'] as const;

/** A concurrency limiter's metric children (src/dataplane/concurrency.ts counts on them). */
export interface LimiterMetrics {
  readonly rejections: Counter.Internal;
  readonly queued: Gauge.Internal<string>;
}

export interface RouteMetrics {
  /** Indexed by status / 100 (1..5). */
  readonly requests: readonly (Counter.Internal | undefined)[];
  readonly duration: Histogram.Internal<string>;
}

export class Metrics {
  readonly registry = new Registry();
  /** When the registry's counters started (the start time of the OTLP export's cumulative sums). */
  readonly createdAt = Date.now();
  private readonly requests: Counter<'route' | 'upstream' | 'class'>;
  private readonly duration: Histogram<'route' | 'upstream'>;
  readonly upstreamErrors: Counter<'upstream' | 'kind'>;
  readonly refusals: Counter<'code'>;
  readonly configInfo: Gauge<'version'>;
  readonly reloads: Counter<'result'>;
  readonly inflight: Gauge;
  readonly connections: Gauge;
  readonly websockets: Gauge;
  readonly targetHealthy: Gauge<'upstream' | 'target'>;
  readonly ejections: Counter<'upstream' | 'target'>;
  readonly breakerState: Gauge<'upstream' | 'target'>;
  readonly failovers: Counter<'route' | 'from' | 'to'>;
  readonly activeUpstream: Gauge<'route' | 'upstream'>;
  readonly concurrencyRejections: Counter<'scope' | 'name'>;
  readonly concurrencyQueued: Gauge<'scope' | 'name'>;
  readonly retries: Counter<'route' | 'reason'>;
  readonly retryBudgetExhausted: Counter<'route'>;
  readonly grpcResponses: Counter<'route' | 'service' | 'code'>;
  readonly snapshotErrors: Counter;
  private readonly jwksFetches: Counter<'issuer' | 'result'>;
  private readonly jwksUnknownKid: Counter<'issuer' | 'outcome'>;
  private readonly jwksKeys: Gauge<'issuer'>;
  private readonly jwksStale: Gauge<'issuer'>;
  private readonly jwksLastSuccess: Gauge<'issuer'>;
  private readonly snapshotInfo: Gauge<'what'>;
  /** Per-tenant series for `metrics.tenants.allow` (src/telemetry/tenant-metrics.ts). */
  readonly tenants: TenantMetrics;

  constructor(defaultMetrics = true) {
    const r = this.registry;
    this.requests = new Counter({
      name: 'sluice_requests_total',
      help: 'Requests proxied, by route, upstream and status class.',
      labelNames: ['route', 'upstream', 'class'],
      registers: [r],
    });
    this.duration = new Histogram({
      name: 'sluice_request_duration_seconds',
      help: 'Time from request received to response complete, by route and upstream.',
      labelNames: ['route', 'upstream'],
      buckets: [...REQUEST_DURATION_BUCKETS],
      registers: [r],
    });
    this.upstreamErrors = new Counter({
      name: 'sluice_upstream_errors_total',
      help: 'Upstream failures by upstream and kind (connect, timeout_connect, timeout_first_byte, timeout_idle, timeout_total, reset).',
      labelNames: ['upstream', 'kind'],
      registers: [r],
    });
    this.refusals = new Counter({
      name: 'sluice_refusals_total',
      help: 'Requests refused by Sluice itself, by problem code.',
      labelNames: ['code'],
      registers: [r],
    });
    this.configInfo = new Gauge({
      name: 'sluice_config_info',
      help: 'The running configuration version (value is always 1).',
      labelNames: ['version'],
      registers: [r],
    });
    this.reloads = new Counter({
      name: 'sluice_config_reloads_total',
      help: 'Configuration reloads by result (applied, unchanged, rejected).',
      labelNames: ['result'],
      registers: [r],
    });
    this.inflight = new Gauge({
      name: 'sluice_requests_in_flight',
      help: 'Requests being proxied now.',
      registers: [r],
    });
    this.connections = new Gauge({
      name: 'sluice_client_connections',
      help: 'Open client connections.',
      registers: [r],
    });
    this.websockets = new Gauge({
      name: 'sluice_websockets_open',
      help: 'Upgraded (WebSocket) connections open now.',
      registers: [r],
    });
    this.targetHealthy = new Gauge({
      name: 'sluice_upstream_target_healthy',
      help: 'Whether a target can be picked (1) or is down by health checks or ejected (0); groups with healthCheck or outlier only.',
      labelNames: ['upstream', 'target'],
      registers: [r],
    });
    this.ejections = new Counter({
      name: 'sluice_upstream_ejections_total',
      help: 'Outlier ejections of a target (consecutive failures of real requests).',
      labelNames: ['upstream', 'target'],
      registers: [r],
    });
    this.breakerState = new Gauge({
      name: 'sluice_breaker_state',
      help: 'Circuit breaker of a target: 0 closed, 1 open, 2 half-open; upstreams with `breaker` only.',
      labelNames: ['upstream', 'target'],
      registers: [r],
    });
    this.failovers = new Counter({
      name: 'sluice_failover_total',
      help: 'Switches of a route between its upstream groups (failover and failback).',
      labelNames: ['route', 'from', 'to'],
      registers: [r],
    });
    this.activeUpstream = new Gauge({
      name: 'sluice_route_active_upstream',
      help: 'For routes with `failover`: 1 for the upstream group requests go to now, 0 for the others.',
      labelNames: ['route', 'upstream'],
      registers: [r],
    });
    this.concurrencyRejections = new Counter({
      name: 'sluice_concurrency_rejections_total',
      help: 'Requests answered 503 by a concurrency limit (queue full or queue timeout), by scope (route, target) and name (route name, or upstream#index for a target).',
      labelNames: ['scope', 'name'],
      registers: [r],
    });
    this.concurrencyQueued = new Gauge({
      name: 'sluice_concurrency_queued',
      help: 'Requests waiting now in a concurrency-limit queue, by scope (route, target) and name.',
      labelNames: ['scope', 'name'],
      registers: [r],
    });
    this.retries = new Counter({
      name: 'sluice_retries_total',
      help: 'Retries of a failed try on another target, by route and reason (connect, reset, timeout, or the status).',
      labelNames: ['route', 'reason'],
      registers: [r],
    });
    this.retryBudgetExhausted = new Counter({
      name: 'sluice_retry_budget_exhausted_total',
      help: 'Failures passed on without a retry because the route’s retry budget was spent.',
      labelNames: ['route'],
      registers: [r],
    });
    this.grpcResponses = new Counter({
      name: 'sluice_grpc_responses_total',
      help: 'gRPC answers on routes with `grpc`, by route, service (a declared one, else other) and grpc-status name (OK, UNAVAILABLE, ...).',
      labelNames: ['route', 'service', 'code'],
      registers: [r],
    });
    this.snapshotErrors = new Counter({
      name: 'sluice_tenancy_snapshot_errors_total',
      help: 'Failed reloads of the tenancy snapshot (the last good one keeps serving).',
      registers: [r],
    });
    this.snapshotInfo = new Gauge({
      name: 'sluice_tenancy_snapshot',
      help: 'The tenancy snapshot in use: version (loads so far), loaded_at (epoch seconds), tenants, keys.',
      labelNames: ['what'],
      registers: [r],
    });
    this.jwksFetches = new Counter({
      name: 'sluice_jwks_fetches_total',
      help: 'Key-set (JWKS) fetches of token issuers, by result (ok, error, timeout, invalid).',
      labelNames: ['issuer', 'result'],
      registers: [r],
    });
    this.jwksUnknownKid = new Counter({
      name: 'sluice_jwks_unknown_kid_total',
      help: 'Tokens naming a key id not in the set: refetch started, joined one under way, or rate-limited.',
      labelNames: ['issuer', 'outcome'],
      registers: [r],
    });
    this.jwksKeys = new Gauge({
      name: 'sluice_jwks_keys',
      help: 'Usable keys in the cached key set of each issuer.',
      labelNames: ['issuer'],
      registers: [r],
    });
    this.jwksStale = new Gauge({
      name: 'sluice_jwks_stale',
      help: '1 while an issuer’s key set is past its lifetime and kept only because refreshing failed (stale-if-error).',
      labelNames: ['issuer'],
      registers: [r],
    });
    this.jwksLastSuccess = new Gauge({
      name: 'sluice_jwks_last_success_seconds',
      help: 'When the key set of each issuer was last fetched successfully (epoch seconds).',
      labelNames: ['issuer'],
      registers: [r],
    });
    this.tenants = new TenantMetrics(r);
    if (defaultMetrics) collectDefaultMetrics({ register: r, prefix: 'sluice_process_' });
  }

  /** What the JWKS caches report, as metrics. */
  jwksSink(): JwksMetricsSink {
    return {
      fetch: (issuer, result) => this.jwksFetches.labels(issuer, result).inc(),
      unknownKid: (issuer, outcome) => this.jwksUnknownKid.labels(issuer, outcome).inc(),
      state: (issuer, st) => {
        this.jwksKeys.labels(issuer).set(st.keys);
        this.jwksStale.labels(issuer).set(st.stale ? 1 : 0);
        if (st.lastSuccessMs > 0) this.jwksLastSuccess.labels(issuer).set(st.lastSuccessMs / 1000);
      },
    };
  }

  snapshotLoaded(version: number, loadedAtMs: number, tenants: number, keys: number): void {
    const g = this.snapshotInfo;
    g.labels('version').set(version);
    g.labels('loaded_at').set(loadedAtMs / 1000);
    g.labels('tenants').set(tenants);
    g.labels('keys').set(keys);
  }

  forRoute(route: string, upstream: string): RouteMetrics {
    return {
      requests: [undefined, ...classes.map((c) => this.requests.labels(route, upstream, c))],
      duration: this.duration.labels(route, upstream),
    };
  }

  forLimiter(scope: 'route' | 'target', name: string): LimiterMetrics {
    return {
      rejections: this.concurrencyRejections.labels(scope, name),
      queued: this.concurrencyQueued.labels(scope, name),
    };
  }

  setConfigVersion(version: string): void {
    this.configInfo.reset();
    this.configInfo.labels(version).set(1);
  }
}

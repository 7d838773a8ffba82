/**
 * One bus for what happens in the gateway that others care about later: auth failures, admin
 * changes, breaches, switches. Producers emit and never know who listens; the audit log, metrics
 * and the console subscribe. Listeners run synchronously on emit, so each must only queue its work:
 * a slow sink must never slow the request that caused the event.
 */

export interface AuthFailedEvent {
  type: 'auth_failed';
  at: string;
  requestId: string;
  route: string;
  /** Stable error code of the refusal (SLUICE-AUTH-..., SLUICE-TENANT-...). */
  code: string;
  /** Why, in one word: expired, bad-signature, revoked, suspended, ... */
  reason: string;
  /** Client address (after trusted proxies). */
  client: string;
  /** What identified the caller, when anything did: an API key id or a token's issuer and subject. Never a secret. */
  principal?: string;
  tenant?: string;
}

export interface AdminChangeEvent {
  type: 'admin_change';
  at: string;
  actor: string;
  role: string;
  action: string;
  target: string;
  before: unknown;
  after: unknown;
}

/** A tenant was refused by a quota: once per tenant, quota and period (across replicas with Redis). */
export interface QuotaExceededEvent {
  type: 'quota_exceeded';
  at: string;
  requestId: string;
  route: string;
  tenant: string;
  quota: string;
  period: 'day' | 'month';
  /** The period's id, `2026-11-24` or `2026-11` (UTC). */
  periodId: string;
  limit: number;
  used: number;
  /** When the period resets (ISO 8601). */
  resetsAt: string;
}

/** A tenant's spend with a provider reached its budget this month: once per tenant, provider and month. */
export interface BudgetExceededEvent {
  type: 'budget_exceeded';
  at: string;
  tenant: string;
  provider: string;
  /** `2026-11` (UTC month). */
  periodId: string;
  /** In currency units (`budgets.currency`). */
  budget: number;
  spent: number;
  /** `block`: further requests are refused (402); `alert`: only this event and the metric. */
  action: 'block' | 'alert';
  route: string;
  requestId: string;
}

/** A request refused by a rate limit (429 SLUICE-LIMIT-001): one event per refusal. */
export interface LimitBreachedEvent {
  type: 'limit_breached';
  at: string;
  requestId: string;
  route: string;
  /** The limit that refused (the one with the longest wait, when several did). */
  limit: string;
  /** The counter's key values, e.g. `{acme}|orders` (ids, addresses, values of headers named in config). */
  key: string;
  /** Requests per window of that limit, and the window in ms. */
  quota: number;
  windowMs: number;
  /** When the request would be allowed, ms. */
  retryAfterMs: number;
  /** Decided by Redis, or by this process (no Redis, or the fallback while Redis is unavailable). */
  source: 'redis' | 'local';
  client: string;
  principal?: string;
  tenant?: string;
}

/** A release moved or was judged (the driver's decisions and people's actions): one per decision. */
export interface ReleaseDecisionEvent {
  type: 'release_decision';
  at: string;
  release: string;
  run: number;
  /** start, advance, promote, rollback, pause, resume, abort, hold. */
  action: string;
  step: number;
  weight: number;
  verdict?: string;
  reason: string;
  actor: string;
}

/**
 * A request on a residency-bound route was refused rather than placed outside the tenant's allowed
 * regions (SLUICE-RESIDENCY-001), or because it had no tenant (SLUICE-RESIDENCY-002): one per refusal.
 */
export interface ResidencyRefusedEvent {
  type: 'residency_refused';
  at: string;
  requestId: string;
  route: string;
  code: string;
  /** `no_tenant`, `no_region` (the tenant has none), `no_target` (none available in its regions). */
  reason: 'no_tenant' | 'no_region' | 'no_target';
  /** The tenant's allowed regions, home region first (empty without a tenant or region). */
  regions: readonly string[];
  client: string;
  tenant?: string;
  principal?: string;
}

/**
 * A request on a placement-bound route (`placement`) was refused rather than placed outside the
 * tenant's placement (SLUICE-PLACEMENT-001), or because it had no tenant (SLUICE-PLACEMENT-002):
 * one per refusal. (On a route with residency too, a tenant whose regions have no target at all is
 * a `residency_refused`; this one means the regions have targets, but none of its placement.)
 */
export interface PlacementRefusedEvent {
  type: 'placement_refused';
  at: string;
  requestId: string;
  route: string;
  code: string;
  /** `no_tenant`, `no_label` (the tenant lacks a key's label), `no_target` (none available in its placement). */
  reason: 'no_tenant' | 'no_label' | 'no_target';
  /** The tenant's values per placement key (`{ shard: ['s1'] }`; `region` too on a residency-bound route). */
  placement: Readonly<Record<string, readonly string[]>>;
  client: string;
  tenant?: string;
  principal?: string;
}

/**
 * A route's latency, error ratio or cost per request rose above its learned baseline for
 * `intervals` consecutive intervals (src/anomaly/): once per anomaly, until `anomaly_ended`.
 */
export interface AnomalyStartedEvent {
  type: 'anomaly_started';
  at: string;
  route: string;
  upstream: string;
  signal: 'latency' | 'errors' | 'cost';
  /** `ms`, `ratio` or `currency/request`. */
  unit: string;
  /** The interval that started it, the baseline's EWMA mean and deviation, and the threshold. */
  value: number;
  baseline: number;
  deviation: number;
  threshold: number;
  intervals: number;
  intervalMs: number;
  /** The configured `anomaly.action` of the series, when it has one (./anomaly/actions.ts acts on it). */
  action?: 'failover' | 'rollback';
}

/** The anomaly's signal was back under the threshold for the configured run of intervals. */
export interface AnomalyEndedEvent {
  type: 'anomaly_ended';
  at: string;
  route: string;
  upstream: string;
  signal: 'latency' | 'errors' | 'cost';
  unit: string;
  value: number;
  baseline: number;
  /** The worst interval of the anomaly. */
  peak: number;
  durationMs: number;
}

/**
 * What an anomaly's `action` did (src/anomaly/actions.ts): `failover` applied at the start (the
 * route's traffic left the group) and lifted at the end; `rollback` applied (the release aborted,
 * which is also a `release_decision`); `skipped` when there was nothing to act on, `failed` when
 * the store refused.
 */
export interface AnomalyActionEvent {
  type: 'anomaly_action';
  at: string;
  route: string;
  upstream: string;
  signal: 'latency' | 'errors' | 'cost';
  action: 'failover' | 'rollback';
  outcome: 'applied' | 'lifted' | 'skipped' | 'failed';
  /** In words: the groups switched between, the release aborted, or why nothing was done. */
  detail: string;
  /** `rollback`: the release aborted (or that would have been). */
  release?: string;
  /** `failover`: the group the route's requests go to after the action. */
  active?: string;
}

export type GatewayEvent =
  | AnomalyStartedEvent
  | AnomalyActionEvent
  | AnomalyEndedEvent
  | ReleaseDecisionEvent
  | ResidencyRefusedEvent
  | PlacementRefusedEvent
  | AuthFailedEvent
  | AdminChangeEvent
  | QuotaExceededEvent
  | BudgetExceededEvent
  | LimitBreachedEvent;

export type EventListener = (e: GatewayEvent) => void;

export class EventBus {
  private listeners: EventListener[] = [];

  /** Subscribe; returns the function that unsubscribes. */
  on(fn: EventListener): () => void {
    this.listeners = [...this.listeners, fn];
    return () => {
      this.listeners = this.listeners.filter((l) => l !== fn);
    };
  }

  emit(e: GatewayEvent): void {
    // Copy-on-write list: a listener that unsubscribes during emit does not skip another.
    const ls = this.listeners;
    for (let i = 0; i < ls.length; i++) {
      try {
        ls[i]!(e);
      } catch {
        // A listener's bug must not fail the request that emitted the event.
      }
    }
  }
}

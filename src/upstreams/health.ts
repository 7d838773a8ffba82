/**
 * Target health: active checks (probes on a timer) and passive outlier ejection (outcomes of real
 * exchanges), as two small concepts that meet in one record per target.
 *
 * The records live in a registry owned by the Gateway, outside the compiled Runtime, keyed by
 * upstream name and target origin (as pools are keyed by origin): a reload that keeps a target
 * keeps its health, so a reload never resets a down target to healthy or the other way round.
 * A compiled group acquires the records of its targets and releases them when it is disposed; the
 * last release forgets the record (the target left the config).
 *
 * The balancers never see health: a group rebuilds its balancer over the available targets when a
 * record changes (a rare event), so picking costs nothing extra per request.
 */
import type { Logger } from 'pino';
import { ms } from '../config/units.js';
import type { Metrics } from '../telemetry/metrics.js';
import type { BreakerConfig, HealthCheckConfig, OutlierConfig } from './schema.js';
import type { Target } from './target.js';

export interface ActiveSettings {
  path: string;
  /** Inclusive [from, to] pairs. */
  statuses: readonly (readonly [number, number])[];
  interval: number;
  timeout: number;
  healthyThreshold: number;
  unhealthyThreshold: number;
  jitter: number;
}

export interface OutlierSettings {
  consecutiveFailures: number;
  baseEjection: number;
  maxEjection: number;
  maxEjectedPercent: number;
}

export interface BreakerSettings {
  errorRate: number;
  window: number;
  minRequests: number;
  consecutiveFailures: number;
  openFor: number;
  halfOpenRequests: number;
}

export function breakerSettings(c: BreakerConfig): BreakerSettings {
  return {
    errorRate: c.errorRate ?? 0.5,
    window: ms(c.window, 10_000),
    minRequests: c.minRequests ?? 20,
    consecutiveFailures: c.consecutiveFailures ?? 5,
    openFor: ms(c.openFor, 30_000),
    halfOpenRequests: c.halfOpenRequests ?? 1,
  };
}

/** Circuit breaker states (also the values of the sluice_breaker_state gauge). */
export const CLOSED = 0;
export const OPEN = 1;
export const HALF_OPEN = 2;
const stateNames = ['closed', 'open', 'half_open'] as const;
/** Buckets of the rolling window: outcomes older than the window drop out a tenth at a time. */
const BUCKETS = 10;

export function activeSettings(c: HealthCheckConfig): ActiveSettings {
  const interval = ms(c.interval, 5_000);
  return {
    path: c.path,
    statuses: (c.expectedStatuses ?? ['200-399']).map((s) => {
      const [a, b] = s.split('-');
      return [Number(a), Number(b ?? a)] as const;
    }),
    interval,
    timeout: ms(c.timeout, 2_000),
    healthyThreshold: c.healthyThreshold ?? 2,
    unhealthyThreshold: c.unhealthyThreshold ?? 3,
    jitter: ms(c.jitter, Math.round(interval / 10)),
  };
}

export function outlierSettings(c: OutlierConfig): OutlierSettings {
  return {
    consecutiveFailures: c.consecutiveFailures ?? 5,
    baseEjection: ms(c.baseEjection, 30_000),
    maxEjection: ms(c.maxEjection, 300_000),
    maxEjectedPercent: c.maxEjectedPercent ?? 50,
  };
}

/** Outcomes that are the client's doing and say nothing about the target. */
function clientSide(kind: string): boolean {
  return kind === 'client_closed' || kind === 'body_too_large' || kind === 'client_body_timeout';
}

/** The health of one target of one upstream group. Survives reloads while the target stays. */
export class TargetHealth {
  /** Active checks: false after `unhealthyThreshold` failed probes, true again after `healthyThreshold` good ones. */
  activeUp = true;
  ejected = false;
  ejectedUntil = 0;
  /** Ejections so far (the ejection time is base × this, capped). */
  ejections = 0;
  /** Consecutive failed exchanges (passive). */
  failures = 0;
  okRun = 0;
  failRun = 0;
  lastProbe: { at: number; ok: boolean; detail: string } | undefined;
  refs = 0;
  private unejectTimer: NodeJS.Timeout | undefined;
  private unejectedAt = 0;
  /**
   * Circuit breaker. Not opossum: it wraps a promise-returning call with timers and closures per
   * call, while an exchange here is an undici dispatch handler that reports its outcome once in
   * ProxyExchange.finish. This breaker counts those reports in preallocated buckets (a rolling
   * window), so it costs a few integer operations per request and allocates nothing.
   */
  breaker = CLOSED;
  private readonly total = new Uint32Array(BUCKETS);
  private readonly failed = new Uint32Array(BUCKETS);
  /** Absolute bucket number (time / bucket width) of the newest bucket written. */
  private bucketAt = 0;
  /** Sums over the buckets, kept as buckets are cleared, so the rate check is O(1). */
  private sumTotal = 0;
  private sumFailed = 0;
  private consecutive = 0;
  /** Half-open: trial requests let through, and how many of them succeeded. */
  private trials = 0;
  private trialOks = 0;
  private breakerTimer: NodeJS.Timeout | undefined;

  constructor(
    readonly group: GroupHealth,
    readonly origin: string,
  ) {}

  /**
   * Not to be picked: down by active checks or ejected. Each counts only while its settings are in
   * the config, so removing `healthCheck` or `outlier` on reload puts the target back at once.
   */
  get down(): boolean {
    const g = this.group;
    return (
      (!this.activeUp && g.active !== undefined) ||
      (this.ejected && g.outlier !== undefined) ||
      this.breakerOut
    );
  }

  /**
   * Out because of the breaker: open, or half-open with every trial request already let through
   * (the target comes back or stays out on their outcomes).
   */
  get breakerOut(): boolean {
    const b = this.group.breaker;
    if (b === undefined) return false;
    return this.breaker === OPEN || (this.breaker === HALF_OPEN && this.trials >= b.halfOpenRequests);
  }

  /** A half-open target was picked: one trial request goes through (the group calls this). */
  trial(): void {
    const b = this.group.breaker;
    if (b === undefined || this.breaker !== HALF_OPEN) return;
    if (++this.trials >= b.halfOpenRequests) {
      // No more trials: out until their outcomes arrive. A trial that never reports (refused
      // before dispatch) would leave it out for good, so after openFor new trials are allowed.
      this.setBreakerTimer(b.openFor, () => {
        if (this.breaker !== HALF_OPEN) return;
        this.trials = 0;
        this.trialOks = 0;
        this.group.changed(this, 'breaker_half_open', {});
      });
      this.group.changed(this, 'breaker_trials_sent', { trials: this.trials });
    }
  }

  private setBreakerTimer(delay: number, fn: () => void): void {
    clearTimeout(this.breakerTimer);
    this.breakerTimer = setTimeout(() => {
      this.breakerTimer = undefined;
      fn();
    }, delay);
    this.breakerTimer.unref();
  }

  /** Feed the breaker one outcome (hot path: integer arithmetic on preallocated arrays). */
  private breakerObserve(b: BreakerSettings, fail: boolean): void {
    const state = this.breaker;
    if (state === OPEN) return; // exchanges started before it opened
    if (state === HALF_OPEN) {
      if (fail) this.openBreaker(b, 'half_open_trial_failed');
      else if (++this.trialOks >= b.halfOpenRequests) this.closeBreaker();
      return;
    }
    const width = b.window / BUCKETS;
    const now = Math.floor(Date.now() / width);
    let gap = now - this.bucketAt;
    if (gap > 0) {
      // Clear the buckets skipped since the last outcome (all of them after a quiet window).
      if (gap > BUCKETS) gap = BUCKETS;
      for (let i = 1; i <= gap; i++) {
        const k = (this.bucketAt + i) % BUCKETS;
        this.sumTotal -= this.total[k]!;
        this.sumFailed -= this.failed[k]!;
        this.total[k] = 0;
        this.failed[k] = 0;
      }
      this.bucketAt = now;
    }
    const k = now % BUCKETS;
    this.total[k]!++;
    this.sumTotal++;
    if (fail) {
      this.failed[k]!++;
      this.sumFailed++;
      if (++this.consecutive >= b.consecutiveFailures) {
        this.openBreaker(b, 'consecutive_failures');
        return;
      }
    } else this.consecutive = 0;
    // Checked on successes too: the request that brings the window to minRequests may be one.
    if (this.sumTotal >= b.minRequests && this.sumFailed >= b.errorRate * this.sumTotal)
      this.openBreaker(b, 'error_rate', this.sumTotal, this.sumFailed);
  }

  private openBreaker(b: BreakerSettings, reason: string, total?: number, failed?: number): void {
    this.breaker = OPEN;
    this.trials = 0;
    this.trialOks = 0;
    this.setBreakerTimer(b.openFor, () => {
      if (this.breaker !== OPEN) return;
      this.breaker = HALF_OPEN;
      this.group.breakerChanged(this);
      this.group.changed(this, 'breaker_half_open', {});
    });
    this.group.breakerChanged(this);
    this.group.changed(this, 'breaker_open', {
      reason,
      consecutiveFailures: this.consecutive,
      ...(total !== undefined ? { requests: total, failures: failed } : {}),
      openForMs: b.openFor,
    });
  }

  private closeBreaker(): void {
    clearTimeout(this.breakerTimer);
    this.breakerTimer = undefined;
    this.resetBreaker();
    this.group.breakerChanged(this);
    this.group.changed(this, 'breaker_closed', {});
  }

  /** Back to closed with an empty window (also when the breaker is removed from the config). */
  resetBreaker(): void {
    clearTimeout(this.breakerTimer);
    this.breakerTimer = undefined;
    this.breaker = CLOSED;
    this.total.fill(0);
    this.failed.fill(0);
    this.sumTotal = 0;
    this.sumFailed = 0;
    this.consecutive = 0;
    this.trials = 0;
    this.trialOks = 0;
  }

  get breakerState(): (typeof stateNames)[number] {
    return stateNames[this.breaker]!;
  }

  /**
   * One exchange's outcome, reported by the proxy when it finishes (hot path: no allocation).
   * `error` is the failure kind (connect, reset, timeout_*) or undefined for a response.
   */
  observe(status: number, error: string | undefined): void {
    const fail = error === undefined ? status >= 500 : !clientSide(error);
    // The client's own faults say nothing about the target: neither count.
    if (!fail && error !== undefined) return;
    const b = this.group.breaker;
    if (b !== undefined) this.breakerObserve(b, fail);
    const o = this.group.outlier;
    if (o === undefined) return;
    if (fail) {
      if (++this.failures >= o.consecutiveFailures && !this.ejected) this.group.tryEject(this, o);
    } else this.failures = 0;
  }

  /** The result of one active probe. */
  probed(ok: boolean, detail: string, a: ActiveSettings): void {
    this.lastProbe = { at: Date.now(), ok, detail };
    if (ok) {
      this.failRun = 0;
      this.okRun++;
      if (!this.activeUp && this.okRun >= a.healthyThreshold) {
        this.activeUp = true;
        // As Envoy does (successful_active_health_check_uneject_host): a target the checks bring
        // back starts clean, so its old ejection or breaker does not keep it out, nor let it in
        // only half-open (a half-open primary would pull failover back on one trial and lose it).
        if (this.ejected) this.uneject();
        if (this.breaker !== CLOSED) this.closeBreaker();
        this.group.changed(this, 'target_healthy', { successes: this.okRun });
      } else if (this.activeUp && this.breaker === HALF_OPEN) {
        // A good probe of a healthy target is a successful trial: close without waiting for traffic,
        // which a failed-over group does not get.
        this.closeBreaker();
      }
    } else {
      this.okRun = 0;
      this.failRun++;
      if (this.activeUp && this.failRun >= a.unhealthyThreshold) {
        this.activeUp = false;
        this.group.changed(this, 'target_unhealthy', { failures: this.failRun, detail });
      }
    }
  }

  eject(o: OutlierSettings, now: number): number {
    // The multiplier decays: a target that stayed in for maxEjection since its last ejection starts over.
    if (this.ejections > 0 && now - this.unejectedAt > o.maxEjection) this.ejections = 0;
    this.ejections++;
    const duration = Math.min(o.baseEjection * this.ejections, o.maxEjection);
    this.ejected = true;
    this.ejectedUntil = now + duration;
    this.unejectTimer = setTimeout(() => this.uneject(), duration);
    this.unejectTimer.unref();
    return duration;
  }

  private uneject(): void {
    this.unejectTimer = undefined;
    if (!this.ejected) return;
    this.ejected = false;
    this.failures = 0;
    this.unejectedAt = Date.now();
    this.group.changed(this, 'target_ejection_ended', { ejections: this.ejections });
  }

  dispose(): void {
    clearTimeout(this.unejectTimer);
    this.unejectTimer = undefined;
    clearTimeout(this.breakerTimer);
    this.breakerTimer = undefined;
  }
}

interface Settings {
  active: ActiveSettings | undefined;
  outlier: OutlierSettings | undefined;
  breaker: BreakerSettings | undefined;
}

/** The health records of one upstream group (by name), shared by the groups of successive configs. */
export class GroupHealth {
  readonly records = new Map<string, TargetHealth>();
  active: ActiveSettings | undefined;
  outlier: OutlierSettings | undefined;
  /**
   * The compiled groups following this one's changes (the current config's, briefly also the one
   * being compiled) with their settings; the settings in force are the newest group's.
   */
  breaker: BreakerSettings | undefined;
  private readonly listeners = new Map<() => void, Settings>();

  constructor(
    readonly name: string,
    private readonly reg: HealthRegistry,
  ) {}

  /** A compiled group starts following this one, with its config's settings. */
  attach(
    listener: () => void,
    active: ActiveSettings | undefined,
    outlier: OutlierSettings | undefined,
    breaker?: BreakerSettings | undefined,
  ): void {
    this.listeners.set(listener, { active, outlier, breaker });
    this.apply(active, outlier, breaker);
  }

  /**
   * A compiled group is disposed. When it was a compile that did not become the running config (a
   * rejected or unchanged reload), the settings of the group still running apply again.
   */
  detach(listener: () => void): void {
    if (!this.listeners.delete(listener)) return;
    let last: Settings | undefined;
    for (const v of this.listeners.values()) last = v;
    if (last === undefined) return;
    // The config in force has no active checks (they were removed): nothing would ever bring a
    // target they took down back, so forget their verdict. Done here, once the config without them
    // is the one left, so that a rejected reload cannot clear it.
    if (last.active === undefined)
      for (const r of this.records.values()) {
        r.activeUp = true;
        r.okRun = 0;
        r.failRun = 0;
      }
    // Likewise a breaker removed from the config: its open circuits would never close.
    if (last.breaker === undefined && this.breaker !== undefined)
      for (const r of this.records.values()) {
        r.resetBreaker();
        this.reg.metrics?.breakerState.remove(this.name, r.origin);
      }
    if (last.active !== this.active || last.outlier !== this.outlier || last.breaker !== this.breaker)
      this.apply(last.active, last.outlier, last.breaker);
    for (const r of this.records.values())
      this.reg.metrics?.targetHealthy.labels(this.name, r.origin).set(r.down ? 0 : 1);
    for (const l of this.listeners.keys()) l();
  }

  private apply(
    active: ActiveSettings | undefined,
    outlier: OutlierSettings | undefined,
    breaker: BreakerSettings | undefined,
  ): void {
    this.active = active;
    this.outlier = outlier;
    this.breaker = breaker;
    if (breaker !== undefined)
      for (const r of this.records.values())
        this.reg.metrics?.breakerState.labels(this.name, r.origin).set(r.breaker);
  }

  breakerChanged(r: TargetHealth): void {
    this.reg.metrics?.breakerState.labels(this.name, r.origin).set(r.breaker);
  }

  acquire(origin: string): TargetHealth {
    let r = this.records.get(origin);
    if (r === undefined) {
      r = new TargetHealth(this, origin);
      this.records.set(origin, r);
      this.reg.metrics?.targetHealthy.labels(this.name, origin).set(1);
      if (this.breaker !== undefined) this.reg.metrics?.breakerState.labels(this.name, origin).set(0);
    }
    r.refs++;
    return r;
  }

  release(r: TargetHealth): void {
    if (--r.refs > 0 || this.records.get(r.origin) !== r) return;
    r.dispose();
    this.records.delete(r.origin);
    this.reg.metrics?.targetHealthy.remove(this.name, r.origin);
    this.reg.metrics?.breakerState.remove(this.name, r.origin);
    if (this.records.size === 0 && this.listeners.size === 0) this.reg.forget(this);
  }

  /** Eject unless that would put more than maxEjectedPercent of the group's targets out. */
  tryEject(r: TargetHealth, o: OutlierSettings): void {
    let ejected = 0;
    for (const x of this.records.values()) if (x.ejected) ejected++;
    if ((ejected + 1) * 100 > o.maxEjectedPercent * this.records.size) {
      if (r.failures === o.consecutiveFailures)
        this.reg.logger.warn(
          {
            event: 'target_ejection_capped',
            upstream: this.name,
            target: r.origin,
            ejected,
            targets: this.records.size,
            maxEjectedPercent: o.maxEjectedPercent,
          },
          `upstream ${this.name}: ${r.origin} keeps failing but ejecting it would exceed maxEjectedPercent`,
        );
      return;
    }
    const duration = r.eject(o, Date.now());
    this.reg.metrics?.ejections.labels(this.name, r.origin).inc();
    this.changed(r, 'target_ejected', {
      failures: r.failures,
      ejections: r.ejections,
      durationMs: duration,
    });
  }

  changed(r: TargetHealth, event: string, extra: Record<string, unknown>): void {
    this.reg.metrics?.targetHealthy.labels(this.name, r.origin).set(r.down ? 0 : 1);
    const log = this.reg.logger;
    const fields = { event, upstream: this.name, target: r.origin, available: !r.down, ...extra };
    if (event === 'breaker_trials_sent') {
      log.debug(fields, `upstream ${this.name}: ${r.origin} half-open, trial requests sent`);
    } else if (event === 'target_healthy' || event === 'target_ejection_ended' || event === 'breaker_closed')
      log.info(
        fields,
        `upstream ${this.name}: ${r.origin} ${event.replace('target_', '').replace(/_/g, ' ')}`,
      );
    else log.warn(fields, `upstream ${this.name}: ${r.origin} ${event.replace('target_', '')}`);
    for (const l of this.listeners.keys()) l();
  }
}

/** All health records of a Gateway. No module-level state: one per Gateway. */
export class HealthRegistry {
  private readonly groups = new Map<string, GroupHealth>();

  constructor(
    readonly logger: Logger,
    readonly metrics?: Metrics,
  ) {}

  group(name: string): GroupHealth {
    let g = this.groups.get(name);
    if (g === undefined) {
      g = new GroupHealth(name, this);
      this.groups.set(name, g);
    }
    return g;
  }

  forget(g: GroupHealth): void {
    if (this.groups.get(g.name) === g) this.groups.delete(g.name);
  }

  closeAll(): void {
    for (const g of this.groups.values()) for (const r of g.records.values()) r.dispose();
    this.groups.clear();
  }
}

/**
 * The active probes of one compiled group: a timer per target (unref'd), a GET through the target's
 * own pool. Started when the group is compiled, stopped when it is disposed.
 */
export class Prober {
  private readonly timers = new Map<Target, NodeJS.Timeout>();
  private readonly pending = new Set<AbortController>();
  private stopped = false;

  constructor(private readonly a: ActiveSettings) {}

  /** Follow exactly these targets (start new ones, stop those gone). */
  follow(targets: readonly Target[]): void {
    if (this.stopped) return;
    const keep = new Set(targets);
    for (const [t, timer] of this.timers)
      if (!keep.has(t)) {
        clearTimeout(timer);
        this.timers.delete(t);
      }
    for (const t of targets)
      if (!this.timers.has(t) && t.health !== undefined)
        // The first probe comes within one interval, spread so targets are not probed in step.
        this.schedule(t, Math.random() * Math.min(this.a.interval, Math.max(this.a.jitter, 1)));
  }

  /** Stop the timers and abort probes under way (a hanging probe must not hold a graceful stop). */
  stop(): void {
    this.stopped = true;
    for (const timer of this.timers.values()) clearTimeout(timer);
    this.timers.clear();
    for (const ac of this.pending) ac.abort();
    this.pending.clear();
  }

  private schedule(t: Target, delay: number): void {
    const timer = setTimeout(() => this.probe(t), delay);
    timer.unref();
    this.timers.set(t, timer);
  }

  private probe(t: Target): void {
    const a = this.a;
    const ac = new AbortController();
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      ac.abort();
    }, a.timeout);
    timer.unref();
    this.pending.add(ac);
    const failed = (err: unknown) => ({
      ok: false,
      detail: timedOut ? `timeout after ${a.timeout}ms` : ((err as Error)?.message ?? String(err)),
    });
    t.dispatcher
      .request({
        origin: t.origin,
        path: a.path,
        method: 'GET',
        headers: { host: t.hostHeader, 'user-agent': 'sluice-health-check' },
        signal: ac.signal,
      })
      .then(async (r) => {
        await r.body.dump();
        const s = r.statusCode;
        for (const [lo, hi] of a.statuses) if (s >= lo && s <= hi) return { ok: true, detail: `status ${s}` };
        return { ok: false, detail: `status ${s}` };
      })
      .catch(failed)
      .then(({ ok, detail }) => {
        clearTimeout(timer);
        this.pending.delete(ac);
        if (this.stopped || !this.timers.has(t)) return;
        t.health?.probed(ok, detail, a);
        this.schedule(t, a.interval + Math.random() * a.jitter);
      });
  }
}

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
import type { HealthCheckConfig, OutlierConfig } from '../config/schema.js';
import { ms } from '../config/units.js';
import type { Metrics } from '../telemetry/metrics.js';
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
    return (!this.activeUp && g.active !== undefined) || (this.ejected && g.outlier !== undefined);
  }

  /**
   * One exchange's outcome, reported by the proxy when it finishes (hot path: no allocation).
   * `error` is the failure kind (connect, reset, timeout_*) or undefined for a response.
   */
  observe(status: number, error: string | undefined): void {
    const o = this.group.outlier;
    if (o === undefined) return;
    if (error === undefined ? status >= 500 : !clientSide(error)) {
      if (++this.failures >= o.consecutiveFailures && !this.ejected) this.group.tryEject(this, o);
    } else if (error === undefined) this.failures = 0;
  }

  /** The result of one active probe. */
  probed(ok: boolean, detail: string, a: ActiveSettings): void {
    this.lastProbe = { at: Date.now(), ok, detail };
    if (ok) {
      this.failRun = 0;
      this.okRun++;
      if (!this.activeUp && this.okRun >= a.healthyThreshold) {
        this.activeUp = true;
        this.group.changed(this, 'target_healthy', { successes: this.okRun });
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
  }
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
  private readonly listeners = new Map<
    () => void,
    { active: ActiveSettings | undefined; outlier: OutlierSettings | undefined }
  >();

  constructor(
    readonly name: string,
    private readonly reg: HealthRegistry,
  ) {}

  /** A compiled group starts following this one, with its config's settings. */
  attach(
    listener: () => void,
    active: ActiveSettings | undefined,
    outlier: OutlierSettings | undefined,
  ): void {
    this.listeners.set(listener, { active, outlier });
    this.apply(active, outlier);
  }

  /**
   * A compiled group is disposed. When it was a compile that did not become the running config (a
   * rejected or unchanged reload), the settings of the group still running apply again.
   */
  detach(listener: () => void): void {
    if (!this.listeners.delete(listener)) return;
    let last: { active: ActiveSettings | undefined; outlier: OutlierSettings | undefined } | undefined;
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
    if (last.active !== this.active || last.outlier !== this.outlier) this.apply(last.active, last.outlier);
    for (const r of this.records.values())
      this.reg.metrics?.targetHealthy.labels(this.name, r.origin).set(r.down ? 0 : 1);
    for (const l of this.listeners.keys()) l();
  }

  private apply(active: ActiveSettings | undefined, outlier: OutlierSettings | undefined): void {
    this.active = active;
    this.outlier = outlier;
  }

  acquire(origin: string): TargetHealth {
    let r = this.records.get(origin);
    if (r === undefined) {
      r = new TargetHealth(this, origin);
      this.records.set(origin, r);
      this.reg.metrics?.targetHealthy.labels(this.name, origin).set(1);
    }
    r.refs++;
    return r;
  }

  release(r: TargetHealth): void {
    if (--r.refs > 0 || this.records.get(r.origin) !== r) return;
    r.dispose();
    this.records.delete(r.origin);
    this.reg.metrics?.targetHealthy.remove(this.name, r.origin);
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
    if (event === 'target_healthy' || event === 'target_ejection_ended')
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

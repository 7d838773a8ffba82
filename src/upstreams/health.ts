/**
 * Target health: the record per target where active checks (./health-check.ts), outlier ejection
 * (./outlier.ts) and the circuit breaker (./breaker.ts) meet, and the registry of those records.
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
import type { Metrics } from '../telemetry/metrics.js';
import { Breaker, type BreakerListener, type BreakerSettings, CLOSED, HALF_OPEN } from './breaker.js';
import { ActiveCheck, type ActiveSettings, CAME_UP, WENT_DOWN } from './health-check.js';
import { Ejection, type EjectionListener, type OutlierSettings, tryEject } from './outlier.js';

/** Outcomes that are the client's doing and say nothing about the target. */
function clientSide(kind: string): boolean {
  return kind === 'client_closed' || kind === 'body_too_large' || kind === 'client_body_timeout';
}

/** The health of one target of one upstream group. Survives reloads while the target stays. */
export class TargetHealth implements BreakerListener, EjectionListener {
  readonly active = new ActiveCheck();
  readonly ejection: Ejection = new Ejection(this);
  readonly breaker: Breaker = new Breaker(this);
  refs = 0;

  constructor(
    readonly group: GroupHealth,
    readonly origin: string,
  ) {}

  /**
   * Not to be picked: down by active checks, ejected, or out by its breaker. Each counts only while
   * its settings are in the config, so removing `healthCheck` or `outlier` on reload puts the target
   * back at once.
   */
  get down(): boolean {
    const g = this.group;
    return (
      (!this.active.up && g.active !== undefined) ||
      (this.ejection.ejected && g.outlier !== undefined) ||
      this.breakerOut
    );
  }

  /** Out because of the breaker (open, or half-open with every trial request let through). */
  get breakerOut(): boolean {
    const b = this.group.breaker;
    return b !== undefined && this.breaker.out(b);
  }

  /** A half-open target was picked: one trial request goes through (the group calls this). */
  trial(): void {
    const b = this.group.breaker;
    if (b !== undefined) this.breaker.trial(b);
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
    if (b !== undefined) this.breaker.observe(b, fail);
    const o = this.group.outlier;
    if (o !== undefined && this.ejection.observe(o, fail)) tryEject(this.group, this, o);
  }

  /** The result of one active probe. */
  probed(ok: boolean, detail: string, a: ActiveSettings): void {
    const turned = this.active.probed(ok, detail, a);
    if (turned === CAME_UP) {
      // As Envoy does (successful_active_health_check_uneject_host): a target the checks bring
      // back starts clean, so its old ejection or breaker does not keep it out, nor let it in
      // only half-open (a half-open primary would pull failover back on one trial and lose it).
      if (this.ejection.ejected) this.ejection.uneject();
      if (this.breaker.state !== CLOSED) this.breaker.close();
      this.changed('target_healthy', { successes: this.active.okRun });
    } else if (turned === WENT_DOWN) {
      this.changed('target_unhealthy', { failures: this.active.failRun, detail });
    } else if (ok && this.active.up && this.breaker.state === HALF_OPEN) {
      // A good probe of a healthy target is a successful trial: close without waiting for traffic,
      // which a failed-over group does not get.
      this.breaker.close();
    }
  }

  breakerChanged(): void {
    this.group.breakerChanged(this);
  }

  changed(event: string, extra: Record<string, unknown>): void {
    this.group.changed(this, event, extra);
  }

  dispose(): void {
    this.ejection.dispose();
    this.breaker.dispose();
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
  /** The settings in force: those of the newest compiled group following this one. */
  active: ActiveSettings | undefined;
  outlier: OutlierSettings | undefined;
  breaker: BreakerSettings | undefined;
  /**
   * The compiled groups following this one's changes (the current config's, briefly also the one
   * being compiled) with their settings.
   */
  private readonly listeners = new Map<() => void, Settings>();

  constructor(
    readonly name: string,
    readonly reg: HealthRegistry,
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
    if (last.active === undefined) for (const r of this.records.values()) r.active.reset();
    // Likewise a breaker removed from the config: its open circuits would never close.
    if (last.breaker === undefined && this.breaker !== undefined)
      for (const r of this.records.values()) {
        r.breaker.reset();
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
        this.reg.metrics?.breakerState.labels(this.name, r.origin).set(r.breaker.state);
  }

  breakerChanged(r: TargetHealth): void {
    this.reg.metrics?.breakerState.labels(this.name, r.origin).set(r.breaker.state);
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

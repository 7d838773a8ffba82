/**
 * The anomaly detector of a gateway: one series per route × upstream, each with a detector per
 * signal, judged by one timer every `anomaly.interval`. Off the request path: requests only add to
 * their route's AnomalyCell; the timer turns each cell into an interval's values (mean latency,
 * error ratio, cost per request), feeds the detectors and reports starts and ends as events
 * (`anomaly_started` / `anomaly_ended` on the EventBus, hence the audit log), metrics and log lines.
 *
 * Gateway-lifetime (kept across reloads, so a reload does not restart the warm-up); each compile
 * calls `configure` with the new settings and asks for its routes' cells.
 */
import type { Logger } from 'pino';
import { Counter, Gauge, type Registry } from 'prom-client';
import type { Config } from '../config/schema.js';
import type { Lifetime } from '../policies/lifetime.js';
import { LifetimeKey } from '../policies/lifetime.js';
import type { EventBus } from '../telemetry/events.js';
import { perRegistry } from '../telemetry/per-registry.js';
import type { Failover } from '../upstreams/failover.js';
import { AnomalyCell } from './cell.js';
import { Detector } from './detector.js';
import {
  type AnomalyAction,
  type ResolvedAnomaly,
  resolveAnomaly,
  SIGNALS,
  type SignalName,
  UNITS,
} from './settings.js';

type Labels = 'route' | 'upstream' | 'signal';

const anomalyMetrics = perRegistry((r: Registry) => ({
  active: new Gauge<Labels>({
    name: 'sluice_anomaly_active',
    help: '1 while an anomaly of the signal (latency, errors, cost) is active for the route and upstream, else 0.',
    labelNames: ['route', 'upstream', 'signal'],
    registers: [r],
  }),
  value: new Gauge<Labels>({
    name: 'sluice_anomaly_value',
    help: 'The last judged interval’s value: mean latency (ms), error ratio (0..1), or cost per request (currency units).',
    labelNames: ['route', 'upstream', 'signal'],
    registers: [r],
  }),
  baseline: new Gauge<Labels>({
    name: 'sluice_anomaly_baseline',
    help: 'The learned EWMA mean of the signal (same unit as sluice_anomaly_value).',
    labelNames: ['route', 'upstream', 'signal'],
    registers: [r],
  }),
  threshold: new Gauge<Labels>({
    name: 'sluice_anomaly_threshold',
    help: 'Above this an interval is anomalous: mean + max(bands × deviation, minRelative × mean, minAbsolute).',
    labelNames: ['route', 'upstream', 'signal'],
    registers: [r],
  }),
  started: new Counter<Labels>({
    name: 'sluice_anomalies_total',
    help: 'Anomalies started, by route, upstream and signal.',
    labelNames: ['route', 'upstream', 'signal'],
    registers: [r],
  }),
}));

type Metrics = ReturnType<typeof anomalyMetrics>;

interface Series {
  readonly route: string;
  readonly upstream: string;
  readonly cell: AnomalyCell;
  minRequests: number;
  action: AnomalyAction | undefined;
  /** Undefined for a signal that is off. */
  readonly detectors: Record<SignalName, Detector | undefined>;
}

export interface AnomalyDeps {
  events: EventBus;
  logger?: Logger | undefined;
  registry?: Registry | undefined;
}

/** An anomaly under way or ended, as the admin API shows it (GET /admin/v1/anomalies). */
export interface AnomalyView {
  route: string;
  upstream: string;
  signal: SignalName;
  unit: string;
  startedAt: string;
  endedAt?: string;
  durationMs?: number;
  /** The last judged value (open), or the value of the interval that ended it. */
  value: number | null;
  baseline: number;
  threshold: number | null;
  peak: number;
  action?: AnomalyAction;
}

/** Ended anomalies kept for the admin API (in memory; the audit log has every one). */
export const RECENT_ANOMALIES = 50;

export class AnomalyService {
  private readonly series = new Map<string, Series>();
  /** The last RECENT_ANOMALIES ended anomalies, newest first. */
  private readonly recent: AnomalyView[] = [];
  /** Per series × signal: the last judged value and threshold (for open anomalies' figures). */
  private readonly last = new Map<string, { value: number; threshold: number }>();
  private settings: ResolvedAnomaly | undefined;
  private timer: NodeJS.Timeout | undefined;
  private intervalMs = 0;
  private deps: AnomalyDeps | undefined;
  private metrics: Metrics | undefined;
  /** Intervals judged so far (tests wait on it; also in docs as the evaluation count). */
  ticks = 0;
  /** The routes' failovers of the running config (`action: failover` holds groups out in them). */
  private failovers: ReadonlyMap<string, Failover> = new Map();

  /** Apply `anomaly:` of a (new) config version; undefined turns detection off. */
  configure(settings: ResolvedAnomaly | undefined, deps: AnomalyDeps): void {
    this.settings = settings;
    this.deps = deps;
    this.metrics = deps.registry ? anomalyMetrics(deps.registry) : undefined;
    if (settings === undefined) {
      this.stopTimer();
      return;
    }
    for (const s of this.series.values()) this.applySettings(s);
    if (this.timer === undefined || this.intervalMs !== settings.intervalMs) {
      this.stopTimer();
      this.intervalMs = settings.intervalMs;
      this.timer = setInterval(() => this.tick(), settings.intervalMs);
      this.timer.unref();
    }
  }

  /** The cell a route adds to (made once per route × upstream, kept across reloads). */
  cell(route: string, upstream: string): AnomalyCell | undefined {
    if (this.settings === undefined) return undefined;
    const key = `${route}\u0000${upstream}`;
    let s = this.series.get(key);
    if (s === undefined) {
      const detectors = {} as Record<SignalName, Detector | undefined>;
      s = { route, upstream, cell: new AnomalyCell(), minRequests: 0, action: undefined, detectors };
      this.series.set(key, s);
      this.applySettings(s);
    }
    return s.cell;
  }

  private applySettings(s: Series): void {
    const set = this.settings!.forUpstream(s.upstream);
    s.minRequests = set.minRequests;
    s.action = set.action;
    for (const name of SIGNALS) {
      const p = set.signals[name];
      const d = s.detectors[name];
      if (p === undefined) s.detectors[name] = undefined;
      else if (d === undefined) s.detectors[name] = new Detector(p);
      else d.params = p;
    }
  }

  /** Judge the interval that just ended, for every series. */
  tick(now = Date.now()): void {
    this.ticks++;
    for (const s of this.series.values()) {
      const c = s.cell;
      const n = c.requests;
      const enough = n >= s.minRequests;
      const values: Record<SignalName, number | undefined> = {
        latency: enough ? c.latencyMsSum / n : undefined,
        errors: enough ? c.errors / n : undefined,
        // Only routes whose `cost` policy counted something have a cost signal.
        cost: enough && c.cost > 0 ? c.cost / n : undefined,
      };
      c.requests = 0;
      c.errors = 0;
      c.latencyMsSum = 0;
      c.cost = 0;
      for (const name of SIGNALS) {
        const d = s.detectors[name];
        if (d === undefined) continue;
        const x = values[name];
        const step = d.observe(x, now);
        if (x !== undefined)
          this.last.set(`${s.route}\u0000${s.upstream}\u0000${name}`, {
            value: x,
            threshold: step.threshold,
          });
        this.publish(s, name, d, x, step.threshold);
        if (step.transition === 'started') this.started(s, name, d, x!, step.threshold, now);
        else if (step.transition === 'ended') this.ended(s, name, d, x!, now);
      }
    }
  }

  private publish(s: Series, name: SignalName, d: Detector, x: number | undefined, threshold: number) {
    const m = this.metrics;
    if (m === undefined || x === undefined) return;
    m.value.labels(s.route, s.upstream, name).set(x);
    m.baseline.labels(s.route, s.upstream, name).set(d.baseline.mean);
    if (!Number.isNaN(threshold)) m.threshold.labels(s.route, s.upstream, name).set(threshold);
    m.active.labels(s.route, s.upstream, name).set(d.active ? 1 : 0);
  }

  private started(s: Series, signal: SignalName, d: Detector, x: number, threshold: number, now: number) {
    const { events, logger } = this.deps!;
    const p = d.params;
    this.metrics?.started.labels(s.route, s.upstream, signal).inc();
    const e = {
      type: 'anomaly_started' as const,
      at: new Date(now).toISOString(),
      route: s.route,
      upstream: s.upstream,
      signal,
      unit: UNITS[signal],
      value: x,
      baseline: d.baseline.mean,
      deviation: d.baseline.dev,
      threshold,
      intervals: p.enterAfter,
      intervalMs: this.intervalMs,
      ...(s.action === undefined ? {} : { action: s.action }),
    };
    logger?.warn({ event: e.type, ...e, type: undefined }, `anomaly started: ${signal} of ${s.route}`);
    events.emit(e);
    // `rollback` is done by the gateway's release watcher on this event (./rollback.ts).
    if (s.action === 'failover') this.failoverAction(s, signal, now);
  }

  /**
   * The routes' failovers of a newly compiled config: anomalies under way with `action: failover`
   * hold their group out in the new failover objects too (a reload does not bring traffic back).
   */
  bindFailovers(failovers: ReadonlyMap<string, Failover>): void {
    this.failovers = failovers;
    for (const s of this.series.values())
      if (s.action === 'failover' && failsOver(s)) failovers.get(s.route)?.hold(s.upstream, true);
  }

  /** Hold the series' group out of its route's failover (a start) or let it back (an end). */
  private failoverAction(s: Series, signal: SignalName, now: number): void {
    // Cost is price, not health: a dearer answer is no reason to send traffic elsewhere.
    if (signal === 'cost') return;
    const f = this.failovers.get(s.route);
    const base = {
      type: 'anomaly_action' as const,
      at: new Date(now).toISOString(),
      route: s.route,
      upstream: s.upstream,
      signal,
      action: 'failover' as const,
    };
    const emit = (outcome: 'applied' | 'lifted' | 'skipped', detail: string, active?: string) => {
      const e = { ...base, outcome, detail, ...(active === undefined ? {} : { active }) };
      this.deps!.logger?.warn({ event: e.type, ...e, type: undefined }, `anomaly action: ${detail}`);
      this.deps!.events.emit(e);
    };
    if (f === undefined) {
      emit('skipped', `route ${s.route} has no \`failover\`: nothing to fail over to`);
      return;
    }
    const held = failsOver(s);
    if (held === f.isHeld(s.upstream)) return; // another signal of the series holds it already (or still)
    const from = f.active.name;
    f.hold(s.upstream, held);
    const to = f.active.name;
    if (held)
      emit(
        'applied',
        from === to
          ? `route ${s.route}: ${s.upstream} held out for its ${signal} anomaly, but no other group has a target: traffic stays on ${to}`
          : `route ${s.route}: ${s.upstream} held out for its ${signal} anomaly: traffic moved from ${from} to ${to}`,
        to,
      );
    else
      emit(
        'lifted',
        `route ${s.route}: ${s.upstream} no longer held out (its ${signal} anomaly ended): traffic returns after failback.after`,
        to,
      );
  }

  /** Open anomalies (now) and the recently ended ones, newest first. */
  view(): { open: AnomalyView[]; recent: AnomalyView[] } {
    const open: AnomalyView[] = [];
    for (const s of this.series.values())
      for (const signal of SIGNALS) {
        const d = s.detectors[signal];
        if (d?.active !== true) continue;
        const last = this.last.get(`${s.route}\u0000${s.upstream}\u0000${signal}`);
        open.push({
          route: s.route,
          upstream: s.upstream,
          signal,
          unit: UNITS[signal],
          startedAt: new Date(d.startedAt).toISOString(),
          value: last?.value ?? null,
          baseline: d.baseline.mean,
          threshold: last === undefined || Number.isNaN(last.threshold) ? null : last.threshold,
          peak: d.peak,
          ...(s.action === undefined ? {} : { action: s.action }),
        });
      }
    open.sort((a, b) => b.startedAt.localeCompare(a.startedAt));
    return { open, recent: [...this.recent] };
  }

  private ended(s: Series, signal: SignalName, d: Detector, x: number, now: number) {
    const { events, logger } = this.deps!;
    this.recent.unshift({
      route: s.route,
      upstream: s.upstream,
      signal,
      unit: UNITS[signal],
      startedAt: new Date(d.startedAt).toISOString(),
      endedAt: new Date(now).toISOString(),
      durationMs: now - d.startedAt,
      value: x,
      baseline: d.baseline.mean,
      threshold: null,
      peak: d.peak,
      ...(s.action === undefined ? {} : { action: s.action }),
    });
    if (this.recent.length > RECENT_ANOMALIES) this.recent.length = RECENT_ANOMALIES;
    const e = {
      type: 'anomaly_ended' as const,
      at: new Date(now).toISOString(),
      route: s.route,
      upstream: s.upstream,
      signal,
      unit: UNITS[signal],
      value: x,
      baseline: d.baseline.mean,
      peak: d.peak,
      durationMs: now - d.startedAt,
    };
    logger?.info({ event: e.type, ...e, type: undefined }, `anomaly ended: ${signal} of ${s.route}`);
    events.emit(e);
    if (s.action === 'failover') this.failoverAction(s, signal, now);
  }

  private stopTimer(): void {
    if (this.timer !== undefined) clearInterval(this.timer);
    this.timer = undefined;
  }

  close(): void {
    this.stopTimer();
  }
}

/** Whether a series' health signals (latency, errors) have an anomaly under way. */
function failsOver(s: Series): boolean {
  return s.detectors.latency?.active === true || s.detectors.errors?.active === true;
}

export const anomalyKey = new LifetimeKey<AnomalyService>('anomaly');

/**
 * The gateway's detector configured for `config`, or undefined for compile-only callers (nothing
 * kept, so no timer may start) and when detection is off.
 */
export function configureAnomaly(
  config: Config,
  lifetime: Lifetime,
  deps: AnomalyDeps,
): AnomalyService | undefined {
  if (!lifetime.kept) return undefined;
  const settings = resolveAnomaly(config.anomaly);
  if (settings === undefined) {
    // Turn a detector made by an earlier version off; make none when there never was one.
    const peek = lifetime.get(anomalyKey, () => new AnomalyService());
    peek.configure(undefined, deps);
    return undefined;
  }
  const svc = lifetime.get(anomalyKey, () => new AnomalyService());
  svc.configure(settings, deps);
  return svc;
}

/** A route's cell, for a policy compiled after `configureAnomaly` (the cost policy adds spend to it). */
export function anomalyCellFor(
  lifetime: Lifetime,
  route: string,
  upstream: string | undefined,
): AnomalyCell | undefined {
  if (!lifetime.kept || upstream === undefined) return undefined;
  return lifetime.get(anomalyKey, () => new AnomalyService()).cell(route, upstream);
}

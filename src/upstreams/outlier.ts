/**
 * Passive outlier ejection (`upstreams.<name>.outlier`, as Envoy's outlier detection): a target that
 * keeps failing real exchanges is taken out for a while, longer each time, never more than
 * `maxEjectedPercent` of the group at once. One of the three concepts that meet in a target's health
 * record (./health.ts), beside active checks (./health-check.ts) and the breaker (./breaker.ts).
 */
import { ms } from '../config/units.js';
import type { GroupHealth, TargetHealth } from './health.js';
import type { OutlierConfig } from './schema.js';

export interface OutlierSettings {
  consecutiveFailures: number;
  baseEjection: number;
  maxEjection: number;
  maxEjectedPercent: number;
}

export function outlierSettings(c: OutlierConfig): OutlierSettings {
  return {
    consecutiveFailures: c.consecutiveFailures ?? 5,
    baseEjection: ms(c.baseEjection, 30_000),
    maxEjection: ms(c.maxEjection, 300_000),
    maxEjectedPercent: c.maxEjectedPercent ?? 50,
  };
}

/** Who hears that an ejection ended: its target's health record. */
export interface EjectionListener {
  changed(event: string, extra: Record<string, unknown>): void;
}

/** The ejection state of one target. */
export class Ejection {
  ejected = false;
  ejectedUntil = 0;
  /** Ejections so far (the ejection time is base × this, capped). */
  ejections = 0;
  /** Consecutive failed exchanges. */
  failures = 0;
  private timer: NodeJS.Timeout | undefined;
  private unejectedAt = 0;

  constructor(private readonly listener: EjectionListener) {}

  /** One exchange's outcome (hot path: no allocation). True when the target is now due for ejection. */
  observe(o: OutlierSettings, fail: boolean): boolean {
    if (!fail) {
      this.failures = 0;
      return false;
    }
    return ++this.failures >= o.consecutiveFailures && !this.ejected;
  }

  eject(o: OutlierSettings, now: number): number {
    // The multiplier decays: a target that stayed in for maxEjection since its last ejection starts over.
    if (this.ejections > 0 && now - this.unejectedAt > o.maxEjection) this.ejections = 0;
    this.ejections++;
    const duration = Math.min(o.baseEjection * this.ejections, o.maxEjection);
    this.ejected = true;
    this.ejectedUntil = now + duration;
    this.timer = setTimeout(() => this.uneject(), duration);
    this.timer.unref();
    return duration;
  }

  /** Back in: its time is up, or active checks found it healthy. */
  uneject(): void {
    // Cleared, not just forgotten: when the checks end an ejection early, its timer would otherwise
    // end the target's next ejection before that one's time.
    clearTimeout(this.timer);
    this.timer = undefined;
    if (!this.ejected) return;
    this.ejected = false;
    this.failures = 0;
    this.unejectedAt = Date.now();
    this.listener.changed('target_ejection_ended', { ejections: this.ejections });
  }

  dispose(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
  }
}

/** Eject `r` unless that would put more than maxEjectedPercent of the group's targets out. */
export function tryEject(g: GroupHealth, r: TargetHealth, o: OutlierSettings): void {
  let ejected = 0;
  for (const x of g.records.values()) if (x.ejection.ejected) ejected++;
  if ((ejected + 1) * 100 > o.maxEjectedPercent * g.records.size) {
    if (r.ejection.failures === o.consecutiveFailures)
      g.reg.logger.warn(
        {
          event: 'target_ejection_capped',
          upstream: g.name,
          target: r.origin,
          ejected,
          targets: g.records.size,
          maxEjectedPercent: o.maxEjectedPercent,
        },
        `upstream ${g.name}: ${r.origin} keeps failing but ejecting it would exceed maxEjectedPercent`,
      );
    return;
  }
  const duration = r.ejection.eject(o, Date.now());
  g.reg.metrics?.ejections.labels(g.name, r.origin).inc();
  g.changed(r, 'target_ejected', {
    failures: r.ejection.failures,
    ejections: r.ejection.ejections,
    durationMs: duration,
  });
}

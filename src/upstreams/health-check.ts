/**
 * Active health checks (`upstreams.<name>.healthCheck`): a probe on a timer per target and the
 * verdict its results give (down after `unhealthyThreshold` failed probes, up again after
 * `healthyThreshold` good ones). One of the three concepts that meet in a target's health record
 * (./health.ts), beside outlier ejection (./outlier.ts) and the breaker (./breaker.ts).
 */
import { ms } from '../config/units.js';
import type { HealthCheckConfig } from './schema.js';
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

/** What a probe result did to the verdict. */
export const STAYED = 0;
export const CAME_UP = 1;
export const WENT_DOWN = 2;

/** The active-check verdict of one target. */
export class ActiveCheck {
  /** False after `unhealthyThreshold` failed probes, true again after `healthyThreshold` good ones. */
  up = true;
  okRun = 0;
  failRun = 0;
  lastProbe: { at: number; ok: boolean; detail: string } | undefined;

  /** The result of one probe: STAYED, CAME_UP or WENT_DOWN. */
  probed(ok: boolean, detail: string, a: ActiveSettings): number {
    this.lastProbe = { at: Date.now(), ok, detail };
    if (ok) {
      this.failRun = 0;
      this.okRun++;
      if (!this.up && this.okRun >= a.healthyThreshold) {
        this.up = true;
        return CAME_UP;
      }
    } else {
      this.okRun = 0;
      this.failRun++;
      if (this.up && this.failRun >= a.unhealthyThreshold) {
        this.up = false;
        return WENT_DOWN;
      }
    }
    return STAYED;
  }

  /** Forget the verdict (the checks were removed from the config: nothing would bring it back). */
  reset(): void {
    this.up = true;
    this.okRun = 0;
    this.failRun = 0;
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

/**
 * Provider failover: a route names an ordered list of upstream groups (its `upstream` first, then
 * `failover`). Requests go to the active group, a field read per request (O(1)); it is recomputed
 * only when a group of the chain changes availability (health, ejection, breaker or DNS events).
 *
 * - The active group has no available target: switch at once to the first group of the chain that
 *   has one (`upstream_failover`, or `upstream_failback` when that is an earlier group).
 * - An earlier group (the primary, say) is available again: switch back only once it has been
 *   available, with a target not on half-open breaker trial, without a break for `failback.after`
 *   (hysteresis), so a flapping primary does not drag traffic back and forth.
 * - No group has a target: stay, and the active group's 503 (or the route's fallback) applies.
 *
 * A group can also be *held out* (`hold`): an anomaly of the route with `anomaly.action: failover`
 * (src/anomaly/service.ts) makes this failover treat the group as unavailable while it lasts, by
 * the same rules: the traffic leaves it at once for the first group that has a target, and returns
 * `failback.after` after the hold is lifted. A held group with the only targets left still serves.
 */
import type { Logger } from 'pino';
import type { Counter, Gauge } from 'prom-client';
import type { UpstreamGroup } from './group.js';

export interface FailoverMetrics {
  switches: Counter<'route' | 'from' | 'to'>;
  active: Gauge<'route' | 'upstream'>;
}

export class Failover {
  /** The group requests go to now. */
  active: UpstreamGroup;
  private activeIndex: number;
  /** Per group of the chain: since when it has been available without a break (0: not available). */
  private readonly upSince: number[];
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  /** Indexes in the chain of the groups held out by an anomaly. */
  private readonly heldOut = new Set<number>();
  private readonly onChange = () => this.update();

  constructor(
    readonly route: string,
    readonly chain: readonly UpstreamGroup[],
    private readonly failbackAfter: number,
    private readonly logger: Logger | undefined,
    private readonly metrics: FailoverMetrics | undefined,
  ) {
    const now = Date.now();
    this.upSince = chain.map((g) => (g.available.length > 0 ? now : 0));
    // At start (and after a reload) the first available group is taken at once: there is nothing to
    // fail back from yet.
    let i = this.upSince.findIndex((s) => s > 0);
    if (i < 0) i = 0;
    this.activeIndex = i;
    this.active = chain[i]!;
    for (const g of chain) g.watch(this.onChange);
    this.setGauge();
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
    this.timer = undefined;
    for (const g of this.chain) g.unwatch(this.onChange);
  }

  private setGauge(): void {
    const m = this.metrics;
    if (!m) return;
    for (const g of this.chain) m.active.labels(this.route, g.name).set(g === this.active ? 1 : 0);
  }

  /**
   * Hold the group named `group` out (true) or let it back (false). False when the group is not in
   * the chain. The switch, if any, happens before this returns (`active` tells where traffic goes).
   */
  hold(group: string, held: boolean): boolean {
    const i = this.chain.findIndex((g) => g.name === group);
    if (i < 0) return false;
    if (held === this.heldOut.has(i)) return true;
    if (held) this.heldOut.add(i);
    else this.heldOut.delete(i);
    this.update();
    return true;
  }

  /** Whether the group named `group` is held out now. */
  isHeld(group: string): boolean {
    const i = this.chain.findIndex((g) => g.name === group);
    return i >= 0 && this.heldOut.has(i);
  }

  private update(): void {
    if (this.stopped) return;
    const now = Date.now();
    const chain = this.chain;
    for (let i = 0; i < chain.length; i++) {
      const g = chain[i]!;
      // An earlier group counts as back only when settled: a target whose breaker is half-open
      // would take the traffic on one trial request and be out again at once (flapping).
      const up = !this.heldOut.has(i) && (i < this.activeIndex ? g.settled : g.available.length > 0);
      if (!up) this.upSince[i] = 0;
      else if (this.upSince[i] === 0) this.upSince[i] = now;
    }
    if (this.upSince[this.activeIndex] === 0) {
      // The active group is out: the first group that has a target, at once (a half-open earlier
      // group too, when it is the only one left).
      let i = this.upSince.findIndex((s) => s > 0);
      if (i < 0) i = chain.findIndex((g) => g.available.length > 0);
      if (i >= 0) this.switchTo(i, this.heldOut.has(this.activeIndex) ? 'anomaly' : 'active_unavailable');
    } else {
      // An earlier group that has been up for failbackAfter takes over again.
      for (let i = 0; i < this.activeIndex; i++) {
        const since = this.upSince[i]!;
        if (since > 0 && now - since >= this.failbackAfter) {
          this.switchTo(i, 'recovered');
          break;
        }
      }
    }
    this.schedule(now);
  }

  /** Wake up when the earliest pending failback becomes due (nothing to do per request). */
  private schedule(now: number): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    let due = Number.POSITIVE_INFINITY;
    for (let i = 0; i < this.activeIndex; i++) {
      const since = this.upSince[i]!;
      if (since > 0) due = Math.min(due, since + this.failbackAfter);
    }
    if (due === Number.POSITIVE_INFINITY) return;
    this.timer = setTimeout(() => this.update(), Math.max(0, due - now));
    this.timer.unref();
  }

  private switchTo(i: number, reason: string): void {
    if (i === this.activeIndex) return;
    const from = this.active;
    const to = this.chain[i]!;
    const back = i < this.activeIndex;
    this.activeIndex = i;
    this.active = to;
    this.metrics?.switches.labels(this.route, from.name, to.name).inc();
    this.setGauge();
    const event = back ? 'upstream_failback' : 'upstream_failover';
    const fields = { event, route: this.route, from: from.name, to: to.name, reason };
    if (back) this.logger?.info(fields, `route ${this.route}: back from ${from.name} to ${to.name}`);
    else this.logger?.warn(fields, `route ${this.route}: failover from ${from.name} to ${to.name}`);
  }
}

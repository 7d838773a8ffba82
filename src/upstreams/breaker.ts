/**
 * The circuit breaker of one target (`upstreams.<name>.breaker`): closed, open, half-open, fed the
 * outcome of every exchange. One of the three concepts that meet in a target's health record
 * (./health.ts), beside active checks (./health-check.ts) and outlier ejection (./outlier.ts).
 */
import { ms } from '../config/units.js';
import type { BreakerConfig } from './schema.js';

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

/** Who hears a breaker's transitions: its target's health record. */
export interface BreakerListener {
  /** The state changed (the sluice_breaker_state gauge follows it). */
  breakerChanged(): void;
  /** A transition to log (and to re-evaluate the target's availability on). */
  changed(event: string, extra: Record<string, unknown>): void;
}

/**
 * Not opossum: it wraps a promise-returning call with timers and closures per call, while an
 * exchange here is an undici dispatch handler that reports its outcome once in ProxyExchange.finish.
 * This breaker counts those reports in preallocated buckets (a rolling window), so it costs a few
 * integer operations per request and allocates nothing.
 *
 * The settings are passed in on each call rather than kept: the settings in force are the group's
 * (./health.ts GroupHealth), which a reload may change while the breaker's state carries over.
 */
export class Breaker {
  state = CLOSED;
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
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly listener: BreakerListener) {}

  /**
   * Out because of the breaker: open, or half-open with every trial request already let through
   * (the target comes back or stays out on their outcomes).
   */
  out(b: BreakerSettings): boolean {
    return this.state === OPEN || (this.state === HALF_OPEN && this.trials >= b.halfOpenRequests);
  }

  /** A half-open target was picked: one trial request goes through. */
  trial(b: BreakerSettings): void {
    if (this.state !== HALF_OPEN) return;
    if (++this.trials >= b.halfOpenRequests) {
      // No more trials: out until their outcomes arrive. A trial that never reports (refused
      // before dispatch) would leave it out for good, so after openFor new trials are allowed.
      this.setTimer(b.openFor, () => {
        if (this.state !== HALF_OPEN) return;
        this.trials = 0;
        this.trialOks = 0;
        this.listener.changed('breaker_half_open', {});
      });
      this.listener.changed('breaker_trials_sent', { trials: this.trials });
    }
  }

  /** Feed the breaker one outcome (hot path: integer arithmetic on preallocated arrays). */
  observe(b: BreakerSettings, fail: boolean): void {
    const state = this.state;
    if (state === OPEN) return; // exchanges started before it opened
    if (state === HALF_OPEN) {
      if (fail) this.open(b, 'half_open_trial_failed');
      else if (++this.trialOks >= b.halfOpenRequests) this.close();
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
        this.open(b, 'consecutive_failures');
        return;
      }
    } else this.consecutive = 0;
    // Checked on successes too: the request that brings the window to minRequests may be one.
    if (this.sumTotal >= b.minRequests && this.sumFailed >= b.errorRate * this.sumTotal)
      this.open(b, 'error_rate', this.sumTotal, this.sumFailed);
  }

  private open(b: BreakerSettings, reason: string, total?: number, failed?: number): void {
    this.state = OPEN;
    this.trials = 0;
    this.trialOks = 0;
    this.setTimer(b.openFor, () => {
      if (this.state !== OPEN) return;
      this.state = HALF_OPEN;
      this.listener.breakerChanged();
      this.listener.changed('breaker_half_open', {});
    });
    this.listener.breakerChanged();
    this.listener.changed('breaker_open', {
      reason,
      consecutiveFailures: this.consecutive,
      ...(total !== undefined ? { requests: total, failures: failed } : {}),
      openForMs: b.openFor,
    });
  }

  /** Closed again (a trial or a health check brought the target back). */
  close(): void {
    this.reset();
    this.listener.breakerChanged();
    this.listener.changed('breaker_closed', {});
  }

  /** Back to closed with an empty window (also when the breaker is removed from the config). */
  reset(): void {
    this.dispose();
    this.state = CLOSED;
    this.total.fill(0);
    this.failed.fill(0);
    this.sumTotal = 0;
    this.sumFailed = 0;
    this.consecutive = 0;
    this.trials = 0;
    this.trialOks = 0;
  }

  get stateName(): (typeof stateNames)[number] {
    return stateNames[this.state]!;
  }

  dispose(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
  }

  private setTimer(delay: number, fn: () => void): void {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.timer = undefined;
      fn();
    }, delay);
    this.timer.unref();
  }
}

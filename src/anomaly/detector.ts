/**
 * One signal of one series (route × upstream × signal): the baseline plus the hysteresis that
 * turns anomalous intervals into an anomaly that starts and ends. Pure: fed one value per interval
 * (or `undefined` for an interval below the minimum volume) and told what changed.
 *
 * - Warm-up: the first `warmup` intervals with volume are only learned, never judged.
 * - Quiet intervals (`undefined`) are neither learned nor judged; they break a run of anomalous
 *   intervals before an anomaly starts (the K must be consecutive intervals *with traffic*, so a
 *   night of one request a minute cannot add up to a page), and leave an active anomaly as it is.
 * - Enter after `enterAfter` (K) consecutive anomalous intervals, leave after `leaveAfter` (M)
 *   consecutive normal ones.
 * - The baseline learns only normal intervals: an anomaly (or its first anomalous intervals) does
 *   not teach the baseline that it is normal. A lasting level shift therefore stays an anomaly
 *   until the signal comes back (or the series is reset by a restart); see docs/anomaly.md.
 */
import { type BaselineParams, EwmaBaseline } from './baseline.js';

export interface DetectorParams extends BaselineParams {
  readonly warmup: number;
  readonly enterAfter: number;
  readonly leaveAfter: number;
}

export type Judgement = 'skipped' | 'warming' | 'normal' | 'anomalous';

export interface Step {
  judgement: Judgement;
  /** Set on the interval where an anomaly starts or ends. */
  transition: 'started' | 'ended' | undefined;
  /** The threshold the value was judged against (NaN while warming or skipped). */
  threshold: number;
}

export class Detector {
  readonly baseline = new EwmaBaseline();
  active = false;
  /** Consecutive anomalous intervals (before a start), or normal ones (during an anomaly). */
  streak = 0;
  /** When the active anomaly started (caller's clock), and the worst value seen in it. */
  startedAt = 0;
  peak = 0;

  constructor(public params: DetectorParams) {}

  observe(x: number | undefined, now = 0): Step {
    const p = this.params;
    const b = this.baseline;
    if (x === undefined || !Number.isFinite(x)) {
      if (!this.active) this.streak = 0;
      return { judgement: 'skipped', transition: undefined, threshold: Number.NaN };
    }
    if (b.samples < p.warmup) {
      b.learn(x, p.alpha);
      return { judgement: 'warming', transition: undefined, threshold: Number.NaN };
    }
    const threshold = b.threshold(p);
    const anomalous = x > threshold;
    let transition: Step['transition'];
    if (!this.active) {
      if (anomalous) {
        this.streak++;
        if (this.streak >= p.enterAfter) {
          this.active = true;
          this.streak = 0;
          this.startedAt = now;
          this.peak = x;
          transition = 'started';
        }
      } else {
        this.streak = 0;
        b.learn(x, p.alpha);
      }
    } else if (anomalous) {
      this.streak = 0;
      if (x > this.peak) this.peak = x;
    } else {
      b.learn(x, p.alpha);
      this.streak++;
      if (this.streak >= p.leaveAfter) {
        this.active = false;
        this.streak = 0;
        transition = 'ended';
      }
    }
    return { judgement: anomalous ? 'anomalous' : 'normal', transition, threshold };
  }
}

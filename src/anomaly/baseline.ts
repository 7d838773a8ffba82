/**
 * The learned baseline of one signal of one series: an exponentially weighted moving mean and an
 * exponentially weighted mean absolute deviation (EWMA "deviation band"), updated once per
 * interval. Pure and clock-free so it can be tested with hand-made series.
 *
 *   dev_n  = (1 − α)·dev_{n−1} + α·|x_n − mean_{n−1}|
 *   mean_n = (1 − α)·mean_{n−1} + α·x_n
 *   (the first sample sets mean = x, dev = 0)
 *
 * An interval is anomalous when it rises above
 *
 *   threshold = mean + max(bands·dev, minRelative·mean, minAbsolute)
 *
 * Only rises count: lower latency, fewer errors or cheaper requests are never an anomaly. The floor
 * (minRelative, minAbsolute) keeps a very steady baseline (dev ≈ 0, e.g. an error ratio of 0) from
 * turning the smallest wobble into an anomaly.
 */

export interface BaselineParams {
  /** Weight of a new sample, 0 < α ≤ 1. */
  readonly alpha: number;
  readonly bands: number;
  readonly minRelative: number;
  readonly minAbsolute: number;
}

export class EwmaBaseline {
  mean = 0;
  dev = 0;
  /** Samples learned so far. */
  samples = 0;

  learn(x: number, alpha: number): void {
    if (this.samples === 0) {
      this.mean = x;
      this.dev = 0;
    } else {
      this.dev = (1 - alpha) * this.dev + alpha * Math.abs(x - this.mean);
      this.mean = (1 - alpha) * this.mean + alpha * x;
    }
    this.samples++;
  }

  threshold(p: BaselineParams): number {
    return this.mean + Math.max(p.bands * this.dev, p.minRelative * this.mean, p.minAbsolute);
  }
}

/**
 * What the request path adds to on a route with an `slo`: a few integers per answer, in place (the
 * route holds its cell from compile time: no lookup, no allocation). Counts are kept for the route
 * and, on a released route, for the version that answered too. The SLO timer (live.ts) moves them
 * into its rings and zeroes them every tick.
 *
 * Layout: series 0 is the whole route, series 1 + arm the version (0 stable, 1 candidate); each
 * series has `width` counts: total, then bad per objective in objectivesOf() order. The definitions
 * are the rules' (rules.ts): availability bad = a 5xx answer; latency bad = slower than the
 * threshold (`le` buckets: a request at exactly the threshold is good). Every answer counts, as in
 * sluice_requests_total (a client that left, 499, is a good answer).
 */
export class SloCell {
  readonly width: number;
  readonly pending: Float64Array;
  /** Per objective: -1 for availability, else the latency threshold in seconds. */
  private readonly thresholds: Float64Array;
  private readonly versioned: boolean;

  constructor(
    thresholds: readonly (number | undefined)[],
    /** The version labels (stable and candidate upstream groups) on a released route, else empty. */
    readonly versions: readonly string[],
  ) {
    this.thresholds = Float64Array.from(thresholds, (t) => (t === undefined ? -1 : t));
    this.width = 1 + thresholds.length;
    this.versioned = versions.length > 0;
    this.pending = new Float64Array((1 + versions.length) * this.width);
  }

  get series(): number {
    return 1 + this.versions.length;
  }

  record(status: number, seconds: number, arm: number): void {
    this.add(0, status, seconds);
    if (this.versioned && arm >= 0) this.add((arm + 1) * this.width, status, seconds);
  }

  private add(o: number, status: number, seconds: number): void {
    const p = this.pending;
    const th = this.thresholds;
    p[o]!++;
    for (let k = 0; k < th.length; k++) {
      const t = th[k]!;
      if (t < 0 ? status >= 500 : seconds > t) p[o + 1 + k]!++;
    }
  }
}

/**
 * The latency histogram both arms of a release record, and the quantile figures the judge reads
 * from it. Pure code, no I/O.
 *
 * Buckets follow Prometheus' `le` convention: bucket `i` counts the values `v` with
 * `LATENCY_BUCKETS[i - 1] < v <= LATENCY_BUCKETS[i]` (bucket 0: `v <= LATENCY_BUCKETS[0]`, zero and
 * negative values included; the last bucket, `+Inf`, everything above the last finite bound).
 */
import { normalQuantile } from './stats.js';

/** First finite upper bound, ms. */
const FIRST_MS = 0.1;
/** Growth of the upper bound from one bucket to the next: ~5% relative width. */
const RATIO = 1.05;
/** Values up to this many ms get a finite bucket (the last finite bound is the first one >= this). */
const LAST_MS = 120_000;

function buildBuckets(): readonly number[] {
  const bounds: number[] = [];
  // Repeated multiplication, not RATIO ** i: IEEE-754 multiplication is exact to the bit on every
  // platform, whereas Math.pow is only "implementation-approximated" by ECMAScript. Each bound is then
  // rounded to 4 significant digits so that it reads well and can be written down in any language.
  let b = FIRST_MS;
  for (;;) {
    const rounded = Number(b.toPrecision(4));
    bounds.push(rounded);
    if (rounded >= LAST_MS) break;
    b *= RATIO;
  }
  bounds.push(Number.POSITIVE_INFINITY);
  return Object.freeze(bounds);
}

/**
 * Upper bounds of the latency buckets in milliseconds: 0.1, 0.105, 0.1103, ... 114900, 120600, +Inf
 * (289 buckets, 288 finite). Log-spaced with ~5% relative width from 0.1 ms to 120 s.
 *
 * FIXED FOREVER. Replicas publish their counts per bucket index and the driving replica sums them
 * index by index, possibly across versions of Sluice during an upgrade: changing a bound, adding or
 * removing a bucket would silently mix different intervals under one index. A new layout would need
 * a new name and a version tag on the published windows. The unit test pins the length and values.
 */
export const LATENCY_BUCKETS: readonly number[] = buildBuckets();

/** Number of buckets, `+Inf` included. */
export const BUCKET_COUNT = LATENCY_BUCKETS.length;
const INF_INDEX = BUCKET_COUNT - 1;
const LAST_FINITE = LATENCY_BUCKETS[INF_INDEX - 1]!;
/** The bounds as a typed array for the hot path (no bounds-check `undefined` in the types). */
const BOUNDS = Float64Array.from(LATENCY_BUCKETS);
const INV_LOG_RATIO = 1 / Math.log(RATIO);

/**
 * Index of the bucket holding `ms`. Called once per request: O(1), no allocation. The index is
 * estimated from the logarithm, then corrected against the table (the rounding of the bounds to 4
 * digits moves them by at most 0.05%, a hundredth of a bucket's width, so the estimate is off by at
 * most one and each loop runs at most once). NaN counts in `+Inf`: an unknown duration is not fast.
 */
export function bucketOf(ms: number): number {
  if (ms <= FIRST_MS) return 0;
  if (!(ms <= LAST_FINITE)) return INF_INDEX; // above the last bound, or NaN
  let i = Math.ceil(Math.log(ms / FIRST_MS) * INV_LOG_RATIO);
  if (i < 1) i = 1;
  else if (i > INF_INDEX - 1) i = INF_INDEX - 1;
  while (ms > BOUNDS[i]!) i++;
  while (ms <= BOUNDS[i - 1]!) i--;
  return i;
}

/** Lower edge of bucket `i` (0 for the first bucket: latencies are not negative). */
export function bucketLower(i: number): number {
  return i <= 0 ? 0 : LATENCY_BUCKETS[i - 1]!;
}

/** Upper edge of bucket `i` (`+Inf` for the last). */
export function bucketUpper(i: number): number {
  return LATENCY_BUCKETS[i]!;
}

/**
 * One arm's latency histogram on one replica. Counts are a Float64Array rather than a Uint32Array:
 * they stay exact integers up to 2^53 and cannot wrap around silently when windows are summed.
 */
export class LatencyHistogram {
  readonly counts: Float64Array;
  /** Values recorded (sum of `counts`). */
  total = 0;

  constructor(counts?: ArrayLike<number>) {
    this.counts = new Float64Array(BUCKET_COUNT);
    if (counts) this.merge(counts);
  }

  /** Count one request of `ms` milliseconds. */
  record(ms: number): void {
    this.counts[bucketOf(ms)]!++;
    this.total++;
  }

  /** Add another histogram's counts (another replica's, another window's) to this one. */
  merge(other: LatencyHistogram | ArrayLike<number>): this {
    const counts = other instanceof LatencyHistogram ? other.counts : other;
    checkLength(counts);
    for (let i = 0; i < BUCKET_COUNT; i++) {
      const c = counts[i]!;
      if (!(c >= 0) || !Number.isInteger(c)) throw new RangeError(`bucket ${i}: count ${c} is not a count`);
      this.counts[i]! += c;
      this.total += c;
    }
    return this;
  }

  /** Zero every count (start of a new window). */
  reset(): void {
    this.counts.fill(0);
    this.total = 0;
  }

  /** The counts as a plain array, the shape `ArmSample.latency` and the published windows use. */
  toArray(): number[] {
    return Array.from(this.counts);
  }
}

function checkLength(counts: ArrayLike<number>): void {
  if (counts.length !== BUCKET_COUNT) {
    throw new RangeError(`a latency histogram has ${BUCKET_COUNT} buckets, got ${counts.length}`);
  }
}

function totalOf(counts: ArrayLike<number>): number {
  let n = 0;
  for (let i = 0; i < counts.length; i++) n += counts[i]!;
  return n;
}

/** Index of the bucket holding the value of 1-based rank `rank` (1 <= rank <= total). */
function bucketOfRank(counts: ArrayLike<number>, rank: number): number {
  let cum = 0;
  for (let i = 0; i < counts.length; i++) {
    cum += counts[i]!;
    if (cum >= rank) return i;
  }
  return counts.length - 1;
}

/**
 * Estimate of the `q` quantile (0..1) in ms, or NaN for an empty histogram. Prometheus'
 * `histogram_quantile` rule: the rank `q * n` falls in some bucket, and the value is interpolated
 * linearly between that bucket's edges by the rank's position among the bucket's counts. A rank in
 * `+Inf` answers the last finite bound (there is no upper edge to interpolate to).
 */
export function quantile(counts: ArrayLike<number>, q: number): number {
  checkLength(counts);
  if (!(q >= 0 && q <= 1)) throw new RangeError(`quantile ${q} is not in [0, 1]`);
  const n = totalOf(counts);
  if (n === 0) return Number.NaN;
  const rank = q * n;
  let cum = 0;
  for (let i = 0; i < BUCKET_COUNT; i++) {
    const c = counts[i]!;
    if (c === 0) continue;
    if (cum + c >= rank) {
      if (i === INF_INDEX) return LAST_FINITE;
      const lo = bucketLower(i);
      const hi = bucketUpper(i);
      return lo + ((hi - lo) * (rank - cum)) / c;
    }
    cum += c;
  }
  return LAST_FINITE;
}

export interface QuantileBounds {
  /** Lower confidence bound, ms: lower edge of the bucket holding the order statistic of rank `lowerRank` (0 when that rank is below 1). */
  lower: number;
  /** Upper confidence bound, ms: upper edge of the bucket holding rank `upperRank` (`+Inf` when that rank is above n, or in the last bucket). */
  upper: number;
  /** Point estimate, `quantile(counts, q)`. */
  point: number;
  /** Values in the histogram. */
  n: number;
  /** The 1-based ranks of the order statistics used. */
  lowerRank: number;
  upperRank: number;
}

/**
 * Distribution-free confidence interval for the `q` quantile (two-sided, `confidence` e.g. 0.95)
 * from order statistics (Conover, Practical Nonparametric Statistics, §3.2, normal approximation to
 * the binomial): the number of values below the true quantile is Binomial(n, q), so the interval is
 * [X(l), X(u)] with 1-based ranks
 *   l = floor(n·q − z·sqrt(n·q·(1−q))),  u = ceil(n·q + z·sqrt(n·q·(1−q))),  z = Φ⁻¹((1 + confidence) / 2).
 * The histogram only says in which bucket X(l) and X(u) lie, so `lower` is X(l)'s bucket's lower edge
 * and `upper` X(u)'s bucket's upper edge: the bucketing widens the interval, it never narrows it.
 * With few values a tail quantile has no upper bound (u > n): `upper` is `+Inf`, honestly.
 * An empty histogram answers NaN for all three.
 */
export function quantileBounds(counts: ArrayLike<number>, q: number, confidence = 0.95): QuantileBounds {
  checkLength(counts);
  if (!(q >= 0 && q <= 1)) throw new RangeError(`quantile ${q} is not in [0, 1]`);
  if (!(confidence > 0 && confidence < 1)) throw new RangeError(`confidence ${confidence} is not in (0, 1)`);
  const n = totalOf(counts);
  if (n === 0) {
    return { lower: Number.NaN, upper: Number.NaN, point: Number.NaN, n: 0, lowerRank: 0, upperRank: 0 };
  }
  const z = normalQuantile((1 + confidence) / 2);
  const half = z * Math.sqrt(n * q * (1 - q));
  const lowerRank = Math.floor(n * q - half);
  const upperRank = Math.ceil(n * q + half);
  const lower = lowerRank < 1 ? 0 : bucketLower(bucketOfRank(counts, lowerRank));
  const upper = upperRank > n ? Number.POSITIVE_INFINITY : bucketUpper(bucketOfRank(counts, upperRank));
  return { lower, upper, point: quantile(counts, q), n, lowerRank, upperRank };
}

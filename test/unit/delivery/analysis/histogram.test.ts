/**
 * The latency buckets (pinned: replicas publish counts per bucket index), bucketOf against a linear
 * search written here, the histogram's record/merge, the quantile estimate and the order-statistic
 * confidence bounds. Expected bucket values come from an independent Python computation
 * (b = 0.1; repeat b *= 1.05; bound = float('%.4g' % b) until >= 120000), ranks are derived by hand.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  BUCKET_COUNT,
  bucketOf,
  LATENCY_BUCKETS,
  LatencyHistogram,
  quantile,
  quantileBounds,
} from '../../../../src/delivery/analysis/histogram.js';

/** The definition of the bucket (Prometheus `le`): the first bound >= v. */
function bucketByScan(v: number): number {
  for (let i = 0; i < LATENCY_BUCKETS.length; i++) if (v <= LATENCY_BUCKETS[i]!) return i;
  return LATENCY_BUCKETS.length - 1;
}

/** The next double above / below a positive finite x. */
function nextUp(x: number): number {
  const b = new Float64Array([x]);
  const u = new BigUint64Array(b.buffer);
  u[0]! += 1n;
  return b[0]!;
}
function nextDown(x: number): number {
  const b = new Float64Array([x]);
  const u = new BigUint64Array(b.buffer);
  u[0]! -= 1n;
  return b[0]!;
}

/** Counts with `c` in each listed bucket. */
function countsAt(entries: [number, number][]): number[] {
  const counts = new Array<number>(BUCKET_COUNT).fill(0);
  for (const [i, c] of entries) counts[i] = c;
  return counts;
}

describe('LATENCY_BUCKETS', () => {
  test('is the pinned layout: 288 finite bounds from 0.1 ms to 120.6 s, then +Inf', () => {
    assert.equal(LATENCY_BUCKETS.length, 289);
    assert.equal(BUCKET_COUNT, 289);
    assert.deepEqual(LATENCY_BUCKETS.slice(0, 6), [0.1, 0.105, 0.1103, 0.1158, 0.1216, 0.1276]);
    assert.equal(LATENCY_BUCKETS[20], 0.2653);
    assert.equal(LATENCY_BUCKETS[40], 0.704);
    assert.equal(LATENCY_BUCKETS[100], 13.15);
    assert.equal(LATENCY_BUCKETS[200], 1729);
    assert.deepEqual(LATENCY_BUCKETS.slice(285, 288), [109400, 114900, 120600]);
    assert.equal(LATENCY_BUCKETS[288], Number.POSITIVE_INFINITY);
    // Fingerprint of the whole table: the sum of the finite bounds in order (Python: 2532571.4375).
    let sum = 0;
    for (let i = 0; i < 288; i++) sum += LATENCY_BUCKETS[i]!;
    assert.equal(sum, 2532571.4375);
  });

  test('each bucket is about 5% wide', () => {
    for (let i = 1; i < 288; i++) {
      const w = LATENCY_BUCKETS[i]! / LATENCY_BUCKETS[i - 1]! - 1;
      assert.ok(w > 0.049 && w < 0.051, `bucket ${i}: ${w}`);
    }
  });

  test('cannot be changed at run time', () => {
    assert.ok(Object.isFrozen(LATENCY_BUCKETS));
  });
});

describe('bucketOf', () => {
  test('edges: zero, negatives, the first and last bounds, beyond, NaN', () => {
    assert.equal(bucketOf(0), 0);
    assert.equal(bucketOf(-3), 0);
    assert.equal(bucketOf(0.1), 0);
    assert.equal(bucketOf(0.1000001), 1);
    assert.equal(bucketOf(0.105), 1);
    assert.equal(bucketOf(0.1051), 2);
    assert.equal(bucketOf(13.15), 100);
    assert.equal(bucketOf(13.16), 101);
    assert.equal(bucketOf(120600), 287);
    assert.equal(bucketOf(120601), 288);
    assert.equal(bucketOf(Number.POSITIVE_INFINITY), 288);
    assert.equal(bucketOf(Number.NaN), 288);
  });

  test('agrees with the linear search at every bound and one ulp either side', () => {
    for (let i = 0; i < 288; i++) {
      const b = LATENCY_BUCKETS[i]!;
      for (const v of [nextDown(b), b, nextUp(b)]) assert.equal(bucketOf(v), bucketByScan(v), `value ${v}`);
    }
  });

  test('agrees with the linear search on 100000 log-uniform values from 0.01 ms to 1000 s', () => {
    let seed = 12345;
    for (let k = 0; k < 100_000; k++) {
      seed = (seed * 1103515245 + 12345) % 2147483648;
      const v = 10 ** (-2 + (8 * seed) / 2147483648);
      assert.equal(bucketOf(v), bucketByScan(v), `value ${v}`);
    }
  });
});

describe('LatencyHistogram', () => {
  test('record counts each value in its bucket', () => {
    const h = new LatencyHistogram();
    for (const v of [0.05, 0.1, 0.104, 13.15, 13.15, 1e9]) h.record(v);
    assert.equal(h.total, 6);
    assert.equal(h.counts[0], 2);
    assert.equal(h.counts[1], 1);
    assert.equal(h.counts[100], 2);
    assert.equal(h.counts[288], 1);
    assert.equal(h.toArray().length, 289);
  });

  test('merge adds another histogram or a published array, and refuses a foreign layout', () => {
    const a = new LatencyHistogram();
    a.record(1);
    a.record(1);
    const b = new LatencyHistogram();
    b.record(1);
    b.record(500);
    a.merge(b).merge(countsAt([[0, 3]]));
    assert.equal(a.total, 7);
    assert.equal(a.counts[bucketByScan(1)], 3);
    assert.equal(a.counts[bucketByScan(500)], 1);
    assert.equal(a.counts[0], 3);
    assert.throws(() => a.merge([1, 2, 3]), /289 buckets, got 3/);
    assert.throws(() => a.merge(countsAt([[5, -1]])), /not a count/);
    a.reset();
    assert.equal(a.total, 0);
    assert.equal(
      a.counts.reduce((x, y) => x + y, 0),
      0,
    );
  });
});

describe('quantile', () => {
  test('interpolates linearly inside the bucket holding rank q·n', () => {
    // 10 values in bucket 100 = (12.52, 13.15]: rank 5 of 10 is halfway, 12.835.
    const counts = countsAt([[100, 10]]);
    assert.ok(Math.abs(quantile(counts, 0.5) - 12.835) < 1e-12);
    // rank 9 of 10: 12.52 + 0.63 × 0.9 = 13.087
    assert.ok(Math.abs(quantile(counts, 0.9) - 13.087) < 1e-12);
    assert.equal(quantile(counts, 0), 12.52);
    assert.equal(quantile(counts, 1), 13.15);
  });

  test('crosses buckets by cumulative count; +Inf answers the last finite bound; empty is NaN', () => {
    // 3 in bucket 0 [0, 0.1], 1 in bucket 100: rank 2 of 4 is 2/3 into bucket 0.
    const counts = countsAt([
      [0, 3],
      [100, 1],
    ]);
    assert.ok(Math.abs(quantile(counts, 0.5) - 0.2 / 3) < 1e-12);
    // rank 3.6: 0.6 into bucket 100 → 12.52 + 0.63 × 0.6 = 12.898
    assert.ok(Math.abs(quantile(counts, 0.9) - 12.898) < 1e-12);
    assert.equal(quantile(countsAt([[288, 5]]), 0.99), 120600);
    assert.ok(Number.isNaN(quantile(countsAt([]), 0.5)));
  });
});

describe('quantileBounds', () => {
  // One value in each of buckets 0..199 (n = 200): the value of rank r lies in bucket r − 1.
  const oneEach = countsAt(Array.from({ length: 200 }, (_, i): [number, number] => [i, 1]));

  test('median of 200 at 95%: ranks 86 and 114', () => {
    // z = 1.959964; n·q = 100; z·sqrt(200·0.25) = 1.959964 × 7.071068 = 13.859
    // l = floor(86.141) = 86 → bucket 85, lower edge = LATENCY_BUCKETS[84] = 6.024
    // u = ceil(113.859) = 114 → bucket 113, upper edge = LATENCY_BUCKETS[113] = 24.8
    // point: rank 100 is the whole of bucket 99 → its upper edge 12.52
    const b = quantileBounds(oneEach, 0.5, 0.95);
    assert.equal(b.n, 200);
    assert.equal(b.lowerRank, 86);
    assert.equal(b.upperRank, 114);
    assert.equal(b.lower, 6.024);
    assert.equal(b.upper, 24.8);
    assert.ok(Math.abs(b.point - 12.52) < 1e-12);
  });

  test('p99 of 200 has no upper bound', () => {
    // n·q = 198; z·sqrt(198·0.01) = 1.959964 × 1.407125 = 2.758
    // l = floor(195.242) = 195 → bucket 194, lower edge LATENCY_BUCKETS[193] = 1229; u = ceil(200.758) = 201 > 200
    const b = quantileBounds(oneEach, 0.99, 0.95);
    assert.equal(b.lowerRank, 195);
    assert.equal(b.upperRank, 201);
    assert.equal(b.lower, 1229);
    assert.equal(b.upper, Number.POSITIVE_INFINITY);
  });

  test('a wider confidence never narrows the interval; a lower rank below 1 reads 0', () => {
    const b90 = quantileBounds(oneEach, 0.5, 0.9);
    const b99 = quantileBounds(oneEach, 0.5, 0.99);
    assert.ok(b99.lower <= b90.lower && b99.upper >= b90.upper);
    // 5 values, q = 0.1: n·q = 0.5, l = floor(0.5 − 1.96 × 0.67) < 1
    const few = countsAt([[100, 5]]);
    assert.equal(quantileBounds(few, 0.1, 0.95).lower, 0);
  });

  test('all values in one bucket: the bounds are that bucket', () => {
    const b = quantileBounds(countsAt([[100, 1000]]), 0.5, 0.95);
    assert.equal(b.lower, 12.52);
    assert.equal(b.upper, 13.15);
  });

  test('an empty histogram has no bounds', () => {
    const b = quantileBounds(countsAt([]), 0.99, 0.95);
    assert.equal(b.n, 0);
    assert.ok(Number.isNaN(b.lower) && Number.isNaN(b.upper) && Number.isNaN(b.point));
  });
});

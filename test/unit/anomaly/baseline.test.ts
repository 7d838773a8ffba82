/**
 * The EWMA baseline and the hysteresis of src/anomaly/ on hand-made series. Every expected number
 * is worked out in the comments from the formulas in docs/anomaly.md, not taken from the code.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { EwmaBaseline } from '../../../src/anomaly/baseline.js';
import { Detector, type DetectorParams } from '../../../src/anomaly/detector.js';
import { resolveAnomaly } from '../../../src/anomaly/settings.js';

test('EWMA mean and deviation follow the formulas; the threshold takes the widest of band and floors', () => {
  const b = new EwmaBaseline();
  b.learn(10, 0.5); // first sample: mean 10, dev 0
  assert.equal(b.mean, 10);
  assert.equal(b.dev, 0);
  b.learn(20, 0.5); // dev = 0.5·0 + 0.5·|20 − 10| = 5; mean = 0.5·10 + 0.5·20 = 15
  assert.equal(b.dev, 5);
  assert.equal(b.mean, 15);
  b.learn(15, 0.5); // dev = 0.5·5 + 0.5·|15 − 15| = 2.5; mean stays 15
  assert.equal(b.dev, 2.5);
  assert.equal(b.mean, 15);
  assert.equal(b.samples, 3);
  // bands 2: 15 + 2·2.5 = 20
  assert.equal(b.threshold({ alpha: 0.5, bands: 2, minRelative: 0, minAbsolute: 0 }), 20);
  // minRelative 0.5 widens it to 15 + 0.5·15 = 22.5
  assert.equal(b.threshold({ alpha: 0.5, bands: 2, minRelative: 0.5, minAbsolute: 0 }), 22.5);
  // minAbsolute 10 widens it to 15 + 10 = 25
  assert.equal(b.threshold({ alpha: 0.5, bands: 2, minRelative: 0.5, minAbsolute: 10 }), 25);
});

const params: DetectorParams = {
  alpha: 0.5,
  bands: 2,
  minRelative: 0,
  minAbsolute: 1,
  warmup: 3,
  enterAfter: 2,
  leaveAfter: 2,
};

function run(d: Detector, xs: readonly (number | undefined)[]): string[] {
  return xs.map((x, i) => {
    const s = d.observe(x, i * 1000);
    return s.transition ?? s.judgement;
  });
}

test('warm-up, enter after K anomalous intervals, baseline frozen meanwhile, leave after M normal ones', () => {
  const d = new Detector(params);
  // 3 warm-up samples of 10: mean 10, dev 0, threshold 10 + max(0, 0, 1) = 11.
  // 10.5 is normal (learned: dev = 0.5·|10.5 − 10| = 0.25, mean 10.25; threshold 10.25 + max(0.5, 1) = 11.25).
  // 30 anomalous (streak 1), 30 starts (streak 2 = K), 10 normal (1), 40 anomalous (the normal run
  // resets), 10 normal (1), 10 normal (2 = M): ended.
  const got = run(d, [10, 10, 10, 10.5, 30, 30, 10, 40, 10, 10]);
  assert.deepEqual(got, [
    'warming',
    'warming',
    'warming',
    'normal',
    'anomalous',
    'started',
    'normal',
    'anomalous',
    'normal',
    'ended',
  ]);
  // The 30s and the 40 were never learned: the baseline learned 10,10,10,10.5 then three 10s:
  // mean 10.25 → 10.125 → 10.0625 → 10.03125.
  assert.equal(d.baseline.mean, 10.03125);
  assert.equal(d.peak, 40, 'the worst interval of the anomaly');
  assert.equal(d.active, false);
});

test('huge values during warm-up are learned, never judged', () => {
  const d = new Detector(params);
  assert.deepEqual(run(d, [10, 500, 10]), ['warming', 'warming', 'warming']);
});

test('a quiet night: anomalous intervals separated by intervals below the minimum volume never start one', () => {
  const d = new Detector(params);
  run(d, [10, 10, 10]);
  // K = 2 consecutive intervals with traffic are needed; each `undefined` (too few requests) breaks the run.
  const got = run(d, [50, undefined, 50, undefined, 50, undefined, 50]);
  assert.ok(!got.includes('started'), got.join(','));
  assert.equal(d.active, false);
});

test('during an anomaly, quiet intervals neither end it nor break the run of normal ones', () => {
  const d = new Detector(params);
  run(d, [10, 10, 10]);
  assert.deepEqual(run(d, [50, 50]), ['anomalous', 'started']);
  assert.deepEqual(run(d, [undefined, undefined]), ['skipped', 'skipped']);
  assert.equal(d.active, true);
  assert.deepEqual(run(d, [10, undefined, 10]), ['normal', 'skipped', 'ended']);
});

test('steady noise inside the bands never starts an anomaly', () => {
  const d = new Detector({ ...params, alpha: 0.1, bands: 4, warmup: 10, minAbsolute: 0 });
  // Alternating 9 and 11: the mean settles near 10 and |x − mean| near 1, so dev → about 1 and
  // the threshold near 10 + 4·1 = 14; 11 never exceeds it (dev starts at 0, but the first judged
  // sample comes after 10 warm-up samples, when dev is already ≥ 0.5 and the threshold ≥ 12).
  const xs = Array.from({ length: 400 }, (_, i) => (i % 2 === 0 ? 9 : 11));
  const got = run(d, xs);
  assert.ok(!got.includes('anomalous'), `judged anomalous at ${got.indexOf('anomalous')}`);
});

test('a single spike is not an anomaly when K is 3, three in a row are', () => {
  const d = new Detector({ ...params, enterAfter: 3 });
  run(d, [10, 10, 10]);
  assert.deepEqual(run(d, [40, 10, 40, 40, 10]), ['anomalous', 'normal', 'anomalous', 'anomalous', 'normal']);
  assert.deepEqual(run(d, [40, 40, 40]), ['anomalous', 'anomalous', 'started']);
});

test('settings: defaults, per-upstream overrides merged field by field, signals turned off', () => {
  assert.equal(resolveAnomaly(undefined), undefined);
  assert.equal(resolveAnomaly({ enabled: false }), undefined);
  const r = resolveAnomaly({
    interval: '2s',
    bands: 3,
    latency: { minAbsolute: 50 },
    upstreams: { slow: { warmup: 5, latency: { bands: 6 }, cost: { enabled: false } } },
  })!;
  assert.equal(r.intervalMs, 2000);
  const other = r.forUpstream('other');
  assert.equal(other.minRequests, 20);
  assert.deepEqual(other.signals.latency, {
    alpha: 0.05,
    bands: 3,
    minRelative: 0.2,
    minAbsolute: 50,
    warmup: 30,
    enterAfter: 3,
    leaveAfter: 5,
  });
  assert.deepEqual(other.signals.errors, {
    alpha: 0.05,
    bands: 3,
    minRelative: 0,
    minAbsolute: 0.05,
    warmup: 30,
    enterAfter: 3,
    leaveAfter: 5,
  });
  const slow = r.forUpstream('slow');
  assert.equal(slow.signals.latency?.bands, 6);
  assert.equal(slow.signals.latency?.minAbsolute, 50, 'the global field of the signal stays');
  assert.equal(slow.signals.latency?.warmup, 5);
  assert.equal(slow.signals.cost, undefined);
  assert.notEqual(other.signals.cost, undefined);
});

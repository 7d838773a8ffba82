/** The release burn-rate gate (analysis/burn.ts) and its window (releases/burn-window.ts); figures by hand. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { badOf, burnChecks, withChecks } from '../../../src/delivery/analysis/burn.js';
import { BUCKET_COUNT, LATENCY_BUCKETS } from '../../../src/delivery/analysis/histogram.js';
import { judge } from '../../../src/delivery/analysis/judge.js';
import type { ArmSample } from '../../../src/delivery/analysis/types.js';
import { BurnWindows } from '../../../src/delivery/releases/burn-window.js';
import type { Objective } from '../../../src/slo/schema.js';

const availability: Objective = { route: 'api', slo: 'availability', target: 0.99, windowDays: 30 };
const rule = { maxRate: 6, window: '5m', windowMs: 300_000 };

test('fails above maxRate, passes at or below it, insufficient below minSamples', () => {
  // 99%: budget 1%. 7 bad of 100 = 7x > 6: fail. 6 of 100 = 6x, not above: pass.
  const [fail] = burnChecks([availability], { requests: 100, bad: [7], spanMs: 300_000 }, rule, 50);
  assert.equal(fail!.verdict, 'fail');
  assert.equal(fail!.check, 'burnRate.availability');
  assert.ok(Math.abs((fail!.figures.burnRate as number) - 7) < 1e-12);
  assert.match(
    fail!.reason,
    /burn rate 7x of the availability error budget over the last 5m .*7\/100 bad.*above the 6x allowed/,
  );
  const [pass] = burnChecks([availability], { requests: 100, bad: [6], spanMs: 300_000 }, rule, 50);
  assert.equal(pass!.verdict, 'pass');
  // 49 requests, all bad, against minSamples 50: not judged.
  const [few] = burnChecks([availability], { requests: 49, bad: [49], spanMs: 300_000 }, rule, 50);
  assert.equal(few!.verdict, 'insufficient');
});

test('latency: the buckets above the threshold are bad', () => {
  const latency = new Array(BUCKET_COUNT).fill(0);
  const at200 = LATENCY_BUCKETS.findIndex((b) => b > 200); // the first bucket reaching above 200 ms
  latency[0] = 90; // ≤ 0.1 ms: good
  latency[at200] = 10; // straddles or is above 200 ms: bad
  const s: ArmSample = { requests: 100, errors: 3, upstreamFailures: 0, latency };
  const p95: Objective = { ...availability, slo: 'latency-p95', target: 0.95, thresholdSeconds: 0.2 };
  assert.deepEqual(badOf([availability, p95], s), [3, 10]);
});

test('the window: totals minus those read a window ago; the step so far before that', () => {
  const w = new BurnWindows();
  const t = 1_000_000;
  // Step started at t; read at t + 10 s, t + 200 s, t + 400 s (cumulative 50, 150, 300 requests).
  assert.deepEqual(w.observe('r', '1:0', t + 10_000, t, { requests: 50, bad: [1] }, 300_000), {
    requests: 50,
    bad: [1],
    spanMs: 10_000,
  });
  assert.deepEqual(w.observe('r', '1:0', t + 200_000, t, { requests: 150, bad: [2] }, 300_000), {
    requests: 150,
    bad: [2],
    spanMs: 200_000,
  });
  // At t + 400 s the window starts at t + 100 s: the newest read at or before it is t + 10 s.
  assert.deepEqual(w.observe('r', '1:0', t + 400_000, t, { requests: 300, bad: [20] }, 300_000), {
    requests: 250,
    bad: [19],
    spanMs: 390_000,
  });
  // A new step starts afresh.
  assert.deepEqual(w.observe('r', '1:1', t + 410_000, t + 405_000, { requests: 5, bad: [0] }, 300_000), {
    requests: 5,
    bad: [0],
    spanMs: 5_000,
  });
});

test('withChecks: a burn failure fails the judgement; too small a step sample makes it insufficient', () => {
  const empty = (requests: number, errors: number): ArmSample => {
    const latency = new Array(BUCKET_COUNT).fill(0);
    latency[0] = requests;
    return { requests, errors, upstreamFailures: 0, latency };
  };
  const rules = { minSamples: 50, errors: {}, latency: {}, baseline: true };
  const ok = judge(empty(1000, 10), empty(100, 1), rules);
  assert.equal(ok.verdict, 'pass');
  const burning = burnChecks([availability], { requests: 100, bad: [7], spanMs: 1 }, rule, 50);
  assert.equal(withChecks(ok, burning).verdict, 'fail');
  const small = judge(empty(10, 0), empty(100, 1), rules);
  const held = withChecks(
    small,
    burnChecks([availability], { requests: 100, bad: [7], spanMs: 1 }, rule, 50),
  );
  assert.equal(held.verdict, 'insufficient');
});

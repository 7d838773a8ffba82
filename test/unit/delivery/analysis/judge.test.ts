/**
 * The release judge on arms built here: latencies drawn from seeded log-normal distributions (a PRNG
 * written in this file) recorded into real histograms, error counts chosen per case. Expected
 * p-values and bounds are the references of stats.test.ts (hand derivations and SciPy), not outputs
 * of the code under test.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { LatencyHistogram } from '../../../../src/delivery/analysis/histogram.js';
import { judge } from '../../../../src/delivery/analysis/judge.js';
import type {
  ArmSample,
  CheckResult,
  Judgement,
  JudgeRules,
} from '../../../../src/delivery/analysis/types.js';

/** mulberry32: a small seeded PRNG, uniform in [0, 1). */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** n latencies, log-normal with this median and log-sd (Box–Muller). */
function logNormal(seed: number, n: number, medianMs: number, sigma: number): number[] {
  const u = prng(seed);
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const z = Math.sqrt(-2 * Math.log(1 - u())) * Math.cos(2 * Math.PI * u());
    out.push(medianMs * Math.exp(sigma * z));
  }
  return out;
}

function arm(latencies: number[], errors = 0, upstreamFailures = 0, requests = latencies.length): ArmSample {
  const h = new LatencyHistogram();
  for (const ms of latencies) h.record(ms);
  return { requests, errors, upstreamFailures, latency: h.toArray() };
}

function rules(over: Partial<JudgeRules> = {}): JudgeRules {
  return { minSamples: 100, errors: {}, latency: {}, baseline: true, ...over };
}

function check(j: Judgement, name: string): CheckResult {
  const c = j.checks.find((x) => x.check === name);
  assert.ok(c, `no check ${name} in ${j.checks.map((x) => x.check).join(', ')}`);
  return c;
}

function verdicts(j: Judgement): Record<string, string> {
  return Object.fromEntries(j.checks.map((c) => [c.check, c.verdict]));
}

const close = (a: number | null | undefined, e: number, rel = 1e-9) =>
  assert.ok(typeof a === 'number' && Math.abs(a - e) <= rel * Math.abs(e), `${a} vs ${e}`);

describe('judge', () => {
  test('identical arms pass every check', () => {
    const lat = logNormal(1, 2000, 20, 0.3);
    const j = judge(arm(lat, 20, 5), arm(lat, 20, 5), rules());
    assert.equal(j.verdict, 'pass');
    assert.deepEqual(verdicts(j), {
      samples: 'pass',
      'errors.increase': 'pass',
      'upstream.increase': 'pass',
      'latency.p50': 'pass',
      'latency.p90': 'pass',
      'latency.p99': 'pass',
      'latency.rank': 'pass',
    });
    assert.equal(check(j, 'latency.rank').figures.cles, 0.5);
    assert.deepEqual(j.candidate, { requests: 2000, errors: 20, upstreamFailures: 5 });
  });

  test('two draws of the same distribution pass', () => {
    const j = judge(arm(logNormal(2, 3000, 20, 0.3), 30), arm(logNormal(3, 3000, 20, 0.3), 33), rules());
    assert.equal(j.verdict, 'pass', JSON.stringify(j.checks.map((c) => c.reason)));
  });

  test('a candidate with 5% errors against 0%, 400 requests each, fails errors.increase', () => {
    const lat = logNormal(4, 400, 20, 0.3);
    const j = judge(arm(lat, 0), arm(lat, 20), rules());
    assert.equal(j.verdict, 'fail');
    const c = check(j, 'errors.increase');
    assert.equal(c.verdict, 'fail');
    // Fisher one-sided, 20/400 against 0/400: SciPy 7.475964406291841e-07
    close(c.figures.p, 7.475964406291841e-7, 1e-8);
    assert.equal(c.figures.candidateRate, 0.05);
    assert.equal(c.figures.stableRate, 0);
    assert.equal(c.figures.increase, 0.05);
    assert.equal(c.figures.maxIncrease, 0.01);
    assert.equal(c.figures.alpha, 0.05);
    assert.match(c.reason, /candidate errors 5\.00% \(20\/400\) against stable 0\.00% \(0\/400\)/);
    // the errors were not upstream failures
    assert.equal(check(j, 'upstream.increase').verdict, 'pass');
  });

  test('2 errors of 50 against 0 of 50: not significant, and below minSamples insufficient', () => {
    const lat = logNormal(5, 50, 20, 0.3);
    // Fisher p = C(50,2)/C(100,2) = 1225/4950 = 0.2475: a 4% gap that chance produces a quarter of the time.
    const enough = judge(arm(lat, 0), arm(lat, 2), rules({ minSamples: 50 }));
    const inc = check(enough, 'errors.increase');
    assert.equal(inc.verdict, 'pass');
    close(inc.figures.p, 1225 / 4950, 1e-10);
    assert.equal(inc.figures.increase, 0.04);

    const few = judge(arm(lat, 0), arm(lat, 2), rules({ minSamples: 100 }));
    assert.equal(few.verdict, 'insufficient');
    assert.equal(check(few, 'samples').verdict, 'insufficient');
    assert.match(
      check(few, 'samples').reason,
      /candidate has 50 and stable has 50 requests, fewer than the 100/,
    );
    // every check is reported with its figures, none of them decides
    for (const c of few.checks) assert.equal(c.verdict, 'insufficient', c.check);
    close(check(few, 'errors.increase').figures.p, 1225 / 4950, 1e-10);
  });

  test('too few requests never fail either: 50 of 50 errors is insufficient below minSamples', () => {
    const lat = logNormal(6, 50, 20, 0.3);
    const j = judge(arm(lat, 0), arm(lat, 50), rules({ minSamples: 100 }));
    assert.equal(j.verdict, 'insufficient');
    assert.match(
      check(j, 'errors.increase').reason,
      /^not judged, too few requests .*the figures alone: fail/,
    );
  });

  test('a candidate 5x slower fails every latency check', () => {
    const j = judge(arm(logNormal(7, 1000, 20, 0.3)), arm(logNormal(8, 1000, 100, 0.3)), rules());
    assert.equal(j.verdict, 'fail');
    for (const name of ['latency.p50', 'latency.p90', 'latency.p99', 'latency.rank']) {
      assert.equal(check(j, name).verdict, 'fail', name);
    }
    const p50 = check(j, 'latency.p50').figures;
    // the candidate's lower bound is above 1.5 × the stable upper bound
    assert.ok(p50.candidateLower! > p50.threshold!);
    close(p50.threshold, p50.stableUpper! * 1.5, 1e-12);
    assert.ok(check(j, 'latency.rank').figures.cles! > 0.99);
    assert.equal(check(j, 'errors.increase').verdict, 'pass');
  });

  test('same median, p99 ten times higher: latency.p99 fails while latency.rank passes (kayenta#780)', () => {
    // stable: log-normal, median 20 ms, p99 = 20·e^(0.25·2.326) ≈ 36 ms
    // candidate: the same distribution for 98% of requests, 2% around 400 ms: its p99 is the middle of
    // that 2% (~400 ms, ten times the stable p99) while its median moves by ~0.5%. A rank test sees
    // P(candidate slower) ≈ 0.98·0.5 + 0.02·1 = 0.51: a shift far below the 0.6 margin.
    const stable = logNormal(9, 5000, 20, 0.25);
    const candidate = [...logNormal(10, 4900, 20, 0.25), ...logNormal(11, 100, 400, 0.1)];
    const j = judge(arm(stable), arm(candidate), rules());
    assert.equal(j.verdict, 'fail');
    const p99 = check(j, 'latency.p99');
    assert.equal(p99.verdict, 'fail');
    assert.ok(p99.figures.candidatePoint! > 8 * p99.figures.stablePoint!, p99.reason);
    assert.equal(check(j, 'latency.p50').verdict, 'pass');
    const rank = check(j, 'latency.rank');
    assert.equal(rank.verdict, 'pass');
    assert.ok(rank.figures.cles! > 0.5 && rank.figures.cles! < 0.53, rank.reason);
  });

  test('1 ms against 2 ms does not fail: minIncreaseMs', () => {
    const j = judge(arm(logNormal(12, 1000, 1, 0.05)), arm(logNormal(13, 1000, 2, 0.05)), rules());
    assert.equal(j.verdict, 'pass', JSON.stringify(j.checks.map((c) => c.reason)));
    assert.match(check(j, 'latency.p50').reason, /only 1\.\d\d ms slower \(5\.00 ms needed\)/);
    assert.match(check(j, 'latency.rank').reason, /median is only 1\.\d\d ms slower/);
    // with the minimum lowered, the doubling fails
    const strict = judge(
      arm(logNormal(12, 1000, 1, 0.05)),
      arm(logNormal(13, 1000, 2, 0.05)),
      rules({ latency: { minIncreaseMs: 0.5 } }),
    );
    assert.equal(check(strict, 'latency.p50').verdict, 'fail');
    assert.equal(check(strict, 'latency.rank').verdict, 'fail');
  });

  test('an empty sample is insufficient, never a pass', () => {
    const full = arm(logNormal(14, 1000, 20, 0.3));
    const empty = arm([]);
    assert.equal(judge(full, empty, rules()).verdict, 'insufficient');
    assert.equal(judge(empty, full, rules()).verdict, 'insufficient'); // no control: kayenta#799
    assert.equal(judge(empty, empty, rules()).verdict, 'insufficient');
    assert.equal(judge(empty, empty, rules({ minSamples: 0 })).verdict, 'insufficient');
    assert.equal(judge(empty, empty, rules({ baseline: false })).verdict, 'insufficient');
    const j = judge(empty, empty, rules());
    // figures that do not exist are null, and the judgement survives JSON
    assert.equal(check(j, 'latency.p99').figures.candidatePoint, null);
    assert.deepEqual(JSON.parse(JSON.stringify(j)), j);
  });

  test('requests counted but no latency recorded: the latency checks are insufficient, so is the verdict', () => {
    const stable = { ...arm(logNormal(15, 500, 20, 0.3)) };
    const candidate = { ...arm([]), requests: 500 };
    const j = judge(stable, candidate, rules());
    assert.equal(check(j, 'samples').verdict, 'pass');
    assert.equal(check(j, 'latency.p99').verdict, 'insufficient');
    assert.equal(check(j, 'latency.rank').verdict, 'insufficient');
    assert.equal(j.verdict, 'insufficient');
  });

  test('sparse errors 0,1,2,1,0,0 (4 of 600) against 0 of 600', () => {
    // Kayenta ran Mann-Whitney on the six per-interval counts and passed (kayenta#426). Sluice tests the
    // requests themselves: Fisher's exact p for 4/600 against 0/600 is C(600,4)/C(1200,4) = 0.0622, so
    // four errors against none happen by chance 6% of the time with equal rates, and the gap (0.67
    // points) is within the default 1 point allowed. Decision: with the default rules the step PASSES,
    // on the record (p and rates in the figures). The two ways to make such errors count are an
    // absolute limit (maxRate: the candidate's rate is confidently above it) or the evidence growing:
    // the same rate over twice the window, 8/1200 against 0/1200, is significant (p = 0.0039).
    const lat = logNormal(16, 600, 20, 0.3);
    const j = judge(arm(lat, 0), arm(lat, 4), rules());
    assert.equal(j.verdict, 'pass');
    const inc = check(j, 'errors.increase');
    assert.equal(inc.verdict, 'pass');
    close(inc.figures.p, 0.062187370009678083, 1e-9);
    assert.match(inc.reason, /p = 0\.0622 >= 0\.05: no significant increase/);

    // An SLO of 0.1% errors: the one-sided 95% Clopper–Pearson lower bound of 4/600 is 0.00228 (SciPy
    // beta.ppf(0.05, 4, 597)) > 0.001: fail.
    const slo = judge(arm(lat, 0), arm(lat, 4), rules({ errors: { maxRate: 0.001 } }));
    assert.equal(slo.verdict, 'fail');
    const rate = check(slo, 'errors.rate');
    assert.equal(rate.verdict, 'fail');
    close(rate.figures.lower, 0.0022803058047339516, 1e-7);
    assert.equal(rate.figures.confidence, 0.95);

    // Twice the window at the same rate, with a tighter allowed increase (0.5 point): fail.
    const lat2 = logNormal(17, 1200, 20, 0.3);
    const more = judge(arm(lat2, 0), arm(lat2, 8), rules({ errors: { maxIncrease: 0.005 } }));
    close(check(more, 'errors.increase').figures.p, 0.0038608006206348805, 1e-9);
    assert.equal(check(more, 'errors.increase').verdict, 'fail');
  });

  test('upstream failures are judged on their own', () => {
    // Both arms answer 20 errors of 400; the stable ones are the application's 5xx, the candidate's are
    // all upstream failures (connect errors, timeouts): errors.increase passes, upstream.increase fails.
    const lat = logNormal(18, 400, 20, 0.3);
    const j = judge(arm(lat, 20, 0), arm(lat, 20, 20), rules());
    assert.equal(check(j, 'errors.increase').verdict, 'pass');
    const up = check(j, 'upstream.increase');
    assert.equal(up.verdict, 'fail');
    close(up.figures.p, 7.475964406291841e-7, 1e-8);
    assert.match(up.reason, /candidate upstream failures 5\.00%/);
    // an upstream rule of its own
    const lax = judge(arm(lat, 20, 0), arm(lat, 20, 20), rules({ upstream: { maxIncrease: 0.1 } }));
    assert.equal(check(lax, 'upstream.increase').verdict, 'pass');
    const limit = judge(arm(lat, 0), arm(lat, 20, 20), rules({ upstream: { maxRate: 0.02 } }));
    // one-sided 95% lower bound of 20/400: 0.0334 (SciPy beta.ppf(0.05, 20, 381)) > 0.02
    close(check(limit, 'upstream.rate').figures.lower, 0.03337901341767718, 1e-7);
    assert.equal(check(limit, 'upstream.rate').verdict, 'fail');
  });

  test('baseline: false applies the absolute rules only', () => {
    const candidate = arm(logNormal(19, 2000, 300, 0.2), 10);
    const noStable = arm([]);
    const j = judge(noStable, candidate, rules({ baseline: false }));
    assert.equal(j.verdict, 'pass');
    assert.deepEqual(verdicts(j), { samples: 'pass' });
    assert.equal(check(j, 'samples').figures.stableRequests, null);

    // median 300 ms, log-sd 0.2: p99 = 300·e^(0.2·2.326) ≈ 477 ms > 300; p50 ≈ 300 is not confidently above 350
    const limits = judge(
      noStable,
      candidate,
      rules({ baseline: false, errors: { maxRate: 0.01 }, latency: { maxMs: { p99: 300, p50: 350 } } }),
    );
    assert.deepEqual(verdicts(limits), {
      samples: 'pass',
      'errors.rate': 'pass', // 10/2000 = 0.5%: its one-sided 95% lower bound (0.0027) is not above 1%
      'latency.p99.max': 'fail',
      'latency.p50.max': 'pass',
    });
    assert.equal(limits.verdict, 'fail');
    const p99 = check(limits, 'latency.p99.max');
    assert.ok(p99.figures.candidateLower! > 300);
    assert.equal(p99.figures.maxMs, 300);
    assert.match(p99.reason, /its lower bound is above the 300\.0 ms limit/);
  });

  test('few latencies: the tail quantile has no upper bound, so it cannot fail relative to it', () => {
    // 100 values: p99 needs rank ceil(99 + 1.96·sqrt(0.99)) = ceil(100.95) = 101 > 100 → unbounded.
    const j = judge(arm(logNormal(20, 100, 20, 0.3)), arm(logNormal(21, 100, 20, 0.3)), rules());
    const p99 = check(j, 'latency.p99');
    assert.equal(p99.figures.stableUpper, null);
    assert.equal(p99.figures.threshold, null);
    assert.equal(p99.verdict, 'pass');
    assert.match(p99.reason, /unbounded/);
  });

  test('refuses samples and rules that do not add up', () => {
    const ok = arm(logNormal(22, 200, 20, 0.3));
    assert.throws(() => judge(ok, { ...ok, errors: 300 }, rules()), /do not add up/);
    assert.throws(() => judge(ok, { ...ok, errors: 5, upstreamFailures: 6 }, rules()), /do not add up/);
    assert.throws(() => judge(ok, { ...ok, latency: [1, 2] }, rules()), /289/);
    assert.throws(() => judge(ok, ok, rules({ latency: { maxMs: { median: 3 } } })), /not a quantile/);
    assert.throws(() => judge(ok, ok, rules({ errors: { alpha: 0 } })), RangeError);
    assert.throws(() => judge(ok, ok, rules({ latency: { quantiles: [1.5] } })), RangeError);
  });
});

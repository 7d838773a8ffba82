/**
 * The judge's statistics against reference values. Where a value can be done by hand the derivation
 * is in the comment; the others come from SciPy 1.17 (scipy.stats.fisher_exact(alternative='greater'),
 * beta.ppf for Clopper–Pearson, norm.ppf / norm.cdf, math.lgamma, and mannwhitneyu(alternative=
 * 'greater', method='asymptotic', use_continuity=True) on the histograms expanded to one value per count).
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  clopperPearson,
  fisherExactGreater,
  logGamma,
  mannWhitney,
  normalCdf,
  normalQuantile,
} from '../../../../src/delivery/analysis/stats.js';

/** |actual − expected| <= rel × |expected| (or <= rel when expected is 0). */
function close(actual: number, expected: number, rel = 1e-9, what = '') {
  const tol = expected === 0 ? rel : rel * Math.abs(expected);
  assert.ok(Math.abs(actual - expected) <= tol, `${what} ${actual} vs ${expected}`);
}

describe('logGamma', () => {
  test('matches known values', () => {
    close(logGamma(0.5), 0.5723649429247004, 1e-13, 'lnΓ(0.5) = ln √π'); // ln √π = 0.57236494292470
    close(logGamma(10), 12.801827480081467, 1e-13, 'ln 9!'); // ln 362880
    close(logGamma(3.7), 1.4280723266653883, 1e-13);
    close(logGamma(0.1), 2.2527126517342055, 1e-13);
    close(logGamma(1_000_001), 12815518.384658169, 1e-13, 'ln 10^6!');
    close(logGamma(1), 0, 1e-14);
    close(logGamma(2), 0, 1e-14);
  });
});

describe('fisherExactGreater', () => {
  test('tea tasting, 3 of 4 against 1 of 4: p = 17/70', () => {
    // P(X >= 3) = [C(4,3)·C(4,1) + C(4,4)·C(4,0)] / C(8,4) = (16 + 1) / 70 = 0.242857
    close(fisherExactGreater(3, 4, 1, 4), 17 / 70, 1e-12);
  });

  test('2 of 50 against 0 of 50: p = C(50,2)/C(100,2) = 1225/4950', () => {
    // K = 2: both events in the candidate's 50 among the 100 trials.
    close(fisherExactGreater(2, 50, 0, 50), 1225 / 4950, 1e-12);
  });

  test('1 of 1 against 0 of 1: p = 1/2', () => {
    close(fisherExactGreater(1, 1, 0, 1), 0.5, 1e-12);
  });

  test('4 of 600 against 0 of 600: p = 0.0622 (the kayenta#426 pattern)', () => {
    // All 4 events in the candidate: C(600,4)/C(1200,4) = (600·599·598·597)/(1200·1199·1198·1197)
    close(fisherExactGreater(4, 600, 0, 600), (600 * 599 * 598 * 597) / (1200 * 1199 * 1198 * 1197), 1e-12);
    close(fisherExactGreater(4, 600, 0, 600), 0.062187370009678083, 1e-10);
  });

  test('SciPy references, small to millions of trials', () => {
    close(fisherExactGreater(20, 400, 0, 400), 7.475964406291841e-7, 1e-9);
    close(fisherExactGreater(8, 1200, 0, 1200), 0.0038608006206348805, 1e-9);
    close(fisherExactGreater(1100, 100_000, 1000, 100_000), 0.014923950053147344, 1e-8);
    close(fisherExactGreater(50, 1_000_000, 20, 1_000_000), 0.0002200928006834303, 1e-8);
  });

  test('a candidate at or below the stable rate: p near or at 1', () => {
    assert.equal(fisherExactGreater(0, 100, 5, 100), 1);
    assert.equal(fisherExactGreater(0, 100, 0, 100), 1);
    assert.equal(fisherExactGreater(0, 0, 0, 0), 1);
    // no underflow with millions of trials and the candidate far below its expectation
    assert.equal(fisherExactGreater(0, 5_000_000, 50_000, 5_000_000), 1);
  });

  test('refuses counts that are not counts', () => {
    assert.throws(() => fisherExactGreater(5, 4, 0, 4), RangeError);
    assert.throws(() => fisherExactGreater(1.5, 4, 0, 4), RangeError);
  });
});

describe('clopperPearson', () => {
  test('0 of 100 at 95%: upper = 1 − 0.025^(1/100) = 0.0362', () => {
    const { lower, upper } = clopperPearson(0, 100, 0.95);
    assert.equal(lower, 0);
    close(upper, 1 - 0.025 ** (1 / 100), 1e-9);
    close(upper, 0.03621669264517641, 1e-9);
  });

  test('100 of 100 at 95%: the mirror image', () => {
    const { lower, upper } = clopperPearson(100, 100, 0.95);
    close(lower, 0.025 ** (1 / 100), 1e-9);
    assert.equal(upper, 1);
  });

  test('SciPy beta.ppf references', () => {
    const a = clopperPearson(5, 100, 0.95); // textbook: [0.0164, 0.1128]
    close(a.lower, 0.016431879182052158, 1e-8);
    close(a.upper, 0.11283491110546275, 1e-8);
    const b = clopperPearson(1, 10, 0.95);
    close(b.lower, 0.0025285785444617865, 1e-8);
    close(b.upper, 0.4450161170281954, 1e-8);
    const c = clopperPearson(4, 600, 0.9);
    close(c.lower, 0.0022803058047339516, 1e-8);
    close(c.upper, 0.015190439514142824, 1e-8);
    const d = clopperPearson(20, 400, 0.9);
    close(d.lower, 0.03337901341767718, 1e-8);
    close(d.upper, 0.07182859004603483, 1e-8);
    const e = clopperPearson(3, 1_000_000, 0.95);
    close(e.lower, 6.186725501906402e-7, 1e-7);
    close(e.upper, 8.767247788067677e-6, 1e-7);
  });

  test('nothing observed: [0, 1]', () => {
    assert.deepEqual(clopperPearson(0, 0, 0.95), { lower: 0, upper: 1 });
  });
});

describe('normal distribution', () => {
  test('normalQuantile matches norm.ppf to ~1e-14', () => {
    close(normalQuantile(0.975), 1.959963984540054, 1e-14);
    close(normalQuantile(0.95), 1.6448536269514722, 1e-14);
    close(normalQuantile(0.8), 0.8416212335729143, 1e-14);
    close(normalQuantile(0.999), 3.090232306167813, 1e-14);
    close(normalQuantile(0.01), -2.3263478740408408, 1e-14);
    close(normalQuantile(1e-10), -6.361340902404056, 1e-13);
    close(normalQuantile(1 - 1e-12), 7.0344869100478356, 1e-12);
    assert.equal(normalQuantile(0.5), 0);
    assert.equal(normalQuantile(0), Number.NEGATIVE_INFINITY);
    assert.equal(normalQuantile(1), Number.POSITIVE_INFINITY);
    assert.ok(Number.isNaN(normalQuantile(1.5)));
  });

  test('normalCdf matches norm.cdf, in the tails too', () => {
    close(normalCdf(1.96), 0.9750021048517795, 1e-14);
    close(normalCdf(3), 0.9986501019683699, 1e-14);
    close(normalCdf(-8), 6.22096057427174e-16, 1e-10);
    assert.equal(normalCdf(0), 0.5);
  });
});

describe('mannWhitney', () => {
  test('a small case by hand: U = 22.5, CLES = 0.625', () => {
    // candidate {0,0,1,1,1,2}, stable {0,0,0,0,1,3} (values are bucket indices):
    // each candidate 0 beats none and ties four stable values: 2 × (4 × 0.5) = 4
    // each candidate 1 beats four (the 0s) and ties one: 3 × 4.5 = 13.5; the candidate 2 beats five: 5
    // U = 22.5, CLES = 22.5 / 36 = 0.625; SciPy p (greater, asymptotic, continuity) = 0.242665601813498
    const r = mannWhitney([2, 3, 1, 0], [4, 1, 0, 1]);
    assert.equal(r.u, 22.5);
    assert.equal(r.cles, 0.625);
    close(r.p, 0.242665601813498, 1e-12);
    assert.equal(r.n1, 6);
    assert.equal(r.n2, 6);
  });

  test('one value each, the candidate larger: U = 1, z = 0 after continuity, p = 0.5', () => {
    // σ² = 1·1/12 · (3 − 0) = 1/4; z = (1 − 0.5 − 0.5) / 0.5 = 0
    const r = mannWhitney([0, 1], [1, 0]);
    assert.equal(r.u, 1);
    assert.equal(r.cles, 1);
    assert.equal(r.z, 0);
    assert.equal(r.p, 0.5);
  });

  test('SciPy references with heavy ties', () => {
    const a = mannWhitney([10, 20, 30, 40, 0], [40, 30, 20, 10, 0]);
    assert.equal(a.u, 7500);
    assert.equal(a.cles, 0.75);
    close(a.p, 1.4182375232906419e-10, 1e-9);
    const b = mannWhitney([0, 5, 5, 5], [5, 5, 5, 0]);
    assert.equal(b.u, 175);
    close(b.cles, 175 / 225, 1e-15);
    close(b.p, 0.0036319413391553506, 1e-10);
  });

  test('the same histogram: CLES 0.5, no evidence', () => {
    const r = mannWhitney([3, 7, 9, 1], [3, 7, 9, 1]);
    assert.equal(r.cles, 0.5);
    assert.ok(r.p > 0.5);
  });

  test('every value tied, or an arm empty: p = 1', () => {
    assert.equal(mannWhitney([0, 5, 0], [0, 9, 0]).p, 1);
    assert.equal(mannWhitney([0, 5, 0], [0, 0, 0]).p, 1);
    assert.throws(() => mannWhitney([1, 2], [1, 2, 3]), RangeError);
  });
});

/**
 * The release judge: compares the candidate arm with the stable arm measured over the same window
 * (canary against a concurrent control, SRE Workbook ch. 16) and answers pass, fail or insufficient,
 * with every figure that decided. Pure code, no I/O. docs/releases-analysis.md describes each check.
 *
 * Order of the verdict: any check `fail` → fail; else any `insufficient` → insufficient; else pass.
 * Below `minSamples` in an arm every check is reported with its figures but marked insufficient, so
 * too little data pauses a release and never promotes it (nor fails it on a handful of requests).
 */
import { BUCKET_COUNT, quantile, quantileBounds } from './histogram.js';
import { clopperPearson, fisherExactGreater, mannWhitney } from './stats.js';
import type { ArmSample, CheckResult, ErrorRule, Judgement, JudgeRules, Verdict } from './types.js';

/** The defaults the judge applies to a rule left out. */
export const JUDGE_DEFAULTS = Object.freeze({
  errors: Object.freeze({ maxIncrease: 0.01, alpha: 0.05 }),
  latency: Object.freeze({
    quantiles: Object.freeze([0.5, 0.9, 0.99]),
    maxRatio: 1.5,
    minIncreaseMs: 5,
    confidence: 0.95,
    alpha: 0.05,
    maxCles: 0.7,
  }),
});

type Figures = Record<string, number | null>;

/** `p99` for 0.99, `p99.9` for 0.999, `p50` for 0.5. */
export function quantileLabel(q: number): string {
  return `p${Number((q * 100).toFixed(6))}`;
}

/** 0.99 for `p99`, 0.999 for `p99.9`; throws on anything else. */
export function parseQuantileLabel(label: string): number {
  const m = /^p(\d{1,2}(?:\.\d+)?)$/.exec(label);
  const q = m ? Number(m[1]) / 100 : Number.NaN;
  if (!(q > 0 && q < 1)) throw new RangeError(`'${label}' is not a quantile such as p50, p99 or p99.9`);
  return q;
}

export function judge(stable: ArmSample, candidate: ArmSample, rules: JudgeRules): Judgement {
  checkSample('stable', stable);
  checkSample('candidate', candidate);
  const minSamples = Math.max(1, Math.ceil(rules.minSamples)); // an empty arm is never enough
  const baseline = rules.baseline;

  const checks: CheckResult[] = [];
  const samples = samplesCheck(stable, candidate, minSamples, baseline);
  checks.push(samples);

  const errors = { ...JUDGE_DEFAULTS.errors, ...defined(rules.errors) };
  // Upstream failures are a part of the errors: an inherited maxRate would only repeat errors.rate.
  const upstream = { alpha: errors.alpha, maxIncrease: errors.maxIncrease, ...defined(rules.upstream ?? {}) };
  checkErrorRule('errors', errors);
  checkErrorRule('upstream', upstream);
  if (baseline) {
    checks.push(
      increaseCheck(
        'errors',
        'errors',
        [stable.requests, stable.errors],
        [candidate.requests, candidate.errors],
        errors,
      ),
    );
  }
  if (errors.maxRate !== undefined)
    checks.push(rateCheck('errors', 'errors', candidate.errors, candidate, errors));
  if (baseline) {
    checks.push(
      increaseCheck(
        'upstream',
        'upstream failures',
        [stable.requests, stable.upstreamFailures],
        [candidate.requests, candidate.upstreamFailures],
        upstream,
      ),
    );
  }
  if (upstream.maxRate !== undefined) {
    checks.push(rateCheck('upstream', 'upstream failures', candidate.upstreamFailures, candidate, upstream));
  }

  const latency: LatencyRules = { ...JUDGE_DEFAULTS.latency, ...defined(rules.latency) };
  checkLatencyRule(latency);
  if (baseline)
    for (const q of latency.quantiles) checks.push(quantileCheck(q, stable, candidate, latency, minSamples));
  for (const [label, maxMs] of Object.entries(latency.maxMs ?? {})) {
    checks.push(maxCheck(label, maxMs, candidate, latency, minSamples));
  }
  if (baseline) checks.push(rankCheck(stable, candidate, latency, minSamples));

  if (samples.verdict === 'insufficient') {
    for (const c of checks) {
      if (c === samples) continue;
      c.reason = `not judged, too few requests (${samples.reason}); the figures alone: ${c.verdict}: ${c.reason}`;
      c.verdict = 'insufficient';
    }
  }

  return {
    verdict: overall(checks),
    checks,
    stable: counts(stable),
    candidate: counts(candidate),
  };
}

function overall(checks: CheckResult[]): Verdict {
  if (checks.some((c) => c.verdict === 'fail')) return 'fail';
  if (checks.some((c) => c.verdict === 'insufficient')) return 'insufficient';
  return 'pass';
}

function counts(s: ArmSample) {
  return { requests: s.requests, errors: s.errors, upstreamFailures: s.upstreamFailures };
}

/** Drop keys set to `undefined`, so that `{ alpha: undefined }` does not erase a default. */
function defined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}

function checkSample(arm: string, s: ArmSample): void {
  const ok =
    Number.isInteger(s.requests) &&
    Number.isInteger(s.errors) &&
    Number.isInteger(s.upstreamFailures) &&
    s.requests >= 0 &&
    s.errors >= 0 &&
    s.errors <= s.requests &&
    s.upstreamFailures >= 0 &&
    s.upstreamFailures <= s.errors;
  if (!ok) {
    throw new RangeError(
      `${arm}: ${s.requests} requests, ${s.errors} errors, ${s.upstreamFailures} upstream failures do not add up`,
    );
  }
  if (s.latency.length !== BUCKET_COUNT) {
    throw new RangeError(
      `${arm}: latency histogram of ${s.latency.length} buckets, expected ${BUCKET_COUNT}`,
    );
  }
}

function checkErrorRule(name: string, r: ErrorRule): void {
  if (!(r.alpha !== undefined && r.alpha > 0 && r.alpha < 0.5))
    throw new RangeError(`${name}.alpha ${r.alpha} not in (0, 0.5)`);
  if (!(r.maxIncrease !== undefined && r.maxIncrease >= 0 && r.maxIncrease < 1)) {
    throw new RangeError(`${name}.maxIncrease ${r.maxIncrease} not in [0, 1)`);
  }
  if (r.maxRate !== undefined && !(r.maxRate >= 0 && r.maxRate < 1)) {
    throw new RangeError(`${name}.maxRate ${r.maxRate} not in [0, 1)`);
  }
}

function checkLatencyRule(r: LatencyRules): void {
  for (const q of r.quantiles)
    if (!(q > 0 && q < 1)) throw new RangeError(`latency quantile ${q} not in (0, 1)`);
  if (!(r.maxRatio >= 1)) throw new RangeError(`latency.maxRatio ${r.maxRatio} below 1`);
  if (!(r.minIncreaseMs >= 0)) throw new RangeError(`latency.minIncreaseMs ${r.minIncreaseMs} below 0`);
  if (!(r.confidence > 0 && r.confidence < 1))
    throw new RangeError(`latency.confidence ${r.confidence} not in (0, 1)`);
  if (!(r.alpha > 0 && r.alpha < 0.5)) throw new RangeError(`latency.alpha ${r.alpha} not in (0, 0.5)`);
  if (!(r.maxCles >= 0.5 && r.maxCles < 1))
    throw new RangeError(`latency.maxCles ${r.maxCles} not in [0.5, 1)`);
  for (const [label, ms] of Object.entries(r.maxMs ?? {})) {
    parseQuantileLabel(label);
    if (!(ms > 0)) throw new RangeError(`latency.maxMs.${label} ${ms} is not a positive number of ms`);
  }
}

/** `null` for what JSON cannot carry (NaN, ±Infinity): a figure that does not exist. */
function fig(x: number): number | null {
  return Number.isFinite(x) ? x : null;
}

function pct(x: number): string {
  return Number.isFinite(x) ? `${(x * 100).toFixed(2)}%` : 'n/a';
}

/** An absolute difference of two rates, in percentage points. */
function points(x: number): string {
  return Number.isFinite(x) ? `${(x * 100).toFixed(2)} points` : 'n/a';
}

function ms(x: number): string {
  if (Number.isNaN(x)) return 'n/a';
  if (!Number.isFinite(x)) return 'unbounded';
  return `${x < 10 ? x.toFixed(2) : x.toFixed(1)} ms`;
}

function pval(p: number): string {
  return p < 1e-4 ? p.toExponential(1) : p.toFixed(4);
}

function samplesCheck(
  stable: ArmSample,
  candidate: ArmSample,
  minSamples: number,
  baseline: boolean,
): CheckResult {
  const short: string[] = [];
  if (candidate.requests < minSamples) short.push(`candidate has ${candidate.requests}`);
  if (baseline && stable.requests < minSamples) short.push(`stable has ${stable.requests}`);
  const figures: Figures = {
    stableRequests: baseline ? stable.requests : null,
    candidateRequests: candidate.requests,
    minSamples,
  };
  if (short.length > 0) {
    return {
      check: 'samples',
      verdict: 'insufficient',
      figures,
      reason: `${short.join(' and ')} requests, fewer than the ${minSamples} needed`,
    };
  }
  return {
    check: 'samples',
    verdict: 'pass',
    figures,
    reason: baseline
      ? `${candidate.requests} candidate and ${stable.requests} stable requests, at least ${minSamples} each`
      : `${candidate.requests} candidate requests, at least ${minSamples}`,
  };
}

/**
 * `<name>.increase`: fails when Fisher's one-sided exact p < alpha (the candidate's rate is above the
 * stable one beyond chance) AND the observed difference is above `maxIncrease` (it matters).
 */
function increaseCheck(
  name: string,
  what: string,
  [stableRequests, stableCount]: [number, number],
  [candidateRequests, candidateCount]: [number, number],
  rule: ErrorRule,
): CheckResult {
  const alpha = rule.alpha!;
  const maxIncrease = rule.maxIncrease!;
  const stableRate = stableRequests > 0 ? stableCount / stableRequests : Number.NaN;
  const candidateRate = candidateRequests > 0 ? candidateCount / candidateRequests : Number.NaN;
  const increase = candidateRate - stableRate;
  const p = fisherExactGreater(candidateCount, candidateRequests, stableCount, stableRequests);
  const significant = p < alpha;
  const large = increase > maxIncrease;
  const observed =
    `candidate ${what} ${pct(candidateRate)} (${candidateCount}/${candidateRequests}) against stable ` +
    `${pct(stableRate)} (${stableCount}/${stableRequests}), Fisher one-sided p = ${pval(p)}`;
  let reason: string;
  if (significant && large) {
    reason = `${observed} < ${alpha}, and ${points(increase)} above stable, more than the ${points(maxIncrease)} allowed`;
  } else if (significant) {
    reason = `${observed} < ${alpha}, but ${points(increase)} above stable is within the ${points(maxIncrease)} allowed`;
  } else {
    reason = `${observed} >= ${alpha}: no significant increase`;
  }
  return {
    check: `${name}.increase`,
    verdict: significant && large ? 'fail' : 'pass',
    figures: {
      stableRequests,
      stableCount,
      stableRate: fig(stableRate),
      candidateRequests: candidateRequests,
      candidateCount,
      candidateRate: fig(candidateRate),
      increase: fig(increase),
      p,
      alpha,
      maxIncrease,
    },
    reason,
  };
}

/**
 * `<name>.rate`: fails when the one-sided Clopper–Pearson lower bound of the candidate's rate, at
 * confidence 1 − alpha, is above `maxRate`: the rate is above the limit beyond chance.
 */
function rateCheck(
  name: string,
  what: string,
  count: number,
  candidate: ArmSample,
  rule: ErrorRule,
): CheckResult {
  const alpha = rule.alpha!;
  const maxRate = rule.maxRate!;
  const n = candidate.requests;
  const rate = n > 0 ? count / n : Number.NaN;
  // Two-sided at 1 − 2α: each side is a one-sided bound at 1 − α.
  const { lower, upper } = clopperPearson(count, n, 1 - 2 * alpha);
  const fail = lower > maxRate;
  const observed = `candidate ${what} ${pct(rate)} (${count}/${n}), one-sided ${Number(((1 - alpha) * 100).toFixed(4))}% lower bound ${pct(lower)}`;
  return {
    check: `${name}.rate`,
    verdict: fail ? 'fail' : 'pass',
    figures: {
      candidateRequests: n,
      candidateCount: count,
      candidateRate: fig(rate),
      lower,
      upper,
      confidence: 1 - alpha,
      maxRate,
    },
    reason: fail
      ? `${observed} is above the ${pct(maxRate)} limit`
      : `${observed} is not above the ${pct(maxRate)} limit`,
  };
}

/** A latency rule with its defaults filled in. */
interface LatencyRules {
  quantiles: readonly number[];
  maxRatio: number;
  minIncreaseMs: number;
  maxMs?: Record<string, number>;
  confidence: number;
  alpha: number;
  maxCles: number;
}

/**
 * `latency.pXX`: fails when the candidate's quantile is confidently above the stable one by the ratio
 * (its lower bound above the stable upper bound × maxRatio) AND the point estimates differ by at
 * least minIncreaseMs (so that 1 ms against 2 ms does not fail a release).
 */
function quantileCheck(
  q: number,
  stable: ArmSample,
  candidate: ArmSample,
  rule: LatencyRules,
  minSamples: number,
): CheckResult {
  const label = quantileLabel(q);
  const s = quantileBounds(stable.latency, q, rule.confidence);
  const c = quantileBounds(candidate.latency, q, rule.confidence);
  const threshold = s.upper * rule.maxRatio;
  const increaseMs = c.point - s.point;
  const figures: Figures = {
    quantile: q,
    stableN: s.n,
    stablePoint: fig(s.point),
    stableLower: fig(s.lower),
    stableUpper: fig(s.upper),
    candidateN: c.n,
    candidatePoint: fig(c.point),
    candidateLower: fig(c.lower),
    candidateUpper: fig(c.upper),
    threshold: fig(threshold),
    maxRatio: rule.maxRatio,
    increaseMs: fig(increaseMs),
    minIncreaseMs: rule.minIncreaseMs,
    confidence: rule.confidence,
  };
  const check = `latency.${label}`;
  const observed =
    `${label} candidate ${ms(c.point)} [${ms(c.lower)}, ${ms(c.upper)}] against stable ${ms(s.point)} ` +
    `[${ms(s.lower)}, ${ms(s.upper)}]`;
  if (s.n < minSamples || c.n < minSamples) {
    return {
      check,
      verdict: 'insufficient',
      figures,
      reason: `${s.n} stable and ${c.n} candidate latencies recorded, fewer than ${minSamples}`,
    };
  }
  const above = c.lower > threshold;
  const large = increaseMs >= rule.minIncreaseMs;
  let reason: string;
  if (above && large) {
    reason = `${observed}: the candidate's lower bound is above ${rule.maxRatio} × the stable upper bound (${ms(threshold)}) and ${ms(increaseMs)} slower`;
  } else if (above) {
    reason = `${observed}: above ${rule.maxRatio} × the stable upper bound, but only ${ms(increaseMs)} slower (${ms(rule.minIncreaseMs)} needed)`;
  } else {
    reason = `${observed}: the candidate's lower bound is not above ${rule.maxRatio} × the stable upper bound (${ms(threshold)})`;
  }
  return { check, verdict: above && large ? 'fail' : 'pass', figures, reason };
}

/** `latency.pXX.max`: fails when the candidate's quantile is confidently (its lower bound) above maxMs. */
function maxCheck(
  label: string,
  maxMs: number,
  candidate: ArmSample,
  rule: LatencyRules,
  minSamples: number,
): CheckResult {
  const q = parseQuantileLabel(label);
  const name = quantileLabel(q);
  const c = quantileBounds(candidate.latency, q, rule.confidence);
  const figures: Figures = {
    quantile: q,
    candidateN: c.n,
    candidatePoint: fig(c.point),
    candidateLower: fig(c.lower),
    candidateUpper: fig(c.upper),
    maxMs,
    confidence: rule.confidence,
  };
  const check = `latency.${name}.max`;
  if (c.n < minSamples) {
    return {
      check,
      verdict: 'insufficient',
      figures,
      reason: `${c.n} candidate latencies recorded, fewer than ${minSamples}`,
    };
  }
  const fail = c.lower > maxMs;
  const observed = `${name} candidate ${ms(c.point)} [${ms(c.lower)}, ${ms(c.upper)}]`;
  return {
    check,
    verdict: fail ? 'fail' : 'pass',
    figures,
    reason: fail
      ? `${observed}: its lower bound is above the ${ms(maxMs)} limit`
      : `${observed}: its lower bound is not above the ${ms(maxMs)} limit`,
  };
}

/**
 * `latency.rank`: Mann–Whitney U over the two histograms. Fails when the candidate is significantly
 * slower (one-sided p < alpha) AND by a margin: the common-language effect size, the chance that a
 * candidate request is slower than a stable one (ties half), is above maxCles (default 0.7), and the
 * medians differ by at least minIncreaseMs (as for the quantiles: 1 ms against 2 ms is no failure).
 * With thousands of requests a shift of a few percent is significant yet harmless; the margin keeps
 * this check for a shift of the whole distribution, while the quantile checks watch the tail, which
 * a rank test barely sees (spinnaker/kayenta#780).
 */
function rankCheck(
  stable: ArmSample,
  candidate: ArmSample,
  rule: LatencyRules,
  minSamples: number,
): CheckResult {
  const r = mannWhitney(candidate.latency, stable.latency);
  const medianIncreaseMs = quantile(candidate.latency, 0.5) - quantile(stable.latency, 0.5);
  const figures: Figures = {
    stableN: r.n2,
    candidateN: r.n1,
    u: r.u,
    z: r.z,
    p: r.p,
    cles: fig(r.cles),
    alpha: rule.alpha,
    maxCles: rule.maxCles,
    medianIncreaseMs: fig(medianIncreaseMs),
    minIncreaseMs: rule.minIncreaseMs,
  };
  if (r.n1 < minSamples || r.n2 < minSamples) {
    return {
      check: 'latency.rank',
      verdict: 'insufficient',
      figures,
      reason: `${r.n2} stable and ${r.n1} candidate latencies recorded, fewer than ${minSamples}`,
    };
  }
  const significant = r.p < rule.alpha;
  const large = r.cles > rule.maxCles;
  const slower = medianIncreaseMs >= rule.minIncreaseMs;
  const observed = `P(candidate slower) = ${r.cles.toFixed(3)}, Mann-Whitney z = ${r.z.toFixed(2)}, one-sided p = ${pval(r.p)}`;
  let reason: string;
  if (!significant) reason = `${observed} >= ${rule.alpha}: no significant shift`;
  else if (!large) reason = `${observed} < ${rule.alpha}, but not above the ${rule.maxCles} allowed`;
  else if (!slower) {
    reason = `${observed} < ${rule.alpha}, above ${rule.maxCles}, but the median is only ${ms(medianIncreaseMs)} slower (${ms(rule.minIncreaseMs)} needed)`;
  } else
    reason = `${observed} < ${rule.alpha}, above the ${rule.maxCles} allowed, median ${ms(medianIncreaseMs)} slower`;
  return {
    check: 'latency.rank',
    verdict: significant && large && slower ? 'fail' : 'pass',
    figures,
    reason,
  };
}

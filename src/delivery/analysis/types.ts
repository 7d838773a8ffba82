/**
 * What the release judge reads and what it answers. The data plane records, per release and per
 * version ("arm"), counts and a latency histogram (histogram.ts); replicas publish them per time
 * window; the driving replica sums the fleet's windows of the current step and asks the judge.
 * Both arms are measured over the same window (canary against a concurrent control, not against
 * yesterday), so time itself is not mistaken for the change.
 */

/** One arm's measurement over a window: every replica's counts summed. */
export interface ArmSample {
  /** Requests answered (any status). */
  requests: number;
  /** Answers with status >= 500 (the upstream's 5xx and Sluice's own 502/503/504). */
  errors: number;
  /** The part of `errors` that Sluice produced because the upstream failed (connect error, timeout, reset). */
  upstreamFailures: number;
  /** Latency histogram counts, one per bucket of `LATENCY_BUCKETS` (histogram.ts), same length. */
  latency: number[];
}

export interface ErrorRule {
  /** Fail when the candidate's error rate is confidently above this (0..1); default none. */
  maxRate?: number;
  /** Fail when the candidate's rate is significantly above the stable one by more than this (absolute, 0..1); default 0.01. */
  maxIncrease?: number;
  /** Significance level of the two-proportion test; default 0.05. */
  alpha?: number;
}

export interface LatencyRule {
  /** Quantiles compared (0..1); default [0.5, 0.9, 0.99]. */
  quantiles?: number[];
  /** Fail when a candidate quantile is confidently above the stable one times this ratio; default 1.5. */
  maxRatio?: number;
  /** ...and above it by at least this many ms (so 1 ms against 2 ms does not fail); default 5. */
  minIncreaseMs?: number;
  /** Fail when the candidate's quantile is confidently above this many ms, whatever the stable arm does. */
  maxMs?: Record<string, number>;
  /** Confidence of the quantile bounds; default 0.95. */
  confidence?: number;
  /** Significance level of the rank test (`latency.rank`); default 0.05. */
  alpha?: number;
  /**
   * `latency.rank` fails only when the common-language effect size P(candidate slower) + ties/2 is
   * above this (0.5 = no shift); default 0.7. A significant but tiny shift of the whole distribution
   * is left to the quantile checks.
   */
  maxCles?: number;
}

export interface JudgeRules {
  /** Fewer requests than this in either arm (the candidate alone when `baseline: false`): insufficient data. */
  minSamples: number;
  errors: ErrorRule;
  latency: LatencyRule;
  /**
   * The same tests on `upstreamFailures` (checks `upstream.increase`, `upstream.rate`). Default: the
   * `errors` rule's alpha and maxIncrease, and no maxRate (upstream failures are a part of the errors,
   * so an inherited limit would only repeat `errors.rate`). This check is the sharper one when the
   * upstream breaks while the application's own 5xx stay level.
   */
  upstream?: ErrorRule;
  /** False at 100% (blue/green after the switch): no stable arm to compare with, absolute rules only. */
  baseline: boolean;
}

export type Verdict = 'pass' | 'fail' | 'insufficient';

/** One check's result, with everything needed to see why (the statistic and its inputs). */
export interface CheckResult {
  /**
   * `samples`, `errors.increase`, `errors.rate`, `upstream.increase`, `upstream.rate`, `latency.p99`
   * (candidate against stable), `latency.p99.max` (absolute), `latency.rank`.
   */
  check: string;
  verdict: Verdict;
  /**
   * The figures that decided: observed values of both arms, the statistic, the bound, the threshold.
   * `null` stands for a figure that does not exist (an unbounded upper bound, a quantile of nothing).
   */
  figures: Record<string, number | null>;
  /** One sentence a person reads in `sluice release status`. */
  reason: string;
}

export interface Judgement {
  /** `fail` when any check fails; `insufficient` when the sample is too small (never a pass); else `pass`. */
  verdict: Verdict;
  checks: CheckResult[];
  stable: { requests: number; errors: number; upstreamFailures: number };
  candidate: { requests: number; errors: number; upstreamFailures: number };
}

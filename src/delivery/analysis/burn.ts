/**
 * The burn-rate gate of a release (`analysis.burnRate`): the candidate's burn rate of each
 * objective of the route's `slo` over a recent window, against `maxRate`. Absolute (no comparison
 * with the stable version): a candidate that would spend the budget too fast fails even when the
 * stable one is as bad. Pure code; the window's counts come from releases/burn-window.ts.
 *
 * Availability: bad = the candidate's 5xx answers (the judge's `errors`). Latency: bad = the
 * requests in latency buckets whose upper bound is above the threshold. The bucket that straddles
 * the threshold counts as bad, so the figure errs towards failing by at most a bucket's ~5% width.
 */
import { burnRate, errorBudget } from '../../slo/arithmetic.js';
import type { Objective } from '../../slo/schema.js';
import { LATENCY_BUCKETS } from './histogram.js';
import type { ArmSample, CheckResult, Judgement } from './types.js';

export interface BurnRule {
  maxRate: number;
  /** As written (`5m`), for the reason. */
  window: string;
  windowMs: number;
}

/** The candidate's counts over the window: requests and bad events per objective. */
export interface WindowCounts {
  requests: number;
  bad: number[];
  /** How long the counts cover (the window, or the step so far when it is younger). */
  spanMs: number;
}

/** Bad events of each objective in a cumulative sample (the step's counts so far). */
export function badOf(objectives: readonly Objective[], s: ArmSample): number[] {
  return objectives.map((o) => {
    if (o.thresholdSeconds === undefined) return s.errors;
    const thresholdMs = o.thresholdSeconds * 1000;
    let bad = 0;
    for (let i = 0; i < s.latency.length; i++) if (LATENCY_BUCKETS[i]! > thresholdMs) bad += s.latency[i]!;
    return bad;
  });
}

function pct(x: number): string {
  return `${Number((x * 100).toFixed(4))}%`;
}

/** One check per objective, `burnRate.<slo>`: insufficient below minSamples, fail above maxRate. */
export function burnChecks(
  objectives: readonly Objective[],
  w: WindowCounts,
  rule: BurnRule,
  minSamples: number,
): CheckResult[] {
  return objectives.map((o, k) => {
    const bad = w.bad[k]!;
    const rate = burnRate(bad, w.requests, o.target);
    const budget = errorBudget(o.target);
    const check = `burnRate.${o.slo}`;
    const figures = {
      candidateRequests: w.requests,
      bad,
      target: o.target,
      errorBudget: budget,
      burnRate: rate ?? null,
      maxRate: rule.maxRate,
      windowMs: rule.windowMs,
      spanMs: w.spanMs,
      minSamples,
    };
    // The counts' real span: shorter than the window early in a step, longer after a driver change.
    const span = ` (${Number((w.spanMs / 1000).toFixed(1))} s of counts)`;
    const observed =
      `candidate burn rate ${rate === undefined ? 'n/a' : `${Number(rate.toFixed(2))}x`} of the ${o.slo} error budget ` +
      `over the last ${rule.window}${span}: ${bad}/${w.requests} bad against a budget of ${pct(budget)}`;
    if (w.requests < Math.max(1, minSamples))
      return {
        check,
        verdict: 'insufficient',
        figures,
        reason: `${w.requests} candidate requests over the last ${rule.window}, fewer than the ${minSamples} needed`,
      };
    const fail = rate! > rule.maxRate;
    return {
      check,
      verdict: fail ? 'fail' : 'pass',
      figures,
      reason: `${observed}, ${fail ? 'above' : 'not above'} the ${rule.maxRate}x allowed`,
    };
  });
}

/**
 * The judgement with extra checks added. As in judge(): when the step's sample is too small every
 * check is reported but insufficient; the verdict is fail, insufficient or pass in that order.
 */
export function withChecks(j: Judgement, extra: CheckResult[]): Judgement {
  if (extra.length === 0) return j;
  const samples = j.checks.find((c) => c.check === 'samples');
  if (samples?.verdict === 'insufficient')
    for (const c of extra) {
      c.reason = `not judged, too few requests (${samples.reason}); the figures alone: ${c.verdict}: ${c.reason}`;
      c.verdict = 'insufficient';
    }
  const checks = [...j.checks, ...extra];
  const verdict = checks.some((c) => c.verdict === 'fail')
    ? 'fail'
    : checks.some((c) => c.verdict === 'insufficient')
      ? 'insufficient'
      : 'pass';
  return { ...j, checks, verdict };
}

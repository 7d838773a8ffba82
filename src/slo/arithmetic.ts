/**
 * The SLO arithmetic Sluice's own figures use (live.ts) and the release gate's burn-rate check
 * (delivery/analysis/burn.ts): the same definitions as the Prometheus rules (rules.ts), so a
 * replica's view and the fleet's rules differ only in the traffic they see. Pure code.
 *
 *   SLI              = good / total
 *   error budget     = 1 − target (the share of bad events allowed)
 *   burn rate        = (bad / total) / error budget   (1 spends the budget exactly over the period)
 *   budget remaining = 1 − (bad / total over the period) / error budget   (negative when overspent)
 *
 * With no events the ratio is 0/0: every function answers undefined (no figure), as PromQL does.
 */

/** 1 − target without float noise (1 − 0.99 is 0.010000000000000009), as rules.ts writes it. */
export function errorBudget(target: number): number {
  return Number((1 - target).toPrecision(10));
}

export function sli(bad: number, total: number): number | undefined {
  return total > 0 ? (total - bad) / total : undefined;
}

export function burnRate(bad: number, total: number, target: number): number | undefined {
  return total > 0 ? bad / total / errorBudget(target) : undefined;
}

export function budgetRemaining(bad: number, total: number, target: number): number | undefined {
  const b = burnRate(bad, total, target);
  return b === undefined ? undefined : 1 - b;
}

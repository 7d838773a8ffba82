/**
 * A release's plan: the steps its config describes, in order, each with the weight and cohorts the
 * data plane applies and what the step needs before it can advance. Cohort steps come first (the
 * chosen tenants alone, accumulating), then the canary's percentages; blue/green is a preview step
 * (weight 0: only forced and mirrored traffic reaches the candidate) and the switch (weight 100,
 * the old version kept warm for `rollbackWindow`). Passing the last step promotes.
 */
import { ms } from '../../config/units.js';
import type { ReleaseConfig } from './schema.js';

export interface PlanStep {
  readonly kind: 'cohort' | 'weight' | 'preview' | 'switch';
  /** Percent of sticky keys on the candidate. */
  readonly weight: number;
  /** Cohorts (indexes into `cohorts`) on the candidate during this step: 0 … cohorts−1. */
  readonly cohorts: number;
  readonly durationMs: number;
  readonly minRequests: number;
  /** Compare with the stable arm (false at 100%: no stable traffic left, absolute rules only). */
  readonly baseline: boolean;
}

const DEFAULT_STEP_MS = 60_000;
const DEFAULT_MIN_REQUESTS = 100;

export function planOf(spec: ReleaseConfig): PlanStep[] {
  const plan: PlanStep[] = [];
  const cohorts = spec.cohorts ?? [];
  for (const [i, c] of cohorts.entries())
    plan.push({
      kind: 'cohort',
      weight: 0,
      cohorts: i + 1,
      durationMs: ms(c.duration, DEFAULT_STEP_MS),
      minRequests: c.minRequests ?? DEFAULT_MIN_REQUESTS,
      baseline: true,
    });
  const all = cohorts.length;
  if ((spec.strategy ?? 'canary') === 'blueGreen') {
    plan.push(
      {
        kind: 'preview',
        weight: 0,
        cohorts: all,
        durationMs: ms(spec.preview, DEFAULT_STEP_MS),
        minRequests: DEFAULT_MIN_REQUESTS,
        baseline: true,
      },
      {
        kind: 'switch',
        weight: 100,
        cohorts: all,
        durationMs: ms(spec.rollbackWindow, 5 * DEFAULT_STEP_MS),
        minRequests: DEFAULT_MIN_REQUESTS,
        baseline: false,
      },
    );
    return plan;
  }
  const steps = spec.steps ?? [{ weight: 10 }, { weight: 25 }, { weight: 50 }, { weight: 100 }];
  for (const s of steps)
    plan.push({
      kind: 'weight',
      weight: s.weight,
      cohorts: all,
      durationMs: ms(s.duration, DEFAULT_STEP_MS),
      minRequests: s.minRequests ?? DEFAULT_MIN_REQUESTS,
      baseline: s.weight < 100,
    });
  return plan;
}

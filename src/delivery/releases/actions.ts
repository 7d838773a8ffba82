/**
 * What people do to a release (admin API, `sluice release`): start, pause, resume, promote, abort.
 * Each is a transition of the state machine below, allowed only from the states listed, written
 * with a compare-and-set on the revision (releases/store.ts) so it never races the driver: a
 * driver's judgement on the old revision is discarded and re-made on the new one.
 *
 *   pending ─start→ running ─pause→ paused ─resume→ running
 *   running|paused ─promote→ promoted (100% candidate)     running|paused|pending ─abort→ aborted (0%)
 *   aborted|promoted ─start→ running (a new run: step 0, measurements from zero)
 */
import type { Actor } from '../../tenancy/repository.js';
import { type PlanStep, planOf } from './plan.js';
import type { ReleaseConfig } from './schema.js';
import type { ReleaseRow, ReleaseStateName, ReleaseStore, Transition } from './store.js';

export const RELEASE_ACTIONS = ['start', 'pause', 'resume', 'promote', 'abort'] as const;
export type ReleaseAction = (typeof RELEASE_ACTIONS)[number];

const FROM: Record<ReleaseAction, readonly ReleaseStateName[]> = {
  start: ['pending', 'aborted', 'promoted'],
  pause: ['running'],
  resume: ['paused'],
  promote: ['running', 'paused'],
  abort: ['pending', 'running', 'paused'],
};

export class ReleaseActionError extends Error {
  constructor(
    readonly kind: 'not_found' | 'not_allowed' | 'conflict',
    message: string,
  ) {
    super(message);
  }
}

/** The release as the config declares it now (its spec and hash), for a start of a new run. */
export interface DeclaredRelease {
  spec: ReleaseConfig;
  specHash: string;
  bucketing: string;
}

export function transitionFor(
  row: ReleaseRow,
  action: ReleaseAction,
  actor: string,
  reason: string | undefined,
  declared: DeclaredRelease | undefined,
): Transition {
  if (!FROM[action].includes(row.state))
    throw new ReleaseActionError(
      'not_allowed',
      `release "${row.name}" is ${row.state}: ${action} is allowed when ${FROM[action].join(' or ')}`,
    );
  const why = reason ?? `${action} by ${actor}`;
  const event = { actor, action, reason: why };
  switch (action) {
    case 'start': {
      const spec = declared?.spec ?? row.spec;
      const first: PlanStep = planOf(spec)[0]!;
      const base = {
        state: 'running' as const,
        step: 0,
        weight: first.weight,
        restartStep: true,
        failures: 0,
        inconclusive: 0,
        reason: null,
        event,
      };
      if (row.state === 'pending') return { ...base, startRun: true };
      return {
        ...base,
        newRun: declared ?? { spec: row.spec, specHash: row.specHash, bucketing: row.bucketing },
      };
    }
    case 'pause':
      return { state: 'paused', reason: why, event };
    case 'resume':
      return { state: 'running', inconclusive: 0, reason: null, event };
    case 'promote':
      return { state: 'promoted', weight: 100, reason: why, event };
    case 'abort':
      return { state: 'aborted', weight: 0, reason: why, event };
  }
}

/** Applies an action for an admin; retries once when the driver moved the release meanwhile. */
export async function act(
  store: ReleaseStore,
  name: string,
  action: ReleaseAction,
  who: Actor,
  reason: string | undefined,
  declared: DeclaredRelease | undefined,
): Promise<ReleaseRow> {
  for (let attempt = 0; attempt < 3; attempt++) {
    const row = await store.get(name);
    if (row === undefined) throw new ReleaseActionError('not_found', `no release "${name}"`);
    const t = transitionFor(row, action, `${who.actor} (${who.role})`, reason, declared);
    const after = await store.transition(name, row.revision, t, { admin: who });
    if (after !== undefined) return after;
  }
  throw new ReleaseActionError('conflict', `release "${name}" kept changing; try again`);
}

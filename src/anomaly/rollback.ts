/**
 * `anomaly.action: rollback`: an anomaly of a route with a running (or paused) release aborts that
 * release, as a person's `abort` would (weight 0, state aborted), with a reason naming the anomaly.
 * Any replica may do it: detection is per replica, and the abort is a compare-and-set on the
 * release's row (releases/store.ts), so it never races the driver or another replica; every
 * replica's directory then applies the aborted state. Recorded as a `release_decision` (action
 * `rollback`, like the driver's; the release's history keeps it) and an `anomaly_action`.
 */
import type { Logger } from 'pino';
import type { ReleaseStore } from '../delivery/releases/store.js';
import type { AnomalyStartedEvent, EventBus } from '../telemetry/events.js';

export interface RollbackDeps {
  events: EventBus;
  /** The release of `route` the running config declares, if any. */
  releaseOf: (route: string) => string | undefined;
  releases: ReleaseStore;
  /** This replica's id (the actor: `anomaly:<replica>`). */
  replica: string;
  logger?: Logger | undefined;
}

const ABORTABLE: ReadonlySet<string> = new Set(['running', 'paused']);

/** The reason recorded with the abort: which anomaly, with its figures. */
export function rollbackReason(e: AnomalyStartedEvent): string {
  const f = (n: number) => (e.unit === 'ms' ? `${n.toFixed(1)} ms` : n.toPrecision(3));
  return `anomaly: ${e.signal} of route ${e.route} (upstream ${e.upstream}) at ${f(e.value)}, over its threshold ${f(e.threshold)} (baseline ${f(e.baseline)}) for ${e.intervals} intervals`;
}

/** Subscribe; returns the function that unsubscribes. Each abort runs off the emitting timer. */
export function watchAnomalyRollbacks(deps: RollbackDeps): () => void {
  return deps.events.on((e) => {
    if (e.type !== 'anomaly_started' || e.action !== 'rollback') return;
    void rollback(deps, e);
  });
}

async function rollback(deps: RollbackDeps, e: AnomalyStartedEvent): Promise<void> {
  const { events, logger } = deps;
  const release = deps.releaseOf(e.route);
  const report = (outcome: 'applied' | 'skipped' | 'failed', detail: string) => {
    const a = {
      type: 'anomaly_action' as const,
      at: new Date().toISOString(),
      route: e.route,
      upstream: e.upstream,
      signal: e.signal,
      action: 'rollback' as const,
      outcome,
      detail,
      ...(release === undefined ? {} : { release }),
    };
    logger?.warn({ event: a.type, ...a, type: undefined }, `anomaly action: ${detail}`);
    events.emit(a);
  };
  if (release === undefined) {
    report('skipped', `route ${e.route} has no release to roll back`);
    return;
  }
  const reason = rollbackReason(e);
  const actor = `anomaly:${deps.replica}`;
  try {
    for (let attempt = 0; attempt < 3; attempt++) {
      const row = await deps.releases.get(release);
      if (row === undefined || !ABORTABLE.has(row.state)) {
        report('skipped', `release ${release} is ${row?.state ?? 'not in the store'}: nothing to roll back`);
        return;
      }
      const after = await deps.releases.transition(release, row.revision, {
        state: 'aborted',
        weight: 0,
        reason,
        event: { actor, action: 'rollback', verdict: 'fail', reason },
      });
      if (after === undefined) continue; // the driver or a person moved it meanwhile: look again
      events.emit({
        type: 'release_decision',
        at: new Date().toISOString(),
        release,
        run: after.run,
        action: 'rollback',
        step: after.step,
        weight: after.weight,
        verdict: 'fail',
        reason,
        actor,
      });
      report('applied', `release ${release} rolled back: ${reason}`);
      return;
    }
    report('failed', `release ${release} kept changing; not rolled back`);
  } catch (err) {
    report('failed', `release ${release} not rolled back: ${(err as Error).message}`);
  }
}

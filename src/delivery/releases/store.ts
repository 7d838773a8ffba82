/**
 * Releases in the store: their state rows, their decisions, the replicas' measurements and the
 * driver's lease. Every change is a compare-and-set on `revision`, so two writers (the driving
 * replica and an operator's `sluice release pause`, or a driver that lost its lease) can never
 * both apply a change to the same state: the second finds the revision moved and re-reads.
 * Actions by people are also written to admin_changes in the same transaction.
 */
import type { Queryable, Store } from '../../store/store.js';
import { type Actor, recordAdminChange } from '../../tenancy/repository.js';
import type { ArmSample } from '../analysis/types.js';
import type { ReleaseConfig } from './schema.js';

export const RELEASES_CHANNEL = 'sluice_releases';

export type ReleaseStateName = 'pending' | 'running' | 'paused' | 'promoted' | 'aborted';

export interface ReleaseRow {
  name: string;
  route: string;
  run: number;
  spec: ReleaseConfig;
  specHash: string;
  bucketing: string;
  state: ReleaseStateName;
  step: number;
  weight: number;
  /** Epoch ms. */
  stepStartedAt: number | null;
  startedAt: number | null;
  updatedAt: number;
  revision: number;
  failures: number;
  inconclusive: number;
  reason: string | null;
}

export interface ReleaseEvent {
  id: string;
  release: string;
  run: number;
  at: number;
  actor: string;
  action: string;
  step: number;
  weight: number;
  verdict: string | null;
  reason: string;
  figures: unknown;
}

/** What a transition writes (the fields that change) and the event that explains it. */
export interface Transition {
  state?: ReleaseStateName;
  step?: number;
  weight?: number;
  /** True: the step (re)starts now, on the store's clock. */
  restartStep?: boolean;
  /** True: the run starts now (a pending release started). */
  startRun?: boolean;
  failures?: number;
  inconclusive?: number;
  reason?: string | null;
  /** A new run: run + 1, started now, measurements start from zero. */
  newRun?: { spec: ReleaseConfig; specHash: string; bucketing: string };
  /** Undefined only for a counter update that explains nothing (a hold already recorded). */
  event: { actor: string; action: string; verdict?: string; reason: string; figures?: unknown } | undefined;
}

/** Both arms of one step, the fleet's sum, and the mirror's comparison counts. */
export interface StepSamples {
  stable: ArmSample;
  candidate: ArmSample;
  mirrored: number;
  mirrorDiffs: number;
  /** Replicas that published for this step. */
  replicas: number;
}

interface Row {
  name: string;
  route: string;
  run: number;
  spec: ReleaseConfig;
  spec_hash: string;
  bucketing: string;
  state: ReleaseStateName;
  step: number;
  weight: number;
  step_started_at: Date | null;
  started_at: Date | null;
  updated_at: Date;
  revision: string | number;
  failures: number;
  inconclusive: number;
  reason: string | null;
}

const COLUMNS =
  'name, route, run, spec, spec_hash, bucketing, state, step, weight, step_started_at, started_at, updated_at, revision, failures, inconclusive, reason';

function toRelease(r: Row): ReleaseRow {
  return {
    name: r.name,
    route: r.route,
    run: r.run,
    spec: r.spec,
    specHash: r.spec_hash,
    bucketing: r.bucketing,
    state: r.state,
    step: r.step,
    weight: Number(r.weight),
    stepStartedAt: r.step_started_at ? new Date(r.step_started_at).getTime() : null,
    startedAt: r.started_at ? new Date(r.started_at).getTime() : null,
    updatedAt: new Date(r.updated_at).getTime(),
    revision: Number(r.revision),
    failures: r.failures,
    inconclusive: r.inconclusive,
    reason: r.reason,
  };
}

/** The lease of the replica that drives every release (judges and moves steps). */
export const DRIVER_LEASE = 'release-driver';

export class ReleaseStore {
  constructor(readonly store: Store) {}

  async list(): Promise<ReleaseRow[]> {
    const rows = await this.store.query<Row>(`SELECT ${COLUMNS} FROM releases ORDER BY name`);
    return rows.map(toRelease);
  }

  async get(name: string, q: Queryable = this.store): Promise<ReleaseRow | undefined> {
    const rows = await q.query<Row>(`SELECT ${COLUMNS} FROM releases WHERE name = $1`, [name]);
    return rows[0] && toRelease(rows[0]);
  }

  /** The newest events first (ordered by the column: the text alias `id` would put '9' after '10'). */
  async history(name: string, limit = 100): Promise<ReleaseEvent[]> {
    const rows = await this.store.query<{
      id: string;
      release: string;
      run: number;
      at: Date;
      actor: string;
      action: string;
      step: number;
      weight: number;
      verdict: string | null;
      reason: string;
      figures: unknown;
    }>(
      'SELECT id::text AS id, release, run, at, actor, action, step, weight, verdict, reason, figures FROM release_events WHERE release = $1 ORDER BY release_events.id DESC LIMIT $2',
      [name, limit],
    );
    return rows.map((r) => ({ ...r, at: new Date(r.at).getTime(), weight: Number(r.weight) }));
  }

  /**
   * Creates the row of a release the config declares and the store does not know yet: `running`
   * at step 0 when it starts by itself, else `pending`. Returns true when this call created it
   * (several replicas starting at once: one wins, the others find it).
   */
  async ensure(
    name: string,
    spec: ReleaseConfig,
    specHash: string,
    bucketing: string,
    weight: number,
  ): Promise<boolean> {
    const auto = (spec.start ?? 'auto') === 'auto';
    return this.store.transaction(async (tx) => {
      const rows = await tx.query<{ name: string }>(
        `INSERT INTO releases (name, route, spec, spec_hash, bucketing, state, step, weight, step_started_at, started_at)
         VALUES ($1, $2, $3::jsonb, $4, $5, $6, 0, $7, ${auto ? 'now()' : 'NULL'}, ${auto ? 'now()' : 'NULL'})
         ON CONFLICT (name) DO NOTHING RETURNING name`,
        [
          name,
          spec.route,
          JSON.stringify(spec),
          specHash,
          bucketing,
          auto ? 'running' : 'pending',
          auto ? weight : 0,
        ],
      );
      if (rows.length === 0) return false;
      await this.event(tx, name, 1, 0, auto ? weight : 0, {
        actor: 'config',
        action: auto ? 'start' : 'declare',
        reason: auto
          ? 'declared in the config file; starts by itself'
          : 'declared in the config file; waits for `sluice release start`',
      });
      return true;
    });
  }

  /**
   * Applies `t` to the release if its revision is still `revision` (and, for the driver, if it
   * still holds the lease). Returns the new row, or undefined when someone else changed it first.
   */
  async transition(
    name: string,
    revision: number,
    t: Transition,
    opts: { leaseHolder?: string; admin?: Actor } = {},
  ): Promise<ReleaseRow | undefined> {
    return this.store.transaction(async (tx) => {
      const sets = ['revision = revision + 1', 'updated_at = now()'];
      const params: unknown[] = [name, revision];
      const p = (v: unknown) => {
        params.push(v);
        return `$${params.length}`;
      };
      if (t.state !== undefined) sets.push(`state = ${p(t.state)}`);
      if (t.step !== undefined) sets.push(`step = ${p(t.step)}`);
      if (t.weight !== undefined) sets.push(`weight = ${p(t.weight)}`);
      if (t.restartStep) sets.push('step_started_at = now()');
      if (t.startRun) sets.push('started_at = now()');
      if (t.failures !== undefined) sets.push(`failures = ${p(t.failures)}`);
      if (t.inconclusive !== undefined) sets.push(`inconclusive = ${p(t.inconclusive)}`);
      if (t.reason !== undefined) sets.push(`reason = ${p(t.reason)}`);
      if (t.newRun) {
        sets.push(
          'run = run + 1',
          'started_at = now()',
          `spec = ${p(JSON.stringify(t.newRun.spec))}::jsonb`,
          `spec_hash = ${p(t.newRun.specHash)}`,
          `bucketing = ${p(t.newRun.bucketing)}`,
        );
      }
      let fence = '';
      if (opts.leaseHolder !== undefined)
        fence = ` AND EXISTS (SELECT 1 FROM leases WHERE name = '${DRIVER_LEASE}' AND holder = ${p(opts.leaseHolder)} AND expires_at > now())`;
      const before = opts.admin ? await this.get(name, tx) : undefined;
      const rows = await tx.query<Row>(
        `UPDATE releases SET ${sets.join(', ')} WHERE name = $1 AND revision = $2${fence} RETURNING ${COLUMNS}`,
        params,
      );
      if (rows[0] === undefined) return undefined;
      const after = toRelease(rows[0]);
      if (t.event !== undefined) await this.event(tx, name, after.run, after.step, after.weight, t.event);
      if (opts.admin && t.event !== undefined)
        await recordAdminChange(
          tx,
          opts.admin,
          `release.${t.event.action}`,
          `release:${name}`,
          summary(before),
          summary(after),
        );
      return after;
    });
  }

  private async event(
    tx: Queryable,
    name: string,
    run: number,
    step: number,
    weight: number,
    e: NonNullable<Transition['event']>,
  ): Promise<void> {
    await tx.query(
      'INSERT INTO release_events (release, run, actor, action, step, weight, verdict, reason, figures) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9::jsonb)',
      [
        name,
        run,
        e.actor,
        e.action,
        step,
        weight,
        e.verdict ?? null,
        e.reason,
        e.figures === undefined ? null : JSON.stringify(e.figures),
      ],
    );
  }

  /** Writes this replica's cumulative totals for a step (idempotent: the next flush repairs a lost one). */
  async writeSamples(
    rows: {
      release: string;
      run: number;
      step: number;
      arm: 'stable' | 'candidate';
      sample: ArmSample;
      mirrored: number;
      mirrorDiffs: number;
    }[],
    replica: string,
  ): Promise<void> {
    if (rows.length === 0) return;
    await this.store.transaction(async (tx) => {
      for (const r of rows)
        await tx.query(
          `INSERT INTO release_samples (release, run, step, replica, arm, requests, errors, upstream_failures, latency, mirrored, mirror_diffs)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9::bigint[], $10, $11)
           ON CONFLICT (release, run, step, replica, arm) DO UPDATE SET requests = EXCLUDED.requests,
             errors = EXCLUDED.errors, upstream_failures = EXCLUDED.upstream_failures, latency = EXCLUDED.latency,
             mirrored = EXCLUDED.mirrored, mirror_diffs = EXCLUDED.mirror_diffs, updated_at = now()`,
          [
            r.release,
            r.run,
            r.step,
            replica,
            r.arm,
            r.sample.requests,
            r.sample.errors,
            r.sample.upstreamFailures,
            r.sample.latency,
            r.mirrored,
            r.mirrorDiffs,
          ],
        );
    });
  }

  /** The fleet's measurement of one step: every replica's totals summed per arm. */
  async readSamples(name: string, run: number, step: number, buckets: number): Promise<StepSamples> {
    const rows = await this.store.query<{
      replica: string;
      arm: 'stable' | 'candidate';
      requests: string;
      errors: string;
      upstream_failures: string;
      latency: (string | number)[];
      mirrored: string;
      mirror_diffs: string;
    }>(
      'SELECT replica, arm, requests, errors, upstream_failures, latency, mirrored, mirror_diffs FROM release_samples WHERE release = $1 AND run = $2 AND step = $3',
      [name, run, step],
    );
    const empty = (): ArmSample => ({
      requests: 0,
      errors: 0,
      upstreamFailures: 0,
      latency: new Array(buckets).fill(0),
    });
    const out: StepSamples = {
      stable: empty(),
      candidate: empty(),
      mirrored: 0,
      mirrorDiffs: 0,
      replicas: 0,
    };
    const replicas = new Set<string>();
    for (const r of rows) {
      replicas.add(r.replica);
      const a = out[r.arm];
      a.requests += Number(r.requests);
      a.errors += Number(r.errors);
      a.upstreamFailures += Number(r.upstream_failures);
      for (let i = 0; i < buckets && i < r.latency.length; i++) a.latency[i]! += Number(r.latency[i]);
      out.mirrored += Number(r.mirrored);
      out.mirrorDiffs += Number(r.mirror_diffs);
    }
    out.replicas = replicas.size;
    return out;
  }

  /**
   * Takes or renews the lease `name` for `holder` for `ttlMs`, on the store's clock: true when the
   * holder has it now. Another holder gets it only once it expired (its holder died or lost the store).
   */
  async lease(name: string, holder: string, ttlMs: number): Promise<boolean> {
    const rows = await this.store.query<{ holder: string }>(
      `INSERT INTO leases (name, holder, expires_at) VALUES ($1, $2, now() + ($3 || ' milliseconds')::interval)
       ON CONFLICT (name) DO UPDATE SET holder = EXCLUDED.holder, expires_at = EXCLUDED.expires_at
         WHERE leases.holder = EXCLUDED.holder OR leases.expires_at < now()
       RETURNING holder`,
      [name, holder, String(ttlMs)],
    );
    return rows[0]?.holder === holder;
  }

  /** The store's clock (epoch ms): step times are the store's, so replicas' clocks never matter. */
  async now(): Promise<number> {
    const rows = await this.store.query<{ now: Date }>('SELECT now() AS now');
    return new Date(rows[0]!.now).getTime();
  }

  /** Gives the lease up (a replica stopping cleanly), so another takes over at once. */
  async releaseLease(name: string, holder: string): Promise<void> {
    await this.store.query('DELETE FROM leases WHERE name = $1 AND holder = $2', [name, holder]);
  }
}

function summary(r: ReleaseRow | undefined) {
  return r && { state: r.state, step: r.step, weight: r.weight, run: r.run, reason: r.reason };
}

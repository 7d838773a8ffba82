/**
 * The release driver: exactly one replica at a time (the holder of the store lease DRIVER_LEASE)
 * judges every running release and moves it. Each tick it renews the lease; when it holds it, for
 * each running release whose `analysis.interval` has passed it reads the fleet's measurement of
 * the current step (every replica's published totals) and asks the judge:
 *   fail         → failures + 1; past `failureLimit` → roll back (weight 0, aborted)
 *   insufficient → hold (never promote, never roll back); after the step's duration, more than
 *                  `inconclusiveLimit` in a row → pause for a person
 *   pass         → advance once the step's duration and minimum requests are met; the last step promotes
 * The candidate losing every target rolls back at once, whatever the figures; so does a release
 * running past `maxDuration`. Each move is a compare-and-set on the row's revision fenced by the
 * lease, so a driver that lost its lease (paused, partitioned) cannot move anything, and the one
 * that took over continues from the stored step: no step is repeated or skipped.
 */
import type { Logger } from 'pino';
import { ms } from '../../config/units.js';
import type { Objective } from '../../slo/schema.js';
import type { EventBus } from '../../telemetry/events.js';
import { badOf, burnChecks, withChecks } from '../analysis/burn.js';
import { BUCKET_COUNT } from '../analysis/histogram.js';
import { judge } from '../analysis/judge.js';
import type { ArmSample, Judgement, JudgeRules } from '../analysis/types.js';
import { BurnWindows } from './burn-window.js';
import type { ReleaseMetrics } from './metrics.js';
import { planOf } from './plan.js';
import type { ReleaseConfig } from './schema.js';
import { DRIVER_LEASE, type ReleaseRow, type ReleaseStore, type Transition } from './store.js';

export interface DriverOptions {
  replica: string;
  /** Lease time-to-live: how long a dead driver keeps the role before another takes it; default 5s. */
  leaseMs?: number;
  /** Tick: lease renewal and due judgements; default 1s. */
  tickMs?: number;
  /** Whether the candidate group can serve (has an available target), by upstream name. */
  canServe: (upstream: string) => boolean;
  /**
   * The releases the running config declares. Only those are driven: a release dropped from the
   * config no longer splits any route, so its figures would say nothing; it keeps its state.
   */
  declared: () => ReadonlyMap<string, unknown>;
  /** The objectives of a route's `slo` in the running config (for `analysis.burnRate`); default none. */
  objectives?: (route: string) => readonly Objective[];
}

export class ReleaseDriver {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private readonly lastJudged = new Map<string, number>();
  /**
   * The last hold recorded per release (so a hold repeated every interval is one event, not
   * hundreds), as `run:step:verdict`. Read from the newest stored event the first time a release is
   * held after this replica becomes the driver, so a restart or a change of leader does not record
   * the same hold again.
   */
  private readonly lastHold = new Map<string, string>();
  /** What `analysis.burnRate` reads: the candidate's counts at each judgement of the current step. */
  private readonly burnWindows = new BurnWindows();
  leader = false;
  private closed = false;

  constructor(
    private readonly releases: ReleaseStore,
    private readonly events: Pick<EventBus, 'emit'>,
    private readonly logger: Logger,
    private readonly opts: DriverOptions,
    private readonly metrics?: ReleaseMetrics,
  ) {}

  start(): void {
    this.timer = setInterval(() => void this.tick(), this.opts.tickMs ?? 1000);
    this.timer.unref();
    void this.tick();
  }

  /** One tick (tests call it directly to step the driver). Ticks never overlap. */
  tick(): Promise<void> {
    this.running ??= this.doTick().finally(() => {
      this.running = undefined;
    });
    return this.running;
  }

  private async doTick(): Promise<void> {
    if (this.closed) return;
    try {
      const was = this.leader;
      this.leader = await this.releases.lease(DRIVER_LEASE, this.opts.replica, this.opts.leaseMs ?? 5000);
      this.metrics?.driver.set(this.leader ? 1 : 0);
      if (this.leader && !was) this.lastHold.clear();
      if (this.leader !== was)
        this.logger.info(
          {
            event: this.leader ? 'release_driver_elected' : 'release_driver_lost',
            replica: this.opts.replica,
          },
          this.leader ? 'this replica drives the releases' : 'another replica drives the releases',
        );
      if (!this.leader) return;
      const now = await this.releases.now();
      const rows = await this.releases.list();
      this.burnWindows.retain(new Set(rows.filter((r) => r.state === 'running').map((r) => r.name)));
      for (const row of rows) {
        if (row.state !== 'running' || !this.opts.declared().has(row.name)) continue;
        const interval = ms(row.spec.analysis?.interval, 10_000);
        const candidateDown = !this.opts.canServe(row.spec.candidate);
        const last = this.lastJudged.get(`${row.name}:${row.revision}`) ?? 0;
        if (!candidateDown && now - last < interval) continue;
        await this.decide(row, now, candidateDown);
      }
    } catch (err) {
      this.leader = false;
      this.metrics?.driver.set(0);
      this.logger.warn(
        { event: 'release_driver_failed', err: (err as Error).message },
        'release driver tick failed',
      );
    }
  }

  private async decide(row: ReleaseRow, now: number, candidateDown: boolean): Promise<void> {
    const spec = row.spec;
    const plan = planOf(spec);
    const step = plan[Math.min(row.step, plan.length - 1)]!;
    const driver = `driver:${this.opts.replica}`;
    const elapsed = now - (row.stepStartedAt ?? now);
    const total = now - (row.startedAt ?? now);

    if (candidateDown)
      return this.move(row, {
        state: 'aborted',
        weight: 0,
        reason: `candidate "${spec.candidate}" has no available target`,
        event: {
          actor: driver,
          action: 'rollback',
          verdict: 'fail',
          reason: `candidate "${spec.candidate}" has no available target`,
        },
      });
    if (total > ms(spec.analysis?.maxDuration, 86_400_000))
      return this.move(row, {
        state: 'aborted',
        weight: 0,
        reason: 'maxDuration passed',
        event: {
          actor: driver,
          action: 'rollback',
          reason: `still running after analysis.maxDuration (${Math.round(total / 1000)} s)`,
        },
      });

    const samples = await this.releases.readSamples(row.name, row.run, row.step, BUCKET_COUNT);
    const j = withChecks(
      judge(samples.stable, samples.candidate, rulesOf(spec, step.baseline)),
      this.burnRate(row, now, samples.candidate),
    );
    const figures = {
      ...j,
      mirror: { mirrored: samples.mirrored, diffs: samples.mirrorDiffs },
      replicas: samples.replicas,
    };
    this.lastJudged.set(`${row.name}:${row.revision}`, now);
    const failing = j.checks.filter((c) => c.verdict === 'fail').map((c) => `${c.check}: ${c.reason}`);
    const at = `step ${row.step + 1}/${plan.length} (${step.kind} ${step.weight}%)`;

    if (j.verdict === 'fail') {
      const failures = row.failures + 1;
      const limit = spec.analysis?.failureLimit ?? 0;
      if (failures > limit)
        return this.move(row, {
          state: 'aborted',
          weight: 0,
          failures,
          reason: failing.join('; '),
          event: {
            actor: driver,
            action: 'rollback',
            verdict: 'fail',
            reason: `${at}: ${failing.join('; ')}`,
            figures,
          },
        });
      return this.move(row, {
        failures,
        event: {
          actor: driver,
          action: 'hold',
          verdict: 'fail',
          reason: `${at}: failure ${failures} of ${limit} tolerated: ${failing.join('; ')}`,
          figures,
        },
      });
    }
    if (j.verdict === 'insufficient') {
      const inconclusive = row.inconclusive + 1;
      if (elapsed >= step.durationMs && inconclusive > (spec.analysis?.inconclusiveLimit ?? 30))
        return this.move(row, {
          state: 'paused',
          inconclusive,
          reason: 'insufficient data',
          event: {
            actor: driver,
            action: 'pause',
            verdict: 'insufficient',
            reason: `${at}: insufficient data ${inconclusive} times in a row: paused for a person`,
            figures,
          },
        });
      // Counted in memory until it matters: writing a row per interval would bury the decisions.
      return this.hold(
        row,
        { inconclusive },
        'insufficient',
        `${at}: insufficient data (${samples.stable.requests} stable, ${samples.candidate.requests} candidate requests; ${minSamplesOf(spec)} needed in each)`,
        figures,
        j,
      );
    }
    if (elapsed < step.durationMs || samples.candidate.requests < step.minRequests)
      return this.hold(
        row,
        row.inconclusive > 0 ? { inconclusive: 0 } : {},
        'pass',
        `${at}: passing, waiting for ${Math.ceil(step.durationMs / 1000)} s and ${step.minRequests} candidate requests`,
        figures,
        j,
      );
    const next = row.step + 1;
    if (next >= plan.length)
      return this.move(row, {
        state: 'promoted',
        weight: 100,
        reason: null,
        event: {
          actor: driver,
          action: 'promote',
          verdict: 'pass',
          reason: `${at} passed: the candidate is promoted`,
          figures,
        },
      });
    const n = plan[next]!;
    return this.move(row, {
      step: next,
      weight: n.weight,
      restartStep: true,
      inconclusive: 0,
      event: {
        actor: driver,
        action: 'advance',
        verdict: 'pass',
        reason: `${at} passed: on to step ${next + 1}/${plan.length} (${n.kind} ${n.weight}%)`,
        figures,
      },
    });
  }

  /** `analysis.burnRate`: one check per objective of the route's slo, over the window ending now. */
  private burnRate(row: ReleaseRow, now: number, candidate: ArmSample) {
    const rule = row.spec.analysis?.burnRate;
    const objectives = rule === undefined ? [] : (this.opts.objectives?.(row.spec.route) ?? []);
    if (rule === undefined || objectives.length === 0) return [];
    const windowMs = ms(rule.window, 300_000);
    const counts = this.burnWindows.observe(
      row.name,
      `${row.run}:${row.step}`,
      now,
      row.stepStartedAt ?? now,
      { requests: candidate.requests, bad: badOf(objectives, candidate) },
      windowMs,
    );
    const window = typeof rule.window === 'string' ? rule.window : `${windowMs}ms`;
    return burnChecks(
      objectives,
      counts,
      { maxRate: rule.maxRate, window, windowMs },
      minSamplesOf(row.spec),
    );
  }

  /** A hold: written (and announced) only when its verdict changed, so history shows each decision once. */
  private async hold(
    row: ReleaseRow,
    fields: Pick<Transition, 'inconclusive'>,
    verdict: string,
    reason: string,
    figures: unknown,
    _j: Judgement,
  ): Promise<void> {
    const key = `${row.run}:${row.step}:${verdict}`;
    if (!this.lastHold.has(row.name)) {
      const [newest] = await this.releases.history(row.name, 1);
      if (newest?.action === 'hold')
        this.lastHold.set(row.name, `${newest.run}:${newest.step}:${newest.verdict}`);
    }
    if (this.lastHold.get(row.name) === key) {
      if (fields.inconclusive !== undefined && fields.inconclusive !== row.inconclusive)
        await this.releases.transition(
          row.name,
          row.revision,
          { ...fields, event: undefined },
          { leaseHolder: this.opts.replica },
        );
      return;
    }
    this.lastHold.set(row.name, key);
    await this.move(row, {
      ...fields,
      event: { actor: `driver:${this.opts.replica}`, action: 'hold', verdict, reason, figures },
    });
  }

  private async move(row: ReleaseRow, t: Transition): Promise<void> {
    const after = await this.releases.transition(row.name, row.revision, t, {
      leaseHolder: this.opts.replica,
    });
    if (after === undefined || t.event === undefined) return;
    this.metrics?.decisions.labels(row.name, t.event.action).inc();
    this.events.emit({
      type: 'release_decision',
      at: new Date().toISOString(),
      release: row.name,
      run: after.run,
      action: t.event.action,
      step: after.step,
      weight: after.weight,
      verdict: t.event.verdict,
      reason: t.event.reason,
      actor: t.event.actor,
    });
    if (t.event.action !== 'hold')
      this.logger.info(
        {
          event: 'release_decision',
          release: row.name,
          action: t.event.action,
          step: after.step,
          weight: after.weight,
          reason: t.event.reason,
        },
        `release ${row.name}: ${t.event.action}`,
      );
  }

  async close(): Promise<void> {
    this.closed = true;
    clearInterval(this.timer);
    await this.running;
    if (this.leader) await this.releases.releaseLease(DRIVER_LEASE, this.opts.replica).catch(() => {});
  }
}

function minSamplesOf(spec: ReleaseConfig): number {
  return spec.analysis?.minSamples ?? 50;
}

export function rulesOf(spec: ReleaseConfig, baseline: boolean): JudgeRules {
  const a = spec.analysis;
  return {
    minSamples: minSamplesOf(spec),
    errors: { ...a?.errors },
    latency: { ...a?.latency },
    baseline,
  };
}

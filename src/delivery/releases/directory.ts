/**
 * Keeps each replica's release slots equal to the store, and the store fed with what this replica
 * measured. The release rows are read again on every change notification ('sluice_releases', sent
 * by the table's trigger on commit), after the notification connection came back, and every
 * `pollMs` as a safety net: every replica applies a new step within about a second. Each
 * `flushMs`, the counters of the current step (and of steps just left) are written as cumulative
 * totals, so a failed write is repaired by the next and nothing is counted twice. Nothing here is
 * on the request path: the data plane only reads the slots.
 */
import type { Logger } from 'pino';
import type { Store } from '../../store/store.js';
import type { EventBus } from '../../telemetry/events.js';
import type { DeclaredRelease } from './actions.js';
import type { ReleaseMetrics } from './metrics.js';
import { planOf } from './plan.js';
import type { ReleaseSlots } from './registry.js';
import { type ArmCounters, RETIRED_KEEP_MS } from './slot.js';
import { RELEASES_CHANNEL, type ReleaseRow, type ReleaseStore } from './store.js';

export interface DirectoryOptions {
  replica: string;
  flushMs?: number;
  pollMs?: number;
}

export class ReleaseDirectory {
  private timers: NodeJS.Timeout[] = [];
  private unlisten: (() => Promise<void>) | undefined;
  private unresync: (() => void) | undefined;
  private reloading: Promise<void> | undefined;
  private again = false;
  private closed = false;
  /** The rows as last read, by name. */
  rows: ReadonlyMap<string, ReleaseRow> = new Map();

  constructor(
    private readonly store: Store,
    private readonly releases: ReleaseStore,
    private readonly slots: ReleaseSlots,
    private readonly logger: Logger,
    private readonly opts: DirectoryOptions,
    private readonly metrics?: ReleaseMetrics,
    private readonly events?: Pick<EventBus, 'emit'>,
  ) {}

  async start(declared: ReadonlyMap<string, DeclaredRelease>): Promise<void> {
    this.unlisten = await this.store.listen(RELEASES_CHANNEL, () => void this.reload());
    this.unresync = this.store.onResync(() => void this.reload());
    await this.declare(declared).catch((err: Error) =>
      this.logger.warn(
        { event: 'release_declare_failed', err: err.message },
        'releases not declared in the store yet',
      ),
    );
    await this.reload();
    const flush = setInterval(() => void this.flush(), this.opts.flushMs ?? 1000);
    const poll = setInterval(() => void this.reload(), this.opts.pollMs ?? 5000);
    flush.unref();
    poll.unref();
    this.timers.push(flush, poll);
  }

  /**
   * Creates the rows of releases the config declares that the store does not know, and starts a
   * new run where the declared spec changed (a new candidate, new steps) or a finished release
   * was declared again. Every replica does this at start and on reload; compare-and-set makes
   * exactly one of them win.
   */
  async declare(declared: ReadonlyMap<string, DeclaredRelease>): Promise<void> {
    for (const [name, d] of declared) {
      const first = planOf(d.spec)[0]!;
      const auto = (d.spec.start ?? 'auto') === 'auto';
      if (await this.releases.ensure(name, d.spec, d.specHash, d.bucketing, first.weight)) {
        this.announce(
          name,
          1,
          auto ? 'start' : 'declare',
          auto ? first.weight : 0,
          'declared in the config file',
        );
        continue;
      }
      const row = await this.releases.get(name);
      if (row === undefined || row.specHash === d.specHash) continue;
      const reason = `the release's config changed (was ${row.state} at step ${row.step + 1}): a new run`;
      const after = await this.releases.transition(name, row.revision, {
        state: auto ? 'running' : 'pending',
        step: 0,
        weight: auto ? first.weight : 0,
        restartStep: true,
        failures: 0,
        inconclusive: 0,
        reason: null,
        newRun: { spec: d.spec, specHash: d.specHash, bucketing: d.bucketing },
        event: {
          actor: 'config',
          action: auto ? 'start' : 'declare',
          reason,
        },
      });
      if (after !== undefined)
        this.announce(name, after.run, auto ? 'start' : 'declare', after.weight, reason);
    }
  }

  /** A start (or declaration) by the config, on the bus like the driver's and people's decisions. */
  private announce(release: string, run: number, action: string, weight: number, reason: string): void {
    this.events?.emit({
      type: 'release_decision',
      at: new Date().toISOString(),
      release,
      run,
      action,
      step: 0,
      weight,
      reason,
      actor: 'config',
    });
  }

  /** Reads the rows and applies them to the slots (coalesced: a burst of changes, one read). */
  reload(): Promise<void> {
    if (this.reloading) {
      this.again = true;
      return this.reloading;
    }
    this.reloading = (async () => {
      try {
        do {
          this.again = false;
          const rows = await this.releases.list();
          this.apply(rows);
        } while (this.again && !this.closed);
      } catch (err) {
        this.logger.warn(
          { event: 'release_reload_failed', err: (err as Error).message },
          'release state not read',
        );
      } finally {
        this.reloading = undefined;
      }
    })();
    return this.reloading;
  }

  private apply(rows: ReleaseRow[]): void {
    const byName = new Map<string, ReleaseRow>();
    for (const r of rows) {
      byName.set(r.name, r);
      const plan = planOf(r.spec);
      const step = plan[Math.min(r.step, plan.length - 1)]!;
      const slot = this.slots.slot(r.name);
      slot.apply({
        state: r.state,
        run: r.run,
        step: r.step,
        weight: r.weight,
        cohorts: step.cohorts,
        bucketing: r.bucketing === 'v1' ? 'v1' : 'v1',
      });
      this.metrics?.applied(r.name, r.state, r.step, slot.candidateBuckets / 100);
    }
    this.rows = byName;
  }

  /** Writes the counters that changed; a failure leaves them dirty for the next flush. */
  async flush(): Promise<void> {
    const batch: { c: ArmCounters; release: string }[] = [];
    for (const slot of this.slots.all()) {
      for (const c of [...slot.counters, ...slot.retired])
        if (c.dirty && c.run > 0) batch.push({ c, release: slot.name });
    }
    if (batch.length === 0) return;
    for (const b of batch) b.c.dirty = false;
    try {
      await this.releases.writeSamples(
        batch.map(({ c, release }) => ({
          release,
          run: c.run,
          step: c.step,
          arm: c.arm,
          sample: {
            requests: c.requests,
            errors: c.errors,
            upstreamFailures: c.upstreamFailures,
            latency: Array.from(c.latency),
          },
          mirrored: c.mirrored,
          mirrorDiffs: c.mirrorDiffs,
        })),
        this.opts.replica,
      );
      const cutoff = Date.now() - RETIRED_KEEP_MS;
      for (const slot of this.slots.all())
        slot.retired = slot.retired.filter((c) => c.dirty || c.retiredAt > cutoff);
    } catch (err) {
      for (const b of batch) b.c.dirty = true;
      this.logger.warn(
        { event: 'release_flush_failed', err: (err as Error).message },
        'release measurements not written; retried',
      );
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const t of this.timers) clearInterval(t);
    await this.flush().catch(() => {});
    this.unresync?.();
    await this.unlisten?.().catch(() => {});
  }
}

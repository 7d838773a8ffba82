/**
 * What the data plane reads of one release: a slot per release name, owned by the gateway (it
 * outlives config versions, as target health does). The directory (directory.ts) writes the
 * release's state from the store into it; the compiled route reads it once per request, and the
 * exchange's end adds the answer to the counters of the current run and step.
 */
import { BUCKET_COUNT, bucketOf as latencyBucket } from '../analysis/histogram.js';
import type { BucketingVersion } from '../bucketing.js';
import type { ReleaseStateName } from './store.js';

/** One version's counters for one run and step (cumulative: a flush writes them whole). */
export class ArmCounters {
  requests = 0;
  errors = 0;
  upstreamFailures = 0;
  mirrored = 0;
  mirrorDiffs = 0;
  readonly latency = new Float64Array(BUCKET_COUNT);
  /** Changed since the last flush. */
  dirty = false;
  /** When the step it counts for ended here (epoch ms), 0 while current. */
  retiredAt = 0;

  constructor(
    readonly run: number,
    readonly step: number,
    readonly arm: 'stable' | 'candidate',
  ) {}

  record(status: number, ms: number, upstreamFailure: boolean): void {
    this.requests++;
    if (status >= 500) this.errors++;
    if (upstreamFailure) this.upstreamFailures++;
    this.latency[latencyBucket(ms)]!++;
    this.dirty = true;
  }
}

/** How long the counters of a step that ended are kept for late answers (then flushed once more and dropped). */
export const RETIRED_KEEP_MS = 60_000;

export const STABLE = 0;
export const CANDIDATE = 1;
export type Arm = typeof STABLE | typeof CANDIDATE;

export class ReleaseSlot {
  /** `unknown` until the store was read: everyone on the stable version. */
  state: ReleaseStateName | 'unknown' = 'unknown';
  run = 0;
  step = 0;
  /** Buckets (of 10 000) on the candidate: the weight × 100. */
  candidateBuckets = 0;
  /** Cohorts on the candidate (the first n of the release's `cohorts`). */
  cohorts = 0;
  bucketing: BucketingVersion = 'v1';
  /** Counters of the current run and step, [stable, candidate]. */
  counters: [ArmCounters, ArmCounters] = [
    new ArmCounters(0, 0, 'stable'),
    new ArmCounters(0, 0, 'candidate'),
  ];
  /**
   * Counters of earlier steps, kept RETIRED_KEEP_MS after their step ended: answers of requests
   * that chose their version at that step still count for it when they come late.
   */
  retired: ArmCounters[] = [];

  constructor(readonly name: string) {}

  /** Applies the stored state; a new run or step starts new counters (the old ones are flushed once more). */
  apply(s: {
    state: ReleaseStateName;
    run: number;
    step: number;
    weight: number;
    cohorts: number;
    bucketing: BucketingVersion;
  }): void {
    this.state = s.state;
    const measuring = s.state === 'running' || s.state === 'paused';
    this.candidateBuckets =
      s.state === 'aborted' || s.state === 'pending'
        ? 0
        : s.state === 'promoted'
          ? 10_000
          : Math.round(s.weight * 100);
    this.cohorts = measuring ? s.cohorts : 0;
    this.bucketing = s.bucketing;
    if (s.run !== this.run || s.step !== this.step) {
      const now = Date.now();
      for (const c of this.counters) c.retiredAt = now;
      this.retired.push(...this.counters);
      this.run = s.run;
      this.step = s.step;
      this.counters = [new ArmCounters(s.run, s.step, 'stable'), new ArmCounters(s.run, s.step, 'candidate')];
    }
  }

  /** Measured only while the release runs or is paused at a step (not before, not after). */
  get measuring(): boolean {
    return this.state === 'running' || this.state === 'paused';
  }
}

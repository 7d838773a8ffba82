/**
 * The gateway's release services, built when the store is open: the directory (slots kept equal to
 * the store, measurements published), the driver (one replica judges and moves releases) and what
 * the admin API reads. The replica id names this process in the samples and the lease.
 */
import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import { BUCKET_COUNT } from '../delivery/analysis/histogram.js';
import type { DeclaredRelease } from '../delivery/releases/actions.js';
import { ReleaseDirectory } from '../delivery/releases/directory.js';
import { ReleaseDriver } from '../delivery/releases/driver.js';
import { ReleaseMetrics } from '../delivery/releases/metrics.js';
import type { ReleaseSlots } from '../delivery/releases/registry.js';
import { ReleaseAdminService } from '../delivery/releases/service.js';
import { ReleaseStore } from '../delivery/releases/store.js';
import type { Objective } from '../slo/schema.js';
import type { Store } from '../store/store.js';
import type { EventBus } from '../telemetry/events.js';

export interface ReleaseTimings {
  /** Measurements published every (default 1000 ms). */
  flushMs?: number;
  /** Driver tick (default 1000 ms). */
  tickMs?: number;
  /** Driver lease time-to-live (default 5000 ms). */
  leaseMs?: number;
}

export class ReleaseServices {
  readonly replica = `${hostname()}-${process.pid}-${randomUUID().slice(0, 8)}`;
  readonly releases: ReleaseStore;
  readonly directory: ReleaseDirectory;
  readonly driver: ReleaseDriver;
  readonly admin: ReleaseAdminService;

  constructor(
    store: Store,
    slots: ReleaseSlots,
    events: EventBus,
    logger: Logger,
    declared: () => ReadonlyMap<string, DeclaredRelease>,
    canServe: (upstream: string) => boolean,
    registry: Registry,
    timings: ReleaseTimings = {},
    /** The objectives of a route's `slo` in the running config (the burn-rate gate). */
    objectives?: (route: string) => readonly Objective[],
  ) {
    const metrics = new ReleaseMetrics(registry);
    this.releases = new ReleaseStore(store);
    this.directory = new ReleaseDirectory(
      store,
      this.releases,
      slots,
      logger,
      {
        replica: this.replica,
        flushMs: timings.flushMs,
      },
      metrics,
      events,
    );
    this.driver = new ReleaseDriver(
      this.releases,
      events,
      logger,
      {
        replica: this.replica,
        tickMs: timings.tickMs,
        leaseMs: timings.leaseMs,
        canServe,
        declared,
        objectives,
      },
      metrics,
    );
    this.admin = new ReleaseAdminService(this.releases, declared, BUCKET_COUNT);
  }

  async start(declared: ReadonlyMap<string, DeclaredRelease>): Promise<void> {
    await this.directory.start(declared);
    this.driver.start();
  }

  async close(): Promise<void> {
    await this.driver.close();
    await this.directory.close();
  }
}

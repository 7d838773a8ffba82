/**
 * The identity side of a Gateway: the store (PGlite or PostgreSQL), its migrations, the tenancy
 * snapshot the data plane reads and the repository the admin API writes through. Opened at start
 * when the config needs it (a `store`, or routes with `auth` / `tenant`), because the embedded
 * store costs seconds and hundreds of MB that a plain proxy should not pay.
 */
import type { Logger } from 'pino';
import type { Config } from '../config/schema.js';
import type { IdentityDirectory } from '../policies/identity.js';
import { usesIdentity } from '../policies/registry.js';
import { migrate } from '../store/migrate.js';
import { describeStore, openStore, storeOptionsFrom } from '../store/open.js';
import type { Store } from '../store/store.js';
import type { Metrics } from '../telemetry/metrics.js';
import { snapshotDirectory } from '../tenancy/directory.js';
import { KeyUseRecorder } from '../tenancy/key-use.js';
import { TenancyRepository } from '../tenancy/repository.js';
import { SnapshotSource } from '../tenancy/snapshot.js';

export function needsStore(config: Config): boolean {
  // An `ofrep` route answers from the flag snapshot, releases keep their state and the audit log
  // its entries: all in the store.
  return (
    config.store !== undefined ||
    usesIdentity(config) ||
    config.routes.some((r) => r.ofrep === true) ||
    Object.keys(config.releases ?? {}).length > 0 ||
    config.audit?.enabled === true ||
    // SCIM's users and groups (admin.scim) live in the store.
    config.admin?.scim !== undefined
  );
}

export class IdentityServices {
  private constructor(
    readonly store: Store,
    readonly snapshot: SnapshotSource,
    readonly repository: TenancyRepository,
    readonly directory: IdentityDirectory,
    readonly where: string,
    /** Last-use times of API keys, written in batches. */
    readonly keyUse: KeyUseRecorder,
  ) {}

  static async open(
    config: Config,
    env: NodeJS.ProcessEnv,
    logger: Logger,
    metrics: Metrics,
  ): Promise<IdentityServices> {
    const opts = storeOptionsFrom(config.store, env);
    const where = describeStore(opts);
    const started = performance.now();
    const store = await openStore({
      ...opts,
      // Pool errors and LISTEN reconnects (passwords already removed).
      onError: (err) =>
        logger.warn({ event: 'store_error', store: where, err: err.message }, 'store connection error'),
    });
    try {
      const m = await migrate(store);
      if (m.applied.length > 0)
        logger.info(
          { event: 'store_migrated', applied: m.applied.map((a) => a.name), version: m.version },
          'store migrated',
        );
      const snapshot = new SnapshotSource(store, {
        onError: (err) => {
          metrics.snapshotErrors.inc();
          logger.warn(
            { event: 'tenancy_snapshot_failed', err: err.message },
            'tenancy snapshot reload failed; serving the last one',
          );
        },
      });
      snapshot.onChange((s) => {
        metrics.snapshotLoaded(s.version, s.loadedAt, s.tenantsById.size, s.keysById.size);
      });
      await snapshot.start();
      const s = snapshot.current;
      metrics.snapshotLoaded(s.version, s.loadedAt, s.tenantsById.size, s.keysById.size);
      logger.info(
        {
          event: 'store_opened',
          store: where,
          kind: store.kind,
          tenants: s.tenantsById.size,
          keys: s.keysById.size,
          ms: Math.round(performance.now() - started),
        },
        'store opened',
      );
      const repository = new TenancyRepository(store);
      const keyUse = new KeyUseRecorder(repository, 30_000, (err) =>
        logger.warn(
          { event: 'key_use_not_recorded', err: err.message },
          'API key last-use times not written',
        ),
      );
      return new IdentityServices(
        store,
        snapshot,
        repository,
        keyUse.wrap(snapshotDirectory(snapshot)),
        where,
        keyUse,
      );
    } catch (err) {
      await store.close().catch(() => {});
      throw err;
    }
  }

  async close(): Promise<void> {
    await this.keyUse.close().catch(() => {});
    await this.snapshot.close();
    await this.store.close();
  }
}

/**
 * The identity side of a Gateway: the store (PGlite or PostgreSQL), its migrations, the tenancy
 * snapshot the data plane reads and the repository the admin API writes through. Opened at start
 * when the config needs it (a `store`, or routes with `auth` / `tenant`), because the embedded
 * store costs seconds and hundreds of MB that a plain proxy should not pay.
 */
import { resolve } from 'node:path';
import type { Logger } from 'pino';
import type { Config } from '../config/schema.js';
import type { IdentityDirectory } from '../policies/identity.js';
import { usesIdentity } from '../policies/registry.js';
import { migrate } from '../store/migrate.js';
import { DEFAULT_DATA_DIR, isPostgresUrl, type OpenStoreOptions, openStore } from '../store/open.js';
import { redactUrl, type Store } from '../store/store.js';
import type { Metrics } from '../telemetry/metrics.js';
import { snapshotDirectory } from '../tenancy/directory.js';
import { TenancyRepository } from '../tenancy/repository.js';
import { SnapshotSource } from '../tenancy/snapshot.js';

export function needsStore(config: Config): boolean {
  return config.store !== undefined || usesIdentity(config);
}

/** Where the store is: the config's `store`, else `DATABASE_URL`, else PGlite in ./data/sluice. */
export function storeOptions(config: Config, env: NodeJS.ProcessEnv): OpenStoreOptions {
  const s = config.store;
  if (typeof s === 'string') {
    if (s.startsWith('memory://') || isPostgresUrl(s)) return { url: s };
    return { dataDir: resolve(s) };
  }
  if (s?.url !== undefined) return { url: s.url };
  if (s?.dataDir !== undefined) return { dataDir: resolve(s.dataDir) };
  if (isPostgresUrl(env.DATABASE_URL)) return { url: env.DATABASE_URL };
  return { dataDir: resolve(DEFAULT_DATA_DIR) };
}

/** What the log may say about where the store is: never a password. */
export function describeStore(o: OpenStoreOptions): string {
  return o.url !== undefined ? redactUrl(o.url) : `embedded (PGlite) in ${o.dataDir}`;
}

export class IdentityServices {
  private constructor(
    readonly store: Store,
    readonly snapshot: SnapshotSource,
    readonly repository: TenancyRepository,
    readonly directory: IdentityDirectory,
    readonly where: string,
  ) {}

  static async open(
    config: Config,
    env: NodeJS.ProcessEnv,
    logger: Logger,
    metrics: Metrics,
  ): Promise<IdentityServices> {
    const opts = storeOptions(config, env);
    const where = describeStore(opts);
    const started = performance.now();
    const store = await openStore(opts);
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
      return new IdentityServices(
        store,
        snapshot,
        new TenancyRepository(store),
        snapshotDirectory(snapshot),
        where,
      );
    } catch (err) {
      await store.close().catch(() => {});
      throw err;
    }
  }

  async close(): Promise<void> {
    await this.snapshot.close();
    await this.store.close();
  }
}

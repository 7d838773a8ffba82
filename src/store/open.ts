import { resolve } from 'node:path';
import { PgliteStore } from './pglite.js';
import { PostgresStore, type PostgresStoreOptions } from './postgres.js';
import { redactUrl, type Store } from './store.js';

export const DEFAULT_DATA_DIR = './data/sluice';

export interface OpenStoreOptions extends PostgresStoreOptions {
  /**
   * `postgres://` or `postgresql://` → that PostgreSQL server; `memory://` → an in-memory PGlite
   * (tests); unset → PGlite in dataDir. The caller decides whether DATABASE_URL fills it.
   */
  url?: string;
  /** PGlite's data directory when no URL is given. Default ./data/sluice. */
  dataDir?: string;
}

export function isPostgresUrl(url: string | undefined): url is string {
  return url !== undefined && /^postgres(ql)?:\/\//i.test(url);
}

/** Opens the store the options describe. Does not migrate: call migrate(store) next. */
export async function openStore(opts: OpenStoreOptions = {}): Promise<Store> {
  const { url } = opts;
  if (isPostgresUrl(url)) return PostgresStore.open(url, opts);
  if (url === 'memory://') return PgliteStore.open(undefined);
  if (url !== undefined && url !== '') {
    throw new Error('store: expected a postgres:// or postgresql:// URL, or none for the embedded store');
  }
  return PgliteStore.open(opts.dataDir ?? DEFAULT_DATA_DIR);
}

/** The `store` setting of the config file: a URL or a PGlite directory, or both spelled out. */
export type StoreSetting = string | { url?: string; dataDir?: string };

/**
 * What to open, from the config's `store` (if any) and the environment: a `postgres://` (or
 * `memory://`) string or `url` → that; another string or `dataDir` → PGlite in that directory
 * (made absolute); no setting → DATABASE_URL when it is a PostgreSQL URL, else PGlite in
 * ./data/sluice. (A DATABASE_URL meant for something else is left alone.)
 */
export function storeOptionsFrom(
  setting: StoreSetting | undefined,
  env: NodeJS.ProcessEnv = process.env,
): OpenStoreOptions {
  if (typeof setting === 'string') {
    return setting === 'memory://' || isPostgresUrl(setting)
      ? { url: setting }
      : { dataDir: resolve(setting) };
  }
  if (setting?.url !== undefined) return { url: setting.url };
  if (setting?.dataDir !== undefined) return { dataDir: resolve(setting.dataDir) };
  if (isPostgresUrl(env.DATABASE_URL)) return { url: env.DATABASE_URL };
  return { dataDir: resolve(DEFAULT_DATA_DIR) };
}

/** For logs: which store, never with a password. */
export function describeStore(opts: OpenStoreOptions): string {
  if (isPostgresUrl(opts.url)) return `PostgreSQL at ${redactUrl(opts.url)}`;
  if (opts.url === 'memory://') return 'PGlite in memory';
  return `PGlite in ${opts.dataDir ?? DEFAULT_DATA_DIR}`;
}

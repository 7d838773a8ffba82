import { PgliteStore } from './pglite.js';
import { PostgresStore, type PostgresStoreOptions } from './postgres.js';
import type { Store } from './store.js';

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

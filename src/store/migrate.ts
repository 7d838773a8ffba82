import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import Postgrator from 'postgrator';
import type { Store } from './store.js';

/**
 * Versioned schema migrations with postgrator: plain SQL files named `NNN.do.what.sql` in
 * ./migrations, recorded with their checksums in `sluice_migrations`. Chosen over node-pg-migrate
 * because it takes an `execQuery` function instead of a driver: the same runner works on a pg
 * connection and on PGlite, and on one transaction of either.
 *
 * The SQL files sit beside this module: src/store/migrations under tsx, dist/store/migrations
 * after `npm run build` (which copies them).
 */
export const MIGRATIONS_DIR = fileURLToPath(new URL('./migrations/', import.meta.url));

/** The advisory lock key that serialises migrators: an arbitrary constant reserved for Sluice. */
const MIGRATION_LOCK = '5384732519003741';

export interface MigrationResult {
  /** The migrations this call applied, in order (empty when the schema was already current). */
  applied: { version: number; name: string }[];
  /** The schema version after the call. */
  version: number;
}

/**
 * Brings the schema to the newest version. Everything runs in one transaction that first takes a
 * transaction-scoped advisory lock: when several replicas start at once, one migrates and the
 * others wait, then find nothing left to do. PostgreSQL DDL is transactional, so a failed
 * migration leaves the schema as it was.
 */
export async function migrate(
  store: Store,
  dir: string = MIGRATIONS_DIR,
  /** Stop at this version instead of the newest (`sluice restore` brings a store to its backup's). */
  target?: number,
): Promise<MigrationResult> {
  return store.transaction(async (tx) => {
    await tx.query('SELECT pg_advisory_xact_lock($1::bigint)', [MIGRATION_LOCK]);
    const postgrator = new Postgrator({
      driver: 'pg',
      migrationPattern: join(dir, '*.sql'),
      schemaTable: 'public.sluice_migrations',
      validateChecksums: true,
      execQuery: async (sql) => ({ rows: await tx.query(sql) }),
      execSqlScript: (script) => tx.exec(script),
    });
    const applied = await postgrator.migrate(target === undefined ? 'max' : String(target));
    const version = await postgrator.getDatabaseVersion();
    return { applied: applied.map((m) => ({ version: m.version, name: m.name })), version };
  });
}

/**
 * `sluice backup --out FILE` and `sluice restore --in FILE`: the store (PGlite or PostgreSQL) to a
 * `sluice-backup/v1` file and back (src/store/backup/, docs/backup.md). The store is chosen as
 * `sluice migrate` chooses it: --store, else the config file's `store`, else $DATABASE_URL, else
 * ./data/sluice.
 */
import { parseArgs } from 'node:util';
import { ConfigInvalidError, formatConfigError, loadConfigFile } from '../config/load.js';
import { backupStore } from '../store/backup/export.js';
import { BackupFormatError } from '../store/backup/format.js';
import { RestoreRefusedError, restoreStore } from '../store/backup/restore.js';
import { describeStore, type OpenStoreOptions, openStore, storeOptionsFrom } from '../store/open.js';

const storeHelp = `  --config FILE   read \`store\` from this config file
  --store VALUE   a postgres:// URL or a PGlite data directory (overrides the config file)
Without either: $DATABASE_URL if set, else the embedded store in ./data/sluice.
A PGlite directory must not be open in a running gateway (PGlite is one process's database).`;

const backupHelp = `Usage: sluice backup --out FILE [--config FILE] [--store URL|DIR]

Writes Sluice's tables (tenants, keys, usage, releases, flags, the change and audit logs) to FILE
(gzip, format sluice-backup/v1; \`-\` for stdout), read from one consistent snapshot. On PostgreSQL
it runs beside live gateways; see docs/backup.md for pg_dump and point-in-time recovery.
  --out FILE      where to write (written beside it, then renamed into place; mode 0600)
${storeHelp}`;

const restoreHelp = `Usage: sluice restore --in FILE [--force] [--config FILE] [--store URL|DIR]

Loads a backup made by \`sluice backup\` (from either kind of store) into the store, in one
transaction, then runs any migrations newer than the backup. Stop the gateways first.
  --in FILE       the backup (\`-\` for stdin)
  --force         replace the target's contents (without it, a store holding data is refused)
${storeHelp}`;

function storeOptions(values: { config?: string; store?: string }): OpenStoreOptions | number {
  if (values.store !== undefined) return storeOptionsFrom(values.store);
  if (values.config === undefined) return storeOptionsFrom(undefined);
  try {
    return storeOptionsFrom(loadConfigFile(values.config).config.store);
  } catch (err) {
    if (!(err instanceof ConfigInvalidError)) throw err;
    for (const e of err.errors) console.error(formatConfigError(e));
    return 1;
  }
}

const common = {
  config: { type: 'string', short: 'c' },
  store: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

export async function runBackup(args: string[]): Promise<number> {
  const { values } = parseArgs({ args, options: { ...common, out: { type: 'string', short: 'o' } } });
  if (values.help) {
    console.log(backupHelp);
    return 0;
  }
  if (values.out === undefined) {
    console.error(`sluice backup: --out is required\n\n${backupHelp}`);
    return 2;
  }
  const opts = storeOptions(values);
  if (typeof opts === 'number') return opts;
  const started = performance.now();
  const store = await openStore(opts);
  try {
    const s = await backupStore(store, values.out);
    const rows = Object.values(s.rows).reduce((a, b) => a + b, 0);
    // To stderr when the backup itself goes to stdout.
    const log = values.out === '-' ? console.error : console.log;
    log(
      `${describeStore(opts)}: schema version ${s.header.schemaVersion}, ${s.header.tables.length} tables, ${rows} rows` +
        `${values.out === '-' ? '' : ` → ${values.out} (${s.bytes} bytes)`} in ${Math.round(performance.now() - started)} ms`,
    );
    return 0;
  } finally {
    await store.close();
  }
}

export async function runRestore(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: { ...common, in: { type: 'string', short: 'i' }, force: { type: 'boolean' } },
  });
  if (values.help) {
    console.log(restoreHelp);
    return 0;
  }
  if (values.in === undefined) {
    console.error(`sluice restore: --in is required\n\n${restoreHelp}`);
    return 2;
  }
  const opts = storeOptions(values);
  if (typeof opts === 'number') return opts;
  const started = performance.now();
  const store = await openStore(opts);
  try {
    const s = await restoreStore(store, values.in, { force: values.force === true });
    const rows = Object.values(s.rows).reduce((a, b) => a + b, 0);
    for (const m of s.migrated) console.log(`applied ${m.version} ${m.name}`);
    console.log(
      `${describeStore(opts)}: restored ${rows} rows in ${s.header.tables.length} tables from a backup of ${s.header.createdAt} ` +
        `(${s.header.source}, schema version ${s.header.schemaVersion}); schema now at version ${s.version}, ` +
        `in ${Math.round(performance.now() - started)} ms`,
    );
    return 0;
  } catch (err) {
    if (err instanceof RestoreRefusedError || err instanceof BackupFormatError) {
      console.error(`sluice restore: ${err.message}`);
      return 1;
    }
    throw err;
  } finally {
    await store.close();
  }
}

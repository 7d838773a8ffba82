/**
 * `sluice restore`: loads a `sluice-backup/v1` file into a store of either kind.
 *
 * 1. The backup's schema must be one this Sluice knows (same migrations, same checksums); a store
 *    already past the backup's version is refused (its tables may no longer have the backup's shape).
 * 2. A target holding data is refused unless `force`: restoring over a live store is a decision.
 * 3. The target is migrated to the backup's version, then every table is emptied and loaded in one
 *    transaction (a failure leaves the target as it was), with Sluice's triggers off: the rows are
 *    loaded as they were, not re-announced (no change notifications, no admin changes re-audited).
 *    Serial sequences are set where the source's stood.
 * 4. Pending migrations run after, as `sluice start` would: the restored store is current.
 */
import { createReadStream } from 'node:fs';
import { createInterface } from 'node:readline';
import { createGunzip } from 'node:zlib';
import { MIGRATIONS_DIR, migrate } from '../migrate.js';
import type { Queryable, Store } from '../store.js';
import {
  BACKUP_FORMAT,
  BackupFormatError,
  type BackupHeader,
  type BackupTrailer,
  type SequenceState,
  type TableSection,
  TEXT_SETTINGS,
} from './format.js';
import {
  appliedMigrations,
  migrationFiles,
  quoteIdent,
  SEEDED,
  schemaVersion,
  sluiceTables,
  tableColumns,
} from './schema.js';

/** A restore that was not attempted because the target or the backup does not allow it. */
export class RestoreRefusedError extends Error {
  override name = 'RestoreRefusedError';
}

export interface RestoreOptions {
  /** Replace whatever the target holds. */
  force?: boolean;
  migrationsDir?: string;
}

export interface RestoreSummary {
  header: BackupHeader;
  rows: Record<string, number>;
  /** Migrations run after the load (the backup's schema was older than this Sluice's). */
  migrated: { version: number; name: string }[];
  version: number;
}

const BATCH_ROWS = 1000;
const BATCH_CHARS = 8 << 20;

export async function restoreStore(
  store: Store,
  input: string,
  opts: RestoreOptions = {},
): Promise<RestoreSummary> {
  const dir = opts.migrationsDir ?? MIGRATIONS_DIR;
  const source = input === '-' ? process.stdin : createReadStream(input);
  const gunzip = createGunzip();
  source.on('error', (e: Error) => gunzip.destroy(e));
  const lines = createInterface({ input: source.pipe(gunzip), crlfDelay: Number.POSITIVE_INFINITY })[
    Symbol.asyncIterator
  ]();
  const next = async (what: string): Promise<string> => {
    const r = await lines.next();
    if (r.done) throw new BackupFormatError(`backup: the file ends before ${what}: it was cut short`);
    return r.value;
  };
  try {
    const header = parseHeader(await next('its header'));
    const known = migrationFiles(dir);
    const newest = known.at(-1)?.version ?? 0;
    if (header.schemaVersion > newest)
      throw new RestoreRefusedError(
        `restore: the backup's schema is at version ${header.schemaVersion}, this Sluice knows up to ${newest}: restore with a Sluice at least as new as the one that made the backup`,
      );
    for (const m of header.migrations) {
      const mine = known.find((k) => k.version === m.version);
      if (mine?.name !== m.name)
        throw new RestoreRefusedError(
          `restore: the backup's migration ${m.version} (${m.name}) is not this Sluice's (${mine?.name ?? 'none'})`,
        );
    }

    const before = schemaVersion(await appliedMigrations(store));
    if (before > header.schemaVersion)
      throw new RestoreRefusedError(
        `restore: the target's schema is at version ${before}, newer than the backup's ${header.schemaVersion}: restore into a fresh store (an empty database or data directory)`,
      );
    if (!opts.force) await refuseData(store, sluiceTables(before, dir));
    if (before < header.schemaVersion) await migrate(store, dir, header.schemaVersion);
    const applied = await appliedMigrations(store);
    for (const m of header.migrations) {
      const mine = applied.find((a) => a.version === m.version);
      if (mine?.md5 !== m.md5)
        throw new RestoreRefusedError(
          `restore: migration ${m.version} (${m.name}) differs between the backup and the target (checksum ${m.md5} against ${mine?.md5 ?? 'none'})`,
        );
    }

    const rows = await store.transaction(async (tx) => {
      for (const s of TEXT_SETTINGS) await tx.query(s);
      if (!opts.force) await refuseData(tx, header.tables);
      const list = header.tables.map(quoteIdent).join(', ');
      for (const t of header.tables) await tx.query(`ALTER TABLE ${quoteIdent(t)} DISABLE TRIGGER USER`);
      await tx.query(`TRUNCATE ${list}`);
      const counts: Record<string, number> = {};
      for (const table of header.tables) counts[table] = await loadTable(tx, table, next);
      const seqLine = await next('its sequences');
      if (!seqLine.startsWith('@sequences '))
        throw new BackupFormatError(`backup: expected the sequences, found ${seqLine.slice(0, 40)}`);
      for (const s of JSON.parse(seqLine.slice('@sequences '.length)) as SequenceState[]) {
        await tx.query('SELECT setval(pg_get_serial_sequence($1, $2), $3::bigint, $4)', [
          quoteIdent(s.table),
          s.column,
          s.lastValue,
          s.isCalled,
        ]);
      }
      const endLine = await next('its end marker');
      if (!endLine.startsWith('@end '))
        throw new BackupFormatError('backup: no end marker: the file was cut short');
      const end = JSON.parse(endLine.slice('@end '.length)) as BackupTrailer;
      const total = Object.values(counts).reduce((a, b) => a + b, 0);
      if (end.rows !== total || end.tables !== header.tables.length)
        throw new BackupFormatError(`backup: the end marker counts ${end.rows} rows, the file held ${total}`);
      for (const t of header.tables) await tx.query(`ALTER TABLE ${quoteIdent(t)} ENABLE TRIGGER USER`);
      return counts;
    });

    const after = await migrate(store, dir);
    return { header, rows, migrated: after.applied, version: after.version };
  } finally {
    source.destroy();
  }
}

function parseHeader(line: string): BackupHeader {
  let h: Partial<BackupHeader>;
  try {
    h = JSON.parse(line) as Partial<BackupHeader>;
  } catch {
    throw new BackupFormatError('backup: not a Sluice backup (no header)');
  }
  if (h.format !== BACKUP_FORMAT)
    throw new BackupFormatError(`backup: format ${String(h.format)}, expected ${BACKUP_FORMAT}`);
  if (!Number.isInteger(h.schemaVersion) || !Array.isArray(h.tables) || !Array.isArray(h.migrations))
    throw new BackupFormatError('backup: its header is incomplete');
  return h as BackupHeader;
}

/** Refuses when any of the (existing) tables holds data beyond what migrations seed. */
async function refuseData(q: Queryable, tables: readonly string[]): Promise<void> {
  const full: string[] = [];
  for (const t of tables) {
    const [exists] = await q.query<{ t: string | null }>('SELECT to_regclass($1)::text AS t', [
      quoteIdent(t),
    ]);
    if (!exists?.t) continue;
    const where = SEEDED[t] ? ` WHERE ${SEEDED[t]}` : '';
    const [r] = await q.query<{ n: string }>(`SELECT count(*)::text AS n FROM ${quoteIdent(t)}${where}`);
    if (Number(r?.n ?? 0) > 0) full.push(`${t} (${r?.n} rows)`);
  }
  if (full.length > 0)
    throw new RestoreRefusedError(
      `restore: the target store is not empty: ${full.join(', ')}. Restore into a fresh store, or pass --force to replace its contents`,
    );
}

async function loadTable(
  tx: Queryable,
  table: string,
  next: (what: string) => Promise<string>,
): Promise<number> {
  const line = await next(`table ${table}`);
  const prefix = `@table ${table} `;
  if (!line.startsWith(prefix))
    throw new BackupFormatError(`backup: expected table ${table}, found ${line.slice(0, 40)}`);
  const section = JSON.parse(line.slice(prefix.length)) as TableSection;
  const target = await tableColumns(tx, table);
  const same =
    target.length === section.columns.length &&
    target.every((c, i) => c.name === section.columns[i]?.name && c.type === section.columns[i]?.type);
  if (!same)
    throw new RestoreRefusedError(
      `restore: table ${table} has columns (${target.map((c) => `${c.name} ${c.type}`).join(', ')}) in the target, (${section.columns.map((c) => `${c.name} ${c.type}`).join(', ')}) in the backup`,
    );
  // Each cell is the column's text form: the cast to its type is the type's own input function.
  const names = section.columns.map((c) => quoteIdent(c.name)).join(', ');
  const values = section.columns.map((c, i) => `(e->>${i})::${c.type}`).join(', ');
  const sql = `INSERT INTO ${quoteIdent(table)} (${names}) OVERRIDING SYSTEM VALUE SELECT ${values} FROM json_array_elements($1::json) AS e`;
  let batch: string[] = [];
  let chars = 0;
  const flush = async () => {
    if (batch.length === 0) return;
    await tx.query(sql, [`[${batch.join(',')}]`]);
    batch = [];
    chars = 0;
  };
  for (let i = 0; i < section.rows; i++) {
    const row = await next(`row ${i + 1} of ${section.rows} of ${table}`);
    if (!row.startsWith('[')) throw new BackupFormatError(`backup: ${table}: row ${i + 1} is not a row`);
    batch.push(row);
    chars += row.length;
    if (batch.length >= BATCH_ROWS || chars >= BATCH_CHARS) await flush();
  }
  await flush();
  return section.rows;
}

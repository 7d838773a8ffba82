/**
 * `sluice backup`: a logical export of Sluice's tables from one consistent snapshot.
 *
 * Everything is read in one REPEATABLE READ READ ONLY transaction (as pg_dump does), so the file is
 * the store at one instant: an audit entry and its checkpoint, a key and its tenant, never half of a
 * change. On PostgreSQL it runs beside live gateways without blocking them (no locks beyond
 * ACCESS SHARE); tables are read through a cursor, so memory stays flat however large the audit log.
 */
import { once } from 'node:events';
import { createWriteStream } from 'node:fs';
import { open, rename, rm } from 'node:fs/promises';
import type { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGzip } from 'node:zlib';
import type { Queryable, Store } from '../store.js';
import {
  BACKUP_FORMAT,
  type BackupHeader,
  type BackupTrailer,
  type SequenceState,
  type TableSection,
  TEXT_SETTINGS,
} from './format.js';
import {
  appliedMigrations,
  quoteIdent,
  schemaVersion,
  serialColumns,
  sluiceTables,
  tableColumns,
} from './schema.js';

const FETCH = 1000;

export interface BackupSummary {
  header: BackupHeader;
  rows: Record<string, number>;
  bytes: number;
}

/** Writes the backup to `out` (a file, written beside it and renamed into place, or `-`: stdout). */
export async function backupStore(store: Store, out: string): Promise<BackupSummary> {
  if (out === '-') return { ...(await writeBackup(store, process.stdout)), bytes: 0 };
  const tmp = `${out}.partial-${process.pid}`;
  try {
    const gz = createGzip();
    const file = createWriteStream(tmp, { mode: 0o600 }); // it holds key hashes and audit data
    const done = pipeline(gz, file);
    let bytes = 0;
    const summary = await writeBackup(store, gz).catch(async (err: unknown) => {
      gz.destroy();
      await done.catch(() => {});
      throw err;
    });
    await done;
    const fh = await open(tmp, 'r+');
    try {
      await fh.sync();
      bytes = (await fh.stat()).size;
    } finally {
      await fh.close();
    }
    await rename(tmp, out);
    return { ...summary, bytes };
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
}

async function writeBackup(store: Store, sink: Writable): Promise<Omit<BackupSummary, 'bytes'>> {
  const write = async (line: string) => {
    if (!sink.write(`${line}\n`)) await once(sink, 'drain');
  };
  const result = await store.transaction(async (tx) => {
    await tx.query('SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY');
    for (const s of TEXT_SETTINGS) await tx.query(s);
    const migrations = await appliedMigrations(tx);
    const version = schemaVersion(migrations);
    if (version === 0)
      throw new Error('backup: the store has no schema (never migrated): nothing to back up');
    const tables = sluiceTables(version);
    const [pgv] = await tx.query<{ v: string }>('SHOW server_version');
    const header: BackupHeader = {
      format: BACKUP_FORMAT,
      createdAt: new Date().toISOString(),
      source: store.kind,
      postgres: String(Object.values(pgv ?? {})[0] ?? ''),
      schemaVersion: version,
      migrations,
      tables,
    };
    await write(JSON.stringify(header));
    const rows: Record<string, number> = {};
    let total = 0;
    for (const table of tables) {
      rows[table] = await writeTable(tx, table, write);
      total += rows[table];
    }
    const sequences: SequenceState[] = [];
    for (const s of await serialColumns(tx, tables)) {
      const [st] = await tx.query<{ last_value: string; is_called: boolean }>(
        `SELECT last_value::text AS last_value, is_called FROM ${quoteIdent(s.sequence)}`,
      );
      if (st)
        sequences.push({
          table: s.table,
          column: s.column,
          lastValue: st.last_value,
          isCalled: st.is_called,
        });
    }
    await write(`@sequences ${JSON.stringify(sequences)}`);
    const trailer: BackupTrailer = { tables: tables.length, rows: total };
    await write(`@end ${JSON.stringify(trailer)}`);
    return { header, rows };
  });
  if (sink !== process.stdout) sink.end();
  return result;
}

async function writeTable(
  tx: Queryable,
  table: string,
  write: (line: string) => Promise<void>,
): Promise<number> {
  const columns = await tableColumns(tx, table);
  if (columns.length === 0) throw new Error(`backup: table ${table} is missing from the store`);
  const [count] = await tx.query<{ n: string }>(`SELECT count(*)::text AS n FROM ${quoteIdent(table)}`);
  const section: TableSection = { columns, rows: Number(count?.n ?? 0) };
  await write(`@table ${table} ${JSON.stringify(section)}`);
  // Each column in its text output form: what reads back exactly through the type's input function.
  const cells = columns.map((c) => `${quoteIdent(c.name)}::text`).join(', ');
  const cursor = `sluice_backup_${table}`;
  await tx.query(
    `DECLARE ${quoteIdent(cursor)} NO SCROLL CURSOR FOR SELECT to_json(ARRAY[${cells}]::text[])::text AS r FROM ${quoteIdent(table)}`,
  );
  let n = 0;
  for (;;) {
    const batch = await tx.query<{ r: string }>(`FETCH ${FETCH} FROM ${quoteIdent(cursor)}`);
    for (const { r } of batch) await write(r);
    n += batch.length;
    if (batch.length < FETCH) break;
  }
  await tx.query(`CLOSE ${quoteIdent(cursor)}`);
  // The count and the rows come from the same snapshot: a difference is a bug, not a race.
  if (n !== section.rows) throw new Error(`backup: ${table}: counted ${section.rows} rows, read ${n}`);
  return n;
}

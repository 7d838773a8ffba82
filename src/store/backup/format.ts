/**
 * The backup file (`sluice-backup/v1`): gzip of UTF-8 lines.
 *
 *   {"format":"sluice-backup/v1", ...header}         the first line: what, when, from where, schema
 *   @table NAME {"columns":[...],"rows":N}            then per table: its columns, and N row lines
 *   ["value as text", null, ...]                       one row: each column in PostgreSQL's text form
 *   @sequences [{"table","column","lastValue","isCalled"}]
 *   @end {"tables":T,"rows":R}                         a file without it was cut short
 *
 * A row is its columns' text output (what COPY writes), so every type reads back exactly with its
 * own input function: bigints beyond 2^53, bytea, timestamps to the microsecond, jsonb `null`
 * distinct from SQL NULL. Row lines are never parsed in JavaScript, only passed to PostgreSQL.
 */
import type { AppliedMigration, Column } from './schema.js';

export const BACKUP_FORMAT = 'sluice-backup/v1';

export interface BackupHeader {
  format: typeof BACKUP_FORMAT;
  createdAt: string;
  /** The kind of store it was taken from (a backup restores into either kind). */
  source: 'pglite' | 'postgres';
  /** `server_version` of the source. */
  postgres: string;
  schemaVersion: number;
  /** The source's migrations with their checksums: a restore refuses a history it does not share. */
  migrations: AppliedMigration[];
  tables: string[];
}

export interface TableSection {
  columns: Column[];
  rows: number;
}

export interface SequenceState {
  table: string;
  column: string;
  /** Text: a bigint. */
  lastValue: string;
  isCalled: boolean;
}

export interface BackupTrailer {
  tables: number;
  rows: number;
}

/**
 * Session settings under which text output reads back unchanged: ISO dates (with the UTC offset for
 * timestamptz), hex bytea, shortest exact floats. Set in both the backup and the restore.
 */
export const TEXT_SETTINGS = [
  "SET LOCAL DateStyle = 'ISO, YMD'",
  "SET LOCAL IntervalStyle = 'postgres'",
  "SET LOCAL bytea_output = 'hex'",
  'SET LOCAL extra_float_digits = 1',
];

export class BackupFormatError extends Error {
  override name = 'BackupFormatError';
}

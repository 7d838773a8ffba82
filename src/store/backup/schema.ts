/**
 * What a backup covers, read from the migrations and the catalog: Sluice's own tables (those its
 * migrations create, in creation order, so a table comes after any table it references), their
 * columns with types, the sequences behind their serial columns, and the schema version.
 *
 * Only Sluice's tables, never "everything in the schema": a PostgreSQL database may be shared with
 * other applications, and a restore must not write tables the target's migrations did not make.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { MIGRATIONS_DIR } from '../migrate.js';
import type { Queryable } from '../store.js';

export interface MigrationFile {
  version: number;
  name: string;
  file: string;
}

/** The `NNN.do.name.sql` files this Sluice ships, oldest first. */
export function migrationFiles(dir: string = MIGRATIONS_DIR): MigrationFile[] {
  return readdirSync(dir)
    .map((file) => /^(\d+)\.do\.(.+)\.sql$/.exec(file))
    .filter((m): m is RegExpExecArray => m !== null)
    .map((m) => ({ version: Number(m[1]), name: m[2] as string, file: join(dir, m[0]) }))
    .sort((a, b) => a.version - b.version);
}

/** The tables the migrations up to `version` create (and did not drop), in creation order. */
export function sluiceTables(version: number, dir: string = MIGRATIONS_DIR): string[] {
  const tables: string[] = [];
  for (const m of migrationFiles(dir)) {
    if (m.version > version) break;
    const sql = readFileSync(m.file, 'utf8').replace(/--[^\n]*/g, '');
    const re =
      /\b(CREATE|DROP)\s+TABLE\s+(?:IF\s+(?:NOT\s+)?EXISTS\s+)?(?:public\.)?"?([A-Za-z_][A-Za-z0-9_]*)"?/gi;
    for (const [, verb, raw] of sql.matchAll(re)) {
      const name = (raw as string).toLowerCase();
      const at = tables.indexOf(name);
      if (verb?.toUpperCase() === 'CREATE' && at < 0) tables.push(name);
      if (verb?.toUpperCase() === 'DROP' && at >= 0) tables.splice(at, 1);
    }
  }
  return tables;
}

export interface AppliedMigration {
  version: number;
  name: string;
  md5: string;
}

/** The migrations recorded in the store, oldest first; empty when it was never migrated. */
export async function appliedMigrations(q: Queryable): Promise<AppliedMigration[]> {
  const [exists] = await q.query<{ t: string | null }>("SELECT to_regclass('sluice_migrations')::text AS t");
  if (!exists?.t) return [];
  // Ordered by the column, not the text alias: as text, '10' sorts before '9'.
  const rows = await q.query<{ version: string; name: string; md5: string }>(
    'SELECT version::text AS version, name, md5 FROM sluice_migrations WHERE version > 0 ORDER BY sluice_migrations.version',
  );
  return rows.map((r) => ({ version: Number(r.version), name: r.name, md5: r.md5 }));
}

export function schemaVersion(applied: readonly AppliedMigration[]): number {
  return applied.at(-1)?.version ?? 0;
}

export interface Column {
  name: string;
  /** As format_type writes it (`timestamp with time zone`, `text[]`): the cast that reads it back. */
  type: string;
}

/** The table's stored columns in order (generated columns are left out: they are computed again). */
export async function tableColumns(q: Queryable, table: string): Promise<Column[]> {
  return q.query<Column>(
    `SELECT a.attname AS name, format_type(a.atttypid, a.atttypmod) AS type
       FROM pg_attribute a
      WHERE a.attrelid = to_regclass($1) AND a.attnum > 0 AND NOT a.attisdropped AND a.attgenerated = ''
      ORDER BY a.attnum`,
    [quoteIdent(table)],
  );
}

/** The serial (or identity) columns of these tables, with the sequence each draws from. */
export async function serialColumns(
  q: Queryable,
  tables: readonly string[],
): Promise<{ table: string; column: string; sequence: string }[]> {
  return q.query(
    `SELECT t.relname AS table, a.attname AS column, s.relname AS sequence
       FROM pg_depend d
       JOIN pg_class s ON s.oid = d.objid AND s.relkind = 'S'
       JOIN pg_class t ON t.oid = d.refobjid
       JOIN pg_namespace n ON n.oid = t.relnamespace AND n.nspname = current_schema()
       JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = d.refobjsubid
      WHERE d.classid = 'pg_class'::regclass AND d.refclassid = 'pg_class'::regclass
        AND d.deptype IN ('a', 'i') AND t.relname = ANY($1::text[])
      ORDER BY t.relname, a.attnum`,
    [tables],
  );
}

export function quoteIdent(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}

/**
 * Rows a freshly migrated store already holds, which do not make it "not empty": audit_tree's one
 * row (size 0) is inserted by its migration. Per table, the condition for a row that is data.
 */
export const SEEDED: Readonly<Record<string, string>> = { audit_tree: 'size > 0' };

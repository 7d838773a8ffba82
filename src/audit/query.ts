/**
 * Querying the audit log: entries by the entry's own time (`at`), tenant, actor and type, in log order,
 * paged by seq (a cursor that stays valid however much the log grows, since entries are only appended).
 *
 * `auditFilter` is the one place a query becomes SQL; the API, the CLI and the tenant export all go
 * through it, and migration 009 indexes exactly the expressions it uses.
 *
 * Subjects: personal fields (actor, principal, client) are sealed per data subject at integration
 * (src/audit/subjects), so a filter value that names a person (an actor, a principal, a tenant's key
 * ids) cannot be matched in clear. `PseudonymsOf` maps the subjects it may be (`admin:<v>`,
 * `principal:<v>`) to their pseudonyms, and an entry matches when its `subjects` list holds one
 * (migration 007's GIN index). An erased subject has no pseudonym left: nothing matches. Values left
 * in clear (the system actors `config`, `driver:…`; entries integrated before sealing) match as such.
 */
import type { Queryable } from '../store/store.js';
import type { JsonValue } from './canonical.js';

export const QUERY_DEFAULT_LIMIT = 100;
export const QUERY_MAX_LIMIT = 1000;

export interface AuditQuery {
  /** Entries whose `at` is at or after this instant (ISO 8601). */
  since?: string;
  /** Entries whose `at` is before this instant (exclusive). */
  until?: string;
  /** Entries naming the tenant: its data-plane events, admin changes to it or its keys, events of its keys. */
  tenant?: string;
  /** The `actor` of admin changes and release decisions, or the `principal` of data-plane events. */
  actor?: string;
  type?: string;
  /** The cursor: only entries with seq greater than this (the `next` of the previous page). */
  after?: number;
  limit?: number;
}

/** The conditions of a query, without its page. */
export type AuditFilter = Omit<AuditQuery, 'after' | 'limit'>;

export interface QueriedEntry {
  seq: number;
  entry: JsonValue;
  /** When the sequencer integrated it (the entry's own `at` is in `entry`). */
  integratedAt: string;
}

export interface QueryPage {
  entries: QueriedEntry[];
  /** The seq to pass as `after` for the next page; null on the last page. */
  next: string | null;
}

/** The pseudonyms of those subject identifiers that still have a key (AuditSubjects.pseudonymsOf). */
export type PseudonymsOf = (db: Queryable, subjects: readonly string[]) => Promise<string[]>;

/** An entry naming one of the pseudonyms: one `@>` per pseudonym, each served by the GIN index. */
function namesOneOf(pseudonyms: readonly string[], p: (v: unknown) => string): string[] {
  return pseudonyms.map((ps) => `entry->'subjects' @> ${p(JSON.stringify([ps]))}::jsonb`);
}

/** The instant as the entries write it (toISOString), so text comparison is time comparison. */
function instant(v: string, name: string): string {
  const t = new Date(v);
  if (!Number.isFinite(t.getTime())) throw new RangeError(`${name}: not a date-time: ${v}`);
  return t.toISOString();
}

/**
 * The WHERE clause (without the cursor) for a query, its parameters numbered from `first`. Each
 * condition uses an expression of migration 009's indexes, written the same way.
 */
export async function auditFilter(
  db: Queryable,
  q: AuditFilter,
  first = 1,
  pseudonymsOf?: PseudonymsOf,
): Promise<{ where: string; params: unknown[] }> {
  const conds: string[] = [];
  const params: unknown[] = [];
  const p = (v: unknown) => {
    params.push(v);
    return `$${first + params.length - 1}`;
  };
  if (q.since !== undefined) conds.push(`entry->>'at' >= ${p(instant(q.since, 'since'))}`);
  if (q.until !== undefined) conds.push(`entry->>'at' < ${p(instant(q.until, 'until'))}`);
  if (q.type !== undefined) conds.push(`entry->>'type' = ${p(q.type)}`);
  if (q.actor !== undefined) {
    const a = p([q.actor]);
    const sealed = pseudonymsOf ? await pseudonymsOf(db, [`admin:${q.actor}`, `principal:${q.actor}`]) : [];
    conds.push(
      `(${[`entry->>'actor' = ANY(${a}::text[])`, `entry->>'principal' = ANY(${a}::text[])`, ...namesOneOf(sealed, p)].join(' OR ')})`,
    );
  }
  if (q.tenant !== undefined) {
    // Auth failures of a tenant's keys carry the key id as principal and no tenant (the key, not the
    // tenant, was refused), so the tenant's key ids, revoked ones included, name it too.
    const keys = await db.query<{ id: string }>('SELECT id FROM api_keys WHERE tenant_id = $1', [q.tenant]);
    const ids = keys.map((r) => r.id);
    const t = p(q.tenant);
    const k = p(ids);
    const sealed = pseudonymsOf
      ? await pseudonymsOf(
          db,
          ids.map((id) => `principal:${id}`),
        )
      : [];
    conds.push(
      `(${[`sluice_audit_tenant(entry) = ${t}`, `entry->>'principal' = ANY(${k}::text[])`, ...namesOneOf(sealed, p)].join(' OR ')})`,
    );
  }
  return { where: conds.length === 0 ? 'TRUE' : conds.join(' AND '), params };
}

/** The statement of one page (limit + 1 rows: the extra one says whether there is a next page). */
export async function pageStatement(
  db: Queryable,
  q: AuditQuery,
  pseudonymsOf?: PseudonymsOf,
): Promise<{ sql: string; params: unknown[]; limit: number }> {
  const limit = Math.min(Math.max(1, q.limit ?? QUERY_DEFAULT_LIMIT), QUERY_MAX_LIMIT);
  const f = await auditFilter(db, q, 3, pseudonymsOf);
  return {
    sql: `SELECT seq, entry, at FROM audit_entries WHERE seq > $1::bigint AND ${f.where} ORDER BY seq LIMIT $2`,
    params: [String(q.after ?? -1), limit + 1, ...f.params],
    limit,
  };
}

/** One page of entries matching the query, in log order. */
export async function queryAuditEntries(
  db: Queryable,
  q: AuditQuery,
  pseudonymsOf?: PseudonymsOf,
): Promise<QueryPage> {
  const { sql, params, limit } = await pageStatement(db, q, pseudonymsOf);
  const rows = await db.query<{ seq: string | number; entry: JsonValue; at: unknown }>(sql, params);
  const page = rows.slice(0, limit).map((r) => ({
    seq: Number(r.seq),
    entry: r.entry,
    integratedAt: new Date(r.at as string).toISOString(),
  }));
  return { entries: page, next: rows.length > limit ? String(page.at(-1)!.seq) : null };
}

/** Every entry matching the filter with seq below `below` (a checkpoint's size), in log order. */
export async function allMatching(
  db: Queryable,
  q: AuditFilter,
  below: number,
  pseudonymsOf?: PseudonymsOf,
): Promise<{ index: number; entry: JsonValue }[]> {
  const f = await auditFilter(db, q, 2, pseudonymsOf);
  const rows = await db.query<{ seq: string | number; entry: JsonValue }>(
    `SELECT seq, entry FROM audit_entries WHERE seq < $1::bigint AND ${f.where} ORDER BY seq`,
    [String(below), ...f.params],
  );
  return rows.map((r) => ({ index: Number(r.seq), entry: r.entry }));
}

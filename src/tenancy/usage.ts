/**
 * Usage rows in the store (table usage_counters, migration 002): what quotas and cost budgets have
 * counted per tenant, metric and UTC period. Written only by the periodic flush of each replica's
 * increments (never on the request path), read at start and after each flush to seed counters, and
 * by the admin API. Amounts are integers (requests, units, or cost in millionths).
 */
import type { Queryable } from '../store/store.js';
import type { UsageLedger, UsageRow } from '../usage/ledger.js';
import type { PeriodKind } from '../usage/periods.js';

export type { UsageRow } from '../usage/ledger.js';

interface RawRow {
  tenant_id: string;
  metric: string;
  period: PeriodKind;
  starts: string;
  used: number;
}

// `used::float8`: pg returns bigint as text and PGlite as a number; a double is exact to 2^53.
const COLUMNS = 'tenant_id, metric, period, starts::text AS starts, used::float8 AS used';

const toRow = (r: RawRow): UsageRow => ({
  tenantId: r.tenant_id,
  metric: r.metric,
  period: r.period,
  starts: r.starts,
  used: Number(r.used),
});

/** The usage engine's ledger over the store (src/usage/ledger.ts), and the admin API's reads. */
export class UsageRepository implements UsageLedger {
  constructor(private readonly db: Queryable) {}

  /**
   * Adds each delta to its row (creating it), in one statement: either every delta is added or none.
   * Returns the rows' totals after the addition.
   */
  async add(deltas: readonly UsageRow[]): Promise<UsageRow[]> {
    if (deltas.length === 0) return [];
    const rows = await this.db.query<RawRow>(
      `INSERT INTO usage_counters AS u (tenant_id, metric, period, starts, used)
       SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::date[], $5::bigint[])
       ON CONFLICT (tenant_id, metric, period, starts)
       DO UPDATE SET used = u.used + EXCLUDED.used, updated_at = now()
       RETURNING ${COLUMNS}`,
      [
        deltas.map((d) => d.tenantId),
        deltas.map((d) => d.metric),
        deltas.map((d) => d.period),
        deltas.map((d) => d.starts),
        deltas.map((d) => String(d.used)),
      ],
    );
    return rows.map(toRow);
  }

  /**
   * Rows of the given day and month, all of them, or only those changed after `since` (the store's
   * clock, as returned by an earlier call). Returns the rows and the store's time of this read.
   */
  async current(day: string, month: string, since?: string): Promise<{ rows: UsageRow[]; readAt: string }> {
    const [t] = await this.db.query<{ t: string }>('SELECT now()::text AS t');
    const params: unknown[] = [day, month];
    let changed = '';
    if (since !== undefined) {
      // A transaction's now() is its start: a flush that began before `since` may commit after it.
      // Reading 30 s back covers any flush (each is one short statement).
      params.push(since);
      changed = ` AND updated_at > $3::timestamptz - interval '30 seconds'`;
    }
    const rows = await this.db.query<RawRow>(
      `SELECT ${COLUMNS} FROM usage_counters
       WHERE ((period = 'day' AND starts = $1::date) OR (period = 'month' AND starts = $2::date))${changed}`,
      params,
    );
    return { rows: rows.map(toRow), readAt: t!.t };
  }

  /** One tenant's rows of the given day and month. */
  async forTenant(tenantId: string, day: string, month: string): Promise<UsageRow[]> {
    const rows = await this.db.query<RawRow>(
      `SELECT ${COLUMNS} FROM usage_counters
       WHERE tenant_id = $1 AND ((period = 'day' AND starts = $2::date) OR (period = 'month' AND starts = $3::date))
       ORDER BY metric, period`,
      [tenantId, day, month],
    );
    return rows.map(toRow);
  }
}

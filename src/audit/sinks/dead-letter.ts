/**
 * The store side of shipping: each sink's cursor (`audit_cursors`, the next seq to ship) and its
 * dead letters (`audit_dead_letters`: batches every retry failed for, kept with the exact body sent
 * until a replay delivers them). Migration 006.
 *
 * Cursor moves and new dead letters are fenced by the lease `audit-shipper`: a replica that lost
 * the lease (paused past its expiry) changes nothing, and a cursor never moves back.
 */
import type { Queryable, Store } from '../../store/store.js';
import type { SinkBatch } from './types.js';

export const AUDIT_SHIPPER_LEASE = 'audit-shipper';

const FENCE = `EXISTS (SELECT 1 FROM leases WHERE name = '${AUDIT_SHIPPER_LEASE}' AND holder = $3 AND expires_at > now())`;

export const sinkCursor = (sink: string) => `sink:${sink}`;

export interface DeadLetter {
  id: number;
  sink: string;
  firstSeq: number;
  lastSeq: number;
  entries: number;
  attempts: number;
  error: string;
  failedAt: string;
  replayedAt: string | null;
}

export interface ClaimedDeadLetter extends DeadLetter {
  body: string;
}

interface Row {
  id: string | number;
  sink: string;
  first_seq: string | number;
  last_seq: string | number;
  entries: number;
  attempts: number;
  error: string;
  failed_at: unknown;
  replayed_at: unknown;
  body?: string;
}

const iso = (t: unknown) => (t === null || t === undefined ? null : new Date(t as string).toISOString());

function view(r: Row): DeadLetter {
  return {
    id: Number(r.id),
    sink: r.sink,
    firstSeq: Number(r.first_seq),
    lastSeq: Number(r.last_seq),
    entries: r.entries,
    attempts: r.attempts,
    error: r.error,
    failedAt: iso(r.failed_at)!,
    replayedAt: iso(r.replayed_at),
  };
}

const COLUMNS = 'id, sink, first_seq, last_seq, entries, attempts, error, failed_at, replayed_at';

export class ShippingStore {
  constructor(private readonly store: Store) {}

  /** The cursor of `name`, created at `initial` when it has none (a sink seen for the first time). */
  async cursor(name: string, initial: () => Promise<number>): Promise<number> {
    const rows = await this.store.query<{ position: string | number }>(
      'SELECT position FROM audit_cursors WHERE name = $1',
      [name],
    );
    if (rows[0]) return Number(rows[0].position);
    const start = await initial();
    const made = await this.store.query<{ position: string | number }>(
      `INSERT INTO audit_cursors (name, position) VALUES ($1, $2::bigint)
       ON CONFLICT (name) DO UPDATE SET name = EXCLUDED.name RETURNING position`,
      [name, String(start)],
    );
    return Number(made[0]!.position);
  }

  /** Moves the cursor forward to `to`, if `holder` still holds the lease; false when it does not. */
  async advance(name: string, to: number, holder: string, q: Queryable = this.store): Promise<boolean> {
    const rows = await q.query(
      `UPDATE audit_cursors SET position = GREATEST(position, $2::bigint), updated_at = now()
       WHERE name = $1 AND ${FENCE} RETURNING name`,
      [name, String(to), holder],
    );
    return rows.length > 0;
  }

  /** Keeps a batch every try failed for and moves the cursor past it, in one transaction; false when the lease was lost. */
  deadLetter(
    sink: string,
    batch: SinkBatch,
    attempts: number,
    error: string,
    holder: string,
  ): Promise<boolean> {
    return this.store.transaction(async (tx) => {
      if (!(await this.advance(sinkCursor(sink), batch.lastSeq + 1, holder, tx))) return false;
      await tx.query(
        `INSERT INTO audit_dead_letters (sink, first_seq, last_seq, entries, body, attempts, error)
         VALUES ($1, $2::bigint, $3::bigint, $4, $5, $6, $7)`,
        [sink, String(batch.firstSeq), String(batch.lastSeq), batch.entries, batch.body, attempts, error],
      );
      return true;
    });
  }

  async list(opts: { sink?: string; limit?: number; after?: number } = {}): Promise<DeadLetter[]> {
    const rows = await this.store.query<Row>(
      `SELECT ${COLUMNS} FROM audit_dead_letters
       WHERE ($1::text IS NULL OR sink = $1) AND id > $2::bigint ORDER BY id LIMIT $3`,
      [opts.sink ?? null, String(opts.after ?? 0), opts.limit ?? 100],
    );
    return rows.map(view);
  }

  /** Dead letters (and entries in them) per sink. */
  async counts(): Promise<Map<string, { batches: number; entries: number }>> {
    const rows = await this.store.query<{ sink: string; batches: string | number; entries: string | number }>(
      'SELECT sink, count(*) AS batches, coalesce(sum(entries), 0) AS entries FROM audit_dead_letters GROUP BY sink',
    );
    return new Map(rows.map((r) => [r.sink, { batches: Number(r.batches), entries: Number(r.entries) }]));
  }

  /**
   * Claims dead letters for a replay for `ttlMs` (none another replay holds), oldest first: the
   * ones named by `ids`, else all (of `sink`, when given), at most `limit`.
   */
  async claim(opts: {
    ids?: readonly number[];
    sink?: string;
    limit: number;
    ttlMs: number;
  }): Promise<ClaimedDeadLetter[]> {
    const rows = await this.store.query<Row>(
      `UPDATE audit_dead_letters SET claimed_until = now() + ($4 || ' milliseconds')::interval
       WHERE id IN (
         SELECT id FROM audit_dead_letters
         WHERE ($1::bigint[] IS NULL OR id = ANY($1::bigint[])) AND ($2::text IS NULL OR sink = $2)
           AND (claimed_until IS NULL OR claimed_until < now())
         ORDER BY id LIMIT $3)
       RETURNING ${COLUMNS}, body`,
      [
        opts.ids === undefined ? null : opts.ids.map(String),
        opts.sink ?? null,
        opts.limit,
        String(opts.ttlMs),
      ],
    );
    return rows.map((r) => ({ ...view(r), body: r.body! })).sort((a, b) => a.id - b.id);
  }

  /** A replay delivered it: gone. */
  async delivered(id: number): Promise<void> {
    await this.store.query('DELETE FROM audit_dead_letters WHERE id = $1::bigint', [String(id)]);
  }

  /** A replay failed: kept, with the new error and one more attempt, and free for the next replay. */
  async failedAgain(id: number, error: string): Promise<void> {
    await this.store.query(
      `UPDATE audit_dead_letters SET attempts = attempts + 1, error = $2, replayed_at = now(), claimed_until = NULL
       WHERE id = $1::bigint`,
      [String(id), error],
    );
  }

  /** Gives claimed dead letters back (a replay that stopped before trying them). */
  async release(ids: readonly number[]): Promise<void> {
    if (ids.length === 0) return;
    await this.store.query(
      'UPDATE audit_dead_letters SET claimed_until = NULL WHERE id = ANY($1::bigint[])',
      [ids.map(String)],
    );
  }

  async remaining(): Promise<number> {
    const rows = await this.store.query<{ n: string | number }>(
      'SELECT count(*) AS n FROM audit_dead_letters',
    );
    return Number(rows[0]!.n);
  }
}

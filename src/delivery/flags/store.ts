/**
 * Flags in the store: the admin side. Every change takes the acting principal and records an
 * admin_changes row (who, what, before, after) in the same transaction as the change, as the
 * tenancy repository does; the table's trigger announces it on 'sluice_flags' and every replica's
 * flag snapshot (snapshot.ts) reloads. Nothing here is on the request path.
 */
import type { Store } from '../../store/store.js';
import { type Actor, type AdminChange, recordAdminChange } from '../../tenancy/repository.js';
import { BUCKETING_VERSIONS } from '../bucketing.js';
import { FLAG_KEY, type FlagSpecT, flagProblems } from './spec.js';

export interface StoredFlag {
  key: string;
  /** The definition, with the bucketing version it keeps. */
  spec: FlagSpecT & { bucketing: (typeof BUCKETING_VERSIONS)[number] };
  revision: number;
  createdAt: Date;
  updatedAt: Date;
  updatedBy: string;
}

export type FlagErrorCode = 'not-found' | 'invalid' | 'conflict';

export class FlagError extends Error {
  constructor(
    readonly code: FlagErrorCode,
    message: string,
    readonly problems: { path: string; message: string }[] = [],
  ) {
    super(message);
    this.name = 'FlagError';
  }
}

interface FlagRow {
  key: string;
  spec: FlagSpecT;
  bucketing: string;
  revision: string | number;
  created_at: Date;
  updated_at: Date;
  updated_by: string;
}

const COLUMNS = 'key, spec, bucketing, revision, created_at, updated_at, updated_by';

export function toStoredFlag(r: FlagRow): StoredFlag {
  return {
    key: r.key,
    spec: { ...r.spec, bucketing: r.bucketing as StoredFlag['spec']['bucketing'] },
    revision: Number(r.revision),
    createdAt: r.created_at,
    updatedAt: r.updated_at,
    updatedBy: r.updated_by,
  };
}

/** What the change log records of a flag: its definition and revision. */
const recorded = (f: StoredFlag, reason?: string) => ({
  key: f.key,
  revision: f.revision,
  spec: f.spec,
  ...(reason ? { reason } : {}),
});

export class FlagRepository {
  constructor(private readonly store: Store) {}

  async list(): Promise<StoredFlag[]> {
    const rows = await this.store.query<FlagRow>(`SELECT ${COLUMNS} FROM flags ORDER BY key`);
    return rows.map(toStoredFlag);
  }

  /**
   * One page of flags in key order, those whose key or description contains `q` (any case), and how
   * many match in all: the console pages on the server however many flags there are.
   */
  async page(q: string, limit: number, offset: number): Promise<{ flags: StoredFlag[]; total: number }> {
    const like = `%${q.replace(/[\\%_]/g, (c) => `\\${c}`)}%`;
    const where = `WHERE key ILIKE $1 OR coalesce(spec->>'description', '') ILIKE $1`;
    const rows = await this.store.query<FlagRow>(
      `SELECT ${COLUMNS} FROM flags ${where} ORDER BY key LIMIT $2 OFFSET $3`,
      [like, limit, offset],
    );
    const [count] = await this.store.query<{ n: string | number }>(
      `SELECT count(*) AS n FROM flags ${where}`,
      [like],
    );
    return { flags: rows.map(toStoredFlag), total: Number(count?.n ?? 0) };
  }

  async get(key: string): Promise<StoredFlag | undefined> {
    const rows = await this.store.query<FlagRow>(`SELECT ${COLUMNS} FROM flags WHERE key = $1`, [key]);
    return rows[0] && toStoredFlag(rows[0]);
  }

  /**
   * Creates the flag or replaces its definition. `ifRevision`: change only that revision (else
   * 'conflict'); 0 means "only if it does not exist". A definition without `bucketing` keeps the
   * flag's (a new flag gets the newest): an upgrade of Sluice never reassigns anyone by itself.
   */
  async set(
    who: Actor,
    key: string,
    spec: FlagSpecT,
    ifRevision?: number,
    /** Why, as the person changing it said: kept with the change in the log. */
    reason?: string,
  ): Promise<{ flag: StoredFlag; created: boolean }> {
    if (!FLAG_KEY.test(key))
      throw new FlagError(
        'invalid',
        'flag key: 1-128 lowercase letters, digits, _ . -, starting with a letter or digit',
      );
    const problems = flagProblems(spec);
    if (problems.length > 0)
      throw new FlagError('invalid', problems.map((p) => `${p.path}: ${p.message}`).join('; '), problems);
    return this.store.transaction(async (tx) => {
      const [row] = await tx.query<FlagRow>(`SELECT ${COLUMNS} FROM flags WHERE key = $1 FOR UPDATE`, [key]);
      const before = row && toStoredFlag(row);
      const current = before?.revision ?? 0;
      if (ifRevision !== undefined && ifRevision !== current)
        throw new FlagError(
          'conflict',
          before
            ? `flag ${key} is at revision ${current}, not ${ifRevision}`
            : `flag ${key} does not exist (revision 0), not ${ifRevision}`,
        );
      const bucketing =
        spec.bucketing ?? before?.spec.bucketing ?? BUCKETING_VERSIONS[BUCKETING_VERSIONS.length - 1]!;
      const stored = { ...spec, bucketing };
      const [next] = before
        ? await tx.query<FlagRow>(
            `UPDATE flags SET spec = $2::jsonb, bucketing = $3, revision = revision + 1, updated_at = now(), updated_by = $4
             WHERE key = $1 RETURNING ${COLUMNS}`,
            [key, JSON.stringify(stored), bucketing, who.actor],
          )
        : await tx.query<FlagRow>(
            `INSERT INTO flags (key, spec, bucketing, updated_by) VALUES ($1, $2::jsonb, $3, $4) RETURNING ${COLUMNS}`,
            [key, JSON.stringify(stored), bucketing, who.actor],
          );
      const flag = toStoredFlag(next as FlagRow);
      await recordAdminChange(
        tx,
        who,
        before ? 'flag.update' : 'flag.create',
        `flag:${key}`,
        before && recorded(before),
        recorded(flag, reason),
      );
      return { flag, created: before === undefined };
    });
  }

  async delete(who: Actor, key: string, ifRevision?: number): Promise<StoredFlag> {
    return this.store.transaction(async (tx) => {
      const [row] = await tx.query<FlagRow>(`SELECT ${COLUMNS} FROM flags WHERE key = $1 FOR UPDATE`, [key]);
      if (!row) throw new FlagError('not-found', `no flag ${key}`);
      const before = toStoredFlag(row);
      if (ifRevision !== undefined && ifRevision !== before.revision)
        throw new FlagError('conflict', `flag ${key} is at revision ${before.revision}, not ${ifRevision}`);
      await tx.query('DELETE FROM flags WHERE key = $1', [key]);
      await recordAdminChange(tx, who, 'flag.delete', `flag:${key}`, recorded(before), undefined);
      return before;
    });
  }

  /** The flag's changes, newest first (also after it was deleted). */
  async history(key: string, limit = 50): Promise<AdminChange[]> {
    return this.store.query<AdminChange>(
      `SELECT id::text AS id, at, actor, role, action, target, before, after FROM admin_changes
       WHERE target = $1 ORDER BY admin_changes.id DESC LIMIT $2`,
      [`flag:${key}`, limit],
    );
  }
}

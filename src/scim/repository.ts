/**
 * SCIM users, groups and memberships in the store (migration 010). Every change runs in one
 * transaction with its admin_changes row (actor `scim`, role `scim`), so the change log and the
 * audit log (its trigger) record exactly what happened. Read-modify-write (PUT, PATCH) locks the
 * row, so two provisioning calls on one resource never lose each other's change.
 */
import { randomUUID } from 'node:crypto';
import type { Queryable, Store } from '../store/store.js';
import { type Actor, recordAdminChange } from '../tenancy/repository.js';
import { badRequest, notFound, ScimError } from './errors.js';
import type { GroupFields, GroupRecord, UserFields, UserRecord } from './resources.js';

export const SCIM_ACTOR: Actor = { actor: 'scim', role: 'scim' };

interface UserRow {
  id: string;
  user_name: string;
  external_id: string | null;
  display_name: string | null;
  active: boolean;
  resource: Record<string, unknown>;
  version: string;
  created_at: Date;
  updated_at: Date;
}

interface GroupRow {
  id: string;
  display_name: string;
  external_id: string | null;
  resource: Record<string, unknown>;
  version: string;
  created_at: Date;
  updated_at: Date;
}

const USER_COLUMNS =
  'id, user_name, external_id, display_name, active, resource, version::text AS version, created_at, updated_at';
const GROUP_COLUMNS =
  'id, display_name, external_id, resource, version::text AS version, created_at, updated_at';

/** What the change log keeps of a user or group: who it is, not every attribute. */
const userChange = (u: UserRecord) => ({
  id: u.id,
  userName: u.fields.userName,
  externalId: u.fields.externalId,
  active: u.fields.active,
});
const groupChange = (g: GroupRecord) => ({
  id: g.id,
  displayName: g.fields.displayName,
  members: g.members.map((m) => m.id),
});

function isUniqueViolation(err: unknown): boolean {
  return (err as { code?: unknown })?.code === '23505';
}

function checkVersion(ifMatch: string | undefined, version: number): void {
  if (ifMatch === undefined || ifMatch.trim() === '*') return;
  const tags = ifMatch.split(',').map((t) => t.trim().replace(/^W\//, ''));
  if (!tags.includes(`"${version}"`))
    throw new ScimError(412, undefined, `the resource is at version W/"${version}", not ${ifMatch}`);
}

export class ScimRepository {
  constructor(
    private readonly store: Store,
    /** Announces each change (the admin event bus). */
    private readonly changed: (
      action: string,
      target: string,
      before: unknown,
      after: unknown,
    ) => void = () => {},
  ) {}

  // --- users ----------------------------------------------------------------------------------

  private async userRecords(
    q: Queryable,
    where: string,
    params: unknown[],
    lock = false,
  ): Promise<UserRecord[]> {
    const rows = await q.query<UserRow>(
      `SELECT ${USER_COLUMNS} FROM scim_users ${where} ORDER BY created_at, id${lock ? ' FOR UPDATE' : ''}`,
      params,
    );
    if (rows.length === 0) return [];
    const groups = await q.query<{ user_id: string; id: string; display_name: string }>(
      `SELECT m.user_id, g.id, g.display_name FROM scim_members m JOIN scim_groups g ON g.id = m.group_id
        WHERE m.user_id = ANY($1::text[]) ORDER BY g.display_name, g.id`,
      [rows.map((r) => r.id)],
    );
    return rows.map((r) => ({
      id: r.id,
      fields: {
        userName: r.user_name,
        externalId: r.external_id,
        displayName: r.display_name,
        active: r.active,
        resource: r.resource,
      },
      meta: {
        resourceType: 'User',
        created: r.created_at,
        lastModified: r.updated_at,
        version: Number(r.version),
      },
      groups: groups
        .filter((g) => g.user_id === r.id)
        .map((g) => ({ id: g.id, displayName: g.display_name })),
    }));
  }

  listUsers(): Promise<UserRecord[]> {
    return this.userRecords(this.store, '', []);
  }

  async getUser(id: string, q: Queryable = this.store, lock = false): Promise<UserRecord> {
    const [u] = await this.userRecords(q, 'WHERE id = $1', [id], lock);
    if (!u) throw notFound(`no user ${id}`);
    return u;
  }

  async createUser(f: UserFields): Promise<UserRecord> {
    const id = randomUUID();
    const u = await this.write(async (tx) => {
      await tx.query(
        'INSERT INTO scim_users (id, user_name, external_id, display_name, active, resource) VALUES ($1, $2, $3, $4, $5, $6::jsonb)',
        [id, f.userName, f.externalId, f.displayName, f.active, JSON.stringify(f.resource)],
      );
      const u = await this.getUser(id, tx);
      await recordAdminChange(
        tx,
        SCIM_ACTOR,
        'scim.user.create',
        `scim-user:${id}`,
        undefined,
        userChange(u),
      );
      return u;
    }, `userName ${f.userName} is taken`);
    this.changed('scim.user.create', `scim-user:${id}`, null, userChange(u));
    return u;
  }

  /** PUT and PATCH: `next` gets the current record and returns the new fields. */
  async changeUser(
    id: string,
    ifMatch: string | undefined,
    next: (current: UserRecord) => UserFields,
  ): Promise<UserRecord> {
    let before: UserRecord | undefined;
    const u = await this.write(async (tx) => {
      const current = await this.getUser(id, tx, true);
      before = current;
      checkVersion(ifMatch, current.meta.version);
      const f = next(current);
      await tx.query(
        `UPDATE scim_users SET user_name = $2, external_id = $3, display_name = $4, active = $5, resource = $6::jsonb,
                version = version + 1, updated_at = now() WHERE id = $1`,
        [id, f.userName, f.externalId, f.displayName, f.active, JSON.stringify(f.resource)],
      );
      const after = await this.getUser(id, tx);
      await recordAdminChange(
        tx,
        SCIM_ACTOR,
        'scim.user.update',
        `scim-user:${id}`,
        userChange(current),
        userChange(after),
      );
      return after;
    }, 'userName is taken');
    this.changed('scim.user.update', `scim-user:${id}`, before && userChange(before), userChange(u));
    return u;
  }

  async deleteUser(id: string, ifMatch: string | undefined): Promise<void> {
    const before = await this.write(async (tx) => {
      const current = await this.getUser(id, tx, true);
      checkVersion(ifMatch, current.meta.version);
      await tx.query('DELETE FROM scim_users WHERE id = $1', [id]);
      await recordAdminChange(
        tx,
        SCIM_ACTOR,
        'scim.user.delete',
        `scim-user:${id}`,
        userChange(current),
        undefined,
      );
      return current;
    });
    this.changed('scim.user.delete', `scim-user:${id}`, userChange(before), null);
  }

  // --- groups ---------------------------------------------------------------------------------

  private async groupRecords(
    q: Queryable,
    where: string,
    params: unknown[],
    lock = false,
  ): Promise<GroupRecord[]> {
    const rows = await q.query<GroupRow>(
      `SELECT ${GROUP_COLUMNS} FROM scim_groups ${where} ORDER BY created_at, id${lock ? ' FOR UPDATE' : ''}`,
      params,
    );
    if (rows.length === 0) return [];
    const members = await q.query<{
      group_id: string;
      id: string;
      user_name: string;
      display_name: string | null;
    }>(
      `SELECT m.group_id, u.id, u.user_name, u.display_name FROM scim_members m JOIN scim_users u ON u.id = m.user_id
        WHERE m.group_id = ANY($1::text[]) ORDER BY u.user_name, u.id`,
      [rows.map((r) => r.id)],
    );
    return rows.map((r) => {
      const mine = members.filter((m) => m.group_id === r.id);
      return {
        id: r.id,
        fields: {
          displayName: r.display_name,
          externalId: r.external_id,
          memberIds: mine.map((m) => m.id),
          resource: r.resource,
        },
        meta: {
          resourceType: 'Group',
          created: r.created_at,
          lastModified: r.updated_at,
          version: Number(r.version),
        },
        members: mine.map((m) => ({ id: m.id, userName: m.user_name, displayName: m.display_name })),
      };
    });
  }

  listGroups(): Promise<GroupRecord[]> {
    return this.groupRecords(this.store, '', []);
  }

  async getGroup(id: string, q: Queryable = this.store, lock = false): Promise<GroupRecord> {
    const [g] = await this.groupRecords(q, 'WHERE id = $1', [id], lock);
    if (!g) throw notFound(`no group ${id}`);
    return g;
  }

  private async setMembers(tx: Queryable, groupId: string, memberIds: string[]): Promise<void> {
    if (memberIds.length > 0) {
      const found = await tx.query<{ id: string }>('SELECT id FROM scim_users WHERE id = ANY($1::text[])', [
        memberIds,
      ]);
      const missing = memberIds.filter((m) => !found.some((f) => f.id === m));
      // Only users can be members: nested groups are not supported (docs/scim.md).
      if (missing.length > 0) throw badRequest('invalidValue', `no user with id ${missing.join(', ')}`);
    }
    await tx.query('DELETE FROM scim_members WHERE group_id = $1 AND NOT (user_id = ANY($2::text[]))', [
      groupId,
      memberIds,
    ]);
    await tx.query(
      'INSERT INTO scim_members (group_id, user_id) SELECT $1, unnest($2::text[]) ON CONFLICT DO NOTHING',
      [groupId, memberIds],
    );
  }

  async createGroup(f: GroupFields): Promise<GroupRecord> {
    const id = randomUUID();
    const g = await this.write(async (tx) => {
      await tx.query(
        'INSERT INTO scim_groups (id, display_name, external_id, resource) VALUES ($1, $2, $3, $4::jsonb)',
        [id, f.displayName, f.externalId, JSON.stringify(f.resource)],
      );
      await this.setMembers(tx, id, f.memberIds);
      const g = await this.getGroup(id, tx);
      await recordAdminChange(
        tx,
        SCIM_ACTOR,
        'scim.group.create',
        `scim-group:${id}`,
        undefined,
        groupChange(g),
      );
      return g;
    }, `a group named ${f.displayName} exists`);
    this.changed('scim.group.create', `scim-group:${id}`, null, groupChange(g));
    return g;
  }

  async changeGroup(
    id: string,
    ifMatch: string | undefined,
    next: (current: GroupRecord) => GroupFields,
  ): Promise<GroupRecord> {
    let before: GroupRecord | undefined;
    const g = await this.write(async (tx) => {
      const current = await this.getGroup(id, tx, true);
      before = current;
      checkVersion(ifMatch, current.meta.version);
      const f = next(current);
      await tx.query(
        `UPDATE scim_groups SET display_name = $2, external_id = $3, resource = $4::jsonb, version = version + 1,
                updated_at = now() WHERE id = $1`,
        [id, f.displayName, f.externalId, JSON.stringify(f.resource)],
      );
      await this.setMembers(tx, id, f.memberIds);
      const after = await this.getGroup(id, tx);
      await recordAdminChange(
        tx,
        SCIM_ACTOR,
        'scim.group.update',
        `scim-group:${id}`,
        groupChange(current),
        groupChange(after),
      );
      return after;
    }, 'a group of that displayName exists');
    this.changed('scim.group.update', `scim-group:${id}`, before && groupChange(before), groupChange(g));
    return g;
  }

  async deleteGroup(id: string, ifMatch: string | undefined): Promise<void> {
    const before = await this.write(async (tx) => {
      const current = await this.getGroup(id, tx, true);
      checkVersion(ifMatch, current.meta.version);
      await tx.query('DELETE FROM scim_groups WHERE id = $1', [id]);
      await recordAdminChange(
        tx,
        SCIM_ACTOR,
        'scim.group.delete',
        `scim-group:${id}`,
        groupChange(current),
        undefined,
      );
      return current;
    });
    this.changed('scim.group.delete', `scim-group:${id}`, groupChange(before), null);
  }

  private async write<R>(fn: (tx: Queryable) => Promise<R>, conflict = 'conflict'): Promise<R> {
    try {
      return await this.store.transaction(fn);
    } catch (err) {
      if (isUniqueViolation(err)) throw new ScimError(409, 'uniqueness', conflict);
      throw err;
    }
  }
}

/** A provisioned user as admission sees it: read on every admin request of an OIDC principal. */
export interface Provisioned {
  userName: string;
  active: boolean;
  groups: string[];
}

export async function provisionedUser(
  q: Queryable,
  attribute: 'userName' | 'externalId',
  value: string,
): Promise<Provisioned | undefined> {
  // userName is not case-exact (and its unique index is on lower()); externalId is.
  const where = attribute === 'userName' ? 'lower(u.user_name) = lower($1)' : 'u.external_id = $1';
  const rows = await q.query<{ user_name: string; active: boolean; groups: string[] }>(
    `SELECT u.user_name, u.active,
            COALESCE(array_agg(g.display_name) FILTER (WHERE g.id IS NOT NULL), '{}') AS groups
       FROM scim_users u
       LEFT JOIN scim_members m ON m.user_id = u.id
       LEFT JOIN scim_groups g ON g.id = m.group_id
      WHERE ${where}
      GROUP BY u.id, u.user_name, u.active
      LIMIT 2`,
    [value],
  );
  // Two users with one externalId are ambiguous: admit neither.
  if (rows.length !== 1) return undefined;
  const r = rows[0] as { user_name: string; active: boolean; groups: string[] };
  return { userName: r.user_name, active: r.active, groups: r.groups };
}

/**
 * Tenants and API keys in the store: the admin side. Every mutating call takes the acting
 * principal and records an admin_changes row (who, what, before, after) in the same transaction
 * as the change, so the record and the change commit or fail together. The tables' triggers
 * announce each change on 'sluice_changes'; the snapshot (snapshot.ts) is what requests read.
 * Key hashes never leave this file: lists and answers carry ApiKeyInfo, without them.
 */
import type { Queryable, Store } from '../store/store.js';
import { generateKey } from './api-keys.js';

export const TENANT_ID = /^[a-z0-9][a-z0-9-]{0,62}$/;

export type TenantStatus = 'active' | 'suspended';

export interface Tenant {
  id: string;
  name: string;
  /** Data-residency tag. */
  region: string | null;
  plan: string | null;
  labels: Record<string, string>;
  status: TenantStatus;
  createdAt: Date;
  updatedAt: Date;
}

export interface NewTenant {
  id: string;
  name: string;
  region?: string | null;
  plan?: string | null;
  labels?: Record<string, string>;
}

export type TenantPatch = Partial<Pick<NewTenant, 'name' | 'region' | 'plan' | 'labels'>>;

export interface ApiKeyInfo {
  id: string;
  tenantId: string;
  name: string;
  /** `sk_<id>_`: enough to recognise the key, never enough to use it. */
  prefix: string;
  scopes: string[];
  expiresAt: Date | null;
  revokedAt: Date | null;
  createdAt: Date;
  lastUsedAt: Date | null;
}

export interface NewApiKey {
  name: string;
  scopes?: string[];
  expiresAt?: Date | null;
}

/** Who makes a change, for the record. */
export interface Actor {
  actor: string;
  role: string;
}

export interface AdminChange {
  id: string;
  at: Date;
  actor: string;
  role: string;
  action: string;
  target: string;
  before: unknown;
  after: unknown;
}

export type TenancyErrorCode = 'not-found' | 'conflict' | 'invalid';

export class TenancyError extends Error {
  constructor(
    readonly code: TenancyErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'TenancyError';
  }
}

interface TenantRow {
  id: string;
  name: string;
  region: string | null;
  plan: string | null;
  labels: Record<string, string>;
  status: TenantStatus;
  created_at: Date;
  updated_at: Date;
}

interface KeyRow {
  id: string;
  tenant_id: string;
  name: string;
  prefix: string;
  scopes: string[];
  expires_at: Date | null;
  revoked_at: Date | null;
  created_at: Date;
  last_used_at: Date | null;
}

const TENANT_COLUMNS = 'id, name, region, plan, labels, status, created_at, updated_at';
// Never secret_hash: nothing that lists or answers about keys may carry it.
const KEY_COLUMNS = 'id, tenant_id, name, prefix, scopes, expires_at, revoked_at, created_at, last_used_at';

function toTenant(r: TenantRow): Tenant {
  return {
    id: r.id,
    name: r.name,
    region: r.region,
    plan: r.plan,
    labels: r.labels ?? {},
    status: r.status,
    createdAt: r.created_at,
    updatedAt: r.updated_at,
  };
}

function toKey(r: KeyRow): ApiKeyInfo {
  return {
    id: r.id,
    tenantId: r.tenant_id,
    name: r.name,
    prefix: r.prefix,
    scopes: r.scopes,
    expiresAt: r.expires_at,
    revokedAt: r.revoked_at,
    createdAt: r.created_at,
    lastUsedAt: r.last_used_at,
  };
}

function invalid(message: string): TenancyError {
  return new TenancyError('invalid', message);
}

function checkText(field: string, v: unknown, max: number): void {
  if (typeof v !== 'string' || v.length === 0 || v.length > max) {
    throw invalid(`${field} must be a non-empty string of at most ${max} characters`);
  }
}

function checkOptionalText(field: string, v: unknown): void {
  if (v !== undefined && v !== null) checkText(field, v, 100);
}

function checkLabels(labels: unknown): void {
  if (labels === undefined) return;
  if (typeof labels !== 'object' || labels === null || Array.isArray(labels))
    throw invalid('labels must be an object');
  for (const [k, v] of Object.entries(labels)) {
    if (k.length === 0 || k.length > 100 || typeof v !== 'string' || v.length > 500) {
      throw invalid('labels must map names (1-100 characters) to strings (at most 500 characters)');
    }
  }
}

function checkTenantId(id: unknown): asserts id is string {
  if (typeof id !== 'string' || !TENANT_ID.test(id)) {
    throw invalid(
      'tenant id must be 1-63 lowercase letters, digits or dashes, starting with a letter or digit',
    );
  }
}

function isUniqueViolation(err: unknown): boolean {
  return (err as { code?: unknown })?.code === '23505';
}

export async function recordAdminChange(
  tx: Queryable,
  who: Actor,
  action: string,
  target: string,
  before: unknown,
  after: unknown,
) {
  await tx.query(
    'INSERT INTO admin_changes (actor, role, action, target, before, after) VALUES ($1, $2, $3, $4, $5::jsonb, $6::jsonb)',
    [
      who.actor,
      who.role,
      action,
      target,
      before === undefined ? null : JSON.stringify(before),
      after === undefined ? null : JSON.stringify(after),
    ],
  );
}

export class TenancyRepository {
  /** `store`: also read by the admin API's readers beside the repository (audit query, tenant export). */
  constructor(readonly store: Store) {}

  async listTenants(): Promise<Tenant[]> {
    const rows = await this.store.query<TenantRow>(`SELECT ${TENANT_COLUMNS} FROM tenants ORDER BY id`);
    return rows.map(toTenant);
  }

  /**
   * One page of tenants in id order, those whose id or name contains `q` (any case), and how many
   * match in all: the console pages on the server however many tenants there are.
   */
  async pageTenants(q: string, limit: number, offset: number): Promise<{ tenants: Tenant[]; total: number }> {
    const like = `%${q.replace(/[\\%_]/g, (c) => `\\${c}`)}%`;
    const where = 'WHERE id ILIKE $1 OR name ILIKE $1';
    const rows = await this.store.query<TenantRow>(
      `SELECT ${TENANT_COLUMNS} FROM tenants ${where} ORDER BY id LIMIT $2 OFFSET $3`,
      [like, limit, offset],
    );
    const [count] = await this.store.query<{ n: string | number }>(
      `SELECT count(*) AS n FROM tenants ${where}`,
      [like],
    );
    return { tenants: rows.map(toTenant), total: Number(count?.n ?? 0) };
  }

  /** One page of a tenant's keys in creation order, and how many it has. */
  async pageKeys(
    tenantId: string,
    limit: number,
    offset: number,
  ): Promise<{ keys: ApiKeyInfo[]; total: number }> {
    const rows = await this.store.query<KeyRow>(
      `SELECT ${KEY_COLUMNS} FROM api_keys WHERE tenant_id = $1 ORDER BY created_at, id LIMIT $2 OFFSET $3`,
      [tenantId, limit, offset],
    );
    const [count] = await this.store.query<{ n: string | number }>(
      'SELECT count(*) AS n FROM api_keys WHERE tenant_id = $1',
      [tenantId],
    );
    return { keys: rows.map(toKey), total: Number(count?.n ?? 0) };
  }

  async getTenant(id: string): Promise<Tenant | undefined> {
    const rows = await this.store.query<TenantRow>(`SELECT ${TENANT_COLUMNS} FROM tenants WHERE id = $1`, [
      id,
    ]);
    return rows[0] && toTenant(rows[0]);
  }

  async createTenant(who: Actor, input: NewTenant): Promise<Tenant> {
    checkTenantId(input.id);
    checkText('name', input.name, 200);
    checkOptionalText('region', input.region);
    checkOptionalText('plan', input.plan);
    checkLabels(input.labels);
    try {
      return await this.store.transaction(async (tx) => {
        const [row] = await tx.query<TenantRow>(
          `INSERT INTO tenants (id, name, region, plan, labels) VALUES ($1, $2, $3, $4, $5::jsonb) RETURNING ${TENANT_COLUMNS}`,
          [
            input.id,
            input.name,
            input.region ?? null,
            input.plan ?? null,
            JSON.stringify(input.labels ?? {}),
          ],
        );
        const tenant = toTenant(row as TenantRow);
        await recordAdminChange(tx, who, 'tenant.create', `tenant:${tenant.id}`, undefined, tenant);
        return tenant;
      });
    } catch (err) {
      if (isUniqueViolation(err)) throw new TenancyError('conflict', `tenant ${input.id} already exists`);
      throw err;
    }
  }

  async updateTenant(who: Actor, id: string, patch: TenantPatch): Promise<Tenant> {
    if (patch.name !== undefined) checkText('name', patch.name, 200);
    checkOptionalText('region', patch.region);
    checkOptionalText('plan', patch.plan);
    checkLabels(patch.labels);
    return this.changeTenant(who, id, 'tenant.update', (before) => ({
      name: patch.name ?? before.name,
      region: patch.region === undefined ? before.region : patch.region,
      plan: patch.plan === undefined ? before.plan : patch.plan,
      labels: patch.labels ?? before.labels,
      status: before.status,
    }));
  }

  /** Requests of a suspended tenant are refused (403) by the data plane, on every replica. */
  suspendTenant(who: Actor, id: string): Promise<Tenant> {
    return this.changeTenant(who, id, 'tenant.suspend', (before) => ({ ...before, status: 'suspended' }));
  }

  resumeTenant(who: Actor, id: string): Promise<Tenant> {
    return this.changeTenant(who, id, 'tenant.resume', (before) => ({ ...before, status: 'active' }));
  }

  /** Deletes the tenant and, with it, all its keys. */
  async deleteTenant(who: Actor, id: string): Promise<void> {
    await this.store.transaction(async (tx) => {
      const [row] = await tx.query<TenantRow>(
        `DELETE FROM tenants WHERE id = $1 RETURNING ${TENANT_COLUMNS}`,
        [id],
      );
      if (!row) throw new TenancyError('not-found', `no tenant ${id}`);
      await recordAdminChange(tx, who, 'tenant.delete', `tenant:${id}`, toTenant(row), undefined);
    });
  }

  private changeTenant(
    who: Actor,
    id: string,
    action: string,
    next: (before: Tenant) => Pick<Tenant, 'name' | 'region' | 'plan' | 'labels' | 'status'>,
  ): Promise<Tenant> {
    return this.store.transaction(async (tx) => {
      const [current] = await tx.query<TenantRow>(
        `SELECT ${TENANT_COLUMNS} FROM tenants WHERE id = $1 FOR UPDATE`,
        [id],
      );
      if (!current) throw new TenancyError('not-found', `no tenant ${id}`);
      const before = toTenant(current);
      const n = next(before);
      const [row] = await tx.query<TenantRow>(
        `UPDATE tenants SET name = $2, region = $3, plan = $4, labels = $5::jsonb, status = $6, updated_at = now()
         WHERE id = $1 RETURNING ${TENANT_COLUMNS}`,
        [id, n.name, n.region, n.plan, JSON.stringify(n.labels), n.status],
      );
      const after = toTenant(row as TenantRow);
      await recordAdminChange(tx, who, action, `tenant:${id}`, before, after);
      return after;
    });
  }

  async listKeys(tenantId?: string): Promise<ApiKeyInfo[]> {
    const rows =
      tenantId === undefined
        ? await this.store.query<KeyRow>(`SELECT ${KEY_COLUMNS} FROM api_keys ORDER BY created_at, id`)
        : await this.store.query<KeyRow>(
            `SELECT ${KEY_COLUMNS} FROM api_keys WHERE tenant_id = $1 ORDER BY created_at, id`,
            [tenantId],
          );
    return rows.map(toKey);
  }

  async getKey(id: string): Promise<ApiKeyInfo | undefined> {
    const rows = await this.store.query<KeyRow>(`SELECT ${KEY_COLUMNS} FROM api_keys WHERE id = $1`, [id]);
    return rows[0] && toKey(rows[0]);
  }

  /** Creates a key for the tenant. `plaintext` is the only copy of the secret there will ever be. */
  async createKey(
    who: Actor,
    tenantId: string,
    input: NewApiKey,
  ): Promise<{ key: ApiKeyInfo; plaintext: string }> {
    checkText('name', input.name, 200);
    const scopes = input.scopes ?? [];
    if (
      !Array.isArray(scopes) ||
      scopes.some((s) => typeof s !== 'string' || s.length === 0 || s.length > 200)
    ) {
      throw invalid('scopes must be a list of non-empty strings');
    }
    const expiresAt = input.expiresAt ?? null;
    if (expiresAt !== null && !(expiresAt instanceof Date && Number.isFinite(expiresAt.getTime()))) {
      throw invalid('expiresAt must be a valid date');
    }
    // A 60-bit random key id colliding is practically impossible, but a retry costs nothing.
    for (let attempt = 0; ; attempt++) {
      const gen = generateKey();
      try {
        return await this.store.transaction(async (tx) => {
          const tenant = await tx.query('SELECT 1 FROM tenants WHERE id = $1 FOR SHARE', [tenantId]);
          if (tenant.length === 0) throw new TenancyError('not-found', `no tenant ${tenantId}`);
          const [row] = await tx.query<KeyRow>(
            `INSERT INTO api_keys (id, tenant_id, name, prefix, secret_hash, scopes, expires_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING ${KEY_COLUMNS}`,
            [gen.id, tenantId, input.name, gen.prefix, gen.secretHash, scopes, expiresAt],
          );
          const key = toKey(row as KeyRow);
          await recordAdminChange(tx, who, 'key.create', `key:${key.id}`, undefined, key);
          return { key, plaintext: gen.plaintext };
        });
      } catch (err) {
        if (isUniqueViolation(err) && attempt < 2) continue;
        throw err;
      }
    }
  }

  /** Revokes the key at once on every replica. Revoking again keeps the first revocation time. */
  async revokeKey(who: Actor, id: string): Promise<ApiKeyInfo> {
    return this.store.transaction(async (tx) => {
      const [current] = await tx.query<KeyRow>(
        `SELECT ${KEY_COLUMNS} FROM api_keys WHERE id = $1 FOR UPDATE`,
        [id],
      );
      if (!current) throw new TenancyError('not-found', `no API key ${id}`);
      const [row] = await tx.query<KeyRow>(
        `UPDATE api_keys SET revoked_at = coalesce(revoked_at, now()) WHERE id = $1 RETURNING ${KEY_COLUMNS}`,
        [id],
      );
      const after = toKey(row as KeyRow);
      await recordAdminChange(tx, who, 'key.revoke', `key:${id}`, toKey(current), after);
      return after;
    });
  }

  /**
   * Bookkeeping from the data plane, batched by the caller (e.g. once a minute): when each key was
   * last used. Not an admin change: no record, and the triggers do not announce it.
   */
  async recordKeyUse(uses: ReadonlyMap<string, Date>): Promise<void> {
    if (uses.size === 0) return;
    await this.store.query(
      `UPDATE api_keys k SET last_used_at = greatest(coalesce(k.last_used_at, u.at), u.at)
       FROM unnest($1::text[], $2::timestamptz[]) AS u(id, at) WHERE k.id = u.id`,
      [[...uses.keys()], [...uses.values()]],
    );
  }

  /** The newest admin changes first (the audit log will read these). */
  async listChanges(limit = 100): Promise<AdminChange[]> {
    // ORDER BY the column, not the text alias `id`: as text, '9' sorts after '10'.
    const rows = await this.store.query<Omit<AdminChange, 'id'> & { id: string }>(
      'SELECT id::text AS id, at, actor, role, action, target, before, after FROM admin_changes ORDER BY admin_changes.id DESC LIMIT $1',
      [limit],
    );
    return rows;
  }
}

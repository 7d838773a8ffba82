/**
 * The in-memory tenancy snapshot the hot path reads, and the SnapshotSource that keeps it current.
 *
 * A snapshot is immutable and complete: every tenant and key, loaded in one consistent read.
 * On a change notification ('sluice_changes', sent by the tables' triggers on commit) the source
 * reloads it in full (debounced: a burst of changes costs one reload) and swaps the reference.
 * After the store's notification connection comes back from a loss it reloads too, since what was
 * announced meanwhile is lost. When the store is unreachable `current` keeps answering with the
 * last good snapshot; reloads are retried with back-off. Nothing here throws on the request path.
 */
import { type ReloadingOptions, ReloadingSnapshot } from '../store/snapshot-source.js';
import type { Store } from '../store/store.js';
import { parseKey, verifySecret } from './api-keys.js';
import type { TenantStatus } from './repository.js';

export const CHANGES_CHANNEL = 'sluice_changes';

export interface TenantEntry {
  readonly id: string;
  readonly name: string;
  readonly region: string | null;
  readonly plan: string | null;
  readonly labels: Readonly<Record<string, string>>;
  readonly status: TenantStatus;
}

export interface KeyEntry {
  readonly id: string;
  readonly tenantId: string;
  /** SHA-256 of the key's secret. */
  readonly secretHash: Buffer;
  readonly scopes: readonly string[];
  /** Epoch ms, or null for a key that never expires. */
  readonly expiresAt: number | null;
  readonly revoked: boolean;
}

export interface TenancySnapshot {
  /** Counts the loads of one SnapshotSource (0: the empty snapshot before the first load). */
  readonly version: number;
  /** Epoch ms when the load finished. */
  readonly loadedAt: number;
  /** How long the load took (query + building the maps), ms. */
  readonly loadMs: number;
  readonly tenantsById: ReadonlyMap<string, TenantEntry>;
  readonly keysById: ReadonlyMap<string, KeyEntry>;
}

export const EMPTY_SNAPSHOT: TenancySnapshot = Object.freeze({
  version: 0,
  loadedAt: 0,
  loadMs: 0,
  tenantsById: new Map(),
  keysById: new Map(),
});

interface TenantRow {
  id: string;
  name: string;
  region: string | null;
  plan: string | null;
  labels: Record<string, string> | null;
  status: TenantStatus;
}

interface KeyRow {
  id: string;
  tenant_id: string;
  secret_hash: Uint8Array;
  scopes: string[];
  expires_at: Date | null;
  revoked: boolean;
}

/** Reads every tenant and key in one read-only, repeatable-read transaction (one consistent view). */
export async function loadSnapshot(store: Store, version: number): Promise<TenancySnapshot> {
  const started = performance.now();
  const [tenants, keys] = await store.transaction(async (tx) => {
    await tx.query('SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY');
    const t = await tx.query<TenantRow>('SELECT id, name, region, plan, labels, status FROM tenants');
    const k = await tx.query<KeyRow>(
      'SELECT id, tenant_id, secret_hash, scopes, expires_at, revoked_at IS NOT NULL AS revoked FROM api_keys',
    );
    return [t, k] as const;
  });
  const tenantsById = new Map<string, TenantEntry>();
  for (const r of tenants) {
    tenantsById.set(
      r.id,
      Object.freeze({
        id: r.id,
        name: r.name,
        region: r.region,
        plan: r.plan,
        labels: Object.freeze({ ...(r.labels ?? {}) }),
        status: r.status,
      }),
    );
  }
  const keysById = new Map<string, KeyEntry>();
  for (const r of keys) {
    const h = r.secret_hash;
    keysById.set(
      r.id,
      Object.freeze({
        id: r.id,
        tenantId: r.tenant_id,
        // pg gives a Buffer, PGlite a Uint8Array: a Buffer view over the same bytes either way.
        secretHash: Buffer.isBuffer(h) ? h : Buffer.from(h.buffer, h.byteOffset, h.byteLength),
        scopes: Object.freeze([...r.scopes]),
        expiresAt: r.expires_at === null ? null : r.expires_at.getTime(),
        revoked: r.revoked,
      }),
    );
  }
  return Object.freeze({
    version,
    loadedAt: Date.now(),
    loadMs: performance.now() - started,
    tenantsById,
    keysById,
  });
}

export type KeyRefusal = 'malformed' | 'unknown' | 'revoked' | 'expired' | 'tenant-suspended';

export type KeyLookup =
  | { ok: true; tenant: TenantEntry; key: KeyEntry }
  | { ok: false; reason: KeyRefusal; keyId?: string };

const MALFORMED: KeyLookup = Object.freeze({ ok: false, reason: 'malformed' });

/**
 * Checks a presented API key against a snapshot: parse, map lookup, one SHA-256 and a
 * constant-time compare. A wrong secret reads as 'unknown' (as if the key did not exist); the
 * key's state (revoked, expired) is told only to a holder of the right secret.
 */
export function lookupKey(snapshot: TenancySnapshot, presented: string, nowMs: number): KeyLookup {
  const parsed = parseKey(presented);
  if (!parsed) return MALFORMED;
  const key = snapshot.keysById.get(parsed.id);
  // An unknown id answers without hashing: key ids are not secret, so the timing tells nothing new.
  if (!key || !verifySecret(parsed.secret, key.secretHash))
    return { ok: false, reason: 'unknown', keyId: parsed.id };
  if (key.revoked) return { ok: false, reason: 'revoked', keyId: key.id };
  if (key.expiresAt !== null && nowMs >= key.expiresAt)
    return { ok: false, reason: 'expired', keyId: key.id };
  const tenant = snapshot.tenantsById.get(key.tenantId);
  if (tenant?.status !== 'active') return { ok: false, reason: 'tenant-suspended', keyId: key.id };
  return { ok: true, tenant, key };
}

/** Debounce, retry back-off and the error hook of a SnapshotSource (see ReloadingOptions). */
export type SnapshotSourceOptions = ReloadingOptions;

/**
 * Keeps a TenancySnapshot current for one process: a ReloadingSnapshot (src/store/snapshot-source.ts)
 * of loadSnapshot on CHANGES_CHANNEL. `current` is a plain field read; listeners registered with
 * onChange get each new snapshot after it is in place; `until(pred)` waits for a snapshot that
 * satisfies pred. start() rejects when the store cannot be read: a process should not serve
 * tenant-bound routes from nothing.
 */
export class SnapshotSource extends ReloadingSnapshot<TenancySnapshot> {
  constructor(store: Store, opts: SnapshotSourceOptions = {}) {
    super(
      'tenancy snapshot',
      store,
      CHANGES_CHANNEL,
      (s, version) => loadSnapshot(s, version),
      EMPTY_SNAPSHOT,
      opts,
    );
  }
}

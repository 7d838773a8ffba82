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

export interface SnapshotSourceOptions {
  /** Wait this long after a notification before reloading, so a burst costs one load. Default 20 ms. */
  debounceMs?: number;
  /** Retry back-off after a failed reload: first and largest delay. Default 250 → 5000 ms. */
  retryMinMs?: number;
  retryMaxMs?: number;
  /** A reload failed (the last snapshot stays in use). For the caller's log and metrics. */
  onError?: (err: Error) => void;
}

/**
 * Keeps a TenancySnapshot current for one process. `current` is a plain field read; listeners
 * registered with onChange get each new snapshot after it is in place.
 */
export class SnapshotSource {
  private snapshot: TenancySnapshot = EMPTY_SNAPSHOT;
  private readonly listeners = new Set<(s: TenancySnapshot) => void>();
  private unlisten: (() => Promise<void>) | undefined;
  private unresync: (() => void) | undefined;
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private dirty = false;
  private failing = false;
  private retryMs: number;
  private closed = false;
  private lastError: Error | undefined;
  private readonly debounceMs: number;

  constructor(
    private readonly store: Store,
    private readonly opts: SnapshotSourceOptions = {},
  ) {
    this.debounceMs = opts.debounceMs ?? 20;
    this.retryMs = opts.retryMinMs ?? 250;
  }

  /** The newest snapshot loaded (the empty one before start). Never throws. */
  get current(): TenancySnapshot {
    return this.snapshot;
  }

  /** True while the last reload attempt failed: `current` may be behind the store. */
  get stale(): boolean {
    return this.failing;
  }

  /**
   * Subscribes to changes, then loads the first snapshot (in that order, so no change made in
   * between is missed). Rejects when the store cannot be read: a process should not serve
   * tenant-bound routes from nothing.
   */
  async start(): Promise<void> {
    this.unresync = this.store.onResync(() => this.schedule(0));
    try {
      this.unlisten = await this.store.listen(CHANGES_CHANNEL, () => this.schedule(this.debounceMs));
      await this.reload();
      if (this.failing) throw this.lastError ?? new Error('tenancy snapshot: first load failed');
    } catch (err) {
      await this.close();
      throw err;
    }
  }

  /** Calls cb with every new snapshot. Returns the unsubscribe. */
  onChange(cb: (s: TenancySnapshot) => void): () => void {
    this.listeners.add(cb);
    return () => {
      this.listeners.delete(cb);
    };
  }

  /**
   * Resolves with the current snapshot as soon as `pred` holds for it (now or after a reload);
   * rejects after timeoutMs. For tests and for callers that must see their own write applied.
   */
  until(pred: (s: TenancySnapshot) => boolean, timeoutMs = 5_000): Promise<TenancySnapshot> {
    return new Promise((resolve, reject) => {
      if (pred(this.snapshot)) return resolve(this.snapshot);
      const timer = setTimeout(() => {
        off();
        reject(new Error(`tenancy snapshot: condition not met within ${timeoutMs} ms`));
      }, timeoutMs);
      const off = this.onChange((s) => {
        if (!pred(s)) return;
        clearTimeout(timer);
        off();
        resolve(s);
      });
    });
  }

  /** Reloads now (or after the reload under way) and resolves when a load that began after this call ended. */
  async reload(): Promise<void> {
    clearTimeout(this.timer);
    this.timer = undefined;
    while (this.running) await this.running;
    await this.run();
  }

  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.timer);
    this.timer = undefined;
    this.unresync?.();
    const u = this.unlisten;
    this.unlisten = undefined;
    await u?.().catch(() => {});
    await this.running;
  }

  private schedule(delayMs: number): void {
    if (this.closed) return;
    if (this.running) {
      this.dirty = true; // the load under way may have read before this change
      return;
    }
    if (this.timer) {
      if (delayMs > 0) return; // coalesce into the pending one
      clearTimeout(this.timer);
    }
    this.timer = setTimeout(() => this.fire(), delayMs);
  }

  private fire(): void {
    this.timer = undefined;
    if (this.running) this.dirty = true;
    else this.run().catch(() => {});
  }

  private run(): Promise<void> {
    this.dirty = false;
    const p = (async () => {
      try {
        const next = await loadSnapshot(this.store, this.snapshot.version + 1);
        if (this.closed) return;
        this.snapshot = next;
        this.failing = false;
        this.lastError = undefined;
        this.retryMs = this.opts.retryMinMs ?? 250;
        for (const cb of this.listeners) {
          try {
            cb(next);
          } catch (err) {
            this.opts.onError?.(err instanceof Error ? err : new Error(String(err)));
          }
        }
      } catch (err) {
        const e = err instanceof Error ? err : new Error(String(err));
        this.failing = true;
        this.lastError = e;
        if (this.closed) return;
        this.opts.onError?.(e);
        this.dirty = false;
        const delay = this.retryMs;
        this.retryMs = Math.min(this.opts.retryMaxMs ?? 5_000, this.retryMs * 2);
        queueMicrotask(() => this.scheduleRetry(delay));
      }
    })();
    this.running = p;
    return p.finally(() => {
      if (this.running === p) this.running = undefined;
      if (this.dirty && !this.closed) {
        this.dirty = false;
        this.schedule(this.debounceMs);
      }
    });
  }

  private scheduleRetry(delayMs: number): void {
    if (this.closed || this.timer) return;
    this.timer = setTimeout(() => this.fire(), delayMs);
  }
}

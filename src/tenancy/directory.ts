/**
 * The tenancy snapshot seen through the identity policies' interface (src/policies/identity.ts):
 * each call reads the SnapshotSource's current snapshot once, so a reload between two requests
 * is picked up and a request never sees half of one.
 */
import type { IdentityDirectory, KeyCheck } from '../policies/identity.js';
import type { TenantView } from '../policies/policy.js';
import { lookupKey, type SnapshotSource } from './snapshot.js';

export function snapshotDirectory(source: SnapshotSource): IdentityDirectory {
  return {
    verifyKey(presented: string, nowMs: number): KeyCheck {
      const snap = source.current;
      const r = lookupKey(snap, presented, nowMs);
      if (r.ok) return { ok: true, keyId: r.key.id, tenantId: r.key.tenantId, scopes: r.key.scopes };
      // The key itself is good; the tenant's status is the tenant policy's to judge (its own 403).
      if (r.reason === 'tenant-suspended') {
        const key = snap.keysById.get(r.keyId as string);
        if (key) return { ok: true, keyId: key.id, tenantId: key.tenantId, scopes: key.scopes };
        return { ok: false, reason: 'unknown', keyId: r.keyId };
      }
      return r.keyId === undefined
        ? { ok: false, reason: r.reason }
        : { ok: false, reason: r.reason, keyId: r.keyId };
    },
    tenant(id: string): TenantView | undefined {
      return source.current.tenantsById.get(id);
    },
  };
}

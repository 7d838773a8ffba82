/**
 * With `admin.scim`, who may use the admin API through OIDC is decided by provisioning, not by the
 * token alone: the token's claim (`match.claim`, default `preferred_username`) must name a
 * provisioned user (`match.attribute`, default `userName`) that is active, and the principal's roles
 * are those `groupRoles` gives the user's groups (the token's roles claim is not read).
 * The store is read on every admin request, so a deactivation, a deletion or a removed membership
 * refuses the very next call on every replica sharing the store. Bootstrap tokens are unaffected.
 */
import { claimGetter } from '../identity/jwt/compile.js';
import { provisionedUser } from '../scim/repository.js';
import type { Store } from '../store/store.js';
import type { Principal } from './auth.js';
import { isRole, type Role } from './roles.js';
import type { ScimConfig } from './routes/scim.js';

export const DEFAULT_MATCH_CLAIM = 'preferred_username';

export type Admission = { ok: true; principal: Principal } | { ok: false; reason: string };

export class ScimAccess {
  private readonly claim: (claims: Readonly<Record<string, unknown>>) => unknown;
  private readonly claimName: string;
  private readonly attribute: 'userName' | 'externalId';
  /** groupRoles by lowercased displayName. */
  private readonly roles = new Map<string, Role[]>();

  constructor(
    config: ScimConfig,
    private readonly store: () => Store | undefined,
  ) {
    this.claimName = config.match?.claim ?? DEFAULT_MATCH_CLAIM;
    this.claim = claimGetter(this.claimName);
    this.attribute = config.match?.attribute ?? 'userName';
    for (const [group, roles] of Object.entries(config.groupRoles ?? {}))
      this.roles.set(
        group.toLowerCase(),
        roles.filter((r): r is Role => isRole(r)),
      );
  }

  async admit(claims: Readonly<Record<string, unknown>>): Promise<Admission> {
    const value = this.claim(claims);
    if (typeof value !== 'string' || value.length === 0)
      return { ok: false, reason: `the token has no ${this.claimName} claim to match a provisioned user` };
    const store = this.store();
    if (!store) return { ok: false, reason: 'no store: provisioned users cannot be read' };
    const user = await provisionedUser(store, this.attribute, value);
    if (!user) return { ok: false, reason: `${this.claimName} names no provisioned user` };
    if (!user.active) return { ok: false, reason: 'the provisioned user is not active' };
    const roles: Role[] = [];
    for (const g of user.groups)
      for (const r of this.roles.get(g.toLowerCase()) ?? []) if (!roles.includes(r)) roles.push(r);
    return { ok: true, principal: { name: user.userName, roles, via: 'oidc' } };
  }
}

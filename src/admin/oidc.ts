/**
 * OIDC bearer tokens for the admin API. Config (read at start; a change needs a restart, like the
 * rest of `admin`):
 *   admin.auth: { issuer: <name in identity.issuers>, audience?: string, rolesClaim?: string }
 * The token is verified with the gateway's JWT verifier (src/identity/jwt) against that one
 * issuer; `audience`, when given, replaces the issuer's audiences (the admin API usually has its own).
 * Roles come from `rolesClaim` (default `sluice_roles`: a list or a space-separated string, a dotted
 * path reaches nested claims); names that are not admin roles are ignored. The principal's name is
 * the token's `sub` (or `client_id` when it has no `sub`).
 */
import { claimGetter } from '../identity/jwt/compile.js';
import type { JwtIssuerConfig } from '../identity/jwt/schema.js';
import { createVerifier, type Verifier } from '../identity/jwt/verify.js';
import type { Principal } from './auth.js';
import type { AdminHost } from './host.js';
import { isRole, type Role } from './roles.js';

export const DEFAULT_ROLES_CLAIM = 'sluice_roles';
/** Longest wait for the issuer's first key set before a token is checked without it (and refused). */
const KEYS_WAIT_MS = 5000;

/** The loosely typed `admin.auth` (until the config schema declares it). */
export interface AdminAuthConfig {
  issuer: string;
  audience?: string;
  rolesClaim?: string;
  /** The console's login through this issuer (src/admin/routes/console-login.ts); absent: token login only. */
  console?: { clientId: string; scopes?: string[]; resource?: string; label?: string };
}

export type OidcResult =
  | { ok: true; principal: Principal; claims: Readonly<Record<string, unknown>> }
  | { ok: false; reason: string };

export interface AdminOidc {
  authenticate(token: string): Promise<OidcResult>;
  close(): void;
}

/** `admin.auth` with the issuers it may name. */
export interface AdminAuthSettings {
  auth: AdminAuthConfig;
  issuers: Readonly<Record<string, JwtIssuerConfig>>;
}

/** `admin.auth` and `identity.issuers` of the running config; undefined without `admin.auth`. */
export function authFromConfig(gw: AdminHost): AdminAuthSettings | undefined {
  const config = gw.runtime.config as unknown as {
    admin?: { auth?: AdminAuthConfig };
    identity?: { issuers?: Record<string, JwtIssuerConfig> };
  };
  const auth = config.admin?.auth;
  return auth && { auth, issuers: config.identity?.issuers ?? {} };
}

/** The authenticator for the settings; undefined without them. Throws when `issuer` names no issuer. */
export function adminOidc(settings: AdminAuthSettings | undefined): AdminOidc | undefined {
  if (!settings) return undefined;
  const { auth, issuers } = settings;
  const issuer = Object.hasOwn(issuers, auth.issuer) ? issuers[auth.issuer] : undefined;
  if (!issuer)
    throw new Error(
      `admin.auth.issuer: "${auth.issuer}" is not an issuer of identity.issuers (defined: ${Object.keys(issuers).join(', ') || 'none'})`,
    );
  const verifier = createVerifier({
    [auth.issuer]: auth.audience ? { ...issuer, audiences: [auth.audience] } : issuer,
  });
  return new OidcAuthenticator(verifier, auth.rolesClaim ?? DEFAULT_ROLES_CLAIM);
}

class OidcAuthenticator implements AdminOidc {
  private readonly roles: (claims: Readonly<Record<string, unknown>>) => unknown;

  constructor(
    private readonly verifier: Verifier,
    rolesClaim: string,
  ) {
    this.roles = claimGetter(rolesClaim);
  }

  async authenticate(token: string): Promise<OidcResult> {
    // Right after start the issuer's key set may still be on its way: wait for it (bounded) rather
    // than refuse a good token. Bootstrap tokens never wait (they are checked first).
    if (!this.verifier.isReady()) await this.firstKeys();
    const r = await this.verifier.verify(token);
    if (!r.ok) return { ok: false, reason: `${r.reason}: ${r.detail}` };
    // Client-credentials tokens of some providers carry only client_id.
    const clientId = r.token.claims.client_id;
    const name = r.token.subject ?? (typeof clientId === 'string' ? clientId : undefined);
    if (!name) return { ok: false, reason: 'the token has neither sub nor client_id' };
    return {
      ok: true,
      principal: { name, roles: rolesOf(this.roles(r.token.claims)), via: 'oidc' },
      // admin.scim matches the token to a provisioned user by one of them (scim-access.ts).
      claims: r.token.claims,
    };
  }

  private firstKeys(): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, KEYS_WAIT_MS);
    });
    return Promise.race([this.verifier.ready.catch(() => {}), timeout]).finally(() => clearTimeout(timer));
  }

  close(): void {
    this.verifier.close();
  }
}

function rolesOf(v: unknown): Role[] {
  const names = typeof v === 'string' ? v.split(' ') : Array.isArray(v) ? v : [];
  const out: Role[] = [];
  for (const n of names) if (typeof n === 'string' && isRole(n) && !out.includes(n)) out.push(n);
  return out;
}

/**
 * The API-key half of `auth`: the key is looked up in the in-memory tenancy snapshot (a map read
 * and one constant-time digest compare; no KDF, keys carry 190+ bits of entropy).
 */
import { Errors } from '../../errors/codes.js';
import type { IdentityDirectory } from '../identity.js';
import type { Denial, Principal } from '../policy.js';

export interface ApiKeyRule {
  /** Scopes the key must hold (all). */
  readonly scopes: readonly string[];
}

export function checkApiKey(
  dir: IdentityDirectory,
  presented: string,
  rule: ApiKeyRule,
  nowMs: number,
): Principal | Denial {
  const r = dir.verifyKey(presented, nowMs);
  if (!r.ok) {
    const revoked = r.reason === 'revoked' || r.reason === 'expired';
    return {
      def: revoked ? Errors.apiKeyRevoked : Errors.apiKeyInvalid,
      detail: revoked ? `the API key was ${r.reason === 'revoked' ? 'revoked' : 'expired'}` : undefined,
      headers: invalidKeyChallenge,
      reason: `key-${r.reason}`,
    };
  }
  const principal: Principal = { kind: 'apiKey', id: r.keyId, tenantId: r.tenantId, scopes: r.scopes };
  for (const s of rule.scopes)
    if (!r.scopes.includes(s))
      return {
        def: Errors.insufficientScope,
        detail: `the API key lacks scope "${s}"`,
        headers: {
          'www-authenticate': `Bearer realm="sluice", error="insufficient_scope", scope="${rule.scopes.join(' ')}"`,
        },
        reason: 'insufficient-scope',
      };
  return principal;
}

const invalidKeyChallenge = { 'www-authenticate': 'Bearer realm="sluice", error="invalid_token"' };

/** `sk_...` bearer values are API keys; anything else in `Authorization: Bearer` is a token. */
export function isApiKeyShaped(v: string): boolean {
  return v.startsWith('sk_');
}

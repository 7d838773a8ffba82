/**
 * The JWT half of `auth`: the route's requirement compiled once, then per request the verifier
 * (a cache hit is synchronous), the requirement check, and the claim headers for the upstream.
 */
import { type ErrorDef, Errors } from '../../errors/codes.js';
import {
  checkRequirements,
  compileRequirement,
  forwardHeaders,
  type JwtFailure,
  type JwtFailureReason,
  type JwtRequirementConfig,
  tenantOf,
  type Verifier,
  type VerifyResult,
  wwwAuthenticate,
} from '../../identity/jwt/index.js';
import type { Denial } from '../policy.js';
import type { JwtAccept, JwtCheck } from './index.js';

const defs: Record<JwtFailureReason, ErrorDef> = {
  missing: Errors.authMissing,
  malformed: Errors.tokenInvalid,
  'too-large': Errors.tokenInvalid,
  'unknown-issuer': Errors.tokenInvalid,
  'bad-algorithm': Errors.tokenInvalid,
  'unknown-kid': Errors.tokenInvalid,
  'bad-signature': Errors.tokenInvalid,
  expired: Errors.tokenExpired,
  'not-yet-valid': Errors.tokenExpired,
  'issued-in-future': Errors.tokenExpired,
  'wrong-audience': Errors.tokenAudience,
  'jwks-unavailable': Errors.keysUnavailable,
  'insufficient-scope': Errors.insufficientScope,
  'missing-role': Errors.claimRequirement,
  'claim-mismatch': Errors.claimRequirement,
};

function denial(f: JwtFailure, scopes: readonly string[]): Denial {
  const headers: Record<string, string> = { 'www-authenticate': wwwAuthenticate(f.reason, 'sluice', scopes) };
  if (f.reason === 'jwks-unavailable') headers['retry-after'] = '5';
  return { def: defs[f.reason], detail: f.detail, headers, reason: f.reason };
}

/** Builds each route's token check over one verifier (one per config version). */
export function jwtChecks(verifier: Verifier): (routeName: string, req: JwtRequirementConfig) => JwtCheck {
  return (_routeName, cfg) => {
    const req = compileRequirement(cfg);
    const accept = (r: VerifyResult): JwtAccept | Denial => {
      if (!r.ok) return denial(r, req.scopes);
      const t = r.token;
      const unmet = checkRequirements(t, req);
      if (unmet !== undefined) return denial(unmet, req.scopes);
      const subject = t.subject ?? '';
      return {
        principal: {
          kind: 'jwt',
          id: `${t.issuer}:${subject}`,
          issuer: t.issuer,
          subject,
          claims: t.claims,
          tenantId: tenantOf(t, req.tenantClaim),
        },
        forward: req.forward.length > 0 ? forwardHeaders(t, req.forward) : noHeaders,
      };
    };
    return (token) => {
      const r = verifier.verify(token);
      return r instanceof Promise ? r.then(accept) : accept(r);
    };
  };
}

const noHeaders: readonly string[] = [];

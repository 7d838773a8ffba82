/**
 * Bearer-token verification. The order of checks is the order of cost: size (before any parsing), shape,
 * header (a JSON object with a string `alg`; `crit` and `b64` refused), issuer (by `iss`), algorithm
 * allowlist of that issuer, key (by `kid` and `alg` from the cached key set, nothing else from the
 * header), the signature, then the claims (`iss`, `aud`, `exp` required unless the issuer sets
 * `requireExp: false`, `nbf`, `iat` not in the future, with the issuer's clock skew). A verified token is cached by its exact string until it expires (or the cache TTL), so a
 * repeated token costs one Map lookup and one compare.
 *
 * The signature and the claims are checked here by hand, synchronously with `node:crypto`
 * (signature.ts), not with jose's `jwtVerify`: on the benchmark VM jose's WebCrypto path cost 48–87 µs per
 * RS256 token against 25–30 µs for `crypto.verify`, and a token not in the cache held Sluice to
 * 0.35–0.45x of plain proxying (goal 0.6x; bench/README.md, identity section). The claim checks keep
 * jose 6's order and semantics (presence of iss, aud, exp first; then iss, aud; iat/nbf/exp must be
 * numbers; `nbf > now + skew` and `exp <= now - skew` refuse, with `now` in whole seconds), and each
 * refusal keeps the reason it had with jose.
 */
import type { JWTPayload } from 'jose';
import {
  type ClaimGetter,
  type CompiledForward,
  type CompiledRequirement,
  type ResolvedIssuer,
  resolveIssuers,
} from './compile.js';
import { type JwksCache, JwksPool, type KeyLookup } from './jwks.js';
import type { JwtIssuersConfig } from './schema.js';
import { checkSignature, decodeBase64url, decodeJsonObject, type PublicVerifyKey } from './signature.js';
import { TokenCache } from './token-cache.js';
/** Why a token was refused (401). Stable: the gateway maps each to a problem code. */
export type TokenFailureReason =
  | 'missing'
  | 'malformed'
  | 'too-large'
  | 'unknown-issuer'
  | 'bad-algorithm'
  | 'unknown-kid'
  | 'bad-signature'
  | 'expired'
  | 'not-yet-valid'
  | 'issued-in-future'
  | 'wrong-audience'
  | 'jwks-unavailable';

/** Why a valid token does not satisfy a route (403). */
export type RequirementFailureReason = 'insufficient-scope' | 'missing-role' | 'claim-mismatch';

export type JwtFailureReason = TokenFailureReason | RequirementFailureReason;

export const TOKEN_FAILURE_REASONS: readonly TokenFailureReason[] = [
  'missing',
  'malformed',
  'too-large',
  'unknown-issuer',
  'bad-algorithm',
  'unknown-kid',
  'bad-signature',
  'expired',
  'not-yet-valid',
  'issued-in-future',
  'wrong-audience',
  'jwks-unavailable',
];
export const REQUIREMENT_FAILURE_REASONS: readonly RequirementFailureReason[] = [
  'insufficient-scope',
  'missing-role',
  'claim-mismatch',
];

export interface JwtFailure<R extends JwtFailureReason = JwtFailureReason> {
  readonly ok: false;
  readonly reason: R;
  /** For the log and the problem detail; never contains the token. */
  readonly detail: string;
  /** Issuer name, when the token got far enough to name one. */
  readonly issuer?: string;
}

export interface VerifiedToken {
  /** Issuer name in config. */
  readonly issuer: string;
  readonly subject: string | undefined;
  readonly claims: Readonly<JWTPayload>;
  /** From `scope` (space-separated) and `scp` (a list or a string). */
  readonly scopes: ReadonlySet<string>;
  /** `exp` in ms since the epoch; Infinity for a token without `exp` (issuer with `requireExp: false`). */
  readonly expiresAtMs: number;
  readonly alg: string;
  readonly kid: string | undefined;
}

export interface JwtSuccess {
  readonly ok: true;
  readonly token: VerifiedToken;
}

export type VerifyResult = JwtSuccess | JwtFailure<TokenFailureReason>;

export interface VerifierOptions {
  /** Shared key-set caches (keep one per gateway so reloads reuse warm sets). Default: a private pool. */
  pool?: JwksPool;
  /** Verified-token cache: most entries (default 10 000; 0 turns it off). */
  cacheMaxEntries?: number;
  /** Longest time a verified token is served from the cache (default 5 minutes); never past its `exp`. */
  cacheTtlMs?: number;
  /** Bound on the summed length of cached tokens (default 16 MiB). */
  cacheMaxBytes?: number;
  /** Wall clock (ms) when `verify` is called without `now`. */
  now?: () => number;
}

export interface Verifier {
  /**
   * Verify a bearer token (without the `Bearer ` prefix). Synchronous for a cached token and for
   * refusals found before the signature check; a Promise otherwise. Never rejects.
   */
  verify(token: string | undefined, now?: number): VerifyResult | Promise<VerifyResult>;
  /** Settles when every issuer's key set has been fetched once. */
  readonly ready: Promise<void>;
  isReady(): boolean;
  /** The key-set cache of an issuer (undefined for HMAC issuers). */
  jwks(issuerName: string): JwksCache | undefined;
  readonly issuers: ReadonlyMap<string, ResolvedIssuer>;
  /** Release the key-set caches (the pool closes those no other verifier holds). */
  close(): void;
}

interface CacheEntry {
  readonly until: number;
  readonly result: JwtSuccess;
}

// Three base64url segments; the third may be empty (an unsigned token, refused later as bad-algorithm).
const COMPACT_JWS = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/;

const MISSING: JwtFailure<'missing'> = { ok: false, reason: 'missing', detail: 'no bearer token' };

export function createVerifier(issuersConfig: JwtIssuersConfig, options: VerifierOptions = {}): Verifier {
  const resolved = resolveIssuers(issuersConfig);
  const pool = options.pool ?? new JwksPool();
  const ownPool = options.pool === undefined;
  const clock = options.now ?? Date.now;
  const byName = new Map(resolved.map((i) => [i.name, i]));
  const byIss = new Map(resolved.map((i) => [i.issuer, i]));
  const only = resolved.length === 1 ? resolved[0] : undefined;
  const caches = new Map<string, JwksCache>();
  for (const i of resolved) if (i.jwks) caches.set(i.name, pool.acquire(i.jwks));
  // Before the issuer is known, the largest limit applies; the issuer's own is checked once it is.
  const maxBytes = Math.max(...resolved.map((i) => i.maxTokenBytes));

  const maxEntries = options.cacheMaxEntries ?? 10_000;
  const cacheTtl = options.cacheTtlMs ?? 300_000;
  const maxCacheBytes = options.cacheMaxBytes ?? 16 * 1024 * 1024;
  const cache = new TokenCache<CacheEntry>(maxEntries, maxCacheBytes);
  // Concurrent first sightings of one token share one verification.
  const pending = new Map<string, Promise<VerifyResult>>();

  const remember = (token: string, result: JwtSuccess, now: number) => {
    const until = Math.min(result.token.expiresAtMs, now + cacheTtl);
    if (until <= now) return;
    cache.set(token, { until, result });
  };

  /** Everything after the shape check. Synchronous unless an unknown `kid` waits on a key-set refetch. */
  const check = (token: string, now: number): VerifyResult | Promise<VerifyResult> => {
    // COMPACT_JWS matched: exactly two dots, header and payload not empty.
    const dot1 = token.indexOf('.');
    const dot2 = token.indexOf('.', dot1 + 1);
    const header = decodeJsonObject(token, 0, dot1);
    if (header === undefined) return fail('malformed', 'the token header is not a base64url JSON object');
    const alg = header.alg;
    if (typeof alg !== 'string') return fail('malformed', 'the token header has no alg');
    const kid = header.kid;
    if (kid !== undefined && typeof kid !== 'string') return fail('malformed', 'kid is not a string');

    let issuer = only;
    let payload: JWTPayload | undefined;
    if (issuer === undefined) {
      payload = decodeJsonObject(token, dot1 + 1, dot2);
      if (payload === undefined) return fail('malformed', 'the token payload is not a JSON object');
      issuer = typeof payload.iss === 'string' ? byIss.get(payload.iss) : undefined;
      if (issuer === undefined)
        return fail(
          'unknown-issuer',
          `iss ${JSON.stringify(payload.iss ?? null)} is not a configured issuer`,
        );
    }
    if (token.length > issuer.maxTokenBytes)
      return fail('too-large', `longer than ${issuer.maxTokenBytes} bytes`, issuer.name);
    // The allowlist decides before any key is touched: `none`, or HS256 against an RSA issuer, stop here.
    if (!issuer.algorithms.has(alg))
      return fail(
        'bad-algorithm',
        `alg ${JSON.stringify(alg)} is not accepted from this issuer`,
        issuer.name,
      );
    // No JWS extension is supported: a token that marks one critical cannot be understood (RFC 7515
    // §4.1.11), and an unencoded payload (RFC 7797 `b64: false`) is never a JWT.
    if (header.crit !== undefined)
      return fail('malformed', 'critical header parameters (crit) are not supported', issuer.name);
    if (header.b64 !== undefined && header.b64 !== true)
      return fail('malformed', 'an unencoded payload (b64) is not a JWT', issuer.name);
    const signature = decodeBase64url(token, dot2 + 1);
    if (signature === undefined)
      return fail('malformed', 'the signature is not canonical base64url', issuer.name);

    if (issuer.secret !== undefined)
      return finish(token, now, issuer, alg, kid, payload, [issuer.secret], signature, dot1, dot2);
    const found = caches.get(issuer.name)!.key(kid, alg);
    const resolved = issuer;
    const go = (f: KeyLookup): VerifyResult =>
      f.ok
        ? finish(token, now, resolved, alg, kid, payload, f.keys, signature, dot1, dot2)
        : fail(f.reason, f.detail, resolved.name);
    return found instanceof Promise ? found.then(go) : go(found);
  };

  const finish = (
    token: string,
    now: number,
    issuer: ResolvedIssuer,
    alg: string,
    kid: string | undefined,
    decoded: JWTPayload | undefined,
    keys: readonly (PublicVerifyKey | Uint8Array)[],
    signature: Buffer,
    dot1: number,
    dot2: number,
  ): VerifyResult => {
    const input = Buffer.from(token.slice(0, dot2), 'latin1');
    let last: JwtFailure<TokenFailureReason> | undefined;
    let verified = false;
    // Several candidates only for a token without kid; the first key whose signature matches wins.
    for (const key of keys) {
      const r = checkSignature(alg, key, input, signature);
      if (r === 'ok') {
        verified = true;
        break;
      }
      last = fail(
        'bad-signature',
        r === 'wrong-length'
          ? `signature length does not fit ${alg}`
          : r === 'wrong-key'
            ? `the key does not serve ${alg}`
            : 'signature mismatch',
        issuer.name,
      );
    }
    if (!verified) return last ?? fail('unknown-kid', 'no key', issuer.name);
    const payload = decoded ?? decodeJsonObject(token, dot1 + 1, dot2);
    if (payload === undefined)
      return fail('malformed', 'JWT Claims Set must be a top-level JSON object', issuer.name);
    const refused = claimsFailure(payload, issuer, now);
    if (refused !== undefined) return refused;
    const result: JwtSuccess = {
      ok: true,
      token: {
        issuer: issuer.name,
        subject: typeof payload.sub === 'string' ? payload.sub : undefined,
        claims: payload,
        scopes: scopesOf(payload),
        expiresAtMs: typeof payload.exp === 'number' ? payload.exp * 1000 : Number.POSITIVE_INFINITY,
        alg,
        kid,
      },
    };
    remember(token, result, now);
    return result;
  };

  return {
    verify(token, now) {
      if (token === undefined || token.length === 0) return MISSING;
      if (token.length > maxBytes) return fail('too-large', `longer than ${maxBytes} bytes`);
      const t = now ?? clock();
      const hit = cache.get(token);
      if (hit !== undefined) {
        if (hit.until > t) return hit.result;
        cache.delete(token);
      }
      if (!COMPACT_JWS.test(token)) return fail('malformed', 'not a compact JWS (three base64url parts)');
      const inflight = pending.get(token);
      if (inflight !== undefined) return inflight;
      let r: VerifyResult | Promise<VerifyResult>;
      try {
        r = check(token, t);
      } catch (err) {
        // Not expected (every input is checked before it reaches node:crypto); never let it escape.
        r = fail('malformed', err instanceof Error ? err.message : String(err));
      }
      // Verified synchronously (the key set was at hand): answer synchronously, so the policy chain
      // stays synchronous. (Measured: the settled Promise this used to return cost nothing visible in
      // bench:identity; the miss path's cost is elsewhere, see bench/README.md.)
      if (!(r instanceof Promise)) return r;
      const p = r
        .catch((err: unknown) => fail('malformed', err instanceof Error ? err.message : String(err)))
        .finally(() => pending.delete(token));
      pending.set(token, p);
      return p;
    },
    ready: Promise.all([...caches.values()].map((c) => c.ready)).then(() => {}),
    isReady: () => [...caches.values()].every((c) => c.isReady()),
    jwks: (name) => caches.get(name),
    issuers: byName,
    close() {
      for (const c of caches.values()) pool.release(c);
      caches.clear();
      cache.clear();
      if (ownPool) pool.close();
    },
  };
}

function fail<R extends JwtFailureReason>(reason: R, detail: string, issuer?: string): JwtFailure<R> {
  return issuer === undefined ? { ok: false, reason, detail } : { ok: false, reason, detail, issuer };
}

/**
 * The claim checks jose's `jwtVerify` made with the options Sluice passed it (issuer, audiences,
 * clockTolerance, currentDate, requiredClaims: ['exp']), in its order, each refusal with the reason it
 * was mapped to before: missing iss → unknown-issuer, missing aud → wrong-audience, missing exp →
 * malformed; iss mismatch → unknown-issuer; aud (a string, or a list holding one accepted audience) →
 * wrong-audience; iat, nbf and exp must be numbers (a non-number nbf was jose's nbf failure, so
 * not-yet-valid); nbf > now + skew → not-yet-valid; exp <= now - skew → expired.
 *
 * Two checks go beyond what jose did without options:
 * - `iat > now + skew` → issued-in-future. A token minted "in the future" comes from an issuer
 *   with a broken clock or was forged with a far-off `iat` to outlive key rotation or revocation
 *   lists that cut off by issue time; either way nothing about it can be trusted to be current.
 * - `exp` is required unless the issuer sets `requireExp: false` (providers that mint tokens that
 *   never expire): a token without `exp` would otherwise be valid forever once leaked.
 */
export function claimsFailure(
  payload: JWTPayload,
  issuer: Pick<ResolvedIssuer, 'name' | 'issuer' | 'audiences' | 'clockSkewSec'> &
    Partial<Pick<ResolvedIssuer, 'requireExp'>>,
  nowMs: number,
): JwtFailure<TokenFailureReason> | undefined {
  const name = issuer.name;
  if (!Object.hasOwn(payload, 'iss')) return fail('unknown-issuer', 'iss does not match the issuer', name);
  if (!Object.hasOwn(payload, 'aud'))
    return fail('wrong-audience', 'the token is not meant for this audience (aud)', name);
  const hasExp = Object.hasOwn(payload, 'exp');
  if (!hasExp && issuer.requireExp !== false) return fail('malformed', 'claim exp: missing', name);
  if (payload.iss !== issuer.issuer) return fail('unknown-issuer', 'iss does not match the issuer', name);
  const aud: unknown = payload.aud;
  const audOk =
    typeof aud === 'string'
      ? issuer.audiences.includes(aud)
      : Array.isArray(aud) && issuer.audiences.some((a) => aud.includes(a));
  if (!audOk) return fail('wrong-audience', 'the token is not meant for this audience (aud)', name);
  const now = Math.floor(nowMs / 1000);
  const skew = issuer.clockSkewSec;
  if (payload.iat !== undefined && typeof payload.iat !== 'number')
    return fail('malformed', 'claim iat: invalid', name);
  const nbf: unknown = payload.nbf;
  if (nbf !== undefined && (typeof nbf !== 'number' || nbf > now + skew))
    return fail('not-yet-valid', 'the token is not valid yet (nbf)', name);
  if (payload.iat !== undefined && payload.iat > now + skew)
    return fail('issued-in-future', 'the token was issued in the future (iat)', name);
  if (!hasExp) return undefined;
  const exp: unknown = payload.exp;
  if (typeof exp !== 'number') return fail('malformed', 'claim exp: invalid', name);
  if (exp <= now - skew) return fail('expired', 'the token has expired (exp)', name);
  return undefined;
}

function scopesOf(p: JWTPayload): ReadonlySet<string> {
  const out = new Set<string>();
  if (typeof p.scope === 'string') for (const s of p.scope.split(' ')) if (s) out.add(s);
  const scp = p.scp;
  if (Array.isArray(scp)) for (const s of scp) if (typeof s === 'string') out.add(s);
  if (typeof scp === 'string') for (const s of scp.split(' ')) if (s) out.add(s);
  return out;
}

/**
 * Does a verified token satisfy a route? `unknown-issuer` (401) when the route does not accept its issuer,
 * else the first unmet requirement (403), else undefined.
 */
export function checkRequirements(
  verified: VerifiedToken,
  req: CompiledRequirement,
): JwtFailure<'unknown-issuer' | RequirementFailureReason> | undefined {
  if (req.issuers !== undefined && !req.issuers.has(verified.issuer))
    return fail('unknown-issuer', `issuer ${verified.issuer} is not accepted on this route`, verified.issuer);
  for (const s of req.scopes)
    if (!verified.scopes.has(s)) return fail('insufficient-scope', `scope ${s} is required`, verified.issuer);
  if (req.roles !== undefined && !holdsAnyRole(req.rolesClaim(verified.claims), req.roles))
    return fail('missing-role', `one of the roles ${[...req.roles].join(', ')} is required`, verified.issuer);
  for (const c of req.claims)
    if (!claimMatches(c.get(verified.claims), c.value))
      return fail('claim-mismatch', `claim ${c.name} must be ${JSON.stringify(c.value)}`, verified.issuer);
  return undefined;
}

function holdsAnyRole(v: unknown, roles: ReadonlySet<string>): boolean {
  if (typeof v === 'string') return v.split(' ').some((r) => roles.has(r));
  if (Array.isArray(v)) return v.some((r) => typeof r === 'string' && roles.has(r));
  return false;
}

function claimMatches(v: unknown, want: string | number | boolean): boolean {
  if (Array.isArray(v)) return v.includes(want);
  return v === want;
}

/** The tenant id from the route's `tenantClaim` (a string or a number), if any. */
export function tenantOf(verified: VerifiedToken, tenantClaim: ClaimGetter | undefined): string | undefined {
  if (tenantClaim === undefined) return undefined;
  const v = tenantClaim(verified.claims);
  return typeof v === 'string' && v.length > 0 ? v : typeof v === 'number' ? String(v) : undefined;
}

/**
 * Headers for the upstream from the claims, appended to `out` as flat [name, value, ...] (the shape of
 * `RequestContext.upstreamHeaders`). A missing claim adds nothing; lists are joined with `,`, objects sent
 * as JSON; characters a header value cannot carry (controls, non-ASCII) are percent-encoded (UTF-8).
 * The caller removes incoming headers of these names (`CompiledRequirement.forwardedHeaderNames`) first.
 */
export function forwardHeaders(
  verified: VerifiedToken,
  forward: CompiledForward,
  out: string[] = [],
): string[] {
  for (const f of forward) {
    const v = f.get(verified.claims);
    if (v === undefined || v === null) continue;
    out.push(f.header, headerValue(v));
  }
  return out;
}

const UNSAFE_HEADER_CHARS = /[^\t\x20-\x7e]/;

function headerValue(v: unknown): string {
  const s =
    typeof v === 'string'
      ? v
      : Array.isArray(v) && v.every((x) => typeof x !== 'object' || x === null)
        ? v.join(',')
        : typeof v === 'object'
          ? JSON.stringify(v)
          : String(v);
  return UNSAFE_HEADER_CHARS.test(s) ? s.replace(/[^\t\x20-\x7e]+/gu, (m) => encodeURIComponent(m)) : s;
}

/** The token of an `Authorization: Bearer <token>` header (scheme case-insensitive), else undefined. */
export function bearerToken(authorization: string | undefined): string | undefined {
  if (authorization === undefined || authorization.length < 8) return undefined;
  if (authorization.charCodeAt(6) !== 32 || authorization.slice(0, 6).toLowerCase() !== 'bearer')
    return undefined;
  const t = authorization.slice(7).trim();
  return t.length > 0 ? t : undefined;
}

/** Suggested status of each reason: token problems 401, unmet requirements 403, no key set 503. */
export function failureStatus(reason: JwtFailureReason): 401 | 403 | 503 {
  if (reason === 'insufficient-scope' || reason === 'missing-role' || reason === 'claim-mismatch') return 403;
  if (reason === 'jwks-unavailable') return 503;
  return 401;
}

/**
 * `WWW-Authenticate` value for a refusal (RFC 6750 §3): `invalid_token` for a bad token,
 * `insufficient_scope` (with the scopes) for a missing scope, a bare challenge when no token came.
 */
export function wwwAuthenticate(
  reason: JwtFailureReason,
  realm = 'sluice',
  scopes?: readonly string[],
): string {
  if (reason === 'missing') return `Bearer realm="${realm}"`;
  if (reason === 'insufficient-scope')
    return `Bearer realm="${realm}", error="insufficient_scope"${scopes && scopes.length > 0 ? `, scope="${scopes.join(' ')}"` : ''}`;
  if (reason === 'missing-role' || reason === 'claim-mismatch')
    return `Bearer realm="${realm}", error="insufficient_scope"`;
  return `Bearer realm="${realm}", error="invalid_token"`;
}

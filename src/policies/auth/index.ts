/**
 * `auth`: who is calling. A route accepts API keys, bearer tokens (JWT), or either; the credential
 * the request carries decides which check runs (an `sk_` value is a key, any other bearer value a
 * token). API keys are checked synchronously against the in-memory snapshot; a token already
 * verified is a cache hit, also synchronous; only a new token's signature check may be async.
 */
import type { Config } from '../../config/schema.js';
import { Errors } from '../../errors/codes.js';
import { requirementErrors } from '../../identity/jwt/compile.js';
import type { EventBus } from '../../telemetry/events.js';
import type { PolicyFactory } from '../factory.js';
import { defaultKeyHeader, defaultPrincipalHeader, type IdentityDirectory, identifies } from '../identity.js';
import type { Denial, Policy, Principal, RequestContext, RequestVerdict } from '../policy.js';
import { type ApiKeyRule, checkApiKey, isApiKeyShaped } from './api-key.js';
import { RouteAuth } from './schema.js';

export const authPolicy: PolicyFactory<'auth', typeof RouteAuth> = {
  name: 'auth',
  key: 'auth',
  schema: RouteAuth,
  order: 300,
  check(r, at, config, out) {
    const a = r.auth;
    if (a === undefined) return;
    if ((a.apiKey === undefined || a.apiKey === false) && a.jwt === undefined)
      out.push({ path: [...at, 'auth'], message: 'accepts nothing: set `apiKey` and/or `jwt`' });
    if (a.jwt !== undefined)
      for (const e of requirementErrors(a.jwt, Object.keys(config.identity?.issuers ?? {})))
        out.push({ path: [...at, 'auth', 'jwt', ...e.path], message: e.message });
  },
  usesIdentity: (r) => r.auth !== undefined,
  headers(r, config) {
    // On every route with identity, also one with `tenant` alone: the principal header is Sluice's.
    if (!identifies(r)) return [];
    const principal = config.identity?.forward?.principal ?? defaultPrincipalHeader;
    return [principal, ...Object.values(r.auth?.jwt?.forward ?? {})].map((n) => n.toLowerCase());
  },
  compile(r, config, deps) {
    const a = r.auth;
    if (a === undefined) return undefined;
    const id = config.identity;
    if (a.jwt !== undefined && deps.jwt === undefined)
      // check() reports this with file and line at load; this guards compile-only callers.
      throw new Error(`route "${r.name}": auth.jwt needs identity.issuers`);
    return compileAuthPolicy({
      apiKey:
        a.apiKey === undefined || a.apiKey === false
          ? undefined
          : { scopes: a.apiKey === true ? [] : (a.apiKey.scopes ?? []) },
      jwt: a.jwt !== undefined ? deps.jwt!(r.name, a.jwt) : undefined,
      optional: a.optional ?? false,
      keyHeader: (id?.apiKeys?.header ?? defaultKeyHeader).toLowerCase(),
      principalHeader: principalHeaderOf(config),
      directory: deps.directory,
      events: deps.events,
    });
  },
};

function principalHeaderOf(config: Config): string {
  return (config.identity?.forward?.principal ?? defaultPrincipalHeader).toLowerCase();
}

/** A JWT principal plus the claim headers the route forwards (flat [name, value, ...]). */
export interface JwtAccept {
  principal: Extract<Principal, { kind: 'jwt' }>;
  forward: readonly string[];
}

/** The route's token check (verification + its requirements), compiled per route. */
export type JwtCheck = (token: string) => JwtAccept | Denial | Promise<JwtAccept | Denial>;

export interface AuthPolicyOptions {
  apiKey: ApiKeyRule | undefined;
  jwt: JwtCheck | undefined;
  optional: boolean;
  /** Lower-case header carrying API keys (default x-api-key). */
  keyHeader: string;
  principalHeader: string;
  directory: IdentityDirectory;
  events: EventBus;
}

const missingChallenge = { 'www-authenticate': 'Bearer realm="sluice"' };

export function compileAuthPolicy(o: AuthPolicyOptions): Policy {
  const { apiKey, jwt, optional, keyHeader, principalHeader, directory, events } = o;
  const fail = (ctx: RequestContext, d: Denial, principal?: string): Denial => {
    events.emit({
      type: 'auth_failed',
      at: new Date().toISOString(),
      requestId: ctx.requestId,
      route: ctx.route,
      code: d.def.code,
      reason: d.reason,
      client: ctx.client,
      ...(principal ? { principal } : {}),
    });
    return d;
  };
  const onJwt = (ctx: RequestContext, r: JwtAccept | Denial): RequestVerdict => {
    if ('def' in r) return fail(ctx, r);
    ctx.principal = r.principal;
    const h = ctx.upstreamHeaders;
    h.push(principalHeader, r.principal.id);
    for (let i = 0; i < r.forward.length; i++) h.push(r.forward[i]!);
    return undefined;
  };
  return {
    name: 'auth',
    onRequest(ctx) {
      const headers = ctx.req.headers;
      const authz = headers.authorization;
      let bearer: string | undefined;
      if (authz !== undefined) {
        // RFC 6750 §2.1: the scheme is case-insensitive; exactly one space before the credential.
        if (authz.length > 7 && authz.charCodeAt(6) === 32 && authz.slice(0, 6).toLowerCase() === 'bearer')
          bearer = authz.slice(7);
        else
          return fail(ctx, {
            def: Errors.tokenInvalid,
            detail: 'Authorization is not a Bearer credential',
            headers: invalidChallenge,
            reason: 'malformed',
          });
      }
      const headerKey = headers[keyHeader];
      // A key header and a Bearer credential Sluice could also check (a token on a route that
      // takes tokens, or a second key): Sluice would verify one and forward the other, which the
      // upstream may read as the caller. One credential per request. (On a key-only route a
      // non-key Bearer is not Sluice's to check: it is the upstream's, passed on as sent.)
      if (
        typeof headerKey === 'string' &&
        bearer !== undefined &&
        (jwt !== undefined || isApiKeyShaped(bearer))
      )
        return fail(ctx, {
          def: Errors.repeatedHeader,
          detail: `the request carries two credentials (${keyHeader} and Authorization: Bearer): send one`,
          reason: 'two-credentials',
        });
      const key =
        typeof headerKey === 'string'
          ? headerKey
          : bearer !== undefined && isApiKeyShaped(bearer)
            ? bearer
            : undefined;
      if (key !== undefined) {
        if (apiKey === undefined)
          return fail(ctx, {
            def: Errors.apiKeyInvalid,
            detail: 'this route does not accept API keys',
            headers: invalidChallenge,
            reason: 'key-not-accepted',
          });
        const r = checkApiKey(directory, key, apiKey, Date.now());
        if ('def' in r) return fail(ctx, r, keyIdOf(key));
        ctx.principal = r;
        ctx.upstreamHeaders.push(principalHeader, r.id);
        return undefined;
      }
      if (bearer !== undefined) {
        if (jwt === undefined)
          return fail(ctx, {
            def: Errors.tokenInvalid,
            detail: 'this route does not accept bearer tokens',
            headers: invalidChallenge,
            reason: 'token-not-accepted',
          });
        const r = jwt(bearer);
        if (r instanceof Promise) return r.then((x) => onJwt(ctx, x));
        return onJwt(ctx, r);
      }
      if (optional) return undefined;
      return fail(ctx, { def: Errors.authMissing, headers: missingChallenge, reason: 'missing' });
    },
  };
}

const invalidChallenge = { 'www-authenticate': 'Bearer realm="sluice", error="invalid_token"' };

/** The public id of `sk_<id>_<secret>` for events, when the value has that shape (never the secret). */
function keyIdOf(key: string): string | undefined {
  if (!key.startsWith('sk_')) return undefined;
  const end = key.indexOf('_', 3);
  return end > 3 && end - 3 <= 32 ? key.slice(3, end) : undefined;
}

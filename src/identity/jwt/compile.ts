/**
 * Issuer and route-requirement config turned, once per config version, into the plain numbers, sets and
 * getter functions the verifier and the checks read per request. Also the load-time checks the schema
 * cannot express (HMAC mixed with public-key algorithms, clock skew bound, duplicate issuers, ...).
 */
import { ms } from '../../config/units.js';
import type { JwksSource } from './jwks.js';
import type { JwtIssuerConfig, JwtIssuersConfig, JwtRequirementConfig } from './schema.js';

export const DEFAULT_ALGORITHMS = ['RS256', 'ES256'] as const;
export const DEFAULT_CLOCK_SKEW_MS = 30_000;
export const MAX_CLOCK_SKEW_MS = 300_000;
export const DEFAULT_MAX_TOKEN_BYTES = 8192;
export const JWKS_DEFAULTS = {
  refreshIntervalMs: 600_000,
  minRefetchIntervalMs: 30_000,
  timeoutMs: 5_000,
  staleForMs: 86_400_000,
} as const;

/** A problem with the config, at a path relative to what was checked (the caller prefixes its own). */
export interface JwtConfigError {
  path: (string | number)[];
  message: string;
}

export interface ResolvedIssuer {
  readonly name: string;
  readonly issuer: string;
  readonly audiences: readonly string[];
  readonly algorithms: ReadonlySet<string>;
  /** HMAC issuer: the secret as bytes, no key set. */
  readonly secret: Uint8Array | undefined;
  readonly clockSkewSec: number;
  /** Refuse tokens without `exp` (default); false for providers whose tokens never expire. */
  readonly requireExp: boolean;
  readonly maxTokenBytes: number;
  /** Key-set source (asymmetric issuers). */
  readonly jwks: JwksSource | undefined;
}

const isHmac = (alg: string) => alg.startsWith('HS');

export function issuerConfigErrors(issuers: JwtIssuersConfig): JwtConfigError[] {
  const out: JwtConfigError[] = [];
  const seen = new Map<string, string>();
  for (const [name, c] of Object.entries(issuers)) {
    const at = (...p: (string | number)[]) => [name, ...p];
    const prev = seen.get(c.issuer);
    if (prev !== undefined)
      out.push({
        path: at('issuer'),
        message: `issuer ${c.issuer} is also configured as "${prev}": a token's iss must pick one issuer`,
      });
    else seen.set(c.issuer, name);
    if (!urlOk(c.issuer)) out.push({ path: at('issuer'), message: 'not a valid http(s) URL' });
    const algs = c.algorithms ?? DEFAULT_ALGORITHMS;
    if ((algs as readonly string[]).includes('none'))
      out.push({ path: at('algorithms'), message: '"none" is never accepted: it means an unsigned token' });
    const hmac = algs.filter(isHmac);
    if (hmac.length > 0 && hmac.length < algs.length)
      out.push({
        path: at('algorithms'),
        message:
          'HMAC (HS*) and public-key algorithms cannot be mixed in one issuer (a public key must never serve as an HMAC secret): configure two issuers',
      });
    if (hmac.length > 0 && hmac.length === algs.length) {
      if (c.secret === undefined) out.push({ path: at('secret'), message: 'HMAC algorithms need `secret`' });
      if (c.jwksUri !== undefined || c.discovery === true || c.jwks !== undefined)
        out.push({
          path: at(c.jwksUri !== undefined ? 'jwksUri' : c.discovery === true ? 'discovery' : 'jwks'),
          message: 'an HMAC issuer verifies with `secret` and fetches no key set',
        });
    } else {
      if (c.secret !== undefined)
        out.push({ path: at('secret'), message: '`secret` is only for HMAC (HS*) algorithms' });
      if (c.jwksUri !== undefined && c.discovery === true)
        out.push({ path: at('discovery'), message: 'either `discovery: true` or `jwksUri`, not both' });
      if (c.jwksUri === undefined && c.discovery === false)
        out.push({ path: at('discovery'), message: 'without discovery, `jwksUri` is needed' });
      if (c.jwksUri !== undefined && !urlOk(c.jwksUri))
        out.push({ path: at('jwksUri'), message: 'not a valid http(s) URL' });
    }
    const skew = ms(c.clockSkew, DEFAULT_CLOCK_SKEW_MS);
    if (skew > MAX_CLOCK_SKEW_MS) out.push({ path: at('clockSkew'), message: 'at most 5m' });
    const j = jwksTimes(c);
    if (j.refreshIntervalMs < 1000) out.push({ path: at('jwks', 'refreshInterval'), message: 'at least 1s' });
    if (j.timeoutMs < 1) out.push({ path: at('jwks', 'timeout'), message: 'must be positive' });
    if (j.minRefetchIntervalMs > j.refreshIntervalMs)
      out.push({
        path: at('jwks', 'minRefetchInterval'),
        message: `longer than refreshInterval (${j.refreshIntervalMs} ms)`,
      });
  }
  return out;
}

export function requirementErrors(
  req: JwtRequirementConfig,
  issuerNames: Iterable<string>,
): JwtConfigError[] {
  const out: JwtConfigError[] = [];
  const known = new Set(issuerNames);
  if (known.size === 0) out.push({ path: [], message: 'no issuers are configured (`identity.issuers`)' });
  req.issuers?.forEach((n, i) => {
    if (!known.has(n)) out.push({ path: ['issuers', i], message: `unknown issuer "${n}"` });
  });
  const headers = new Map<string, string>();
  for (const [claim, header] of Object.entries(req.forward ?? {})) {
    const h = header.toLowerCase();
    const prev = headers.get(h);
    if (prev !== undefined)
      out.push({
        path: ['forward', claim],
        message: `header ${h} is already forwarded from claim "${prev}"`,
      });
    headers.set(h, claim);
    if (RESERVED_HEADERS.has(h))
      out.push({ path: ['forward', claim], message: `header ${h} cannot carry a claim` });
  }
  return out;
}

const RESERVED_HEADERS = new Set([
  'host',
  'connection',
  'content-length',
  'transfer-encoding',
  'te',
  'upgrade',
  'keep-alive',
  'proxy-connection',
  'trailer',
  'authorization',
  'cookie',
]);

function urlOk(s: string): boolean {
  try {
    const u = new URL(s);
    return u.protocol === 'http:' || u.protocol === 'https:';
  } catch {
    return false;
  }
}

function jwksTimes(c: JwtIssuerConfig) {
  return {
    refreshIntervalMs: ms(c.jwks?.refreshInterval, JWKS_DEFAULTS.refreshIntervalMs),
    minRefetchIntervalMs: ms(c.jwks?.minRefetchInterval, JWKS_DEFAULTS.minRefetchIntervalMs),
    timeoutMs: ms(c.jwks?.timeout, JWKS_DEFAULTS.timeoutMs),
    staleForMs: ms(c.jwks?.staleFor, JWKS_DEFAULTS.staleForMs),
  };
}

/** Checked config → what the verifier reads. Throws on a config `issuerConfigErrors` refuses. */
export function resolveIssuers(issuers: JwtIssuersConfig): ResolvedIssuer[] {
  const errors = issuerConfigErrors(issuers);
  if (errors.length > 0)
    throw new Error(`jwt issuers: ${errors.map((e) => `/${e.path.join('/')}: ${e.message}`).join('; ')}`);
  return Object.entries(issuers).map(([name, c]) => {
    const algorithms: string[] = [...(c.algorithms ?? DEFAULT_ALGORITHMS)];
    const hmac = algorithms.every(isHmac);
    return {
      name,
      issuer: c.issuer,
      audiences: [...c.audiences],
      algorithms: new Set(algorithms),
      secret: hmac ? new TextEncoder().encode(c.secret) : undefined,
      clockSkewSec: ms(c.clockSkew, DEFAULT_CLOCK_SKEW_MS) / 1000,
      requireExp: c.requireExp ?? true,
      maxTokenBytes: c.maxTokenBytes ?? DEFAULT_MAX_TOKEN_BYTES,
      jwks: hmac
        ? undefined
        : {
            name,
            issuer: c.issuer,
            jwksUri: c.discovery === true ? undefined : c.jwksUri,
            algorithms,
            ...jwksTimes(c),
          },
    };
  });
}

export type ClaimGetter = (claims: Readonly<Record<string, unknown>>) => unknown;

/**
 * A claim name or dotted path → a getter built once. The full name is tried first, so namespaced claims
 * (`https://example.com/roles`) work as well as nested ones (`realm_access.roles`).
 */
export function claimGetter(path: string): ClaimGetter {
  if (!path.includes('.')) return (c) => (Object.hasOwn(c, path) ? c[path] : undefined);
  const parts = path.split('.');
  return (c) => {
    if (Object.hasOwn(c, path)) return c[path];
    let v: unknown = c;
    for (const p of parts) {
      if (typeof v !== 'object' || v === null || !Object.hasOwn(v, p)) return undefined;
      v = (v as Record<string, unknown>)[p];
    }
    return v;
  };
}

export interface CompiledRequirement {
  /** Issuer names accepted; undefined: all. */
  readonly issuers: ReadonlySet<string> | undefined;
  readonly scopes: readonly string[];
  readonly roles: ReadonlySet<string> | undefined;
  readonly rolesClaim: ClaimGetter;
  readonly claims: readonly {
    readonly name: string;
    readonly get: ClaimGetter;
    readonly value: string | number | boolean;
  }[];
  readonly forward: CompiledForward;
  /** Lower-case names of the headers `forward` sets: remove them from the incoming request first. */
  readonly forwardedHeaderNames: readonly string[];
  readonly tenantClaim: ClaimGetter | undefined;
}

export type CompiledForward = readonly { readonly header: string; readonly get: ClaimGetter }[];

export function compileForward(forward: Readonly<Record<string, string>> | undefined): CompiledForward {
  return Object.entries(forward ?? {}).map(([claim, header]) => ({
    header: header.toLowerCase(),
    get: claimGetter(claim),
  }));
}

/** A route's `auth.jwt` → what `checkRequirements` and `forwardHeaders` read. */
export function compileRequirement(req: JwtRequirementConfig): CompiledRequirement {
  const forward = compileForward(req.forward);
  return {
    issuers: req.issuers ? new Set(req.issuers) : undefined,
    scopes: [...(req.scopes ?? [])],
    roles: req.roles && req.roles.length > 0 ? new Set(req.roles) : undefined,
    rolesClaim: claimGetter(req.rolesClaim ?? 'roles'),
    claims: Object.entries(req.claims ?? {}).map(([name, value]) => ({
      name,
      get: claimGetter(name),
      value,
    })),
    forward,
    forwardedHeaderNames: forward.map((f) => f.header),
    tenantClaim: req.tenantClaim ? claimGetter(req.tenantClaim) : undefined,
  };
}

/**
 * Config of bearer-token (JWT) verification: the issuers Sluice trusts (a named map, top level) and what
 * a route demands of a token (`routes[].auth.jwt`). TypeBox, so the same source gives the TypeScript types
 * and the published JSON Schema; checks the schema cannot express are in `issuerConfigErrors` and
 * `requirementErrors` (compile.ts).
 */
import { type Static, Type as T } from '@sinclair/typebox';
import { Duration, HeaderName } from '../../config/shared-schema.js';

/** JWS algorithms Sluice verifies. `none` is not among them: an unsigned token is never accepted. */
export const JwtAlgorithm = T.Union(
  [
    T.Literal('RS256'),
    T.Literal('RS384'),
    T.Literal('RS512'),
    T.Literal('PS256'),
    T.Literal('PS384'),
    T.Literal('PS512'),
    T.Literal('ES256'),
    T.Literal('ES384'),
    T.Literal('ES512'),
    T.Literal('EdDSA'),
    T.Literal('Ed25519'),
    T.Literal('HS256'),
    T.Literal('HS384'),
    T.Literal('HS512'),
  ],
  {
    description:
      'A JWS algorithm. `none` is never accepted. HMAC (`HS*`) needs `secret` and cannot be mixed with public-key algorithms in one issuer.',
  },
);

const ClaimPath = T.String({
  minLength: 1,
  maxLength: 256,
  description:
    'A claim name, or a dotted path into nested claims (`realm_access.roles`). A claim whose name itself contains dots (`https://example.com/roles`) is matched by its full name first.',
});

const Jwks = T.Object(
  {
    refreshInterval: T.Optional({
      ...Duration,
      description:
        'Longest time a fetched key set is used before it is refreshed; default 10m. A `Cache-Control: max-age` from the provider shortens it (never below 1m, nor above this). Refreshes run in the background before the set expires.',
    }),
    minRefetchInterval: T.Optional({
      ...Duration,
      description:
        'A token signed with a key id (`kid`) not in the set triggers a refetch at once, but at most one per this interval (concurrent misses share one fetch); default 30s.',
    }),
    timeout: T.Optional({
      ...Duration,
      description: 'Timeout of one discovery or key-set request; default 5s.',
    }),
    staleFor: T.Optional({
      ...Duration,
      description:
        'When the provider is unreachable, keep verifying with the last good key set for this long after it expired (stale-if-error); default 24h. After that, tokens of this issuer are refused (401 `jwks-unavailable`).',
    }),
  },
  {
    additionalProperties: false,
    description: 'How the key set (JWKS) of this issuer is fetched and cached.',
  },
);

export const JwtIssuer = T.Object(
  {
    issuer: T.String({
      pattern: '^https?://[^\\s]+$',
      description:
        "The issuer identifier, exactly as in the tokens' `iss` claim (and in the discovery document), e.g. `https://login.example.com/realms/main`.",
    }),
    discovery: T.Optional(
      T.Boolean({
        description:
          'Find the key set through OpenID Connect discovery (`<issuer>/.well-known/openid-configuration`, its `jwks_uri`); default true unless `jwksUri` is given.',
      }),
    ),
    jwksUri: T.Optional(
      T.String({
        pattern: '^https?://[^\\s]+$',
        description:
          'URL of the key set (JWKS), for providers without discovery. Excludes `discovery: true`.',
      }),
    ),
    secret: T.Optional(
      T.String({
        minLength: 32,
        description:
          'Shared secret for `HS256`/`HS384`/`HS512` issuers (at least 32 characters; use `${ENV}`). Only with HMAC algorithms, and then no key set is fetched.',
      }),
    ),
    audiences: T.Array(T.String({ minLength: 1 }), {
      minItems: 1,
      description:
        "Accepted audiences: the token's `aud` (a string or a list) must contain at least one of them (401 `wrong-audience`).",
    }),
    algorithms: T.Optional(
      T.Array(JwtAlgorithm, {
        minItems: 1,
        uniqueItems: true,
        description:
          "Algorithms accepted from this issuer; default `['RS256', 'ES256']`. A token's `alg` outside this list is refused (401 `bad-algorithm`) before any key is looked at.",
      }),
    ),
    clockSkew: T.Optional({
      ...Duration,
      description:
        'Clock difference tolerated when checking `exp`, `nbf` and `iat` (a token issued further in the future is refused: 401 `issued-in-future`); default 30s, at most 5m.',
    }),
    requireExp: T.Optional(
      T.Boolean({
        description:
          "Refuse tokens without an `exp` claim (401 `malformed`); default true. Set false only for a provider that mints tokens that never expire: such a token, once leaked, is valid until the issuer's key is rotated. An `exp` that is present is always checked.",
      }),
    ),
    maxTokenBytes: T.Optional(
      T.Integer({
        minimum: 128,
        maximum: 65536,
        description:
          'Longest token accepted, in bytes, checked before any parsing (401 `too-large`); default 8192. The limit of all issuers applies before the issuer is known: the largest of them.',
      }),
    ),
    jwks: T.Optional(Jwks),
  },
  {
    additionalProperties: false,
    description:
      'A token issuer Sluice trusts (an OpenID Connect provider or any JWT issuer with a key set).',
  },
);

export const JwtIssuers = T.Record(T.String({ pattern: '^[A-Za-z0-9][A-Za-z0-9_.-]*$' }), JwtIssuer, {
  description:
    'Token issuers by name. Routes name the ones they accept in `auth.jwt.issuers`; a token is matched to an issuer by its `iss` claim.',
});

export const JwtRequirement = T.Object(
  {
    issuers: T.Optional(
      T.Array(T.String({ minLength: 1 }), {
        minItems: 1,
        uniqueItems: true,
        description:
          'Names of the issuers (`identity.issuers`) whose tokens this route accepts; default: all of them. A token from another one gets 401 `unknown-issuer`.',
      }),
    ),
    scopes: T.Optional(
      T.Array(T.String({ minLength: 1, pattern: '^[\\x21\\x23-\\x5B\\x5D-\\x7E]+$' }), {
        description:
          'Scopes the token must hold, all of them, from its `scope` claim (space-separated) or `scp` (a list): 403 `insufficient-scope`.',
      }),
    ),
    roles: T.Optional(
      T.Array(T.String({ minLength: 1 }), {
        description:
          'Roles of which the token must hold at least one, read from `rolesClaim`: 403 `missing-role`.',
      }),
    ),
    rolesClaim: T.Optional({
      ...ClaimPath,
      description:
        'Where the roles are: a claim name or dotted path (`realm_access.roles`) holding a list or a space-separated string; default `roles`.',
    }),
    claims: T.Optional(
      T.Record(T.String({ minLength: 1 }), T.Union([T.String(), T.Number(), T.Boolean()]), {
        description:
          'Claim values required, all of them, e.g. `{tenant_tier: gold}` (keys are claim names or dotted paths). A claim that is a list matches when it contains the value: 403 `claim-mismatch`.',
      }),
    ),
    forward: T.Optional(
      T.Record(T.String({ minLength: 1 }), HeaderName, {
        description:
          'Claims sent to the upstream as request headers, claim (name or dotted path) → header, e.g. `{sub: x-sluice-subject}`. Incoming headers of these names are always removed, so a client cannot forge them; a missing claim sends no header; lists are joined with `,`, objects sent as JSON.',
      }),
    ),
    tenantClaim: T.Optional({
      ...ClaimPath,
      description: 'Claim that holds the tenant id (for `tenant.from: [jwt]`).',
    }),
  },
  {
    additionalProperties: false,
    description:
      'Accept bearer tokens (`Authorization: Bearer <jwt>`) from configured issuers, and what they must hold. Token failures answer 401 with `WWW-Authenticate`, unmet requirements 403.',
  },
);

export type JwtAlgorithmName = Static<typeof JwtAlgorithm>;
export type JwtIssuerConfig = Static<typeof JwtIssuer>;
export type JwtIssuersConfig = Static<typeof JwtIssuers>;
export type JwtRequirementConfig = Static<typeof JwtRequirement>;
export type JwksConfig = Static<typeof Jwks>;

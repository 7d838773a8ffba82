/**
 * Bearer-token (JWT/OIDC) verification: issuers and their key sets (JWKS), signatures, claims and
 * the verified-token cache. Not a policy: the route's `auth` policy (src/policies/auth/jwt-check.ts)
 * and the admin API's OIDC login (src/admin/oidc.ts) both verify through it.
 */
export {
  type ClaimGetter,
  type CompiledForward,
  type CompiledRequirement,
  claimGetter,
  compileForward,
  compileRequirement,
  issuerConfigErrors,
  type JwtConfigError,
  type ResolvedIssuer,
  requirementErrors,
  resolveIssuers,
} from './compile.js';
export {
  JwksCache,
  type JwksDeps,
  type JwksFetchResult,
  type JwksMetricsSink,
  JwksPool,
  type JwksSource,
  type JwksState,
  type UnknownKidOutcome,
} from './jwks.js';
export * from './schema.js';
export * from './verify.js';

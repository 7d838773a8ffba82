/** Bearer-token (JWT/OIDC) verification: what the auth policy wires into the request pipeline. */
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

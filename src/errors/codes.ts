/**
 * The one registry of stable error codes. Every refusal Sluice makes comes from here;
 * `docs/errors.md` is generated from this table (scripts/render-generated.ts) and a test keeps them equal.
 * Codes are stable: never renumber, only add.
 */
export interface ErrorDef {
  readonly code: string;
  readonly status: number;
  readonly title: string;
  /** What it means for the caller and what to do about it (rendered in docs/errors.md). */
  readonly help: string;
}

function def(code: string, status: number, title: string, help: string): ErrorDef {
  return { code, status, title, help };
}

export const Errors = {
  malformedRequest: def(
    'SLUICE-REQ-001',
    400,
    'Malformed request',
    'The request could not be parsed as HTTP/1.1 (bad request line, bad chunk framing, invalid method).',
  ),
  ambiguousFraming: def(
    'SLUICE-REQ-002',
    400,
    'Ambiguous message framing',
    'The request carried both Content-Length and Transfer-Encoding, more than one or an invalid Content-Length, a Transfer-Encoding other than a single `chunked`, Transfer-Encoding in an HTTP/1.0 request, or a look-alike such as `Transfer_Encoding`. Sluice refuses instead of guessing (request smuggling), closes the connection, and never routes a request pipelined behind it.',
  ),
  invalidHeader: def(
    'SLUICE-REQ-003',
    400,
    'Invalid header',
    'A header name or value contained bytes HTTP does not allow, a header line ended in a bare LF or used obsolete line folding (obs-fold), or the Host header was missing (HTTP/1.1), repeated, or not a `host[:port]`. The connection is closed.',
  ),
  invalidPath: def(
    'SLUICE-REQ-004',
    400,
    'Invalid request path',
    'The path escapes the root with dot-segments, contains a backslash, a NUL or other bytes a path cannot hold, a dot-segment with parameters (`..;`, `..%3B`), invalid percent-encoding, or an encoded slash where the listener rejects them (where it keeps them, a dot-segment between them); or the request target is neither a path nor an absolute URL with a valid host. See docs/routing.md#path-normalisation.',
  ),
  bodyTooLarge: def(
    'SLUICE-REQ-005',
    413,
    'Request body too large',
    "The request body exceeds the route's `maxBodyBytes` (or the listener default).",
  ),
  headersTooLarge: def(
    'SLUICE-REQ-006',
    431,
    'Request header fields too large',
    'The request headers exceed `listen.maxHeaderBytes`.',
  ),
  requestTimeout: def(
    'SLUICE-REQ-007',
    408,
    'Request timeout',
    'The client did not send the complete request headers within `listen.timeouts.requestHeaders`.',
  ),
  requestBodyTimeout: def(
    'SLUICE-REQ-008',
    408,
    'Request body timeout',
    'The client stopped sending its request body for longer than `listen.timeouts.requestBody`. The upstream exchange is aborted; if the response had already started, the connection is reset instead.',
  ),
  repeatedHeader: def(
    'SLUICE-REQ-009',
    400,
    'Repeated credential header',
    'The request carried more than one `Authorization`, `Proxy-Authorization` or API-key header (`x-api-key`, or `identity.apiKeys.header`), in any letter case; an `Authorization` that holds more than one credential (`Bearer a, Bearer b`); an API-key header holding a comma-separated list; or, on a route with `auth`, both an API-key header and a Bearer credential Sluice could check. Sluice would check one copy while an upstream that reads another (many frameworks keep the last) would see an identity nobody verified, so it refuses on every route, with or without `auth`, and nothing reaches the upstream. Send each credential once. See docs/security.md#headers-that-must-be-single.',
  ),
  noRoute: def(
    'SLUICE-ROUTE-001',
    404,
    'No route',
    'No route matches the host, method, path and headers of the request; or the route is enabled by a feature flag (`flag`) that is off for this request, which answers exactly as no route (docs/flags.md#flag-gated-routes).',
  ),
  upstreamConnect: def(
    'SLUICE-UPSTREAM-001',
    502,
    'Upstream connection failed',
    'Sluice could not open a connection to the upstream target (refused, unreachable, DNS failure).',
  ),
  upstreamProtocol: def(
    'SLUICE-UPSTREAM-002',
    502,
    'Upstream failed',
    'The upstream closed or reset the connection, or answered with invalid HTTP, before a response was complete.',
  ),
  upstreamConnectTimeout: def(
    'SLUICE-UPSTREAM-003',
    504,
    'Upstream connect timeout',
    'The connection to the upstream was not established within `timeouts.connect`.',
  ),
  upstreamFirstByteTimeout: def(
    'SLUICE-UPSTREAM-004',
    504,
    'Upstream response timeout',
    'The upstream did not send response headers within `timeouts.firstByte`.',
  ),
  upstreamTotalTimeout: def(
    'SLUICE-UPSTREAM-005',
    504,
    'Upstream total timeout',
    'The exchange did not complete within `timeouts.total`.',
  ),
  upstreamIdleTimeout: def(
    'SLUICE-UPSTREAM-006',
    504,
    'Upstream idle timeout',
    'The upstream stopped sending the response body for longer than `timeouts.idle`. If the response had already started, the connection to the client is reset instead, so a truncated body never looks complete.',
  ),
  noTarget: def(
    'SLUICE-UPSTREAM-007',
    503,
    'No upstream target available',
    'The upstream group has no target that can take the request.',
  ),
  upgradeRefused: def(
    'SLUICE-UPSTREAM-008',
    502,
    'Upgrade refused by upstream',
    'The upstream did not accept the WebSocket upgrade (it did not answer 101 Switching Protocols).',
  ),
  upstreamTls: def(
    'SLUICE-UPSTREAM-009',
    502,
    'Upstream TLS failed',
    "The TLS handshake with the upstream failed: its certificate does not chain to the upstream's `tls.ca` (or the default CAs), has expired, or does not name the target (or `tls.serverName`); or the upstream refused the handshake (no or an unknown client certificate, no common TLS version). The log line says which.",
  ),
  upgradeNotAllowed: def(
    'SLUICE-ROUTE-002',
    400,
    'Upgrade not allowed',
    'The route does not allow protocol upgrades (`websocket: false`) or the Upgrade header names a protocol other than websocket.',
  ),
  routeConcurrency: def(
    'SLUICE-ROUTE-003',
    503,
    'Route concurrency limit',
    'The route already has `concurrency.max` requests in flight and its queue was full (`concurrency.queue`) or the request waited longer than `concurrency.queueTimeout`. Retry after the `retry-after` seconds.',
  ),
  targetConcurrency: def(
    'SLUICE-UPSTREAM-010',
    503,
    'Target concurrency limit',
    'The upstream target picked for the request already has `targetConcurrency.max` requests in flight and its queue was full (`targetConcurrency.queue`) or the request waited longer than `targetConcurrency.queueTimeout`. Retry after the `retry-after` seconds.',
  ),
  circuitOpen: def(
    'SLUICE-UPSTREAM-011',
    503,
    'Circuit open',
    'Every target of the upstream group is out and at least one because its circuit breaker is open (`breaker`): the targets failed too often and get no traffic for `breaker.openFor`, then a few trial requests. Set a route `fallback` to answer something else. Retry after the `retry-after` seconds.',
  ),
  adminUnauthorized: def(
    'SLUICE-ADMIN-001',
    401,
    'Admin authentication required',
    'The admin API needs `Authorization: Bearer <token>`: a bootstrap token (`SLUICE_ADMIN_TOKEN`, or an entry of `SLUICE_ADMIN_TOKENS`) or a valid token from the OIDC issuer of `admin.auth`. With neither configured, the admin API refuses every request (health, metrics and `/openapi.json` stay open). See docs/admin-api.md.',
  ),
  adminNotFound: def('SLUICE-ADMIN-002', 404, 'Not found', 'No admin endpoint at this path.'),
  adminForbidden: def(
    'SLUICE-ADMIN-003',
    403,
    'Role lacks permission',
    'The admin credentials are valid but none of their roles grants the permission this endpoint needs (the `permission` member names it). See the permission matrix in docs/admin-api.md.',
  ),
  adminNoStore: def(
    'SLUICE-ADMIN-004',
    503,
    'No store configured',
    'Tenants, API keys, releases and the change log live in the store, and this gateway runs without one. Configure `store` (or `DATABASE_URL`), or routes that use `auth` or `tenant`.',
  ),
  adminInvalidRequest: def(
    'SLUICE-ADMIN-005',
    400,
    'Invalid admin request',
    "The request does not match the endpoint's schema (see `/openapi.json`): a missing or unknown field, a wrong type, malformed JSON. The `errors` member lists each problem with its location.",
  ),
  adminResourceNotFound: def(
    'SLUICE-ADMIN-006',
    404,
    'Resource not found',
    'No tenant, API key or release with this id or name exists (it may have been deleted; a release exists once the config file declares it).',
  ),
  adminConflict: def(
    'SLUICE-ADMIN-007',
    409,
    'Conflict',
    'The request conflicts with what exists: a tenant with this id already exists (pick another id, or change the existing one with PATCH), or the release is in a state that does not allow the action (the detail names its state and the states that allow it), or it kept changing under the request (try again).',
  ),
  auditArchived: def(
    'SLUICE-AUDIT-002',
    410,
    'Audit entries archived',
    'The entries, checkpoint or proof asked for lie below the audit store’s minimum index: retention (`audit.retention`) archived them as bundle files in `audit.retention.archive.dir` and pruned them from the store. The `minIndex` member gives the first index the store still holds and `archive` the file, when known; verify that file offline with `sluice audit verify --bundle FILE --key VKEY`.',
  ),
  configInvalid: def(
    'SLUICE-CONFIG-001',
    422,
    'Invalid configuration',
    'A reload was refused because the new configuration is invalid; the running configuration stays. The `errors` member lists every error with file, line, column, path and reason.',
  ),
  authMissing: def(
    'SLUICE-AUTH-001',
    401,
    'Authentication required',
    'The route needs credentials (`auth`) and the request carried none: send an API key (`x-api-key`, or `Authorization: Bearer sk_...`) or a bearer token from an accepted issuer. The `WWW-Authenticate` header names the scheme.',
  ),
  tokenInvalid: def(
    'SLUICE-AUTH-002',
    401,
    'Invalid token',
    'The bearer token is not a JWT Sluice accepts: malformed (including a token without `exp` from an issuer that does not set `requireExp: false`), larger than `maxTokenBytes`, from an issuer the route does not accept, signed with an algorithm the issuer does not allow (never `none`), with a key id the issuer does not publish, or with a signature that does not verify. Get a new token from the issuer.',
  ),
  tokenExpired: def(
    'SLUICE-AUTH-003',
    401,
    'Token expired or not yet valid',
    "The token is past its `exp`, before its `nbf`, or issued in the future (`iat` later than now), beyond the issuer's allowed clock skew. Get a new token; check the clocks if it keeps happening.",
  ),
  tokenAudience: def(
    'SLUICE-AUTH-004',
    401,
    'Token audience not accepted',
    "The token's `aud` names none of the issuer's configured `audiences`: it was issued for another service.",
  ),
  keysUnavailable: def(
    'SLUICE-AUTH-005',
    503,
    'Token keys unavailable',
    "Sluice could not get the issuer's signing keys (JWKS) and has no earlier set to use, so it cannot check the token. Retry later; operators should check the `sluice_jwks_*` metrics and the issuer.",
  ),
  apiKeyInvalid: def(
    'SLUICE-AUTH-006',
    401,
    'Invalid API key',
    'The API key is malformed or unknown. Keys look like `sk_<id>_<secret>`; the id part identifies a key in logs and the admin API without revealing it.',
  ),
  apiKeyRevoked: def(
    'SLUICE-AUTH-007',
    401,
    'API key expired or revoked',
    'The API key was revoked, or its expiry has passed. Ask the tenant administrator for a new key.',
  ),
  insufficientScope: def(
    'SLUICE-AUTH-008',
    403,
    'Insufficient scope',
    'The credentials are valid but lack a scope the route requires (`auth.jwt.scopes` or `auth.apiKey.scopes`). `WWW-Authenticate` carries `error="insufficient_scope"` and the scopes needed.',
  ),
  claimRequirement: def(
    'SLUICE-AUTH-009',
    403,
    'Role or claim requirement not met',
    'The token is valid but has none of the roles the route accepts (`auth.jwt.roles`), or a claim differs from the value the route requires (`auth.jwt.claims`).',
  ),
  tenantUnresolved: def(
    'SLUICE-TENANT-001',
    403,
    'Tenant unknown',
    "The route needs a tenant (`tenant.required`) and none could be found from the request's credentials or host (`tenant.from`), or the one found does not exist.",
  ),
  tenantSuspended: def(
    'SLUICE-TENANT-002',
    403,
    'Tenant suspended',
    'The tenant the request belongs to is suspended; its requests are refused until an operator resumes it (`sluice tenants resume`).',
  ),
  ipDenied: def(
    'SLUICE-IP-001',
    403,
    'Address not allowed',
    "The client address is not allowed on this route: it is in the route's `ipFilter.deny`, or the route has an `ipFilter.allow` list that does not include it. Behind a proxy, the address is the `X-Forwarded-For` client only when the proxy is in `listen.trustedProxies`.",
  ),
  corsRefused: def(
    'SLUICE-CORS-001',
    403,
    'CORS preflight refused',
    "A CORS preflight (OPTIONS with `Access-Control-Request-Method`) asked for an origin, method or request header the route's `cors` does not allow. The answer carries no allow headers, so the browser does not send the request; the detail names what was refused. Only preflights are refused: other requests from a disallowed origin pass without CORS headers (the browser hides their response).",
  ),
  quotaExceeded: def(
    'SLUICE-QUOTA-001',
    429,
    'Quota exceeded',
    "The tenant has used its quota for the current UTC day or month (`quotas.define`, the tenant's plan, or its `quota.<name>.daily` / `.monthly` labels). `Retry-After` gives the seconds until the period resets; the detail names the quota and the period. Refused requests are not counted. See docs/quotas.md.",
  ),
  quotaUnavailable: def(
    'SLUICE-QUOTA-002',
    503,
    'Quota counters unavailable',
    'Redis, which holds the quota and budget counters shared by every replica, is unreachable and the quota (or `budgets`) is set to `onRedisError: closed`, so the request is refused rather than counted by this replica alone. It clears without a restart when Redis answers again.',
  ),
  budgetExhausted: def(
    'SLUICE-BUDGET-001',
    402,
    'Cost budget exhausted',
    "The tenant's spend with this provider this UTC month has reached its budget (`budgets`, the tenant's plan, or its `budget.<provider>` label) and the budget blocks (`action: block`). 402, not 429: waiting and retrying does not help until the month ends or the budget is raised, so clients that retry 429s automatically should not. `Retry-After` gives the seconds until the month ends. See docs/quotas.md.",
  ),
  rateLimited: def(
    'SLUICE-LIMIT-001',
    429,
    'Rate limit exceeded',
    "A rate limit of the route (`rateLimit`, its tenant's plan in `limits.plans`, or the tenant's `ratelimit.<name>` label) refused the request. `Retry-After` gives the seconds until it would pass, `RateLimit-Policy` and `RateLimit` the limits and what remains of each; the detail names the limit. A refused request consumes nothing. See docs/rate-limits.md.",
  ),
  rateLimitUnavailable: def(
    'SLUICE-LIMIT-002',
    503,
    'Rate limit unavailable',
    'Redis, which holds the rate-limit counters shared by every replica, is unreachable and a limit of the route is set to `onRedisError: closed`, so the request is refused rather than counted by this replica alone. It clears without a restart when Redis answers again (a breaker retries it every `redis.breaker.openFor`).',
  ),
  residencyNoTarget: def(
    'SLUICE-RESIDENCY-001',
    503,
    "No target in the tenant's region",
    "The route is residency-bound (`residency`) and no upstream target in the tenant's allowed regions (its `region`, widened by its `residency.regions` label) can take the request: those targets are down, ejected or breaker-open, or none is configured, or the tenant has no region. Sluice refuses rather than send the request to another region, through failover, fallback groups, retries, a release's candidate and mirroring alike; the route's static `fallback` does not answer it either. 503, not 451: it is the gateway's placement that has no target now (a region's targets coming back clears it), not a resource withheld for legal reasons, and 451 responses are cacheable by default (RFC 7725) where this one must not be. Every refusal emits a `residency_refused` event. See docs/residency.md.",
  ),
  residencyNoTenant: def(
    'SLUICE-RESIDENCY-002',
    403,
    'No tenant for a residency-bound route',
    "The route is residency-bound (`residency`): a request is placed by its tenant's region, and this one belongs to no tenant (no credentials or host named one). It is refused rather than sent anywhere. Every refusal emits a `residency_refused` event. See docs/residency.md.",
  ),
  auditUnrecorded: def(
    'SLUICE-AUDIT-001',
    503,
    'Audit record not written',
    'The request was to be refused (an auth failure, a rate limit, a residency refusal) and the refusal is an audited event, but the audit outbox could not write it to disk (a write or fsync failed, or took longer than 5 s). Sluice answers this instead of a refusal it has no record of; the request was not served either way. Operators: the log line `audit_outbox_write_failed` or `audit_outbox_write_slow` says why (a full or failing disk under `audit.outbox.dir`). See docs/audit-log.md.',
  ),
  placementNoTarget: def(
    'SLUICE-PLACEMENT-001',
    503,
    "No target in the tenant's placement",
    "The route is placement-bound (`placement`, e.g. `placement: shard`) and no upstream target of the tenant's placement (the targets whose `labels` match the tenant's `placement.<key>` labels, and its regions when the route is residency-bound too) can take the request: those targets are down, ejected or breaker-open, or none is configured, or the tenant has no such label. Sluice refuses rather than send the request to another shard, through failover, fallback groups, retries, a release's candidate and mirroring alike; the route's static `fallback` does not answer it either. 503: the gateway has no placement for the request now (the shard's targets coming back clears it). Every refusal emits a `placement_refused` event. See docs/placement.md.",
  ),
  placementNoTenant: def(
    'SLUICE-PLACEMENT-002',
    403,
    'No tenant for a placement-bound route',
    "The route is placement-bound (`placement`): a request is placed by its tenant's placement labels, and this one belongs to no tenant (no credentials or host named one). It is refused rather than sent anywhere. Every refusal emits a `placement_refused` event. See docs/placement.md.",
  ),
  internal: def(
    'SLUICE-GW-001',
    500,
    'Internal gateway error',
    'An unexpected error inside Sluice; the request id identifies it in the logs.',
  ),
} as const satisfies Record<string, ErrorDef>;

export type ErrorName = keyof typeof Errors;

/**
 * The problem `type` of each code is a URN, `urn:sluice:error:<area>-<nnn>` (SLUICE-AUTH-001 →
 * `urn:sluice:error:auth-001`), not a URL. RFC 9457 §3.1.1 lets the type be a URI that is not
 * dereferenced, and clients should not fetch it anyway: the project controls no domain, and a URL
 * under a domain or organisation it does not own (as the old github.com/sluice-gateway links were)
 * could be taken by someone else and serve whatever they like to anyone who follows it from an
 * error. A URN cannot break or be taken over, and it stays the same across versions and forks.
 * The human documentation of each type is its section of docs/errors.md (`docsAnchor`), which
 * ships with every copy of Sluice and names the URN it documents.
 */
export const typePrefix = 'urn:sluice:error:';

export function typeUri(e: ErrorDef): string {
  return `${typePrefix}${e.code.slice('SLUICE-'.length).toLowerCase()}`;
}

/** The section of docs/errors.md (relative to docs/) that documents `e`. */
export function docsAnchor(e: ErrorDef): string {
  return `errors.md#${e.code.toLowerCase()}`;
}

/**
 * The configuration schema: one TypeBox source for the TypeScript types and the published
 * JSON Schema (`schema/sluice.schema.json`, written by `npm run generate`; a test keeps it equal).
 */

import { type Static, Type as T, type TSchema } from '@sinclair/typebox';
import { AnomalySettings } from '../anomaly/schema.js';
import { AuditSettings } from '../audit/schema.js';
import { GrpcRouteSchema } from '../dataplane/grpc-schema.js';
import { ReleasesSettings } from '../delivery/releases/schema.js';
import { JwtIssuers } from '../identity/jwt/schema.js';
import { IdentitySettings } from '../policies/auth/schema.js';
import { CacheSettings } from '../policies/cache/schema.js';
import { BudgetsSettings } from '../policies/cost/schema.js';
import { QuotasSettings } from '../policies/quota/schema.js';
import { LimitsSettings } from '../policies/rate-limit/schema.js';
import { routePolicyProperties } from '../policies/registry.js';
import { RedisSettings } from '../redis/schema.js';
import { SloSchema } from '../slo/schema.js';
import { MetricsSettings, OtlpMetricsSettings } from '../telemetry/metrics-schema.js';
import { exchangeTimeouts, Upstream } from '../upstreams/schema.js';
import { concurrency, Duration, HeaderName, PemFile, Size, TlsVersion } from './shared-schema.js';

/** A route overrides the per-exchange timeouts; connecting belongs to the upstream's pool. */
const RouteTimeouts = T.Object(exchangeTimeouts, {
  additionalProperties: false,
  description: "Override the upstream's firstByte, idle and total timeouts for this route.",
});

const HeaderOps = T.Object(
  {
    set: T.Optional(
      T.Record(T.String(), T.String(), { description: 'Headers set (replacing any with the same name).' }),
    ),
    add: T.Optional(
      T.Record(T.String(), T.String(), { description: 'Headers appended (kept beside existing ones).' }),
    ),
    remove: T.Optional(T.Array(HeaderName, { description: 'Header names removed.' })),
  },
  { additionalProperties: false },
);

const ListenCertificate = T.Object(
  {
    cert: PemFile('Certificate file, leaf first, then its chain'),
    key: PemFile('Private key file of the certificate'),
    serverNames: T.Optional(
      T.Array(T.String({ pattern: '^(\\*\\.)?[A-Za-z0-9.-]+$' }), {
        description:
          'Server names (SNI) this certificate answers: exact names or `*.example.com` wildcards (one label). Default: the DNS names of the certificate (subjectAltName, else its CN).',
      }),
    ),
    default: T.Optional(
      T.Boolean({
        description:
          'Serve this certificate to clients that send no server name or one no certificate matches; default: the first certificate.',
      }),
    ),
  },
  { additionalProperties: false },
);

const ListenTls = T.Object(
  {
    certificates: T.Array(ListenCertificate, {
      minItems: 1,
      description:
        'Certificates chosen by the server name the client asks for (SNI). The files are watched: a changed certificate is served to new connections without a restart; a broken one is logged and the previous one stays.',
    }),
    minVersion: T.Optional(TlsVersion),
    ciphers: T.Optional(
      T.String({
        minLength: 1,
        description:
          "OpenSSL cipher list (TLS 1.2 names and TLS 1.3 suites, `:`-separated); default: Node.js's default list.",
      }),
    ),
  },
  {
    additionalProperties: false,
    description:
      'TLS on the public listener. HTTP/2 and HTTP/1.1 are both offered (ALPN); the routes, guard and policies are the same on both (WebSocket needs HTTP/1.1). Certificates, `minVersion` and `ciphers` apply to new connections on reload, and certificate files are reloaded when they change; turning TLS on or off needs a restart.',
  },
);

const Listen = T.Object(
  {
    host: T.String({ default: '0.0.0.0', description: 'Address the public listener binds.' }),
    port: T.Integer({
      minimum: 0,
      maximum: 65535,
      description: 'Port of the public listener (0 picks a free one).',
    }),
    tls: T.Optional(ListenTls),
    trustedProxies: T.Optional(
      T.Array(T.String(), {
        description:
          'CIDRs (IPv4 or IPv6) of proxies in front of Sluice whose X-Forwarded-* and Forwarded headers are trusted and extended; from anyone else those headers are replaced.',
      }),
    ),
    maxHeaderBytes: T.Optional({
      ...Size,
      description: 'Largest request head (request line and headers); default 16kb. 431 beyond.',
    }),
    maxBodyBytes: T.Optional({
      ...Size,
      description:
        'Largest request body for every route (a route may set its own); default 10mb. 413 beyond.',
    }),
    paths: T.Optional(
      T.Object(
        {
          encodedSlashes: T.Optional(
            T.Union([T.Literal('reject'), T.Literal('keep')], {
              description:
                '`reject` (default): a `%2F` or `%5C` in the path is refused with 400. `keep`: kept encoded and opaque (not a segment separator) for matching and forwarding.',
            }),
          ),
          mergeSlashes: T.Optional(T.Boolean({ description: 'Merge runs of `/` into one (default true).' })),
          matrixParams: T.Optional(
            T.Union([T.Literal('reject'), T.Literal('keep')], {
              description:
                '`reject` (default): a raw `;` in the path is refused with 400, because servlet-style upstreams strip `;params` from segments and would see another path than the one Sluice routed (`/admin;x/secret` → `/admin/secret`). `keep`: forwarded unchanged, for upstreams that use matrix parameters; then give every route the same auth, or none that a `;` could slip past. An encoded `%3B` is data and always allowed.',
            }),
          ),
        },
        { additionalProperties: false },
      ),
    ),
    timeouts: T.Optional(
      T.Object(
        {
          requestHeaders: T.Optional({
            ...Duration,
            description: 'Time a client has to send the whole request head; default 30s. 408 beyond.',
          }),
          requestBody: T.Optional({
            ...Duration,
            description:
              'Longest gap between two chunks of a request body the client is sending; default 60s. 408 SLUICE-REQ-008 (or a reset once the response started).',
          }),
          keepAlive: T.Optional({
            ...Duration,
            description: 'How long an idle client connection is kept open; default 65s.',
          }),
        },
        {
          additionalProperties: false,
          description:
            'Client-side timeouts (requestHeaders and keepAlive apply after a restart, requestBody on reload).',
        },
      ),
    ),
    drain: T.Optional(
      T.Object(
        {
          delay: T.Optional({
            ...Duration,
            description: 'Wait after readiness turns false, before closing the listener; default 0.',
          }),
          timeout: T.Optional({
            ...Duration,
            description: 'Longest wait for in-flight requests and streams; default 30s, then they are cut.',
          }),
        },
        {
          additionalProperties: false,
          description:
            'On SIGTERM: readiness turns false, Sluice waits `delay` (for load balancers to notice), stops accepting, and waits up to `timeout` for in-flight requests and streams.',
        },
      ),
    ),
  },
  { additionalProperties: false },
);

const Admin = T.Object(
  {
    host: T.String({
      default: '127.0.0.1',
      description: 'Address of the admin listener (health, metrics, admin API).',
    }),
    port: T.Integer({
      minimum: 0,
      maximum: 65535,
      description: 'Port of the admin listener (default 9901).',
    }),
    readiness: T.Optional(
      T.Object(
        {
          requireHealthyUpstreams: T.Optional(
            T.Boolean({
              description:
                'Answer /health/ready with 503 while any route’s upstream has no available target (default true). Turn off when a dead backend must not take the gateway out of its load balancer.',
            }),
          ),
        },
        { additionalProperties: false },
      ),
    ),
    auth: T.Optional(
      T.Object(
        {
          issuer: T.String({
            minLength: 1,
            description: 'Name of an entry of `identity.issuers` whose tokens may call the admin API.',
          }),
          audience: T.Optional(
            T.String({
              minLength: 1,
              description:
                "The admin API's own audience; replaces the issuer's `audiences` for admin tokens.",
            }),
          ),
          rolesClaim: T.Optional(
            T.String({
              minLength: 1,
              description:
                'Claim (or dotted path) holding the admin roles (`viewer`, `operator`, `security`, `auditor`, `admin`); default `sluice_roles`.',
            }),
          ),
          console: T.Optional(
            T.Object(
              {
                clientId: T.String({
                  minLength: 1,
                  maxLength: 256,
                  description:
                    "The console's client id at the issuer: a public client (no secret; PKCE), redirect URI `<admin origin>/console/callback`.",
                }),
                scopes: T.Optional(
                  T.Array(T.String({ minLength: 1, maxLength: 256, pattern: '^[!#-\\[\\]-~]+$' }), {
                    minItems: 1,
                    maxItems: 32,
                    description:
                      'Scopes the console asks for; default `["openid"]`. `openid` is required (the ID token carries the nonce). Entra ID: add `api://<app>/.default` (or your API scope) so the access token is for the admin API.',
                  }),
                ),
                resource: T.Optional(
                  T.String({
                    pattern: '^https?://[^\\s]+$',
                    description:
                      'A resource indicator (RFC 8707) sent with the authorization and token requests, for providers that set the audience from it (e.g. oidc-provider); usually `admin.auth.audience`. Not sent when absent.',
                  }),
                ),
                label: T.Optional(
                  T.String({
                    minLength: 1,
                    maxLength: 64,
                    description:
                      'Name on the login button ("Sign in with <label>"); default the issuer URL\'s host.',
                  }),
                ),
              },
              {
                additionalProperties: false,
                description:
                  'Login to the console through this issuer (authorization code with PKCE, in the browser). Without it the console offers the token login only. See docs/console.md.',
              },
            ),
          ),
        },
        {
          additionalProperties: false,
          description:
            'OIDC bearer tokens for the admin API, besides the bootstrap tokens of `SLUICE_ADMIN_TOKEN` / `SLUICE_ADMIN_TOKENS`. See docs/admin-api.md.',
        },
      ),
    ),
    scim: T.Optional(
      T.Object(
        {
          token: T.String({
            minLength: 32,
            description:
              'Bearer token of the provisioning client (Entra ID, Okta) for `/scim/v2/` on the admin listener, at least 32 characters. Write it as `${SLUICE_SCIM_TOKEN}` so the config file holds no secret; it is compared in constant time and never logged.',
          }),
          groupRoles: T.Optional(
            T.Record(
              T.String({ minLength: 1 }),
              T.Array(
                T.Union(['viewer', 'operator', 'security', 'auditor', 'admin'].map((r) => T.Literal(r))),
              ),
              {
                description:
                  'Admin roles of the members of each provisioned group, by the group’s `displayName` (compared without case). A user’s roles are the union over its groups; a group not listed grants nothing.',
              },
            ),
          ),
          match: T.Optional(
            T.Object(
              {
                claim: T.Optional(
                  T.String({
                    minLength: 1,
                    description:
                      'Claim (or dotted path) of the admin.auth token that names the user; default `preferred_username` (Entra ID: the UPN; Okta: the login). `email` and `sub` are common choices.',
                  }),
                ),
                attribute: T.Optional(
                  T.Union([T.Literal('userName'), T.Literal('externalId')], {
                    description:
                      'The SCIM attribute the claim is compared with: `userName` (default, without case) or `externalId` (exact; Entra ID sends the object id, Okta the user id).',
                  }),
                ),
              },
              { additionalProperties: false, description: 'How a token is matched to a provisioned user.' },
            ),
          ),
        },
        {
          additionalProperties: false,
          description:
            'SCIM 2.0 provisioning of the people who operate Sluice (docs/scim.md). With it, an OIDC principal of `admin.auth` must be a provisioned, active user, and its roles are those of its groups (`groupRoles`); bootstrap tokens are unaffected. Needs a store.',
        },
      ),
    ),
  },
  {
    additionalProperties: false,
    description: 'The admin listener: /health/live, /health/ready, /metrics and the admin API.',
  },
);

const Logging = T.Object(
  {
    level: T.Optional(
      T.Union(
        ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'].map((l) => T.Literal(l)),
        {
          description: 'Log level; default info.',
        },
      ),
    ),
    accessLog: T.Optional(
      T.Object(
        {
          enabled: T.Optional(T.Boolean({ description: 'One JSON line per request; default true.' })),
          sample: T.Optional(
            T.Number({ minimum: 0, maximum: 1, description: 'Share of requests logged (1 = all).' }),
          ),
          headers: T.Optional(T.Boolean({ description: 'Log request headers (secrets redacted).' })),
          redact: T.Optional(T.Array(HeaderName, { description: 'More header names to redact.' })),
        },
        { additionalProperties: false },
      ),
    ),
  },
  { additionalProperties: false },
);

/** OpenTelemetry (docs/tracing.md). Read at start; a change takes effect after a restart. */
const Telemetry = T.Object(
  {
    tracing: T.Optional(
      T.Object(
        {
          enabled: T.Optional(
            T.Boolean({
              description: 'Trace requests; default: the ENABLE_TELEMETRY variable (true/1), else false.',
            }),
          ),
          sampleRatio: T.Optional(
            T.Number({
              minimum: 0,
              maximum: 1,
              description:
                "Share of new traces sampled (parent-based: a trusted caller's decision is kept); default OTEL_TRACES_SAMPLER_ARG, else 1.",
            }),
          ),
          trustIncoming: T.Optional(
            T.Boolean({
              description:
                "Continue the traceparent/tracestate of callers; default false: every request starts a new trace and the caller's headers are replaced.",
            }),
          ),
          endpoint: T.Optional(
            T.String({
              description:
                'OTLP/HTTP traces URL; default OTEL_EXPORTER_OTLP_TRACES_ENDPOINT, else OTEL_EXPORTER_OTLP_ENDPOINT + /v1/traces, else http://localhost:4318/v1/traces.',
            }),
          ),
          serviceName: T.Optional(
            T.String({
              minLength: 1,
              description: 'service.name; default SERVICE_NAME, OTEL_SERVICE_NAME, else sluice.',
            }),
          ),
        },
        { additionalProperties: false },
      ),
    ),
    metrics: T.Optional(OtlpMetricsSettings),
  },
  { additionalProperties: false },
);

/** Retries of a failed attempt on another target (see docs/configuration.md#retries). */
const Retry = T.Object(
  {
    attempts: T.Integer({
      minimum: 1,
      maximum: 10,
      description: 'Tries in all, the first included; default 1 (no retry).',
    }),
    on: T.Optional(
      T.Array(
        T.Union([
          T.Literal('connect'),
          T.Literal('reset'),
          T.Literal('timeout'),
          T.Integer({ minimum: 500, maximum: 599 }),
        ]),
        {
          description:
            'What is retried: `connect` (refused, unreachable, connect timeout), `reset` (the connection broke before the response started), `timeout` (no response head within `perTryTimeout`), and 5xx statuses. Default `[connect, reset, 502, 503, 504]`.',
        },
      ),
    ),
    methods: T.Optional(
      T.Array(T.String({ pattern: '^[A-Z]+$' }), {
        description:
          'Methods that may be retried; default the idempotent ones: GET HEAD OPTIONS PUT DELETE TRACE.',
      }),
    ),
    backoff: T.Optional(
      T.Object(
        {
          base: T.Optional({
            ...Duration,
            description: 'Back-off before the first retry (full jitter); default 25ms.',
          }),
          max: T.Optional({
            ...Duration,
            description:
              'Longest back-off; default 250ms. A 503 whose `retry-after` asks for longer is passed on, not retried.',
          }),
        },
        {
          additionalProperties: false,
          description: 'Exponential back-off with full jitter: random(0, min(max, base·2^n)).',
        },
      ),
    ),
    perTryTimeout: T.Optional({
      ...Duration,
      description:
        'Longest wait for the response head of each try; default the route’s `timeouts.firstByte`.',
    }),
    budget: T.Optional(
      T.Object(
        {
          ratio: T.Optional(
            T.Number({
              minimum: 0,
              maximum: 1,
              description:
                'Retries allowed as a share of the route’s requests over the last 10 s; default 0.2.',
            }),
          ),
          minPerSecond: T.Optional(
            T.Integer({
              minimum: 0,
              description:
                'Retries per second allowed on top of the ratio (so quiet routes can retry); default 10.',
            }),
          ),
        },
        {
          additionalProperties: false,
          description:
            'Retry budget: when spent, failures are passed on without a retry, so retries cannot multiply an outage.',
        },
      ),
    ),
    bufferBody: T.Optional({
      ...Size,
      description:
        'Request bodies with a `content-length` up to this size are buffered so they can be replayed; default 0: a request with a body is never retried.',
    }),
  },
  {
    additionalProperties: false,
    description:
      'Retry a failed try on another target, only before any byte of the response reached the client.',
  },
);

const PathMatch = T.Union(
  [
    T.Object({ exact: T.String({ pattern: '^/' }) }, { additionalProperties: false }),
    T.Object({ prefix: T.String({ pattern: '^/' }) }, { additionalProperties: false }),
    T.Object(
      {
        pattern: T.String({
          pattern: '^/',
          description:
            'Segments with `:name` parameters, and an optional trailing `*` for the rest: `/users/:id/*`.',
        }),
      },
      { additionalProperties: false },
    ),
  ],
  { description: 'Exactly one of exact, prefix or pattern.' },
);

const HeaderMatch = T.Object(
  {
    name: HeaderName,
    value: T.Optional(T.String({ description: 'The header equals this value exactly.' })),
    regex: T.Optional(
      T.String({ description: 'The header matches this regular expression (JavaScript syntax).' }),
    ),
    present: T.Optional(T.Boolean({ description: 'true: the header is present; false: it is absent.' })),
  },
  {
    additionalProperties: false,
    description: 'Matches when the header equals `value`, matches `regex`, or is present/absent.',
  },
);

const Route = T.Object(
  {
    name: T.String({
      pattern: '^[A-Za-z0-9][A-Za-z0-9_.-]*$',
      maxLength: 128,
      description: 'Unique name; labels metrics and access-log lines.',
    }),
    priority: T.Optional(
      T.Integer({ description: 'Higher wins among routes of the same host class (default 0).' }),
    ),
    match: T.Object(
      {
        hosts: T.Optional(
          T.Array(T.String({ pattern: '^(\\*\\.)?[A-Za-z0-9.-]+(:[0-9]+)?$' }), {
            description: 'Exact hosts or `*.example.com` wildcards; none means any host.',
          }),
        ),
        path: T.Optional(PathMatch),
        methods: T.Optional(
          T.Array(T.String({ pattern: '^[A-Z]+$' }), { description: 'Methods, upper case; none means any.' }),
        ),
        headers: T.Optional(T.Array(HeaderMatch, { description: 'Every condition must hold.' })),
      },
      {
        additionalProperties: false,
        description: 'What a request must look like to take this route; every given part must match.',
      },
    ),
    upstream: T.Optional(
      T.String({ description: 'Name of an entry of `upstreams`. Every route has one, or `ofrep: true`.' }),
    ),
    ofrep: T.Optional(
      T.Literal(true, {
        description:
          'Instead of proxying, answer the OpenFeature Remote Evaluation Protocol (`POST …/ofrep/v1/evaluate/flags[/{key}]`) from the flag snapshot, after the route’s policies (auth, tenant, limits) as on any route. Exclusive with `upstream`. See docs/flags.md#ofrep.',
      }),
    ),
    rewrite: T.Optional(
      T.Object(
        {
          stripPrefix: T.Optional(T.Boolean({ description: 'Remove the matched prefix (prefix routes).' })),
          prefix: T.Optional(
            T.String({ pattern: '^/', description: 'Replace the matched prefix with this one.' }),
          ),
          path: T.Optional(
            T.String({
              pattern: '^/',
              description: 'Replace the whole path; `{name}` inserts a parameter, `{*}` the rest.',
            }),
          ),
        },
        { additionalProperties: false },
      ),
    ),
    hostHeader: T.Optional(
      T.Union(
        [
          T.Literal('preserve'),
          T.Literal('upstream'),
          T.Object({ value: T.String() }, { additionalProperties: false }),
        ],
        {
          description:
            '`upstream` (default): the target host; `preserve`: the client Host; or a fixed value.',
        },
      ),
    ),
    headers: T.Optional(
      T.Object(
        { request: T.Optional(HeaderOps), response: T.Optional(HeaderOps) },
        { additionalProperties: false },
      ),
    ),
    timeouts: T.Optional(RouteTimeouts),
    maxBodyBytes: T.Optional({
      ...Size,
      description: 'Largest request body on this route; default listen.maxBodyBytes.',
    }),
    websocket: T.Optional(T.Boolean({ description: 'Allow WebSocket upgrades (default true).' })),
    concurrency: T.Optional(concurrency('on this route', 'SLUICE-ROUTE-003')),
    failover: T.Optional(
      T.Array(T.String({ minLength: 1 }), {
        minItems: 1,
        uniqueItems: true,
        description:
          'Upstream groups to send the route’s traffic to, in order, when the ones before have no available target (every target down, ejected or its breaker open). Traffic returns to an earlier group after `failback.after`.',
      }),
    ),
    failback: T.Optional(
      T.Object(
        {
          after: T.Optional({
            ...Duration,
            description:
              'An earlier group must have been available without a break this long before traffic returns to it (hysteresis); default 10s.',
          }),
        },
        {
          additionalProperties: false,
          description: 'When traffic returns to an earlier group of `failover`.',
        },
      ),
    ),
    fallback: T.Optional(
      T.Union(
        [
          T.Object(
            {
              status: T.Integer({ minimum: 200, maximum: 599, description: 'Status of the static answer.' }),
              body: T.Optional(T.String({ description: 'Body of the static answer; default empty.' })),
              headers: T.Optional(
                T.Record(T.String({ pattern: "^[!#$%&'*+.^_`|~0-9A-Za-z-]+$" }), T.String(), {
                  description: 'Headers of the static answer.',
                }),
              ),
            },
            { additionalProperties: false, description: 'Answer with this static response.' },
          ),
          T.Object(
            {
              upstream: T.String({
                minLength: 1,
                description: 'Send the request to this upstream group instead.',
              }),
            },
            { additionalProperties: false, description: 'Send the request to another upstream group.' },
          ),
        ],
        {
          description:
            'What to do when the route’s upstream has no target to offer (every target down, ejected or its breaker open), instead of 503 SLUICE-UPSTREAM-007/011: a static response, or another upstream group (when that one has no target either, its 503 applies).',
        },
      ),
    ),
    retry: T.Optional(Retry),
    slo: T.Optional(SloSchema),
    grpc: T.Optional(GrpcRouteSchema),
    // Each policy kind's property (`auth`, `ipFilter`, `cache`, ...), from the policy registry.
    ...routePolicyProperties(),
  },
  { additionalProperties: false },
);

const Store = T.Union(
  [
    T.String({
      minLength: 1,
      description:
        'A `postgres://` URL (use `${DATABASE_URL}`), or the directory of the embedded store (PGlite).',
    }),
    T.Object(
      {
        url: T.Optional(T.String({ minLength: 1, description: 'A `postgres://` or `postgresql://` URL.' })),
        dataDir: T.Optional(
          T.String({
            minLength: 1,
            description:
              'Directory of the embedded store (PGlite); default `data/sluice` under the working directory.',
          }),
        ),
      },
      { additionalProperties: false },
    ),
  ],
  {
    description:
      'Where tenants, API keys and the admin change log live: PostgreSQL, or by default an embedded PostgreSQL (PGlite) in a data directory. Without `store`, `DATABASE_URL` names a PostgreSQL when set. Opened only when routes use `auth` or `tenant`, or when `store` is given.',
  },
);

const Identity = T.Composite([
  IdentitySettings,
  T.Object({ issuers: T.Optional(JwtIssuers) }, { additionalProperties: false }),
]);

export const ConfigSchema = T.Object(
  {
    $schema: T.Optional(T.String()),
    listen: Listen,
    admin: T.Optional(Admin),
    logging: T.Optional(Logging),
    telemetry: T.Optional(Telemetry),
    upstreams: T.Record(T.String({ pattern: '^[A-Za-z0-9][A-Za-z0-9_.-]*$' }), Upstream),
    routes: T.Array(Route),
    store: T.Optional(Store),
    identity: T.Optional({ ...Identity, additionalProperties: false }),
    redis: T.Optional(RedisSettings),
    limits: T.Optional(LimitsSettings),
    quotas: T.Optional(QuotasSettings),
    budgets: T.Optional(BudgetsSettings),
    cache: T.Optional(CacheSettings),
    releases: T.Optional(ReleasesSettings),
    audit: T.Optional(AuditSettings),
    anomaly: T.Optional(AnomalySettings),
    metrics: T.Optional(MetricsSettings),
  },
  {
    additionalProperties: false,
    $id: 'https://sluice.dev/schema/sluice.schema.json',
    title: 'Sluice gateway configuration',
  },
);

export type Config = Static<typeof ConfigSchema>;
export type RouteConfig = Static<typeof Route>;
export type RetryConfig = NonNullable<RouteConfig['retry']>;
export type HeaderOpsConfig = Static<typeof HeaderOps>;
export type ListenConfig = Static<typeof Listen>;
export type LoggingConfig = Static<typeof Logging>;
export type TelemetryConfig = Static<typeof Telemetry>;
export type ListenTlsConfig = Static<typeof ListenTls>;

/** The JSON Schema as published: TypeBox's symbols dropped. */
export function jsonSchema(): TSchema {
  return JSON.parse(JSON.stringify(ConfigSchema)) as TSchema;
}
export type RouteAuthConfig = NonNullable<RouteConfig['auth']>;
export type RouteTenantConfig = NonNullable<RouteConfig['tenant']>;
export type IdentityConfig = NonNullable<Config['identity']>;
export type StoreConfig = NonNullable<Config['store']>;

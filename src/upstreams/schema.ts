/**
 * The config of an upstream group (`upstreams.<name>`): targets, balancer, active health checks,
 * outlier ejection, circuit breaker, timeouts, TLS, connection pool, per-target concurrency. Beside
 * src/upstreams/ as each policy's schema sits beside its policy; config/schema.ts puts it in the
 * whole config's schema.
 */
import { type Static, Type as T } from '@sinclair/typebox';
import {
  CookieName,
  concurrency,
  Duration,
  HeaderName,
  PemFile,
  TlsVersion,
} from '../config/shared-schema.js';

/** The timeouts of one exchange, which a route may override (`routes[].timeouts`). */
export const exchangeTimeouts = {
  firstByte: T.Optional({
    ...Duration,
    description: 'From the request sent to the response headers; default 60s. 504 SLUICE-UPSTREAM-004.',
  }),
  idle: T.Optional({
    ...Duration,
    description:
      'Longest gap between response body chunks; default 60s. 504 SLUICE-UPSTREAM-006, or a reset once the response started.',
  }),
  total: T.Optional({
    ...Duration,
    description: 'The whole exchange; default 0 (none). 504 SLUICE-UPSTREAM-005.',
  }),
};

const Timeouts = T.Object(
  {
    connect: T.Optional({
      ...Duration,
      description: 'TCP (and TLS) connect to a target; default 5s. 504 SLUICE-UPSTREAM-003.',
    }),
    ...exchangeTimeouts,
  },
  {
    additionalProperties: false,
    description:
      "Timeouts of requests to this upstream. connect, firstByte and idle are checked on undici's coarse clock (about 0.5 s ticks), so they may fire up to about one second late; total is exact.",
  },
);

const UpstreamTls = T.Object(
  {
    ca: T.Optional(
      PemFile(
        "CA certificates the targets' certificates must chain to (replaces the default Mozilla CA set)",
      ),
    ),
    serverName: T.Optional(
      T.String({
        pattern: '^[A-Za-z0-9.-]+$',
        description:
          "Server name sent (SNI) and required in the targets' certificates; default: the host of the target URL (an IP address is checked against the certificate's IP addresses).",
      }),
    ),
    cert: T.Optional(PemFile('Client certificate for mutual TLS (with `key`)')),
    key: T.Optional(PemFile('Private key of the client certificate')),
    minVersion: T.Optional(TlsVersion),
  },
  {
    additionalProperties: false,
    description:
      'TLS to https:// targets. Certificates are always verified (there is no switch to turn verification off). Files are read at load and on every reload.',
  },
);

const Weight = T.Integer({
  minimum: 1,
  maximum: 1000,
  description:
    'Relative share of traffic for `weighted`, `least-request` and `hash` balancers; default 1 (for a DNS target: each address).',
});

/** A data-residency region (`eu`, `us-east`): matched against the tenant's allowed regions. */
export const Region = T.String({
  minLength: 1,
  maxLength: 64,
  pattern: '^[A-Za-z0-9][A-Za-z0-9._-]*$',
  description:
    "Data-residency region of the target(s) (`eu`, `us-east`). On a route with `residency`, a tenant's requests go only to targets in the tenant's allowed regions (see docs/residency.md).",
});

/** A placement label key (`shard`, `cell`): what a route's `placement.by` names. */
export const PlacementKey = T.String({
  minLength: 1,
  maxLength: 64,
  pattern: '^[a-z][a-z0-9_-]*$',
  description: 'A placement key (`shard`, `cell`); `region` is the residency key and is set with `region`.',
});

/** Placement labels of a target or an upstream (`{ shard: s1 }`). */
export const PlacementLabels = T.Record(
  PlacementKey,
  T.String({
    minLength: 1,
    maxLength: 64,
    pattern: '^[A-Za-z0-9][A-Za-z0-9._-]*$',
    description: "The label value (`s1`), matched against the tenant's `placement.<key>` label.",
  }),
  {
    description:
      "Placement labels (`{ shard: s1, cell: c2 }`). On a route with `placement: { by: [shard] }`, a tenant's requests go only to targets whose `shard` is the tenant's (its `placement.shard` label); see docs/placement.md.",
  },
);

const UrlTarget = T.Object(
  {
    url: T.String({ description: 'http:// or https:// origin of the target (a path is not allowed).' }),
    weight: T.Optional(Weight),
    region: T.Optional({ ...Region, description: "This target's region; default the upstream's `region`." }),
    labels: T.Optional({
      ...PlacementLabels,
      description: "This target's placement labels, over the upstream's `labels` (key by key).",
    }),
  },
  { additionalProperties: false },
);

const DnsTarget = T.Object(
  {
    dns: T.String({
      maxLength: 253,
      pattern:
        '^[A-Za-z0-9_]([A-Za-z0-9_-]*[A-Za-z0-9_])?(\\.[A-Za-z0-9_]([A-Za-z0-9_-]*[A-Za-z0-9_])?)*\\.?$',
      description:
        'A DNS name whose addresses are the targets (e.g. a Kubernetes headless service `orders.shop.svc.cluster.local`), re-resolved on the TTL of its records.',
    }),
    port: T.Integer({ minimum: 1, maximum: 65535, description: 'Port of every address.' }),
    scheme: T.Optional(T.Union([T.Literal('http'), T.Literal('https')], { description: 'Default http.' })),
    family: T.Optional(
      T.Union([T.Literal('ipv4'), T.Literal('ipv6'), T.Literal('any')], {
        description: 'Which records to ask for: A (`ipv4`, default), AAAA (`ipv6`) or both (`any`).',
      }),
    ),
    weight: T.Optional(Weight),
    region: T.Optional({
      ...Region,
      description: "The region of every address; default the upstream's `region`.",
    }),
    labels: T.Optional({
      ...PlacementLabels,
      description: "The placement labels of every address, over the upstream's `labels` (key by key).",
    }),
    refresh: T.Optional(
      T.Object(
        {
          min: T.Optional({ ...Duration, description: 'Shortest time between queries; default 1s.' }),
          max: T.Optional({ ...Duration, description: 'Longest time between queries; default 30s.' }),
        },
        {
          additionalProperties: false,
          description:
            "The name is asked again after its records' TTL, kept within [min, max]. After a failed query the last good answer stays and the query is retried after min, doubling up to max.",
        },
      ),
    ),
  },
  { additionalProperties: false },
);

const Target = T.Union([UrlTarget, DnsTarget], {
  description: 'A target: `{ url }` (one origin) or `{ dns, port }` (every address of a DNS name).',
});

const Balancer = T.Union(
  [
    T.Literal('round-robin'),
    T.Literal('weighted'),
    T.Literal('least-request'),
    T.Object(
      {
        hash: T.Union(
          [
            T.Object({ header: HeaderName }, { additionalProperties: false }),
            T.Object({ cookie: CookieName }, { additionalProperties: false }),
            T.Object({ clientIp: T.Literal(true) }, { additionalProperties: false }),
          ],
          {
            description:
              'The hash key: exactly one of `{ header: NAME }`, `{ cookie: NAME }`, `{ clientIp: true }`.',
          },
        ),
      },
      { additionalProperties: false },
    ),
  ],
  {
    description:
      'How a target is picked: `round-robin` (default; every target in turn, equal weights only), `weighted` (smooth weighted round-robin), `least-request` (the less busy of two random targets), or `{ hash: { header | cookie | clientIp } }` (consistent hashing: the same key goes to the same target).',
  },
);

const StatusRange = T.String({
  pattern: '^[1-5][0-9][0-9](-[1-5][0-9][0-9])?$',
  description: 'A status (`200`) or an inclusive range (`200-399`).',
});

const HealthCheck = T.Object(
  {
    path: T.String({
      pattern: '^/',
      description: 'Path probed with GET on every target (Host: the target host).',
    }),
    expectedStatuses: T.Optional(
      T.Array(StatusRange, {
        minItems: 1,
        description: 'Statuses that count as healthy; default `["200-399"]`.',
      }),
    ),
    interval: T.Optional({ ...Duration, description: 'Time between probes of one target; default 5s.' }),
    timeout: T.Optional({
      ...Duration,
      description: 'A probe without a complete response within this fails; default 2s.',
    }),
    healthyThreshold: T.Optional(
      T.Integer({
        minimum: 1,
        description: 'Consecutive successes that bring a down target back; default 2.',
      }),
    ),
    unhealthyThreshold: T.Optional(
      T.Integer({ minimum: 1, description: 'Consecutive failures that take a target down; default 3.' }),
    ),
    jitter: T.Optional({
      ...Duration,
      description:
        'Each wait is the interval plus a random share of this, so probes of many targets spread; default 10% of the interval.',
    }),
  },
  {
    additionalProperties: false,
    description: 'Active health checks: each target is probed through its own connection pool.',
  },
);

const Outlier = T.Object(
  {
    consecutiveFailures: T.Optional(
      T.Integer({
        minimum: 1,
        description:
          'Failures in a row (connect errors, resets, timeouts, 5xx) that eject a target; default 5.',
      }),
    ),
    baseEjection: T.Optional({
      ...Duration,
      description: 'Ejection time of a first ejection; the n-th ejection lasts n × this; default 30s.',
    }),
    maxEjection: T.Optional({ ...Duration, description: 'Cap of the ejection time; default 300s.' }),
    maxEjectedPercent: T.Optional(
      T.Integer({
        minimum: 0,
        maximum: 100,
        description: 'Never eject more than this share of the group’s targets; default 50.',
      }),
    ),
  },
  {
    additionalProperties: false,
    description:
      'Passive outlier ejection (as Envoy): targets that keep failing real requests are taken out for a while.',
  },
);

const Breaker = T.Object(
  {
    errorRate: T.Optional(
      T.Number({
        exclusiveMinimum: 0,
        maximum: 1,
        description:
          'Open when this share of the exchanges in the window failed (connect errors, resets, timeouts, 5xx), once there were `minRequests`; default 0.5.',
      }),
    ),
    window: T.Optional({
      ...Duration,
      description: 'Rolling window the error rate is measured over (in ten buckets); default 10s.',
    }),
    minRequests: T.Optional(
      T.Integer({
        minimum: 1,
        description: 'Exchanges the window must hold before the error rate counts; default 20.',
      }),
    ),
    consecutiveFailures: T.Optional(
      T.Integer({ minimum: 1, description: 'Open after this many failures in a row; default 5.' }),
    ),
    openFor: T.Optional({
      ...Duration,
      description: 'Time open (the target gets no requests) before it goes half-open; default 30s.',
    }),
    halfOpenRequests: T.Optional(
      T.Integer({
        minimum: 1,
        description:
          'Trial requests let through half-open; all must succeed to close, one failure opens again; default 1.',
      }),
    ),
  },
  {
    additionalProperties: false,
    description:
      'A circuit breaker per target (closed, open, half-open). An open target is not picked, as an ejected one. The group’s circuit is open when every target is out and at least one because its breaker is open: requests then get 503 SLUICE-UPSTREAM-011 or the route’s `fallback`.',
  },
);

export const Upstream = T.Object(
  {
    targets: T.Array(Target, { minItems: 1 }),
    region: T.Optional(Region),
    labels: T.Optional(PlacementLabels),
    healthCheck: T.Optional(HealthCheck),
    outlier: T.Optional(Outlier),
    breaker: T.Optional(Breaker),
    balancer: T.Optional(Balancer),
    timeouts: T.Optional(Timeouts),
    tls: T.Optional(UpstreamTls),
    targetConcurrency: T.Optional(concurrency('per target of this upstream', 'SLUICE-UPSTREAM-010')),
    http2: T.Optional(
      T.Boolean({
        description:
          'Speak HTTP/2 to the targets: offered by ALPN to https:// targets, prior knowledge (h2c) to http:// ones. Needed to proxy gRPC. Default false (HTTP/1.1).',
      }),
    ),
    pool: T.Optional(
      T.Object(
        {
          connections: T.Optional(
            T.Integer({ minimum: 1, description: 'Connections per target (default 128).' }),
          ),
          keepAliveTimeout: T.Optional({
            ...Duration,
            description: 'Idle upstream connections are closed after this; default 4s.',
          }),
          pipelining: T.Optional(
            T.Integer({
              minimum: 1,
              maximum: 16,
              description: 'Requests in flight per connection; default 1.',
            }),
          ),
        },
        {
          additionalProperties: false,
          description: 'The keep-alive connection pool of each target (undici).',
        },
      ),
    ),
  },
  { additionalProperties: false },
);

export type UpstreamConfig = Static<typeof Upstream>;
export type HealthCheckConfig = Static<typeof HealthCheck>;
export type OutlierConfig = Static<typeof Outlier>;
export type BreakerConfig = Static<typeof Breaker>;
export type TargetConfig = Static<typeof Target>;
export type DnsTargetConfig = Static<typeof DnsTarget>;
export type BalancerConfig = Static<typeof Balancer>;
export type TimeoutsConfig = Static<typeof Timeouts>;
export type UpstreamTlsConfig = Static<typeof UpstreamTls>;

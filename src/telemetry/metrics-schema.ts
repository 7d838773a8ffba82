/**
 * Config shapes of the metrics: `telemetry.metrics` (the OTLP push of the /metrics registry) and the
 * top-level `metrics` (per-tenant series for an allow-list). A leaf module (TypeBox and the shared
 * shapes only), so config/schema.ts imports it without a cycle.
 */
import { type Static, Type as T } from '@sinclair/typebox';
import { Duration } from '../config/shared-schema.js';

/** Above this no allow-list can go, whatever `max` says: the series count stays bounded by the code. */
export const TENANT_SERIES_HARD_MAX = 500;
/** `metrics.tenants.max` when not given. */
export const TENANT_SERIES_DEFAULT_MAX = 50;

export const OtlpMetricsSettings = T.Object(
  {
    enabled: T.Optional(
      T.Boolean({
        description:
          'Push the metrics of /metrics over OTLP/HTTP (protobuf); default: the ENABLE_TELEMETRY variable (true/1), else false. OTEL_SDK_DISABLED=true or OTEL_METRICS_EXPORTER=none turn it off whatever this says.',
      }),
    ),
    interval: T.Optional({
      ...Duration,
      description:
        'Time between two exports; default OTEL_METRIC_EXPORT_INTERVAL (milliseconds), else 60s. The last export happens at stop.',
    }),
    endpoint: T.Optional(
      T.String({
        description:
          'OTLP/HTTP metrics URL; default OTEL_EXPORTER_OTLP_METRICS_ENDPOINT, else OTEL_EXPORTER_OTLP_ENDPOINT + /v1/metrics, else http://localhost:4318/v1/metrics.',
      }),
    ),
  },
  {
    additionalProperties: false,
    description:
      'OTLP export of the metrics (docs/metrics.md#otlp). Read at start; a change takes effect after a restart.',
  },
);

const TenantSeries = T.Object(
  {
    allow: T.Array(
      T.String({
        pattern: '^[a-z0-9][a-z0-9-]{0,62}$',
        description: 'A tenant id.',
      }),
      {
        uniqueItems: true,
        description:
          'Tenants that get their own series (sluice_tenant_*); every other tenant is counted only in the route metrics.',
      },
    ),
    max: T.Optional(
      T.Integer({
        minimum: 1,
        maximum: TENANT_SERIES_HARD_MAX,
        description: `The most tenants \`allow\` may list; a longer list is a config error. Default ${TENANT_SERIES_DEFAULT_MAX}, at most ${TENANT_SERIES_HARD_MAX}.`,
      }),
    ),
  },
  { additionalProperties: false },
);

export const MetricsSettings = T.Object(
  {
    tenants: T.Optional({
      ...TenantSeries,
      description:
        'Per-tenant request metrics for an allow-list of tenants, with a hard cap (docs/metrics.md#per-tenant-series).',
    }),
  },
  { additionalProperties: false, description: 'Metrics options beyond the catalogue (docs/metrics.md).' },
);

export type OtlpMetricsConfig = Static<typeof OtlpMetricsSettings>;
export type MetricsConfig = Static<typeof MetricsSettings>;

/** The allow-list as a set, or undefined when no tenant gets series. */
export function tenantAllowList(m: MetricsConfig | undefined): ReadonlySet<string> | undefined {
  const allow = m?.tenants?.allow;
  return allow === undefined || allow.length === 0 ? undefined : new Set(allow);
}

/** The cap: more allow-listed tenants than `max` is refused at load, with the list's path. */
export function checkTenantSeries(
  m: MetricsConfig | undefined,
): { path: (string | number)[]; message: string }[] {
  const t = m?.tenants;
  if (t === undefined) return [];
  const max = t.max ?? TENANT_SERIES_DEFAULT_MAX;
  if (t.allow.length <= max) return [];
  return [
    {
      path: ['metrics', 'tenants', 'allow'],
      message: `${t.allow.length} tenants listed, more than metrics.tenants.max (${max}): each one adds series to every tenant route`,
    },
  ];
}

/**
 * OTLP metrics settings: the config's `telemetry.metrics`, with the standard variables as defaults
 * (ENABLE_TELEMETRY, OTEL_EXPORTER_OTLP_(METRICS_)ENDPOINT, OTEL_METRIC_EXPORT_INTERVAL and _TIMEOUT,
 * SERVICE_NAME / OTEL_SERVICE_NAME). The config wins over the environment, except the two kill
 * switches: OTEL_SDK_DISABLED=true and OTEL_METRICS_EXPORTER=none turn the export off whatever the
 * config says. Pure: a test passes its own environment. Imports nothing of OpenTelemetry.
 */
import type { TelemetryConfig } from '../../config/schema.js';
import { ms } from '../../config/units.js';
import { nonEmpty, signalUrl, truthy } from '../otel-env.js';

export interface OtlpMetricsSettings {
  readonly serviceName: string;
  /** The OTLP/HTTP (protobuf) metrics URL. */
  readonly url: string;
  readonly intervalMs: number;
  /** At most the interval (the SDK refuses a longer one). */
  readonly timeoutMs: number;
}

/** The settings, or undefined when the export is off (then nothing of OpenTelemetry is loaded). */
export function otlpMetricsSettings(
  config: TelemetryConfig | undefined,
  env: NodeJS.ProcessEnv,
): OtlpMetricsSettings | undefined {
  const m = config?.metrics;
  if (truthy(env.OTEL_SDK_DISABLED)) return undefined;
  if (nonEmpty(env.OTEL_METRICS_EXPORTER)?.toLowerCase() === 'none') return undefined;
  if (!(m?.enabled ?? truthy(env.ENABLE_TELEMETRY))) return undefined;
  // At least 100 ms: a shorter period would export more often than a collector can take.
  const intervalMs = Math.max(
    100,
    m?.interval !== undefined ? ms(m.interval, 60_000) : positive(env.OTEL_METRIC_EXPORT_INTERVAL, 60_000),
  );
  return {
    serviceName:
      config?.tracing?.serviceName ??
      nonEmpty(env.SERVICE_NAME) ??
      nonEmpty(env.OTEL_SERVICE_NAME) ??
      'sluice',
    url: m?.endpoint ?? signalUrl(env, 'metrics'),
    intervalMs,
    timeoutMs: Math.min(positive(env.OTEL_METRIC_EXPORT_TIMEOUT, 30_000), intervalMs),
  };
}

function positive(v: string | undefined, fallback: number): number {
  const n = Number(nonEmpty(v));
  return Number.isFinite(n) && n > 0 ? n : fallback;
}

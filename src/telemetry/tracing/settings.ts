/**
 * Tracing settings: the config's `telemetry.tracing`, with the standard variables as defaults
 * (ENABLE_TELEMETRY, SERVICE_NAME, OTEL_SERVICE_NAME, OTEL_SDK_DISABLED, OTEL_TRACES_SAMPLER(_ARG),
 * OTEL_EXPORTER_OTLP_(TRACES_)ENDPOINT). The config wins over the environment, except
 * OTEL_SDK_DISABLED=true, which turns tracing off whatever the config says (the spec's kill switch).
 * Pure: a test passes its own environment.
 */
import type { TelemetryConfig } from '../../config/schema.js';
import { nonEmpty, signalUrl, truthy } from '../otel-env.js';

export interface TracingSettings {
  readonly serviceName: string;
  /** Share of new (root) traces sampled; a trusted parent's decision is kept (parent-based). */
  readonly sampleRatio: number;
  /** Continue callers' traceparent/tracestate; otherwise every request starts a trace. */
  readonly trustIncoming: boolean;
  /** The OTLP/HTTP (protobuf) traces URL. */
  readonly url: string;
}

/** The settings, or undefined when tracing is off (then nothing of OpenTelemetry is even loaded). */
export function tracingSettings(
  config: TelemetryConfig | undefined,
  env: NodeJS.ProcessEnv,
): TracingSettings | undefined {
  const t = config?.tracing;
  if (truthy(env.OTEL_SDK_DISABLED)) return undefined;
  if (!(t?.enabled ?? truthy(env.ENABLE_TELEMETRY))) return undefined;
  return {
    serviceName: t?.serviceName ?? nonEmpty(env.SERVICE_NAME) ?? nonEmpty(env.OTEL_SERVICE_NAME) ?? 'sluice',
    sampleRatio: t?.sampleRatio ?? samplerRatio(env),
    trustIncoming: t?.trustIncoming ?? false,
    url: t?.endpoint ?? signalUrl(env, 'traces'),
  };
}

/**
 * OTEL_TRACES_SAMPLER: the ratio samplers take OTEL_TRACES_SAMPLER_ARG; always_on/off are 1 and 0.
 * Sluice's sampler is always parent-based (the parent's decision counts only when callers are trusted).
 */
function samplerRatio(env: NodeJS.ProcessEnv): number {
  const s = nonEmpty(env.OTEL_TRACES_SAMPLER)?.toLowerCase();
  if (s === 'always_off' || s === 'parentbased_always_off') return 0;
  if (s === 'traceidratio' || s === 'parentbased_traceidratio') {
    const r = Number(env.OTEL_TRACES_SAMPLER_ARG);
    return Number.isFinite(r) && r >= 0 && r <= 1 ? r : 1;
  }
  return 1;
}

/** The standard OTEL_* environment, read the same way by traces and metrics (the spec's rules). */

/** `true`, `1`, `yes`, `on` (any case). */
export const truthy = (v: string | undefined) => v !== undefined && /^(1|true|yes|on)$/i.test(v.trim());

export function nonEmpty(v: string | undefined): string | undefined {
  return v === undefined || v.trim() === '' ? undefined : v.trim();
}

/**
 * A signal's OTLP/HTTP URL: OTEL_EXPORTER_OTLP_<SIGNAL>_ENDPOINT as is; else the base endpoint
 * (OTEL_EXPORTER_OTLP_ENDPOINT, default http://localhost:4318) with `/v1/<signal>` appended.
 */
export function signalUrl(env: NodeJS.ProcessEnv, signal: 'traces' | 'metrics'): string {
  const own = nonEmpty(env[`OTEL_EXPORTER_OTLP_${signal.toUpperCase()}_ENDPOINT`]);
  if (own !== undefined) return own;
  const base = nonEmpty(env.OTEL_EXPORTER_OTLP_ENDPOINT) ?? 'http://localhost:4318';
  return `${base.replace(/\/+$/, '')}/v1/${signal}`;
}

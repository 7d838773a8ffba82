/**
 * The OTLP metrics export of one gateway: a PeriodicExportingMetricReader whose only source is the
 * prom-client registry (a MetricProducer; the MeterProvider has no instruments and lends its
 * resource), pushing to the OTLP/HTTP protobuf exporter. The provider is the gateway's own, never
 * registered globally. Imported dynamically by the gateway, only when the export is on.
 */
import {
  defaultResource,
  detectResources,
  envDetector,
  resourceFromAttributes,
} from '@opentelemetry/resources';
import { MeterProvider, PeriodicExportingMetricReader } from '@opentelemetry/sdk-metrics';
import { ATTR_SERVICE_NAME, ATTR_SERVICE_VERSION } from '@opentelemetry/semantic-conventions';
import type { Registry } from 'prom-client';
import { sluiceVersion } from '../../version.js';
import { OtlpProtoMetricExporter } from './exporter.js';
import { PromRegistryProducer } from './producer.js';
import type { OtlpMetricsSettings } from './settings.js';

export interface MetricsExport {
  /** Export what the registry holds now, then stop (the gateway's stop: the last counts get out). */
  shutdown(): Promise<void>;
}

export function startMetricsExport(
  s: OtlpMetricsSettings,
  registry: Registry,
  startedAtMs: number,
  version = sluiceVersion(),
): MetricsExport {
  const resource = defaultResource()
    .merge(detectResources({ detectors: [envDetector] }))
    .merge(resourceFromAttributes({ [ATTR_SERVICE_NAME]: s.serviceName, [ATTR_SERVICE_VERSION]: version }));
  const reader = new PeriodicExportingMetricReader({
    exporter: new OtlpProtoMetricExporter(s.url),
    exportIntervalMillis: s.intervalMs,
    exportTimeoutMillis: s.timeoutMs,
    metricProducers: [new PromRegistryProducer(registry, startedAtMs, resource, { name: 'sluice', version })],
  });
  const provider = new MeterProvider({ resource, readers: [reader] });
  return { shutdown: () => provider.shutdown() };
}

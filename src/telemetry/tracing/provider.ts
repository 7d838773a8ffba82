/**
 * The OpenTelemetry pipeline of one gateway: resource (service.name, service.version, and
 * OTEL_RESOURCE_ATTRIBUTES), parent-based sampling, a batch processor (OTEL_BSP_* honoured by
 * the SDK) and the OTLP/HTTP protobuf exporter (OTEL_EXPORTER_OTLP_HEADERS, _TIMEOUT, _COMPRESSION
 * honoured by the exporter). The provider is the gateway's own, never registered globally.
 * Imported dynamically by the gateway, only when tracing is on.
 */
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-proto';
import {
  defaultResource,
  detectResources,
  envDetector,
  resourceFromAttributes,
} from '@opentelemetry/resources';
import {
  AlwaysOnSampler,
  BasicTracerProvider,
  BatchSpanProcessor,
  ParentBasedSampler,
} from '@opentelemetry/sdk-trace-base';
import { ATTR_SERVICE_NAME, ATTR_SERVICE_VERSION } from '@opentelemetry/semantic-conventions';
import type { ExchangeTracer } from '../../dataplane/trace.js';
import { sluiceVersion } from '../../version.js';
import { OtelExchangeTracer } from './exchange-tracer.js';
import type { TracingSettings } from './settings.js';

export function createExchangeTracer(s: TracingSettings, version = sluiceVersion()): ExchangeTracer {
  const resource = defaultResource()
    .merge(detectResources({ detectors: [envDetector] }))
    .merge(resourceFromAttributes({ [ATTR_SERVICE_NAME]: s.serviceName, [ATTR_SERVICE_VERSION]: version }));
  const provider = new BasicTracerProvider({
    resource,
    // The ratio is applied by OtelExchangeTracer before any span is made (an unsampled request
    // never reaches the SDK); what reaches it is sampled, or continues a caller's sampled trace.
    sampler: new ParentBasedSampler({ root: new AlwaysOnSampler() }),
    spanProcessors: [new BatchSpanProcessor(new OTLPTraceExporter({ url: s.url }))],
  });
  return new OtelExchangeTracer(provider.getTracer('sluice', version), s.trustIncoming, s.sampleRatio, () =>
    provider.shutdown(),
  );
}

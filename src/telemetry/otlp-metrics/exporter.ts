/**
 * The OTLP/HTTP protobuf metrics exporter, built from the same parts as the official
 * @opentelemetry/exporter-metrics-otlp-proto (the HTTP export delegate of otlp-exporter-base and the
 * protobuf serializer of otlp-transformer): that package was not published for the 0.223.1 patch
 * release that Sluice's tracing exporter is on, and its 0.223.0 pins core, resources and
 * sdk-metrics 2.12.0 exactly, which would load a second copy of the SDK. Honours the exporter's
 * standard variables (OTEL_EXPORTER_OTLP_(METRICS_)HEADERS, _TIMEOUT, _COMPRESSION).
 * Temporality and aggregation only matter for SDK instruments, which Sluice has none of: the
 * registry producer sets cumulative itself.
 */
import { OTLPExporterBase } from '@opentelemetry/otlp-exporter-base';
import {
  convertLegacyHttpOptions,
  createOtlpHttpExportDelegate,
} from '@opentelemetry/otlp-exporter-base/node-http';
import { MetricsExporterMetricsHelper, ProtobufMetricsSerializer } from '@opentelemetry/otlp-transformer';
import type { PushMetricExporter, ResourceMetrics } from '@opentelemetry/sdk-metrics';

/** The component type the official exporter reports for itself (OTel semantic conventions). */
const COMPONENT_TYPE = 'otlp_http_metric_exporter';

export class OtlpProtoMetricExporter extends OTLPExporterBase<ResourceMetrics> implements PushMetricExporter {
  constructor(url: string) {
    super(
      createOtlpHttpExportDelegate(
        convertLegacyHttpOptions({ url }, 'METRICS', 'v1/metrics', {
          'Content-Type': 'application/x-protobuf',
        }),
        ProtobufMetricsSerializer,
        COMPONENT_TYPE,
        MetricsExporterMetricsHelper,
        undefined,
      ),
    );
  }
}

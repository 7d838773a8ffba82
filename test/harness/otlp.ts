/**
 * A real OTLP/HTTP endpoint for tests: a node:http server on loopback that accepts
 * `POST /v1/traces` and `POST /v1/metrics` (application/x-protobuf), decodes each
 * ExportTraceServiceRequest / ExportMetricsServiceRequest with the official opentelemetry-proto
 * definitions (test/fixtures/opentelemetry-proto, loaded with protobufjs) and keeps the spans and
 * the metrics' data points, flattened with their resource's attributes.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import protobuf from 'protobufjs';

const protoRoot = fileURLToPath(new URL('../fixtures/opentelemetry-proto/', import.meta.url));

export interface ReceivedSpan {
  traceId: string;
  spanId: string;
  /** '' for a root span. */
  parentSpanId: string;
  name: string;
  /** SPAN_KIND_SERVER, SPAN_KIND_CLIENT, ... (the enum's names). */
  kind: string;
  /** STATUS_CODE_UNSET, STATUS_CODE_OK, STATUS_CODE_ERROR. */
  status: string;
  startNs: bigint;
  endNs: bigint;
  attributes: Record<string, string | number | boolean>;
  resource: Record<string, string | number | boolean>;
  scope: string;
}

/** One data point of an exported metric, with the metric's shape (the proto's field names). */
export interface ReceivedPoint {
  /** The metric's name, description and unit. */
  name: string;
  description: string;
  unit: string;
  /** Which of the Metric's `data` fields was set. */
  type: 'sum' | 'gauge' | 'histogram' | 'exponentialHistogram' | 'summary';
  /** Sums and histograms: AGGREGATION_TEMPORALITY_CUMULATIVE or _DELTA (the enum's names). */
  temporality: string | undefined;
  /** Sums only. */
  isMonotonic: boolean | undefined;
  attributes: Record<string, string | number | boolean>;
  startNs: bigint;
  timeNs: bigint;
  /** Sums and gauges: asDouble or asInt. */
  value: number | undefined;
  /** Histograms. */
  count: number | undefined;
  sum: number | undefined;
  bucketCounts: number[] | undefined;
  explicitBounds: number[] | undefined;
  resource: Record<string, string | number | boolean>;
  scope: string;
  /** Which export request (0, 1, ...) carried it. */
  request: number;
}

export interface OtlpReceiver {
  /** The traces URL (…/v1/traces) and the base endpoint (for OTEL_EXPORTER_OTLP_ENDPOINT). */
  url: string;
  /** The metrics URL (…/v1/metrics). */
  metricsUrl: string;
  endpoint: string;
  spans: ReceivedSpan[];
  /** Every data point of every metrics export request, in arrival order. */
  points: ReceivedPoint[];
  /** Metrics export requests received. */
  metricsRequests: number;
  /** Export requests received (traces and metrics), and their content types. */
  contentTypes: string[];
  close(): Promise<void>;
}

async function loadRoot(): Promise<protobuf.Root> {
  const root = new protobuf.Root();
  root.resolvePath = (_origin, target) => (target.startsWith('/') ? target : protoRoot + target);
  await root.load(
    [
      'opentelemetry/proto/collector/trace/v1/trace_service.proto',
      'opentelemetry/proto/collector/metrics/v1/metrics_service.proto',
    ],
    { keepCase: false },
  );
  return root;
}

interface AnyValue {
  stringValue?: string;
  boolValue?: boolean;
  intValue?: string;
  doubleValue?: number;
}
interface KeyValue {
  key: string;
  value?: AnyValue;
}

function attrs(list: KeyValue[] | undefined): Record<string, string | number | boolean> {
  const out: Record<string, string | number | boolean> = {};
  for (const kv of list ?? []) {
    const v = kv.value ?? {};
    out[kv.key] =
      v.stringValue ?? v.boolValue ?? (v.intValue !== undefined ? Number(v.intValue) : v.doubleValue)!;
  }
  return out;
}

interface NumberPoint {
  attributes?: KeyValue[];
  startTimeUnixNano?: string;
  timeUnixNano?: string;
  asDouble?: number;
  asInt?: string;
  count?: string;
  sum?: number;
  bucketCounts?: string[];
  explicitBounds?: number[];
}
interface MetricMsg {
  name: string;
  description?: string;
  unit?: string;
  sum?: { dataPoints?: NumberPoint[]; aggregationTemporality?: string; isMonotonic?: boolean };
  gauge?: { dataPoints?: NumberPoint[] };
  histogram?: { dataPoints?: NumberPoint[]; aggregationTemporality?: string };
  exponentialHistogram?: { dataPoints?: NumberPoint[]; aggregationTemporality?: string };
  summary?: { dataPoints?: NumberPoint[] };
}

const decodeOptions = { longs: String, enums: String, bytes: String, defaults: false } as const;

function pointsOf(
  msg: {
    resourceMetrics?: {
      resource?: { attributes?: KeyValue[] };
      scopeMetrics?: { scope?: { name?: string }; metrics?: MetricMsg[] }[];
    }[];
  },
  request: number,
): ReceivedPoint[] {
  const out: ReceivedPoint[] = [];
  const types = ['sum', 'gauge', 'histogram', 'exponentialHistogram', 'summary'] as const;
  for (const rm of msg.resourceMetrics ?? []) {
    const resource = attrs(rm.resource?.attributes);
    for (const sm of rm.scopeMetrics ?? [])
      for (const m of sm.metrics ?? []) {
        const type = types.find((t) => m[t] !== undefined);
        if (type === undefined) continue;
        const data = m[type] as {
          dataPoints?: NumberPoint[];
          aggregationTemporality?: string;
          isMonotonic?: boolean;
        };
        for (const p of data.dataPoints ?? [])
          out.push({
            name: m.name,
            description: m.description ?? '',
            unit: m.unit ?? '',
            type,
            temporality: data.aggregationTemporality,
            isMonotonic: type === 'sum' ? (data.isMonotonic ?? false) : undefined,
            attributes: attrs(p.attributes),
            startNs: BigInt(p.startTimeUnixNano ?? '0'),
            timeNs: BigInt(p.timeUnixNano ?? '0'),
            value: p.asDouble ?? (p.asInt !== undefined ? Number(p.asInt) : undefined),
            count: p.count !== undefined ? Number(p.count) : type === 'histogram' ? 0 : undefined,
            sum: p.sum,
            bucketCounts: p.bucketCounts?.map(Number),
            explicitBounds: p.explicitBounds,
            resource,
            scope: sm.scope?.name ?? '',
            request,
          });
      }
  }
  return out;
}

export async function startOtlpReceiver(): Promise<OtlpReceiver> {
  const root = await loadRoot();
  const Request = root.lookupType('opentelemetry.proto.collector.trace.v1.ExportTraceServiceRequest');
  const MetricsRequest = root.lookupType(
    'opentelemetry.proto.collector.metrics.v1.ExportMetricsServiceRequest',
  );
  const spans: ReceivedSpan[] = [];
  const points: ReceivedPoint[] = [];
  let metricsRequests = 0;
  const contentTypes: string[] = [];
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      if (req.method === 'POST' && req.url === '/v1/metrics') {
        contentTypes.push(String(req.headers['content-type']));
        const msg = MetricsRequest.toObject(MetricsRequest.decode(Buffer.concat(chunks)), decodeOptions);
        points.push(...pointsOf(msg, metricsRequests++));
        // An empty ExportMetricsServiceResponse: full success.
        res.writeHead(200, { 'content-type': 'application/x-protobuf', 'content-length': 0 }).end();
        return;
      }
      if (req.method !== 'POST' || req.url !== '/v1/traces') {
        res.writeHead(404).end();
        return;
      }
      contentTypes.push(String(req.headers['content-type']));
      const msg = Request.toObject(Request.decode(Buffer.concat(chunks)), {
        longs: String,
        enums: String,
        bytes: String,
        defaults: false,
      }) as {
        resourceSpans?: {
          resource?: { attributes?: KeyValue[] };
          scopeSpans?: {
            scope?: { name?: string };
            spans?: {
              traceId: string;
              spanId: string;
              parentSpanId?: string;
              name: string;
              kind?: string;
              startTimeUnixNano: string;
              endTimeUnixNano: string;
              attributes?: KeyValue[];
              status?: { code?: string };
            }[];
          }[];
        }[];
      };
      const hex = (b64: string | undefined) => Buffer.from(b64 ?? '', 'base64').toString('hex');
      for (const rs of msg.resourceSpans ?? []) {
        const resource = attrs(rs.resource?.attributes);
        for (const ss of rs.scopeSpans ?? [])
          for (const s of ss.spans ?? [])
            spans.push({
              traceId: hex(s.traceId),
              spanId: hex(s.spanId),
              parentSpanId: hex(s.parentSpanId),
              name: s.name,
              kind: s.kind ?? 'SPAN_KIND_UNSPECIFIED',
              status: s.status?.code ?? 'STATUS_CODE_UNSET',
              startNs: BigInt(s.startTimeUnixNano),
              endNs: BigInt(s.endTimeUnixNano),
              attributes: attrs(s.attributes),
              resource,
              scope: ss.scope?.name ?? '',
            });
      }
      // An empty ExportTraceServiceResponse: full success.
      res.writeHead(200, { 'content-type': 'application/x-protobuf', 'content-length': 0 }).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  const endpoint = `http://127.0.0.1:${port}`;
  return {
    url: `${endpoint}/v1/traces`,
    metricsUrl: `${endpoint}/v1/metrics`,
    endpoint,
    spans,
    points,
    get metricsRequests() {
      return metricsRequests;
    },
    contentTypes,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

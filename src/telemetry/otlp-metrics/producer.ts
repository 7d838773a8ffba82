/**
 * A MetricProducer that reads Sluice's prom-client registry (the same metrics as GET /metrics) and
 * hands them to the OpenTelemetry SDK as OTLP data: counters as cumulative monotonic sums, gauges as
 * gauges, histograms as explicit-bucket histograms. The request path is not instrumented twice: the
 * export reads the registry once per interval. Names and labels stay as Prometheus has them (label
 * → attribute), so a dashboard query means the same on both sides.
 * Summaries (prom-client has them, Sluice registers none) are left out.
 */
import { type Attributes, type HrTime, ValueType } from '@opentelemetry/api';
import { hrTime, millisToHrTime } from '@opentelemetry/core';
import type { Resource } from '@opentelemetry/resources';
import {
  AggregationTemporality,
  type CollectionResult,
  DataPointType,
  type MetricData,
  type MetricProducer,
} from '@opentelemetry/sdk-metrics';
import type { MetricValue, Registry } from 'prom-client';

type Labels = Record<string, string | number>;
type Value = MetricValue<string> & { metricName?: string };
/** One entry of `registry.getMetricsAsJSON()`. */
type PromMetric = Awaited<ReturnType<Registry['getMetricsAsJSON']>>[number];

export class PromRegistryProducer implements MetricProducer {
  private readonly start: HrTime;

  constructor(
    private readonly registry: Registry,
    /** When the registry's cumulative values started (epoch ms). */
    startedAtMs: number,
    private readonly resource: Resource,
    private readonly scope: { name: string; version: string },
  ) {
    this.start = millisToHrTime(startedAtMs);
  }

  async collect(): Promise<CollectionResult> {
    const all = await this.registry.getMetricsAsJSON();
    const end = hrTime();
    const metrics: MetricData[] = [];
    for (const m of all) {
      const data = convert(m, this.start, end);
      if (data !== undefined) metrics.push(data);
    }
    return {
      resourceMetrics: { resource: this.resource, scopeMetrics: [{ scope: this.scope, metrics }] },
      errors: [],
    };
  }
}

/** One prom-client metric as OTLP data; exported for the unit test of the bucket conversion. */
export function convert(m: PromMetric, startTime: HrTime, endTime: HrTime): MetricData | undefined {
  const descriptor = { name: m.name, description: m.help, unit: '', valueType: ValueType.DOUBLE };
  const values = m.values as Value[];
  const point = (v: Value) => ({ startTime, endTime, attributes: attributes(v.labels), value: v.value });
  switch (String(m.type)) {
    case 'counter':
      return {
        descriptor,
        dataPointType: DataPointType.SUM,
        aggregationTemporality: AggregationTemporality.CUMULATIVE,
        isMonotonic: true,
        dataPoints: values.map(point),
      };
    case 'gauge':
      return {
        descriptor,
        dataPointType: DataPointType.GAUGE,
        aggregationTemporality: AggregationTemporality.CUMULATIVE,
        dataPoints: values.map(point),
      };
    case 'histogram':
      return {
        descriptor,
        dataPointType: DataPointType.HISTOGRAM,
        aggregationTemporality: AggregationTemporality.CUMULATIVE,
        dataPoints: histogramPoints(m.name, values).map((h) => ({
          startTime,
          endTime,
          attributes: h.attributes,
          value: h.value,
        })),
      };
    default:
      return undefined;
  }
}

interface Series {
  attributes: Attributes;
  /** (upper bound, cumulative count) of the finite `le` buckets. */
  buckets: [number, number][];
  inf: number | undefined;
  sum: number;
  count: number;
}

/**
 * prom-client keeps cumulative `le` counts (`_bucket{le="0.1"}` counts every observation ≤ 0.1);
 * OTLP wants the count of each bucket alone, plus one overflow bucket above the last bound.
 */
export function histogramPoints(
  name: string,
  values: readonly Value[],
): {
  attributes: Attributes;
  value: { buckets: { boundaries: number[]; counts: number[] }; sum: number; count: number };
}[] {
  const series = new Map<string, Series>();
  const of = (labels: Labels): Series => {
    const { le: _le, ...rest } = labels;
    const key = JSON.stringify(Object.entries(rest).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
    let s = series.get(key);
    if (s === undefined) {
      s = { attributes: attributes(rest), buckets: [], inf: undefined, sum: 0, count: 0 };
      series.set(key, s);
    }
    return s;
  };
  for (const v of values) {
    const labels = (v.labels ?? {}) as Labels;
    const s = of(labels);
    if (v.metricName === `${name}_bucket`) {
      const le = labels.le;
      if (le === '+Inf') s.inf = v.value;
      else s.buckets.push([Number(le), v.value]);
    } else if (v.metricName === `${name}_sum`) s.sum = v.value;
    else if (v.metricName === `${name}_count`) s.count = v.value;
  }
  return [...series.values()].map((s) => {
    s.buckets.sort((a, b) => a[0] - b[0]);
    const boundaries = s.buckets.map((b) => b[0]);
    const counts: number[] = [];
    let below = 0;
    for (const [, cumulative] of s.buckets) {
      counts.push(cumulative - below);
      below = cumulative;
    }
    counts.push((s.inf ?? s.count) - below);
    return {
      attributes: s.attributes,
      value: { buckets: { boundaries, counts }, sum: s.sum, count: s.count },
    };
  });
}

function attributes(labels: Partial<Labels> | undefined): Attributes {
  const out: Attributes = {};
  for (const [k, v] of Object.entries(labels ?? {})) if (v !== undefined) out[k] = String(v);
  return out;
}

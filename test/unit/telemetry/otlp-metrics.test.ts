/**
 * The OTLP metrics settings (config over environment, the kill switches, the URL rules) and the
 * conversion of prom-client's cumulative `le` buckets into OTLP's per-bucket counts, on a real
 * prom-client registry.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { Histogram, Registry } from 'prom-client';
import { histogramPoints } from '../../../src/telemetry/otlp-metrics/producer.js';
import { otlpMetricsSettings } from '../../../src/telemetry/otlp-metrics/settings.js';

describe('otlpMetricsSettings', () => {
  test('off by default; ENABLE_TELEMETRY turns it on with the standard defaults', () => {
    assert.equal(otlpMetricsSettings(undefined, {}), undefined);
    assert.deepEqual(otlpMetricsSettings(undefined, { ENABLE_TELEMETRY: 'true' }), {
      serviceName: 'sluice',
      url: 'http://localhost:4318/v1/metrics',
      intervalMs: 60_000,
      timeoutMs: 30_000,
    });
  });

  test('the endpoint: the metrics variable as is, else the base with /v1/metrics, else the config', () => {
    const on = { ENABLE_TELEMETRY: '1' };
    assert.equal(
      otlpMetricsSettings(undefined, { ...on, OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318/' })?.url,
      'http://c:4318/v1/metrics',
    );
    assert.equal(
      otlpMetricsSettings(undefined, {
        ...on,
        OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318',
        OTEL_EXPORTER_OTLP_METRICS_ENDPOINT: 'http://m:9/custom',
      })?.url,
      'http://m:9/custom',
    );
    assert.equal(
      otlpMetricsSettings(
        { metrics: { endpoint: 'http://cfg/v1/metrics' } },
        {
          ...on,
          OTEL_EXPORTER_OTLP_METRICS_ENDPOINT: 'http://m:9/custom',
        },
      )?.url,
      'http://cfg/v1/metrics',
    );
  });

  test('interval and timeout: the config, else OTEL_METRIC_EXPORT_*; the timeout at most the interval', () => {
    const env = {
      ENABLE_TELEMETRY: 'on',
      OTEL_METRIC_EXPORT_INTERVAL: '5000',
      OTEL_METRIC_EXPORT_TIMEOUT: '8000',
    };
    const s = otlpMetricsSettings(undefined, env);
    assert.equal(s?.intervalMs, 5000);
    assert.equal(s?.timeoutMs, 5000);
    assert.equal(otlpMetricsSettings({ metrics: { interval: '15s' } }, env)?.intervalMs, 15_000);
    assert.equal(otlpMetricsSettings({ metrics: { interval: 0 } }, env)?.intervalMs, 100, 'at least 100 ms');
    assert.equal(
      otlpMetricsSettings(undefined, { ENABLE_TELEMETRY: 'on', OTEL_METRIC_EXPORT_INTERVAL: 'soon' })
        ?.intervalMs,
      60_000,
    );
  });

  test('the config wins over ENABLE_TELEMETRY; OTEL_SDK_DISABLED and OTEL_METRICS_EXPORTER=none win over both', () => {
    assert.equal(
      otlpMetricsSettings({ metrics: { enabled: false } }, { ENABLE_TELEMETRY: 'true' }),
      undefined,
    );
    assert.ok(otlpMetricsSettings({ metrics: { enabled: true } }, {}), 'on by config alone');
    assert.equal(
      otlpMetricsSettings({ metrics: { enabled: true } }, { OTEL_SDK_DISABLED: 'true' }),
      undefined,
    );
    assert.equal(
      otlpMetricsSettings({ metrics: { enabled: true } }, { OTEL_METRICS_EXPORTER: 'None' }),
      undefined,
    );
    assert.ok(
      otlpMetricsSettings({ metrics: { enabled: true } }, { OTEL_METRICS_EXPORTER: 'otlp' }),
      'otlp: on',
    );
  });

  test('service.name: the tracing setting, else SERVICE_NAME, else OTEL_SERVICE_NAME', () => {
    const env = { ENABLE_TELEMETRY: 'true', SERVICE_NAME: 'a', OTEL_SERVICE_NAME: 'b' };
    assert.equal(otlpMetricsSettings({ tracing: { serviceName: 'c' } }, env)?.serviceName, 'c');
    assert.equal(otlpMetricsSettings(undefined, env)?.serviceName, 'a');
    assert.equal(otlpMetricsSettings(undefined, { ...env, SERVICE_NAME: ' ' })?.serviceName, 'b');
  });
});

describe('histogram buckets: cumulative le counts → per-bucket counts', () => {
  test('observations in every bucket, two label sets, the overflow bucket', async () => {
    const r = new Registry();
    const h = new Histogram({
      name: 'h',
      help: 'h',
      labelNames: ['route'],
      buckets: [0.1, 1, 10],
      registers: [r],
    });
    for (const v of [0.05, 0.1, 0.5, 0.7, 0.9, 5, 50, 60]) h.labels('a').observe(v);
    h.labels('b').observe(3);
    const m = (await r.getMetricsAsJSON())[0]!;
    const points = histogramPoints('h', m.values);
    assert.deepEqual(points, [
      {
        attributes: { route: 'a' },
        // ≤0.1: 0.05 and 0.1 (bounds are inclusive); (0.1,1]: 3; (1,10]: 1; above 10: 2.
        value: { buckets: { boundaries: [0.1, 1, 10], counts: [2, 3, 1, 2] }, sum: 117.25, count: 8 },
      },
      {
        attributes: { route: 'b' },
        value: { buckets: { boundaries: [0.1, 1, 10], counts: [0, 0, 1, 0] }, sum: 3, count: 1 },
      },
    ]);
  });

  test('a histogram with no observations has no points', async () => {
    const r = new Registry();
    new Histogram({ name: 'h', help: 'h', labelNames: ['route'], buckets: [1], registers: [r] });
    assert.deepEqual(histogramPoints('h', (await r.getMetricsAsJSON())[0]!.values), []);
  });
});

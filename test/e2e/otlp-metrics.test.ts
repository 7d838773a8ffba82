/**
 * The OTLP metrics export through real gateways: traffic to a real upstream on loopback, the
 * registry pushed over OTLP/HTTP protobuf to a real endpoint started here and decoded with the
 * official opentelemetry-proto definitions (test/harness/otlp.ts). Checks the request counter as a
 * cumulative monotonic sum with the route labels as attributes and the count sent, the duration
 * histogram's per-bucket counts against the cumulative `le` counts of GET /metrics, a gauge, the
 * resource, the environment's defaults, the last export at stop, and the kill switch.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { httpRequest, untilPasses } from '../harness/flow.js';
import { startGateway, type TestGateway } from '../harness/gateway.js';
import { scrape } from '../harness/metrics.js';
import { type OtlpReceiver, type ReceivedPoint, startOtlpReceiver } from '../harness/otlp.js';
import { startUpstream, type TestUpstream } from '../harness/upstream.js';

/** sluice_request_duration_seconds' bucket edges, as docs/metrics.md and the SLO checks know them. */
const EDGES = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.3, 0.5, 1, 2.5, 5, 10, 30];

let up: TestUpstream;
before(async () => {
  up = await startUpstream((req, res) => {
    res.writeHead(req.url?.startsWith('/items/missing') ? 404 : 200, { 'content-type': 'text/plain' });
    res.end('ok');
  });
});
after(() => up.close());

const config = (extra: object = {}) => ({
  upstreams: { up: { targets: [{ url: up.url }] } },
  routes: [
    { name: 'items', match: { path: { pattern: '/items/:id' } }, upstream: 'up' },
    { name: 'other', match: { path: { prefix: '/other' } }, upstream: 'up' },
  ],
  ...extra,
});

async function send(g: TestGateway, path: string, times: number): Promise<void> {
  for (let i = 0; i < times; i++) {
    const r = await httpRequest(`${g.url}${path}`);
    assert.ok(r.status === 200 || r.status === 404, `${path}: ${r.status}`);
  }
}

/** The newest export's point of `name` whose attributes include `attrs`. */
function latest(otlp: OtlpReceiver, name: string, attrs: Record<string, string>): ReceivedPoint | undefined {
  for (let i = otlp.points.length - 1; i >= 0; i--) {
    const p = otlp.points[i]!;
    if (p.name === name && Object.entries(attrs).every(([k, v]) => p.attributes[k] === v)) return p;
  }
  return undefined;
}

describe('telemetry.metrics on (config), a short interval', () => {
  let otlp: OtlpReceiver;
  let g: TestGateway;
  before(async () => {
    otlp = await startOtlpReceiver();
    g = await startGateway(
      config({
        telemetry: { metrics: { enabled: true, interval: '200ms', endpoint: otlp.metricsUrl } },
      }),
      { env: { SERVICE_NAME: 'metrics-edge' } },
    );
    await send(g, '/items/1', 5);
    await send(g, '/items/missing', 2);
    await send(g, '/other/x', 3);
  });
  after(async () => {
    await g?.stop();
    await otlp?.close();
  });

  test('sluice_requests_total: a cumulative monotonic sum, route labels as attributes, the count sent', async () => {
    const ok = await untilPasses(() => {
      const p = latest(otlp, 'sluice_requests_total', { route: 'items', class: '2xx' });
      assert.equal(p?.value, 5);
      return p!;
    }, 10_000);
    assert.equal(ok.type, 'sum');
    assert.equal(ok.isMonotonic, true);
    assert.equal(ok.temporality, 'AGGREGATION_TEMPORALITY_CUMULATIVE');
    assert.deepEqual(ok.attributes, { route: 'items', upstream: 'up', class: '2xx' });
    assert.ok(ok.startNs > 0n && ok.startNs <= ok.timeNs, 'a start time before the point’s time');
    assert.equal(ok.description, 'Requests proxied, by route, upstream and status class.');
    await untilPasses(() => {
      assert.equal(latest(otlp, 'sluice_requests_total', { route: 'items', class: '4xx' })?.value, 2);
      assert.equal(latest(otlp, 'sluice_requests_total', { route: 'other', class: '2xx' })?.value, 3);
    }, 10_000);
    assert.equal(ok.resource['service.name'], 'metrics-edge');
    assert.equal(ok.scope, 'sluice');
    assert.ok(
      otlp.contentTypes.every((c) => c === 'application/x-protobuf'),
      otlp.contentTypes.join(),
    );
  });

  test('sluice_request_duration_seconds: an explicit-bucket histogram whose bucket counts sum to the count', async () => {
    const h = await untilPasses(() => {
      const p = latest(otlp, 'sluice_request_duration_seconds', { route: 'items' });
      assert.equal(p?.count, 7);
      return p!;
    }, 10_000);
    assert.equal(h.type, 'histogram');
    assert.equal(h.temporality, 'AGGREGATION_TEMPORALITY_CUMULATIVE');
    assert.deepEqual(h.attributes, { route: 'items', upstream: 'up' });
    assert.deepEqual(h.explicitBounds, EDGES);
    assert.equal(h.bucketCounts!.length, EDGES.length + 1);
    assert.equal(
      h.bucketCounts!.reduce((a, b) => a + b, 0),
      7,
    );
    assert.ok(h.sum! > 0, 'a positive sum');
    // Per bucket: the running total of OTLP's counts is Prometheus' cumulative `le` count.
    const text = await scrape(g.adminUrl);
    let running = 0;
    EDGES.forEach((edge, i) => {
      running += h.bucketCounts![i]!;
      const m = new RegExp(
        `^sluice_request_duration_seconds_bucket\\{le="${edge}",route="items",upstream="up"\\} (\\d+)$`,
        'm',
      ).exec(text);
      assert.ok(m, `the le="${edge}" bucket in /metrics`);
      assert.equal(running, Number(m[1]), `le=${edge}`);
    });
  });

  test('gauges are gauges', async () => {
    const info = await untilPasses(() => {
      const p = latest(otlp, 'sluice_config_info', {});
      assert.ok(p, 'sluice_config_info exported');
      return p;
    }, 10_000);
    assert.equal(info.type, 'gauge');
    assert.equal(info.value, 1);
    assert.equal(typeof info.attributes.version, 'string');
  });

  test('the cumulative sum keeps its start time from one export to the next', async () => {
    const first = latest(otlp, 'sluice_requests_total', { route: 'other', class: '2xx' })!;
    const seen = otlp.metricsRequests;
    await send(g, '/other/y', 1);
    const next = await untilPasses(() => {
      const p = latest(otlp, 'sluice_requests_total', { route: 'other', class: '2xx' })!;
      assert.ok(p.request >= seen, 'a point from an export after the request');
      assert.equal(p.value, 4);
      return p;
    }, 10_000);
    assert.equal(next.startNs, first.startNs);
    assert.ok(next.timeNs > first.timeNs, 'a later point time');
  });
});

describe('the environment turns it on; a stop exports the last counts', () => {
  test('ENABLE_TELEMETRY, OTEL_EXPORTER_OTLP_ENDPOINT, OTEL_METRIC_EXPORT_INTERVAL; the stop flushes', async () => {
    const otlp = await startOtlpReceiver();
    try {
      const g = await startGateway(config(), {
        env: {
          ENABLE_TELEMETRY: 'true',
          OTEL_EXPORTER_OTLP_ENDPOINT: otlp.endpoint,
          // Longer than the test: only the stop exports.
          OTEL_METRIC_EXPORT_INTERVAL: '600000',
        },
      });
      await send(g, '/items/9', 4);
      assert.equal(otlp.metricsRequests, 0, 'nothing exported before the interval');
      await g.stop();
      assert.equal(otlp.metricsRequests, 1, 'one export, at stop');
      assert.equal(latest(otlp, 'sluice_requests_total', { route: 'items', class: '2xx' })?.value, 4);
      assert.equal(latest(otlp, 'sluice_request_duration_seconds', { route: 'items' })?.count, 4);
      assert.equal(otlp.spans.length > 0, true, 'ENABLE_TELEMETRY turns tracing on too');
    } finally {
      await otlp.close();
    }
  });

  test('OTEL_METRICS_EXPORTER=none turns the export off, even with telemetry.metrics.enabled', async () => {
    const otlp = await startOtlpReceiver();
    try {
      const g = await startGateway(
        config({ telemetry: { metrics: { enabled: true, interval: '100ms', endpoint: otlp.metricsUrl } } }),
        { env: { OTEL_METRICS_EXPORTER: 'none' } },
      );
      await send(g, '/items/1', 2);
      await g.stop();
      assert.equal(otlp.metricsRequests, 0);
    } finally {
      await otlp.close();
    }
  });
});

describe('off costs nothing', () => {
  const script = fileURLToPath(new URL('../fixtures/otel-loaded.ts', import.meta.url));
  /** The @opentelemetry packages a gateway process loaded, with this environment. */
  async function loaded(env: NodeJS.ProcessEnv): Promise<string[]> {
    const { stdout } = await promisify(execFile)(process.execPath, ['--import', 'tsx', script], {
      env: { PATH: process.env.PATH, ...env },
    });
    return JSON.parse(stdout.trim().split('\n').pop()!) as string[];
  }

  test('telemetry off: no OpenTelemetry SDK or exporter package is loaded', async () => {
    // Only the API: prom-client's process CPU collector requires @opentelemetry/api itself.
    assert.deepEqual(await loaded({}), ['@opentelemetry/api']);
  });

  test('metrics export on: sdk-metrics is loaded (the check sees what it should)', async () => {
    const otlp = await startOtlpReceiver();
    try {
      const pkgs = await loaded({
        ENABLE_TELEMETRY: 'true',
        OTEL_EXPORTER_OTLP_ENDPOINT: otlp.endpoint,
        OTEL_TRACES_EXPORTER: 'none',
      });
      assert.ok(pkgs.includes('@opentelemetry/sdk-metrics'), pkgs.join());
      assert.ok(otlp.metricsRequests >= 1, 'the child exported at its stop');
    } finally {
      await otlp.close();
    }
  });
});

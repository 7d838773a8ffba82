/**
 * The console's figures from two reads of a real prom-client registry: rates, the 5xx share and
 * latency quantiles of the interval between the reads. Expected values are worked out by hand from
 * the observations made here (bucket edges of REQUEST_DURATION_BUCKETS: …, 0.01, 0.025, 0.05, 0.1, …).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { quantile } from '../../../src/console/quantile.js';
import { type Reading, readTraffic, trafficBetween } from '../../../src/console/traffic.js';
import { Metrics } from '../../../src/telemetry/metrics.js';

test('quantile: linear inside the bucket the rank falls in, the first bucket from 0, +Inf answers the last edge, nothing answers null', () => {
  const edges = [0.1, 0.2, 0.4];
  // 10 observations: 2 in (0, 0.1], 6 in (0.1, 0.2], 2 in (0.2, 0.4], none above.
  const counts = [2, 6, 2, 0];
  // p50: rank 5, 3 into the 6 of (0.1, 0.2] → 0.1 + 0.1 × 3/6 = 0.15.
  assert.ok(Math.abs(quantile(0.5, edges, counts)! - 0.15) < 1e-12);
  // p10: rank 1, half of the 2 in (0, 0.1] → 0.05.
  assert.ok(Math.abs(quantile(0.1, edges, counts)! - 0.05) < 1e-12);
  // p90: rank 9, 1 into the 2 of (0.2, 0.4] → 0.3.
  assert.ok(Math.abs(quantile(0.9, edges, counts)! - 0.3) < 1e-12);
  // Everything above the last edge: the last edge is all the histogram can say.
  assert.equal(quantile(0.99, edges, [0, 0, 0, 5]), 0.4);
  assert.equal(quantile(0.5, edges, [0, 0, 0, 0]), null);
});

test('two reads of the registry: per route and upstream and per upstream, only what happened between them', async () => {
  const m = new Metrics(false);
  const api = m.forRoute('api', 'v1');
  const web = m.forRoute('web', 'v1');
  // Before the first read: must not count.
  for (let i = 0; i < 7; i++) {
    api.requests[2]!.inc();
    api.duration.observe(5);
  }
  const first: Reading = await readTraffic(m.registry);
  // Between the reads, on api → v1: 8 answers 2xx at 20 ms, 2 answers 5xx at 70 ms.
  for (let i = 0; i < 8; i++) {
    api.requests[2]!.inc();
    api.duration.observe(0.02);
  }
  for (let i = 0; i < 2; i++) {
    api.requests[5]!.inc();
    api.duration.observe(0.07);
  }
  // And on web → v1: 10 answers 4xx at 3 ms.
  for (let i = 0; i < 10; i++) {
    web.requests[4]!.inc();
    web.duration.observe(0.003);
  }
  const second = await readTraffic(m.registry);
  // The interval is whatever elapsed: give it exactly 2 s so the rates are checkable.
  const t = trafficBetween({ ...first, at: 0 }, { ...second, at: 2000 });
  assert.equal(t.intervalMs, 2000);
  const a = t.routes.find((r) => r.route === 'api')!;
  assert.equal(a.requests, 10);
  assert.equal(a.rps, 5);
  assert.equal(a.errorRps, 1);
  assert.equal(a.errorRatio, 0.2);
  // 8 in (0.01, 0.025], 2 in (0.05, 0.1]. p50: rank 5 → 0.01 + 0.015 × 5/8 = 0.019375 s.
  assert.equal(a.p50, 19.375);
  // p95: rank 9.5, 1.5 into the 2 of (0.05, 0.1] → 0.05 + 0.05 × 0.75 = 0.0875 s.
  assert.equal(a.p95, 87.5);
  // p99: rank 9.9 → 0.05 + 0.05 × 0.95 = 0.0975 s.
  assert.equal(a.p99, 97.5);
  const w = t.routes.find((r) => r.route === 'web')!;
  assert.deepEqual([w.requests, w.rps, w.errorRps, w.errorRatio], [10, 5, 0, 0]);
  // 4xx are not errors of the service; 3 ms lies in (0.0025, 0.005]: p50 = 0.0025 + 0.0025 × 5/10.
  assert.equal(w.p50, 3.75);
  // The upstream over both routes: 20 requests in 2 s, 2 of them 5xx.
  const u = t.upstreams.find((x) => x.upstream === 'v1')!;
  assert.deepEqual([u.requests, u.rps, u.errorRps, u.errorRatio], [20, 10, 1, 0.1]);
  // 10 at 3 ms, 8 at 20 ms, 2 at 70 ms. p50: rank 10, all 10 of (0.0025, 0.005] → 5 ms.
  assert.equal(u.p50, 5);
  // A quiet interval: no requests, rates 0, quantiles unknown (null), never 0 ms.
  const quiet = trafficBetween({ ...second, at: 0 }, { ...(await readTraffic(m.registry)), at: 1000 });
  const q = quiet.routes.find((r) => r.route === 'api')!;
  assert.deepEqual([q.requests, q.rps, q.errorRatio, q.p50, q.p95, q.p99], [0, 0, null, null, null, null]);
});

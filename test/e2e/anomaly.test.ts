/**
 * Anomaly detection end to end (src/anomaly/, docs/anomaly.md): a real upstream behind a real
 * gateway, under steady load from concurrent clients. The upstream answers after 2–12 ms (uniform
 * jitter); after the warm-up and a long run of that noise no anomaly has started; then the test adds
 * 200 ms to every answer and `anomaly_started` (latency) must follow within enterAfter + 2 intervals
 * (K anomalous intervals, plus the interval the shift fell into, plus one of slack for the timer);
 * then it takes the 200 ms away and `anomaly_ended` must follow within leaveAfter + 2 intervals.
 * Waits are on the gateway's events and its count of judged intervals, never on sleeps.
 */
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { anomalyKey } from '../../src/anomaly/service.js';
import type { GatewayEvent } from '../../src/telemetry/events.js';
import { httpRequest, waitFor, within } from '../harness/flow.js';
import { startGateway } from '../harness/gateway.js';
import { metric, scrape } from '../harness/metrics.js';
import { startUpstream } from '../harness/upstream.js';

const cleanups: (() => Promise<void>)[] = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
});

const INTERVAL_MS = 250;
const WARMUP = 8;
const ENTER = 3;
const LEAVE = 3;
/** Judged intervals of plain noise after the warm-up during which nothing may start. */
const NOISE_INTERVALS = 24;
const SHIFT_MS = 200;

test('latency shift after a steady noisy warm-up starts an anomaly within K+2 intervals; recovery ends it within M+2; noise alone never does', async (t) => {
  let extra = 0;
  const up = await startUpstream((_req, res) => {
    const delay = 2 + Math.random() * 10 + extra;
    // The upstream's simulated work: its latency is what the test controls.
    setTimeout(() => {
      res.writeHead(200, { 'content-type': 'text/plain', 'content-length': 2 });
      res.end('ok');
    }, delay);
  });
  cleanups.push(() => up.close());
  const gw = await startGateway({
    upstreams: { up: { targets: [{ url: up.url }] } },
    routes: [{ name: 'all', match: { path: { prefix: '/' } }, upstream: 'up' }],
    anomaly: {
      interval: INTERVAL_MS,
      warmup: WARMUP,
      minRequests: 5,
      enterAfter: ENTER,
      leaveAfter: LEAVE,
      // A loaded test machine adds its own milliseconds: a rise under 25 ms is not an anomaly here.
      latency: { minAbsolute: 25 },
    },
  });
  cleanups.push(() => gw.stop());
  const svc = gw.gw.lifetimeValue(anomalyKey);
  assert.ok(svc, 'the gateway made its anomaly detector');

  const events: GatewayEvent[] = [];
  gw.gw.events.on((e) => {
    if (e.type === 'anomaly_started' || e.type === 'anomaly_ended') events.push(e);
  });

  // Steady load: 8 clients, each sending its next request when the last is answered.
  let running = true;
  const clients = Array.from({ length: 8 }, async () => {
    while (running) {
      const r = await httpRequest(`${gw.url}/x`);
      assert.equal(r.status, 200);
    }
  });
  cleanups.push(async () => {
    running = false;
    await Promise.all(clients);
  });

  const t0 = svc.ticks;
  await waitFor(() => svc.ticks >= t0 + WARMUP + NOISE_INTERVALS, 'warm-up and noise intervals', 30_000);
  assert.equal(events.length, 0, `no anomaly on steady noise (2–12 ms jitter): ${JSON.stringify(events)}`);
  const steady = await scrape(gw.adminUrl);
  const labels = '{route="all",upstream="up",signal="latency"}';
  const baseline = metric(steady, `sluice_anomaly_baseline${labels}`);
  assert.ok(baseline !== undefined && baseline > 2 && baseline < 40, `baseline ${baseline} ms`);
  assert.equal(metric(steady, `sluice_anomaly_active${labels}`), 0);

  // The shift.
  const shiftTick = svc.ticks;
  const shiftAt = performance.now();
  extra = SHIFT_MS;
  await within(
    waitFor(() => events.find((e) => e.type === 'anomaly_started'), 'anomaly_started', 20_000),
    20_000,
    'anomaly_started after the shift',
  );
  const detectMs = performance.now() - shiftAt;
  const detectIntervals = svc.ticks - shiftTick;
  const started = events[0]!;
  assert.equal(started.type, 'anomaly_started');
  if (started.type !== 'anomaly_started') return;
  assert.equal(started.route, 'all');
  assert.equal(started.upstream, 'up');
  assert.equal(started.signal, 'latency');
  assert.equal(started.unit, 'ms');
  assert.ok(started.value > SHIFT_MS, `value ${started.value} ms includes the ${SHIFT_MS} ms shift`);
  assert.ok(started.threshold < started.value);
  assert.ok(detectIntervals <= ENTER + 2, `detected after ${detectIntervals} intervals (bound ${ENTER + 2})`);
  t.diagnostic(`detection: ${detectIntervals} intervals, ${Math.round(detectMs)} ms after the shift`);
  const during = await scrape(gw.adminUrl);
  assert.equal(metric(during, `sluice_anomaly_active${labels}`), 1);
  assert.equal(metric(during, `sluice_anomalies_total${labels}`), 1);
  assert.ok(gw.logs.some((l) => l.event === 'anomaly_started' && l.signal === 'latency'));

  // Recovery.
  const recoverTick = svc.ticks;
  const recoverAt = performance.now();
  extra = 0;
  await waitFor(() => events.find((e) => e.type === 'anomaly_ended'), 'anomaly_ended', 20_000);
  const endMs = performance.now() - recoverAt;
  const endIntervals = svc.ticks - recoverTick;
  const ended = events.find((e) => e.type === 'anomaly_ended')!;
  if (ended.type !== 'anomaly_ended') return;
  assert.equal(ended.signal, 'latency');
  assert.ok(ended.peak > SHIFT_MS);
  assert.ok(ended.durationMs > 0);
  assert.ok(endIntervals <= LEAVE + 2, `ended after ${endIntervals} intervals (bound ${LEAVE + 2})`);
  t.diagnostic(`recovery: ${endIntervals} intervals, ${Math.round(endMs)} ms after the shift ended`);
  assert.equal(metric(await scrape(gw.adminUrl), `sluice_anomaly_active${labels}`), 0);
  assert.equal(events.filter((e) => e.type === 'anomaly_started').length, 1, 'one anomaly, no flapping');
  assert.ok(gw.logs.some((l) => l.event === 'anomaly_ended'));
});

/**
 * A cost spike through a whole gateway (src/anomaly/, docs/anomaly.md): a real upstream that
 * reports the units each answer used in `x-units` (as an LLM provider reports tokens), a route
 * whose `cost` prices them (`perUnit` × units, the cost budgets' pricing), steady load from
 * concurrent clients of a real tenant. The units are noisy (8–12 per answer); after the warm-up
 * and a long run of that noise no anomaly has started; then every answer uses 40 units and
 * `anomaly_started` (cost) must follow within enterAfter + 2 intervals. Latency never moves, so
 * no latency anomaly starts. Waits are on the gateway's events and its judged intervals.
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

const INTERVAL_MS = 500;
const WARMUP = 8;
const ENTER = 3;
const NOISE_INTERVALS = 24;
const PER_UNIT = 0.001;
const SPIKE_UNITS = 40;

test('a cost spike (units per answer ×4) starts a cost anomaly within K+2 intervals; noisy units alone never do', async (t) => {
  let spike = false;
  const up = await startUpstream((_req, res) => {
    // The provider's usage report: what the test controls.
    const units = spike ? SPIKE_UNITS : 8 + Math.floor(Math.random() * 5);
    res.writeHead(200, { 'content-type': 'text/plain', 'content-length': 2, 'x-units': String(units) });
    res.end('ok');
  });
  cleanups.push(() => up.close());
  const gw = await startGateway({
    store: 'memory://',
    identity: { hostTenant: '{tenant}.api.test' },
    upstreams: { llm: { targets: [{ url: up.url }] } },
    routes: [
      {
        name: 'chat',
        match: { path: { prefix: '/' } },
        upstream: 'llm',
        tenant: { from: ['host'] },
        cost: { perUnit: PER_UNIT, unitsHeader: 'x-units' },
      },
    ],
    anomaly: {
      interval: INTERVAL_MS,
      warmup: WARMUP,
      minRequests: 5,
      enterAfter: ENTER,
      leaveAfter: 3,
      latency: { minAbsolute: 25 },
    },
  });
  cleanups.push(() => gw.stop());
  await gw.gw.tenancy!.createTenant({ actor: 'test', role: 'admin' }, { id: 'acme', name: 'Acme' });
  await waitFor(() => gw.gw.identity!.snapshot.current.tenantsById.size === 1, 'the tenant');
  const svc = gw.gw.lifetimeValue(anomalyKey);
  assert.ok(svc, 'the gateway made its anomaly detector');

  const events: GatewayEvent[] = [];
  gw.gw.events.on((e) => {
    if (e.type === 'anomaly_started' || e.type === 'anomaly_ended') events.push(e);
  });

  let running = true;
  const clients = Array.from({ length: 16 }, async () => {
    while (running) {
      const r = await httpRequest(`${gw.url}/v1/chat`, { headers: { host: 'acme.api.test' } });
      assert.equal(r.status, 200);
    }
  });
  cleanups.push(async () => {
    running = false;
    await Promise.all(clients);
  });

  const t0 = svc.ticks;
  await waitFor(() => svc.ticks >= t0 + WARMUP + NOISE_INTERVALS, 'warm-up and noise intervals', 30_000);
  assert.equal(events.length, 0, `no anomaly on steady noise (8–12 units): ${JSON.stringify(events)}`);
  const labels = '{route="chat",upstream="llm",signal="cost"}';
  const steady = await scrape(gw.adminUrl);
  const baseline = metric(steady, `sluice_anomaly_baseline${labels}`);
  // 8–12 units at 0.001: a mean of 0.01 per request.
  assert.ok(baseline !== undefined && baseline > 0.009 && baseline < 0.011, `baseline ${baseline}`);

  const spikeTick = svc.ticks;
  const spikeAt = performance.now();
  spike = true;
  await within(
    waitFor(() => events.find((e) => e.type === 'anomaly_started'), 'anomaly_started', 20_000),
    20_000,
    'anomaly_started after the spike',
  );
  const intervals = svc.ticks - spikeTick;
  const started = events[0]!;
  assert.equal(started.type, 'anomaly_started');
  if (started.type !== 'anomaly_started') return;
  assert.equal(started.signal, 'cost');
  assert.equal(started.route, 'chat');
  assert.equal(started.unit, 'currency/request');
  // 40 units at 0.001 (the last interval may hold a few answers from before the spike).
  assert.ok(started.value > 0.03 && started.value < 0.0401, `value ${started.value}`);
  assert.ok(intervals <= ENTER + 2, `detected after ${intervals} intervals (bound ${ENTER + 2})`);
  t.diagnostic(
    `cost spike detected after ${intervals} intervals, ${Math.round(performance.now() - spikeAt)} ms (interval ${INTERVAL_MS} ms)`,
  );
  assert.equal(metric(await scrape(gw.adminUrl), `sluice_anomaly_active${labels}`), 1);
  assert.ok(
    !events.some((e) => e.type === 'anomaly_started' && e.signal !== 'cost'),
    'latency and errors did not move',
  );
});
